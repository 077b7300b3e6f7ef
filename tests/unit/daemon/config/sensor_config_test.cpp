// SPDX-License-Identifier: Apache-2.0
#include "daemon/config/sensor_config.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace teiten::config;

namespace {
std::vector<std::string> errors_of(const std::string& yaml) {
  auto r = parse_sensor_config("/etc/teiten/sensor.yaml", yaml);
  std::vector<std::string> out;
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
    for (const auto& x : *e) out.push_back(x.format());
  }
  return out;
}
SensorConfig ok(const std::string& yaml) {
  auto r = parse_sensor_config("/etc/teiten/sensor.yaml", yaml);
  if (auto* e = std::get_if<std::vector<ConfigError>>(&r)) {
    for (const auto& x : *e) FAIL(x.format());
  }
  return std::get<SensorConfig>(r);
}
const std::string kMinimal =
    "sensor:\n  id: tokyo-1\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n";
}  // namespace

TEST_CASE("a minimal configuration gets every default", "[config]") {
  const SensorConfig c = ok(kMinimal);
  CHECK(c.sensor_id == "tokyo-1");
  CHECK(c.addresses == std::vector<std::string>{"203.0.113.7"});
  CHECK(c.address_set.contains_v4(0xCB007107));
  CHECK(c.bucket_width_s == 60);
  CHECK(c.bucket_max_keys == 10000);
  CHECK(c.ring_slots == 32768);
  CHECK(c.replay_ring_full == RingFullPolicy::wait);
  CHECK(c.log_level == "info");
  CHECK(c.geoip_database.empty());
  CHECK(c.sha256.size() == 64);
}

TEST_CASE("durations take units", "[config]") {
  CHECK(ok(kMinimal + "buckets:\n  width: 5m\n").bucket_width_s == 300);
  CHECK(ok(kMinimal + "buckets:\n  width: 1h\n").bucket_width_s == 3600);
  CHECK(ok(kMinimal + "buckets:\n  width: 30s\n").bucket_width_s == 30);
}

TEST_CASE("an unknown key is an error with a suggestion", "[config]") {
  CHECK(
      errors_of("sensor:\n  id: a\n  adresses: [203.0.113.7]\n") ==
      std::vector<std::string>{
          "/etc/teiten/sensor.yaml:3:3: sensor: unknown key 'adresses' (did you mean 'addresses'?)",
          "/etc/teiten/sensor.yaml:2:3: sensor.addresses: required key is missing"});
}

TEST_CASE("an unknown section is an error with a suggestion", "[config]") {
  CHECK(errors_of(kMinimal + "bukets:\n  width: 60\n") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:6:1: bukets: unknown section (did you mean 'buckets'?)"});
}

TEST_CASE("bad values are reported all at once, with positions", "[config]") {
  const std::string yaml =
      "sensor:\n"
      "  id: tokyo 1\n"
      "  addresses: [203.0.113.7, 10.0.0.1/8, banana]\n"
      "buckets:\n"
      "  width: 7\n"
      "  max_keys: abc\n"
      "capture:\n"
      "  ring_slots: 10\n"
      "  replay_ring_full: sometimes\n"
      "log:\n"
      "  level: loud\n";
  CHECK(
      errors_of(yaml) ==
      std::vector<std::string>{
          "/etc/teiten/sensor.yaml:2:7: sensor.id: 'tokyo 1' is not a sensor id (1-64 of A-Z a-z "
          "0-9 . _ -)",
          "/etc/teiten/sensor.yaml:3:14: sensor.addresses: '10.0.0.1/8' has host bits set beyond "
          "the prefix length",
          "/etc/teiten/sensor.yaml:5:10: buckets.width: 7 seconds does not divide a day (86400 s)",
          "/etc/teiten/sensor.yaml:6:13: buckets.max_keys: 'abc' is not a non-negative integer",
          "/etc/teiten/sensor.yaml:8:15: capture.ring_slots: 10 is out of range [64, 4194304]",
          "/etc/teiten/sensor.yaml:9:21: capture.replay_ring_full: 'sometimes' is not one of: "
          "wait, drop",
          "/etc/teiten/sensor.yaml:11:10: log.level: 'loud' is not one of: trace, debug, info, "
          "warn, error, critical, off"});
}

TEST_CASE("required keys and empty files", "[config]") {
  CHECK(errors_of("") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:1:1: sensor.id: required key is missing",
            "/etc/teiten/sensor.yaml:1:1: sensor.addresses: required key is missing"});
  CHECK(errors_of("sensor:\n  id: a\n  addresses: []\ngeoip:\n  database: \"\"\n") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:3:14: sensor.addresses: expected at least 1 entry"});
}

TEST_CASE("strict types: booleans-as-words, lists and maps where scalars belong", "[config]") {
  CHECK(errors_of(kMinimal + "buckets:\n  width: [60]\n") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:7:10: buckets.width: expected a single value"});
  CHECK(errors_of(kMinimal + "buckets:\n  width: -60\n") ==
        std::vector<std::string>{"/etc/teiten/sensor.yaml:7:10: buckets.width: '-60' is not a "
                                 "duration (expected seconds, e.g. 60, 60s, 5m, 1h)"});
  CHECK(errors_of("sensor: 5\n") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:1:9: sensor: expected a mapping of keys",
            "/etc/teiten/sensor.yaml:1:9: sensor.id: required key is missing",
            "/etc/teiten/sensor.yaml:1:9: sensor.addresses: required key is missing"});
}

TEST_CASE("a key given twice is an error", "[config]") {
  CHECK(errors_of(kMinimal + "buckets:\n  width: 60\n  width: 120\n") ==
        std::vector<std::string>{"/etc/teiten/sensor.yaml:8:3: buckets.width: key given twice"});
}

TEST_CASE("YAML syntax errors carry their position", "[config]") {
  CHECK(errors_of("sensor:\n  id: [a\n") ==
        std::vector<std::string>{
            "/etc/teiten/sensor.yaml:3:1: yaml: end of sequence flow not found"});
}

TEST_CASE("a missing file is one clear error", "[config]") {
  auto r = load_sensor_config("/nonexistent/sensor.yaml");
  auto* e = std::get_if<std::vector<ConfigError>>(&r);
  REQUIRE(e);
  REQUIRE(e->size() == 1);
  CHECK((*e)[0].format() ==
        "/nonexistent/sensor.yaml:1:1: file: /nonexistent/sensor.yaml: cannot open configuration "
        "file: No such file or directory");
}

TEST_CASE("the example configuration is valid apart from its database path", "[config]") {
  std::string example = sensor_config_example();
  const std::string db = "\"/usr/share/teiten/geoip/geo-whois-asn-country.mmdb\"";
  const auto at = example.find(db);
  REQUIRE(at != std::string::npos);
  example.replace(at, db.size(), "\"\"");
  const SensorConfig c = ok(example);
  CHECK(c.sensor_id == "sensor-1");
  CHECK(c.addresses.size() == 2);
}

TEST_CASE("every key of the schema has its value recorded, defaults included", "[config]") {
  const SensorConfig c = ok(kMinimal);
  for (const auto& f : sensor_schema()) {
    const std::string key = std::string{f.section} + "." + std::string{f.key};
    INFO(key);
    CHECK(c.values.count(key) == 1);
  }
  CHECK(c.values.size() == sensor_schema().size());
}

TEST_CASE("a reload applies the keys marked live and keeps the others until a restart",
          "[config][reload]") {
  // Any regular file will do for the certificate paths: this one.
  const std::string file = __FILE__;
  const std::string files = "  ca: " + file + "\n  cert: " + file + "\n  key: " + file + "\n";
  const std::string upload = "upload:\n  collector: c1.example:8443\n" + files;
  const SensorConfig running = ok(kMinimal + upload + "state:\n  dir: spool-a\n");
  REQUIRE(running.state_dir == "/etc/teiten/spool-a");

  SECTION("live keys change, restart keys keep their running values and are named") {
    const SensorConfig next =
        ok("sensor:\n  id: tokyo-2\n  addresses: [203.0.113.8]\ngeoip:\n  database: \"\"\n"
           "upload:\n  collector: c2.example:8443\n" +
           files +
           "  batch: 7\nbuckets:\n  width: 300\nlog:\n  level: debug\n"
           "state:\n  dir: spool-b\n");
    const Reloaded r = reload_sensor_config(running, next);
    // Live: applied.
    CHECK(r.config.upload_collector == "c2.example:8443");
    CHECK(r.config.upload_batch == 7);
    CHECK(r.config.log_level == "debug");
    // Restart: kept (a relative state.dir still resolved against the file's folder).
    CHECK(r.config.sensor_id == "tokyo-1");
    CHECK(r.config.addresses == std::vector<std::string>{"203.0.113.7"});
    CHECK(r.config.address_set.contains_v4(0xCB007107));
    CHECK_FALSE(r.config.address_set.contains_v4(0xCB007108));
    CHECK(r.config.bucket_width_s == 60);
    CHECK(r.config.state_dir == "/etc/teiten/spool-a");
    CHECK(r.deferred ==
          std::vector<std::string>{"sensor.id", "sensor.addresses", "buckets.width", "state.dir"});
    // What it keeps is what runs: reloading the result again changes nothing.
    const Reloaded again = reload_sensor_config(r.config, r.config);
    CHECK(again.deferred.empty());
    CHECK(again.config.values == r.config.values);
  }

  SECTION("turning delivery off waits for a restart, with every upload key") {
    const Reloaded r = reload_sensor_config(running, ok(kMinimal + "state:\n  dir: spool-a\n"));
    CHECK(r.config.upload_collector == "c1.example:8443");
    CHECK(r.config.upload_cert == file);
    CHECK(r.deferred ==
          std::vector<std::string>{"upload.collector", "upload.ca", "upload.cert", "upload.key"});
  }

  SECTION("an unchanged file changes nothing") {
    const Reloaded r = reload_sensor_config(running, running);
    CHECK(r.deferred.empty());
    CHECK(r.config.values == running.values);
    CHECK(r.config.state_dir == running.state_dir);
  }
}

TEST_CASE("a reload of a configuration given by a relative path resolves state.dir once",
          "[config][reload]") {
  const std::string yaml = kMinimal + "state:\n  dir: state\n";
  auto parse = [&] {
    auto r = parse_sensor_config("conf/sensor.yaml", yaml);
    REQUIRE(std::holds_alternative<SensorConfig>(r));
    return std::get<SensorConfig>(r);
  };
  const SensorConfig running = parse();
  REQUIRE(running.state_dir == "conf/state");
  Reloaded r = reload_sensor_config(running, parse());
  CHECK(r.config.state_dir == "conf/state");
  CHECK(r.deferred.empty());
  r = reload_sensor_config(r.config, parse());
  CHECK(r.config.state_dir == "conf/state");
}

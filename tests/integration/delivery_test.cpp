// SPDX-License-Identifier: Apache-2.0
// Sealed buckets travel from teiten-sensord to teiten-collectord over mutual TLS on
// loopback and are stored exactly once, whatever fails on the way. Real processes, real
// certificates (teitenctl pki), real TLS, a real SQLite database.
#include <utility>  // before Asio

#include <sys/mount.h>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "common/bucket/bucket_json.h"
#include "common/http/client.h"
#include "ctl/gen/traffic_gen.h"
#include "tests/integration/network_fixture.h"
#include "tests/integration/test_support.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

TEST_CASE("generated traffic reaches the collector exactly: totals equal the ground truth",
          "[delivery]") {
  Network n;
  const auto truth = generate(n.dir, 40000, 1800);
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir));
  const RunResult r = run(sensord(n, "gen-1"), n.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
  const auto acc = n.accounting("gen-1");
  CHECK(acc["buckets"] == truth.buckets.size());
  std::uint64_t nfs = 0, self = 0;
  for (const auto& [s, b] : truth.buckets) {
    nfs += b.not_for_sensor;
    self += b.self_traffic;
  }
  CHECK(acc["not_for_sensor"] == nfs);
  CHECK(acc["self_traffic"] == self);
  CHECK(self > 0);
  // teitenctl query shows the same through the CLI.
  const RunResult q =
      run({teitenctl_path(), "query", "--collector", "localhost:" + std::to_string(n.port), "--ca",
           n.pki() + "/ca.pem", "--cert", n.pki() + "/operator-op.pem", "--key",
           n.pki() + "/operator-op.key", "--group-by", "fingerprint", "--fingerprint", "mirai"},
          n.dir);
  REQUIRE(q.exit_code == 0);
  std::uint64_t mirai = 0;
  for (const auto& [k, v] : truth_totals(truth)) {
    if (k.find("/mirai/") != std::string::npos) mirai += v;
  }
  CHECK(q.out.find("mirai") != std::string::npos);
  CHECK(q.out.find(std::to_string(mirai)) != std::string::npos);
}

TEST_CASE("buckets sealed while the collector is down all arrive once it starts", "[delivery]") {
  Network n;
  const auto truth = generate(n.dir, 20000, 1200);
  auto first = n.start_collector();  // to learn a free port
  first->kill(SIGKILL);
  first->wait();
  n.write_sensor_config("gen-1", make_mmdb(n.dir));
  Process sensor(sensord(n, "gen-1"), n.dir / "sensor.log");
  // Everything is sealed and spooled while nobody listens.
  REQUIRE(eventually(
      [&] { return read_file(n.dir / "sensor.log").find("upload failed") != std::string::npos; },
      std::chrono::seconds(20)));
  CHECK(sensor.running());
  auto collector = n.start_collector();
  const auto rc = sensor.wait_for(std::chrono::seconds(120));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

TEST_CASE("a collector killed during ingest loses nothing and counts nothing twice",
          "[delivery][once]") {
  Network n;
  const auto truth = generate(n.dir, 30000, 3000, 10);  // 300 buckets of 10 s
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  Process sensor(sensord(n, "gen-1", {"--replay-rate", "15000"}), n.dir / "sensor.log");
  std::mt19937 rng(42);
  for (int i = 0; i < 5 && sensor.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));
    collector->kill(SIGKILL);
    collector->wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    collector = n.start_collector();
  }
  const auto rc = sensor.wait_for(std::chrono::seconds(180));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
  CHECK(n.accounting("gen-1")["buckets"] == truth.buckets.size());
}

TEST_CASE("the same batch sent twice is acknowledged twice and counted once", "[delivery]") {
  Network n;
  auto collector = n.start_collector();
  write_file(n.dir / "s.yaml",
             "sensor:\n  id: gen-1\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n");
  generate(n.dir, 3000, 300);
  const RunResult r = run(
      {sensord_path(), "-c", n.dir / "s.yaml", "-r", n.dir / "in.pcap", "--boot-id", "b1"}, n.dir);
  REQUIRE(r.exit_code == 0);
  std::vector<bucket::SealedBucket> batch = read_buckets_from_string(r.out);
  const std::string body = bucket::to_batch_json(batch);
  const auto first = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  REQUIRE(first.status == 200);
  const auto j1 = nlohmann::json::parse(first.body);
  CHECK(j1["stored"].size() == batch.size());
  CHECK(j1["duplicate"].empty());
  const auto second = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  REQUIRE(second.status == 200);
  const auto j2 = nlohmann::json::parse(second.body);
  CHECK(j2["stored"].empty());
  CHECK(j2["duplicate"].size() == batch.size());
  std::uint64_t observed = 0;
  for (const auto& b : batch) observed += b.observed_packets();
  CHECK(n.accounting("gen-1")["observed_packets"] == observed);
  CHECK(n.accounting("gen-1")["buckets"] == batch.size());
}

TEST_CASE("a sensor killed at random moments 50 times still delivers everything exactly once",
          "[delivery][kill][once]") {
  Network n;
  // 800 buckets of 10 s: at 5,000 packets/s, 50 runs of at most 270 ms cannot finish it.
  const auto truth = generate(n.dir, 80000, 8000, 10);
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  std::mt19937 rng(7);
  int kills = 0;
  for (int i = 0; i < 50; ++i) {
    Process sensor(sensord(n, "gen-1", {"--replay-rate", "5000"}), n.dir / "sensor.log");
    // From the first milliseconds (start-up, spool recovery) to well into delivery.
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 250));
    if (!sensor.running()) break;  // finished early: nothing left to kill
    sensor.kill(SIGKILL);
    CHECK(sensor.wait() == 128 + SIGKILL);
    ++kills;
  }
  INFO("kills: " << kills);
  CHECK(kills == 50);
  const RunResult last = run(sensord(n, "gen-1"), n.dir);
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  // Replay resumes at the first packet not yet in a sealed bucket, and sealed buckets are
  // spooled before anything else: even the open bucket of each kill is not lost.
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

TEST_CASE("a full disk under the spool is counted and recovered from", "[delivery][disk][once]") {
  Network n;
  const std::string mnt = n.dir / "state-gen-1";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("SKIPPED: cannot mount a tmpfs here (" << std::strerror(errno)
                                                << "); the full-disk test needs root");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const auto truth = generate(n.dir, 20000, 3000, 10);
  auto first = n.start_collector();  // learn a port, then stop: the spool must fill
  first->kill(SIGKILL);
  first->wait();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  Process sensor(sensord(n, "gen-1"), n.dir / "sensor.log");
  REQUIRE(eventually(
      [&] {
        return read_file(n.dir / "sensor.log").find("spool write failed") != std::string::npos;
      },
      std::chrono::seconds(60)));
  CHECK(sensor.running());               // no crash: it waits for space
  auto collector = n.start_collector();  // delivery frees the space
  const auto rc = sensor.wait_for(std::chrono::seconds(180));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(read_file(n.dir / "sensor.log").find("spool write recovered") != std::string::npos);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

TEST_CASE("batches larger than the collector's body limit are split, not retried for ever",
          "[delivery]") {
  Network n;
  // 60 buckets of 10 s (about 330 packets, a few kB each): 100 of them exceed 64 KiB.
  const auto truth = generate(n.dir, 20000, 600, 10);
  auto collector = n.start_collector("limits:\n  max_body_bytes: 65536\n");
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  const RunResult r = run(sensord(n, "gen-1"), n.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("refused a batch as too large") != std::string::npos);
  // The refusal arrives as an answer, not as a reset connection retried with backoff.
  CHECK(r.err.find("upload failed") == std::string::npos);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

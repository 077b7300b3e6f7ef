// SPDX-License-Identifier: Apache-2.0
#include "daemon/service/counters.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

using namespace teiten::sensor;

TEST_CASE("the counter registry declares each metric, status field and log key once",
          "[counters]") {
  std::set<std::string> metrics, status, logs;
  const auto defs = counter_defs();
  REQUIRE(defs.size() > 30);
  for (const CounterDef* d : defs) {
    INFO(d->metric << " " << d->status << " " << d->log);
    CHECK((!d->metric.empty() || !d->status.empty() || !d->log.empty()));
    if (!d->metric.empty()) {
      CHECK(metrics.insert(std::string{d->metric}).second);
      CHECK_FALSE(d->help.empty());
      // Prometheus conventions: counters end in _total, gauges do not.
      const bool total = d->metric.size() > 6 && d->metric.ends_with("_total");
      CHECK(total == !d->gauge);
    }
    if (!d->status.empty()) CHECK(status.insert(std::string{d->status}).second);
    if (!d->log.empty()) CHECK(logs.insert(std::string{d->log}).second);
  }
  // What an operator's dashboards and alert rules (config/prometheus) rely on is there.
  for (const char* m : {"packets_captured_total", "packets_observed_total", "ring_drops_total",
                        "kernel_drops_total", "spool_pending_buckets", "spool_max_bytes",
                        "upload_last_success_seconds", "upload_buckets_refused_total"})
    CHECK(metrics.count(m) == 1);
  for (const char* l :
       {"packets", "observed", "ring_drops", "delivered", "refused", "dead_letter_held"})
    CHECK(logs.count(l) == 1);
}

TEST_CASE("/v1/status is laid out as docs/control-api.md shows, null where a source is absent",
          "[counters]") {
  SensorSources sources;
  sources.boot_id = "b";
  sources.started = 1700000000;
  const auto defs = counter_defs();
  // Every counter present, each with a value of its own; then without delivery.
  for (const bool delivering : {true, false}) {
    INFO("delivering " << delivering);
    std::vector<Reading> r;
    std::uint64_t v = 1;
    for (const CounterDef* d : defs) {
      // What the spool, the uploader and the dead-letter area count.
      const std::string metric{d->metric};
      const bool delivery = metric.rfind("spool_", 0) == 0 || metric.rfind("upload_", 0) == 0 ||
                            metric.rfind("dead_letter_", 0) == 0;
      r.push_back({d, delivering || !delivery ? std::optional<std::uint64_t>{v++} : std::nullopt});
    }
    const auto j = nlohmann::ordered_json::parse(status_json(r, sources, "s1", "eth0"));
    std::vector<std::string> keys;
    for (const auto& [k, x] : j.items()) keys.push_back(k);
    CHECK(keys == std::vector<std::string>{
                      "sensor", "version", "boot_id", "started", "uptime_s", "interface", "capture",
                      "packets", "drops", "buckets_sealed", "spool", "last_upload",
                      "upload_failures", "dead_letter", "certificate_expiry", "geoip_build"});
    CHECK(j["sensor"] == "s1");
    CHECK(j["interface"] == "eth0");
    CHECK(j["started"] == "2023-11-14T22:13:20Z");
    CHECK(j["capture"]["state"] == "active");  // a non-zero capture_active
    CHECK(j["capture"].size() == 3);
    CHECK(j["packets"].size() == 5);
    CHECK(j["packets"]["captured"].is_number_unsigned());
    CHECK(j["drops"].size() == 3);
    CHECK(j["certificate_expiry"].is_string());  // a time, as RFC 3339
    if (delivering) {
      CHECK(j["spool"].size() == 6);
      CHECK(j["dead_letter"].size() == 8);
      CHECK(j["last_upload"].is_string());
      CHECK(j["upload_failures"].is_number_unsigned());
    } else {
      CHECK(j["spool"].is_null());
      CHECK(j["dead_letter"].is_null());
      CHECK(j["last_upload"].is_null());
      CHECK(j["upload_failures"].is_null());
    }
    // The counters read the same in /metrics and in the log line.
    const std::string metrics = metrics_text(r, "s1");
    CHECK(metrics.find("teiten_build_info{version=") != std::string::npos);
    CHECK(metrics.find("# TYPE teiten_packets_captured_total counter") != std::string::npos);
    CHECK((metrics.find("teiten_spool_pending_buckets") != std::string::npos) == delivering);
    const std::string log = log_fields(r);
    CHECK(log.rfind("packets=" + std::to_string(value_of(r, "packets_captured_total")) + " ", 0) ==
          0);
    CHECK((log.find(" delivered=") != std::string::npos) == delivering);
  }
}

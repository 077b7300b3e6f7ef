// SPDX-License-Identifier: Apache-2.0
#include "daemon/service/counters.h"

#include <catch2/catch.hpp>
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

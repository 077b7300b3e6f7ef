// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::sensor {

class Pipeline;
class Spool;
class Uploader;
class DeadLetterStore;
class RecentBuckets;

/// What the sensor's counters are read from. Pointers may be null (no spool, uploader or
/// dead-letter area when buckets go to a file; no pull buffer without a control server).
/// Owned by the service; they outlive every reader.
struct SensorSources {
  const Pipeline* pipeline = nullptr;
  Spool* spool = nullptr;
  const Uploader* uploader = nullptr;
  DeadLetterStore* dead = nullptr;
  const RecentBuckets* recent = nullptr;
  std::string boot_id;
  std::int64_t started = 0;  ///< seconds since 1970
  /// Changed by a reload (I/O thread): notAfter of the upload certificate, GeoIP build.
  std::atomic<std::int64_t> certificate_expiry{0};
  std::atomic<std::int64_t> geoip_build{0};
};

/// How /v1/status shows a value.
enum class StatusForm : std::uint8_t {
  number,
  time,   ///< seconds since 1970 as RFC 3339, null when 0
  state,  ///< 1: "active", 0: "down"
};

/// One counter or gauge of the sensor, declared once: where it shows is a property of the
/// declaration (counters.cpp), and /metrics, /v1/status, the systemd status line and the
/// closing log line all read the same table.
struct CounterDef {
  std::string_view metric;  ///< Prometheus name without "teiten_" ("": not a metric)
  std::string_view help;
  bool gauge = false;
  std::string_view status;  ///< dotted path in /v1/status ("": not shown)
  StatusForm form = StatusForm::number;
  std::string_view log;  ///< key in the closing log line ("": not logged)
};

/// One counter's value now; nullopt when its source is absent (no spool...).
struct Reading {
  const CounterDef* def;
  std::optional<std::uint64_t> value;
};

/// The registry's declarations, in its order.
std::vector<const CounterDef*> counter_defs();

/// Every counter of the registry, in its order, read from `s` now (any thread).
std::vector<Reading> read_counters(const SensorSources& s);

/// The value of the counter whose metric name is `metric` in `r` (0 when absent).
std::uint64_t value_of(const std::vector<Reading>& r, std::string_view metric);

/// "key=value key=value ...": the counters with a log key whose source is present.
std::string log_fields(const std::vector<Reading>& r);

/// The Prometheus text exposition of the counters (and build_info).
std::string metrics_text(const std::vector<Reading>& r, std::string_view sensor_id);

/// /v1/status: the sensor's identity, then every counter with a status path; a section
/// whose source is absent is null.
std::string status_json(const std::vector<Reading>& r, const SensorSources& s,
                        std::string_view sensor_id, std::string_view interface);

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#include "daemon/service/counters.h"

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/metrics/prometheus.h"
#include "common/version.h"
#include "daemon/control/recent_buckets.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/spool/dead_letter.h"
#include "daemon/spool/spool.h"
#include "daemon/upload/uploader.h"

namespace teiten::sensor {
namespace {

// The sources, read once per reading (the spool and dead-letter stats take a lock).
struct Snapshot {
  const PipelineStats* p = nullptr;
  std::optional<SpoolStats> spool;
  std::uint64_t spool_max = 0;
  const UploadStats* up = nullptr;
  std::optional<DeadLetterStats> dead;
  const RecentBuckets* recent = nullptr;
  std::int64_t started = 0, certificate_expiry = 0, geoip_build = 0;
};

using Value = std::optional<std::uint64_t>;
struct Entry {
  CounterDef def;
  Value (*get)(const Snapshot&);
};

std::uint64_t u(std::int64_t v) {
  return v > 0 ? static_cast<std::uint64_t>(v) : 0;
}

// The registry. Order: /metrics and /v1/status list the counters in this order, and a
// status section is where its first counter is.
const Entry kCounters[] = {
    {{"start_time_seconds", "When the daemon started, seconds since 1970.", true},
     [](const Snapshot& s) -> Value { return u(s.started); }},
    {{"capture_active", "1 while the live capture is open.", true, "capture.state",
      StatusForm::state},
     [](const Snapshot& s) -> Value { return s.p->capture_active.load() ? 1 : 0; }},
    {{"capture_opens_total", "Times the live capture was opened (the first time included).", false,
      "capture.opens"},
     [](const Snapshot& s) -> Value { return s.p->capture_opens.load(); }},
    {{"capture_errors_total", "Times the capture was lost (interface down or gone).", false,
      "capture.errors"},
     [](const Snapshot& s) -> Value { return s.p->capture_errors.load(); }},
    {{"packets_captured_total", "Packets handed over by libpcap.", false, "packets.captured",
      StatusForm::number, "packets"},
     [](const Snapshot& s) -> Value { return s.p->captured.load(); }},
    {{"packets_observed_total", "Packets counted as observations.", false, "packets.observed",
      StatusForm::number, "observed"},
     [](const Snapshot& s) -> Value { return s.p->observed.load(); }},
    {{"packets_self_total", "The sensor's own traffic, not observations.", false,
      "packets.self_traffic", StatusForm::number, "self"},
     [](const Snapshot& s) -> Value { return s.p->self_traffic.load(); }},
    {{"packets_not_for_sensor_total", "Packets addressed to someone else.", false,
      "packets.not_for_sensor", StatusForm::number, "not_for_sensor"},
     [](const Snapshot& s) -> Value { return s.p->not_for_sensor.load(); }},
    {{"packets_malformed_total", "Packets that did not decode (by reason in buckets).", false,
      "packets.malformed", StatusForm::number, "malformed"},
     [](const Snapshot& s) -> Value { return s.p->malformed.load(); }},
    {{"ring_drops_total", "Packets dropped because the ring was full.", false, "drops.ring",
      StatusForm::number, "ring_drops"},
     [](const Snapshot& s) -> Value { return s.p->ring_drops.load(); }},
    {{"ring_waits_total", "Times a replay waited for the classifier to free ring slots.", false, "",
      StatusForm::number, "ring_waits"},
     [](const Snapshot& s) -> Value { return s.p->ring_waits.load(); }},
    {{"kernel_drops_total", "Packets the kernel dropped (pcap_stats ps_drop).", false,
      "drops.kernel", StatusForm::number, "kernel_drops"},
     [](const Snapshot& s) -> Value { return s.p->kernel_drops.load(); }},
    {{"interface_drops_total", "The interface's rx_dropped while capturing.", false,
      "drops.interface", StatusForm::number, "interface_drops"},
     [](const Snapshot& s) -> Value { return s.p->interface_drops.load(); }},
    {{"buckets_sealed_total", "Buckets sealed.", false, "buckets_sealed", StatusForm::number,
      "buckets"},
     [](const Snapshot& s) -> Value { return s.p->buckets_sealed.load(); }},
    {{"spool_pending_buckets", "Buckets awaiting delivery.", true, "spool.pending",
      StatusForm::number, "pending"},
     [](const Snapshot& s) -> Value { return s.spool ? Value{s.spool->pending} : Value{}; }},
    {{"spool_bytes", "Bytes of buckets awaiting delivery.", true, "spool.bytes"},
     [](const Snapshot& s) -> Value { return s.spool ? Value{s.spool->bytes} : Value{}; }},
    {{"spool_max_bytes", "The spool's bound (spool.max_bytes): past it buckets merge.", true},
     [](const Snapshot& s) -> Value { return s.spool ? Value{s.spool_max} : Value{}; }},
    {{"spool_merged_buckets_total", "Buckets merged into coarser ones at the bound.", false,
      "spool.merged"},
     [](const Snapshot& s) -> Value { return s.spool ? Value{s.spool->merged_buckets} : Value{}; }},
    {{"spool_dropped_buckets_total", "Oldest buckets dropped at the bound.", false,
      "spool.dropped_buckets"},
     [](const Snapshot& s) -> Value {
       return s.spool ? Value{s.spool->dropped_buckets} : Value{};
     }},
    {{"spool_dropped_packets_total", "Packets of buckets dropped at the bound.", false,
      "spool.dropped_packets", StatusForm::number, "spool_dropped_packets"},
     [](const Snapshot& s) -> Value {
       return s.spool ? Value{s.spool->dropped_packets} : Value{};
     }},
    {{"spool_write_errors_total", "Failed spool writes (disk full...).", false,
      "spool.write_errors", StatusForm::number, "spool_write_errors"},
     [](const Snapshot& s) -> Value { return s.spool ? Value{s.spool->write_errors} : Value{}; }},
    {{"upload_buckets_acked_total", "Buckets the collector acknowledged.", false, "",
      StatusForm::number, "delivered"},
     [](const Snapshot& s) -> Value { return s.up ? Value{s.up->buckets_acked.load()} : Value{}; }},
    {{"upload_last_success_seconds", "Last acknowledged upload, seconds since 1970.", true,
      "last_upload", StatusForm::time},
     [](const Snapshot& s) -> Value {
       return s.up ? Value{u(s.up->last_success.load())} : Value{};
     }},
    {{"upload_failures_total", "Failed upload attempts.", false, "upload_failures"},
     [](const Snapshot& s) -> Value { return s.up ? Value{s.up->failures.load()} : Value{}; }},
    {{"upload_failovers_total", "Moves to another collector of upload.collector.", false},
     [](const Snapshot& s) -> Value { return s.up ? Value{s.up->failovers.load()} : Value{}; }},
    {{"upload_buckets_refused_total",
      "Buckets the collector refused (moved to the dead-letter area).", false, "",
      StatusForm::number, "refused"},
     [](const Snapshot& s) -> Value {
       return s.up ? Value{s.up->buckets_refused.load()} : Value{};
     }},
    {{"dead_letter_buckets", "Refused buckets kept in the dead-letter area.", true,
      "dead_letter.held", StatusForm::number, "dead_letter_held"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->held} : Value{}; }},
    {{"dead_letter_packets", "Packets of the refused buckets kept.", true, "dead_letter.packets",
      StatusForm::number, "dead_letter_packets"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->held_packets} : Value{}; }},
    {{"dead_letter_bytes", "Bytes of the dead-letter area.", true, "dead_letter.bytes"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->bytes} : Value{}; }},
    {{"dead_letter_queued_buckets", "Dead letters marked to be sent again.", true,
      "dead_letter.queued"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->queued} : Value{}; }},
    {{"dead_letter_refused_buckets_total", "Buckets set aside in the dead-letter area.", false,
      "dead_letter.refused"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->refused_total} : Value{}; }},
    {{"dead_letter_resent_buckets_total", "Dead letters sent again and acknowledged.", false,
      "dead_letter.resent"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->resent_total} : Value{}; }},
    {{"dead_letter_dropped_buckets_total",
      "Dead letters removed at the area's bound (oldest first).", false,
      "dead_letter.dropped_buckets", StatusForm::number, "dead_letter_dropped"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->dropped_buckets} : Value{}; }},
    {{"dead_letter_dropped_packets_total", "Packets of the dead letters removed.", false,
      "dead_letter.dropped_packets"},
     [](const Snapshot& s) -> Value { return s.dead ? Value{s.dead->dropped_packets} : Value{}; }},
    {{"pull_buffer_buckets", "Recently sealed buckets kept for pulls (GET /v1/buckets).", true},
     [](const Snapshot& s) -> Value { return s.recent ? Value{s.recent->size()} : Value{}; }},
    {{"pull_buffer_bytes", "Their bytes (bound: control.recent_max_bytes).", true},
     [](const Snapshot& s) -> Value { return s.recent ? Value{s.recent->bytes()} : Value{}; }},
    {{"certificate_expiry_seconds", "notAfter of the upload certificate, seconds since 1970.", true,
      "certificate_expiry", StatusForm::time},
     [](const Snapshot& s) -> Value { return u(s.certificate_expiry); }},
    {{"geoip_build_seconds", "Build time of the GeoIP database, seconds since 1970.", true,
      "geoip_build", StatusForm::time},
     [](const Snapshot& s) -> Value { return u(s.geoip_build); }},
};

}  // namespace

std::vector<const CounterDef*> counter_defs() {
  std::vector<const CounterDef*> out;
  for (const auto& e : kCounters) out.push_back(&e.def);
  return out;
}

std::vector<Reading> read_counters(const SensorSources& src) {
  Snapshot s;
  s.p = &src.pipeline->stats();
  if (src.spool) {
    s.spool = src.spool->stats();
    s.spool_max = src.spool->max_bytes();
  }
  if (src.uploader) s.up = &src.uploader->stats();
  if (src.dead) s.dead = src.dead->stats();
  s.recent = src.recent;
  s.started = src.started;
  s.certificate_expiry = src.certificate_expiry.load();
  s.geoip_build = src.geoip_build.load();
  std::vector<Reading> out;
  out.reserve(std::size(kCounters));
  for (const auto& e : kCounters) out.push_back({&e.def, e.get(s)});
  return out;
}

std::uint64_t value_of(const std::vector<Reading>& r, std::string_view metric) {
  for (const auto& x : r)
    if (x.def->metric == metric) return x.value.value_or(0);
  return 0;
}

std::string log_fields(const std::vector<Reading>& r) {
  std::string out;
  for (const auto& x : r) {
    if (x.def->log.empty() || !x.value) continue;
    if (!out.empty()) out += ' ';
    out.append(x.def->log).append("=").append(std::to_string(*x.value));
  }
  return out;
}

std::string metrics_text(const std::vector<Reading>& r, std::string_view sensor_id) {
  metrics::PromText m;
  m.gauge("build_info", "Version of teiten-sensord.", 1,
          std::string{"version=\""} + kVersion + "\",sensor=\"" + std::string{sensor_id} + "\"");
  for (const auto& x : r) {
    if (x.def->metric.empty() || !x.value) continue;
    if (x.def->gauge) {
      m.gauge(x.def->metric, x.def->help, static_cast<double>(*x.value));
    } else {
      m.counter(x.def->metric, x.def->help, *x.value);
    }
  }
  return m.text();
}

std::string status_json(const std::vector<Reading>& r, const SensorSources& s,
                        std::string_view sensor_id, std::string_view interface) {
  nlohmann::ordered_json j;
  j["sensor"] = sensor_id;
  j["version"] = kVersion;
  j["boot_id"] = s.boot_id;
  j["started"] = bucket::format_rfc3339(s.started);
  j["uptime_s"] = std::time(nullptr) - s.started;
  j["interface"] = interface;
  for (const auto& x : r) {
    const std::string_view path = x.def->status;
    if (path.empty()) continue;
    const auto dot = path.find('.');
    const std::string section{path.substr(0, dot)};
    if (dot != std::string_view::npos && !x.value) {
      j[section] = nullptr;  // the section's source is absent
      continue;
    }
    nlohmann::ordered_json value;
    if (!x.value) {
      value = nullptr;
    } else if (x.def->form == StatusForm::time) {
      value =
          *x.value > 0
              ? nlohmann::ordered_json(bucket::format_rfc3339(static_cast<std::int64_t>(*x.value)))
              : nlohmann::ordered_json(nullptr);
    } else if (x.def->form == StatusForm::state) {
      value = *x.value ? "active" : "down";
    } else {
      value = *x.value;
    }
    if (dot == std::string_view::npos) {
      j[section] = std::move(value);
    } else {
      j[section][std::string{path.substr(dot + 1)}] = std::move(value);
    }
  }
  return j.dump();
}

}  // namespace teiten::sensor

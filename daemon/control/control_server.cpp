// SPDX-License-Identifier: Apache-2.0
#include "daemon/control/control_server.h"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/log/log.h"
#include "common/metrics/prometheus.h"
#include "common/version.h"

namespace teiten::sensor {

namespace bhttp = boost::beast::http;

namespace {
const std::string kServerName = std::string{"teiten-sensord/"} + kVersion;

}  // namespace

ControlServer::ControlServer(boost::asio::io_context& io, const config::SensorConfig& config,
                             ControlSources& sources)
    : config_(config),
      sources_(sources),
      http_(
          io,
          tls::make_server_tls({config.control_ca, config.control_cert, config.control_key},
                               "control"),
          http::ServerLimits{.max_body_bytes = 1 << 16,
                             .max_header_bytes = 8192,
                             .io_timeout_s = 15,
                             .max_connections = 32,
                             .max_inflight_bytes = 1 << 20,
                             .handshake_timeout_s = 5,
                             .max_connections_per_address = 8,
                             .reserved_authenticated = 8},
          [this](const http::Request& req, const tls::PeerIdentity& who) {
            return handle(req, who);
          },
          kServerName) {}

void ControlServer::start() {
  try {
    http_.listen(config_.control_address, config_.control_port);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string{"control.listen: "} + e.what());
  }
}

http::Response ControlServer::handle(const http::Request& req, const tls::PeerIdentity& who) {
  const bool keep = req.keep_alive();
  const std::string_view target{req.target().data(), req.target().size()};
  const std::string_view path = target.substr(0, target.find('?'));
  // Who first: an operator (or, for /metrics, a monitor) by the role in its certificate,
  // and named in control.allowed; a name alone grants nothing.
  const bool metrics = path == "/metrics";
  const bool role_ok =
      who.role == tls::Role::operator_ || (metrics && who.role == tls::Role::monitor);
  if (!role_ok) {
    return http::role_refusal(who, metrics ? "read metrics" : "use the control server", keep,
                              kServerName);
  }
  if (std::find(config_.control_allowed.begin(), config_.control_allowed.end(), who.id) ==
      config_.control_allowed.end()) {
    return http::error_response(403, who.describe() + " is not in control.allowed", keep,
                                kServerName);
  }
  if (path == "/v1/dead-letter/resend") {
    if (req.method() != bhttp::verb::post)
      return http::error_response(405, "use POST", keep, kServerName);
    if (!sources_.dead)
      return http::error_response(409, "this sensor does not upload", keep, kServerName);
    const std::size_t n = sources_.dead->queue_all();
    log::get("control")->info("dead letters queued to be sent again by {}: {}", who.describe(), n);
    return http::json_response(200, nlohmann::json{{"queued", n}}.dump(), keep, kServerName);
  }
  if (req.method() != bhttp::verb::get)
    return http::error_response(405, "use GET", keep, kServerName);
  if (path == "/v1/dead-letter") {
    std::string body = "{\"dead_letters\":[";
    if (sources_.dead) {
      bool first = true;
      for (const auto& d : sources_.dead->list()) {
        body += (first ? "" : ",") + to_json(d);
        first = false;
      }
    }
    return http::json_response(200, body + "]}", keep, kServerName);
  }
  if (path == "/v1/status") return http::json_response(200, status_json(), keep, kServerName);
  if (path == "/metrics") {
    return http::text_response(200, metrics_text(), metrics::PromText::kContentType, keep,
                               kServerName);
  }
  if (path == "/v1/buckets") {
    std::int64_t since = std::time(nullptr) - 3600;
    for (const auto& [k, v] : http::query_params(target)) {
      if (k != "since") {
        return http::error_response(400, "unknown parameter '" + k + "' (since=RFC 3339 time)",
                                    keep, kServerName);
      }
      const auto t = bucket::parse_rfc3339(v);
      if (!t) {
        return http::error_response(400, "since: '" + v + "' is not YYYY-MM-DDTHH:MM:SSZ", keep,
                                    kServerName);
      }
      since = *t;
    }
    std::string body = "{\"sensor\":" + nlohmann::json(config_.sensor_id).dump() + ",\"since\":\"" +
                       bucket::format_rfc3339(since) + "\",\"buckets\":[";
    bool first = true;
    for (const auto& line : sources_.recent->since(since)) {
      if (!first) body += ',';
      body += line;
      first = false;
    }
    const auto open = sources_.pipeline->open_bucket();
    body += "],\"open\":" + (open ? bucket::to_json_line(*open) : std::string{"null"}) + "}";
    return http::json_response(200, std::move(body), keep, kServerName);
  }
  return http::error_response(404, "no such endpoint (/v1/status, /v1/buckets, /metrics)", keep,
                              kServerName);
}

std::string ControlServer::status_json() const {
  const auto& p = sources_.pipeline->stats();
  const std::int64_t now = std::time(nullptr);
  nlohmann::ordered_json j;
  j["sensor"] = config_.sensor_id;
  j["version"] = kVersion;
  j["boot_id"] = sources_.boot_id;
  j["started"] = bucket::format_rfc3339(sources_.started);
  j["uptime_s"] = now - sources_.started;
  j["interface"] = config_.capture_interface;
  j["capture"] = {{"state", p.capture_active.load() ? "active" : "down"},
                  {"opens", p.capture_opens.load()},
                  {"errors", p.capture_errors.load()}};
  j["packets"] = {{"captured", p.captured.load()},
                  {"observed", p.observed.load()},
                  {"self_traffic", p.self_traffic.load()},
                  {"not_for_sensor", p.not_for_sensor.load()},
                  {"malformed", p.malformed.load()}};
  j["drops"] = {{"ring", p.ring_drops.load()},
                {"kernel", p.kernel_drops.load()},
                {"interface", p.interface_drops.load()}};
  j["buckets_sealed"] = p.buckets_sealed.load();
  if (sources_.spool) {
    const auto s = sources_.spool->stats();
    j["spool"] = {{"pending", s.pending},
                  {"bytes", s.bytes},
                  {"merged", s.merged_buckets},
                  {"dropped_buckets", s.dropped_buckets},
                  {"dropped_packets", s.dropped_packets},
                  {"write_errors", s.write_errors}};
  } else {
    j["spool"] = nullptr;
  }
  const std::int64_t last = sources_.uploader ? sources_.uploader->stats().last_success.load() : 0;
  j["last_upload"] = last > 0 ? nlohmann::ordered_json(bucket::format_rfc3339(last)) : nullptr;
  j["upload_failures"] = sources_.uploader ? sources_.uploader->stats().failures.load() : 0;
  if (sources_.dead) {
    const auto d = sources_.dead->stats();
    j["dead_letter"] = {{"held", d.held},
                        {"packets", d.held_packets},
                        {"bytes", d.bytes},
                        {"queued", d.queued},
                        {"refused", d.refused_total},
                        {"resent", d.resent_total},
                        {"dropped_buckets", d.dropped_buckets},
                        {"dropped_packets", d.dropped_packets}};
  } else {
    j["dead_letter"] = nullptr;
  }
  const std::int64_t expiry = sources_.certificate_expiry.load();
  j["certificate_expiry"] =
      expiry > 0 ? nlohmann::ordered_json(bucket::format_rfc3339(expiry)) : nullptr;
  const std::int64_t geoip = sources_.geoip_build.load();
  j["geoip_build"] = geoip > 0 ? nlohmann::ordered_json(bucket::format_rfc3339(geoip)) : nullptr;
  return j.dump();
}

std::string ControlServer::metrics_text() const {
  const auto& p = sources_.pipeline->stats();
  metrics::PromText m;
  m.gauge("build_info", "Version of teiten-sensord.", 1,
          std::string{"version=\""} + kVersion + "\",sensor=\"" + config_.sensor_id + "\"");
  m.gauge("start_time_seconds", "When the daemon started, seconds since 1970.",
          static_cast<double>(sources_.started));
  m.gauge("capture_active", "1 while the live capture is open.", p.capture_active.load() ? 1 : 0);
  m.counter("capture_errors_total", "Times the capture was lost (interface down or gone).",
            p.capture_errors.load());
  m.counter("packets_captured_total", "Packets handed over by libpcap.", p.captured.load());
  m.counter("packets_observed_total", "Packets counted as observations.", p.observed.load());
  m.counter("packets_self_total", "The sensor's own traffic, not observations.",
            p.self_traffic.load());
  m.counter("packets_not_for_sensor_total", "Packets addressed to someone else.",
            p.not_for_sensor.load());
  m.counter("packets_malformed_total", "Packets that did not decode (by reason in buckets).",
            p.malformed.load());
  m.counter("ring_drops_total", "Packets dropped because the ring was full.", p.ring_drops.load());
  m.counter("kernel_drops_total", "Packets the kernel dropped (pcap_stats ps_drop).",
            p.kernel_drops.load());
  m.counter("interface_drops_total", "The interface's rx_dropped while capturing.",
            p.interface_drops.load());
  m.counter("buckets_sealed_total", "Buckets sealed.", p.buckets_sealed.load());
  if (sources_.spool) {
    const auto s = sources_.spool->stats();
    m.gauge("spool_pending_buckets", "Buckets awaiting delivery.", static_cast<double>(s.pending));
    m.gauge("spool_bytes", "Bytes of buckets awaiting delivery.", static_cast<double>(s.bytes));
    m.gauge("spool_max_bytes", "The spool's bound (spool.max_bytes): past it buckets merge.",
            static_cast<double>(sources_.spool->max_bytes()));
    m.counter("spool_merged_buckets_total", "Buckets merged into coarser ones at the bound.",
              s.merged_buckets);
    m.counter("spool_dropped_packets_total", "Packets of buckets dropped at the bound.",
              s.dropped_packets);
    m.counter("spool_write_errors_total", "Failed spool writes (disk full...).", s.write_errors);
  }
  if (sources_.uploader) {
    const auto& u = sources_.uploader->stats();
    m.counter("upload_buckets_acked_total", "Buckets the collector acknowledged.",
              u.buckets_acked.load());
    m.counter("upload_failures_total", "Failed upload attempts.", u.failures.load());
    m.counter("upload_failovers_total", "Moves to another collector of upload.collector.",
              u.failovers.load());
    m.gauge("upload_last_success_seconds", "Last acknowledged upload, seconds since 1970.",
            static_cast<double>(u.last_success.load()));
    m.counter("upload_buckets_refused_total",
              "Buckets the collector refused (moved to the dead-letter area).",
              u.buckets_refused.load());
  }
  if (sources_.dead) {
    const auto d = sources_.dead->stats();
    m.gauge("dead_letter_buckets", "Refused buckets kept in the dead-letter area.",
            static_cast<double>(d.held));
    m.gauge("dead_letter_packets", "Packets of the refused buckets kept.",
            static_cast<double>(d.held_packets));
    m.gauge("dead_letter_bytes", "Bytes of the dead-letter area.", static_cast<double>(d.bytes));
    m.counter("dead_letter_dropped_buckets_total",
              "Dead letters removed at the area's bound (oldest first).", d.dropped_buckets);
    m.counter("dead_letter_dropped_packets_total", "Packets of the dead letters removed.",
              d.dropped_packets);
  }
  if (sources_.recent) {
    m.gauge("pull_buffer_buckets", "Recently sealed buckets kept for pulls (GET /v1/buckets).",
            static_cast<double>(sources_.recent->size()));
    m.gauge("pull_buffer_bytes", "Their bytes (bound: control.recent_max_bytes).",
            static_cast<double>(sources_.recent->bytes()));
  }
  m.gauge("certificate_expiry_seconds", "notAfter of the upload certificate, seconds since 1970.",
          static_cast<double>(sources_.certificate_expiry.load()));
  m.gauge("geoip_build_seconds", "Build time of the GeoIP database, seconds since 1970.",
          static_cast<double>(sources_.geoip_build.load()));
  return m.text();
}

}  // namespace teiten::sensor

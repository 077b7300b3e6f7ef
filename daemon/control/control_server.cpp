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
                             SensorSources& sources)
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
  if (path == "/v1/status")
    return http::json_response(200,
                               status_json(read_counters(sources_), sources_, config_.sensor_id,
                                           config_.capture_interface),
                               keep, kServerName);
  if (path == "/metrics") {
    return http::text_response(200, metrics_text(read_counters(sources_), config_.sensor_id),
                               metrics::PromText::kContentType, keep, kServerName);
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

}  // namespace teiten::sensor

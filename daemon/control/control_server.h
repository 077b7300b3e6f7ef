// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "common/http/server.h"
#include "daemon/config/sensor_config.h"
#include "daemon/control/recent_buckets.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/spool/spool.h"
#include "daemon/upload/uploader.h"

namespace teiten::sensor {

/// What the control server reports on. Pointers may be null (no spool or uploader when
/// buckets go to a file). Owned by the caller; they outlive the server.
struct ControlSources {
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

/// The sensor's control server (docs/control-api.md): HTTPS with mutual TLS on
/// control.listen, clients limited to control.allowed. GET /v1/status, GET
/// /v1/buckets?since=, GET /metrics. Runs on the io_context's thread.
class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, const config::SensorConfig& config,
                ControlSources& sources);
  /// Binds; throws std::runtime_error naming control.listen or the file that failed.
  void start();
  std::uint16_t port() const { return http_.port(); }
  /// Reload: new certificate, key and CA from control.* (throws; the old ones stay).
  void reload_tls() {
    http_.reload_tls({config_.control_ca, config_.control_cert, config_.control_key}, "control");
  }

 private:
  http::Response handle(const http::Request& req, const tls::PeerIdentity& who);
  std::string status_json() const;
  std::string metrics_text() const;

  const config::SensorConfig& config_;
  ControlSources& sources_;
  http::HttpsServer http_;
};

}  // namespace teiten::sensor

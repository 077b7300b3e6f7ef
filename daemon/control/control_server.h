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
#include "daemon/service/counters.h"
#include "daemon/spool/spool.h"
#include "daemon/upload/uploader.h"

namespace teiten::sensor {

/// The sensor's control server (docs/control-api.md): HTTPS with mutual TLS on
/// control.listen, clients limited to control.allowed. GET /v1/status, GET
/// /v1/buckets?since=, GET /metrics. Runs on the io_context's thread.
class ControlServer {
 public:
  ControlServer(boost::asio::io_context& io, const config::SensorConfig& config,
                SensorSources& sources);
  /// Binds; throws std::runtime_error naming control.listen or the file that failed.
  void start();
  std::uint16_t port() const { return http_.port(); }
  /// Reload: new certificate, key and CA from control.* (throws; the old ones stay).
  void reload_tls() {
    http_.reload_tls({config_.control_ca, config_.control_cert, config_.control_key}, "control");
  }

 private:
  http::Response handle(const http::Request& req, const tls::PeerIdentity& who);

  const config::SensorConfig& config_;
  SensorSources& sources_;
  http::HttpsServer http_;
};

}  // namespace teiten::sensor

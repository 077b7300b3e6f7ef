#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "collector/collector_config.h"
#include "collector/storage.h"
#include "common/tls/https_server.h"

namespace teiten::collector {

/// Counters of the collector's API (I/O thread writes, any thread reads).
struct ServerStats {
  std::atomic<std::uint64_t> unknown_identity{0};
  std::atomic<std::uint64_t> bad_batches{0};
  std::atomic<std::uint64_t> buckets_stored{0};
  std::atomic<std::uint64_t> buckets_duplicate{0};
  std::atomic<std::uint64_t> identity_mismatches{0};
  std::atomic<std::uint64_t> outside_active_period{0};
};

/// Builds the server's TLS context: TLS 1.2 minimum, client certificate required and
/// verified against the CA. Throws std::runtime_error naming the file that failed.
boost::asio::ssl::context make_server_tls(const CollectorConfig& config);

/// The collector's HTTPS API on Boost.Beast (docs/collector-api.md). Runs on the
/// io_context's thread; storage is used from that thread only.
class Server {
 public:
  Server(boost::asio::io_context& io, const CollectorConfig& config, Storage& storage);
  ~Server();

  /// Binds and starts accepting. Throws std::runtime_error if the address cannot be bound.
  void start();
  /// The port actually bound (useful with port 0 in tests).
  std::uint16_t port() const;
  /// The dashboard's port, when it is enabled.
  std::optional<std::uint16_t> dashboard_port() const;
  const ServerStats& stats() const { return stats_; }
  const tls::HttpServerStats& http_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerStats stats_;
};

}  // namespace teiten::collector

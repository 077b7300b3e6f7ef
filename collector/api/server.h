// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "collector/collector_config.h"
#include "collector/events/live.h"
#include "collector/store/store.h"
#include "common/http/server.h"

namespace teiten::collector {

/// Why the collector refuses one bucket (its verdict; the batch's others go on).
enum class RefusalReason {
  malformed,              ///< does not decode, or a number beyond its bounds
  wrong_sensor,           ///< another sensor's bucket than the certificate's
  outside_active_period,  ///< outside the sensor's registry period
  in_future,              ///< starts later than now + limits.max_clock_skew
  count_,
};
/// "malformed", "wrong_sensor", "outside_active_period", "in_future".
std::string_view to_string(RefusalReason r) noexcept;

/// Counters of the collector's API (I/O threads write, any thread reads).
struct ServerStats {
  std::atomic<std::uint64_t> unknown_identity{0};
  std::atomic<std::uint64_t> bad_batches{0};
  std::atomic<std::uint64_t> buckets_stored{0};
  std::atomic<std::uint64_t> buckets_duplicate{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(RefusalReason::count_)> refused{};
  std::atomic<std::uint64_t> role_refusals{0};
  std::atomic<std::uint64_t> query_failures{0};
  std::atomic<std::uint64_t> ingest_failures{0};    ///< batches answered 503 (storage failed)
  std::atomic<std::uint64_t> ingest_batches{0};     ///< batches stored (their transactions)
  std::atomic<std::uint64_t> ingest_seconds_us{0};  ///< time in those transactions, µs
  std::atomic<std::uint64_t> ingest_max_us{0};      ///< the longest such transaction, µs
  std::atomic<std::uint64_t> reports{0};            ///< reports and queries answered
  std::atomic<std::uint64_t> report_seconds_us{0};  ///< time workers spent on them, µs
  std::uint64_t refused_total() const noexcept {
    std::uint64_t n = 0;
    for (const auto& r : refused) n += r.load();
    return n;
  }
};

/// Builds the server's TLS context: TLS 1.2 minimum, client certificate required and
/// verified against the CA. Throws std::runtime_error naming the file that failed.
boost::asio::ssl::context make_server_tls(const CollectorConfig& config);

/// The collector's HTTPS API on Boost.Beast (docs/collector-api.md). Ingest runs on the
/// io_context's thread with `store` (used from that thread only); reports and queries run
/// on a pool of workers with read-only connections of their own, so that no report holds
/// up an upload. The dashboard has a thread and an io_context of its own (and its own
/// limits) and uses the same workers.
class Server {
 public:
  Server(boost::asio::io_context& io, const CollectorConfig& config, Store& store);
  ~Server();

  /// Binds and starts accepting. Throws std::runtime_error if the address cannot be bound.
  void start();
  /// Orderly shutdown (I/O thread): stops accepting, lets answers in progress finish,
  /// ends idle connections, stops the dashboard's thread. io.run() then returns once the
  /// last connection is gone; destroy the Server after that.
  void shutdown();
  /// SIGHUP (I/O thread): certificates and key (for connections from now on; open ones go
  /// on), the registry and limits.max_clock_skew from `next`. Throws std::runtime_error,
  /// changing nothing, when the new certificates do not load.
  void reload(const CollectorConfig& next);
  /// The live evaluation's figures, for /metrics (nullptr: none; set it so before they
  /// go away).
  void set_live_stats(const events::LiveStats* stats);
  /// The notable changes its reports and /v1/events serve (the live thread keeps it warm).
  std::shared_ptr<events::EventsCache> events_cache() const;
  /// The configuration as of now (SIGHUP may replace it).
  std::shared_ptr<const CollectorConfig> config() const;
  /// The port actually bound (useful with port 0 in tests).
  std::uint16_t port() const;
  /// The dashboard's port, when it is enabled.
  std::optional<std::uint16_t> dashboard_port() const;
  const ServerStats& stats() const { return stats_; }
  const http::HttpServerStats& http_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerStats stats_;
};

}  // namespace teiten::collector

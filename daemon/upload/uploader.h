// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/http/client.h"
#include "daemon/spool/dead_letter.h"
#include "daemon/spool/spool.h"

namespace teiten::sensor {

/// One collector: its name (connected to, sent as SNI, checked in its certificate) and port.
struct Endpoint {
  std::string host;
  std::string port = "8443";
  std::string label() const { return host + ":" + port; }
};

/// "host:port,host:port" as endpoints (a configuration the schema checked).
std::vector<Endpoint> parse_endpoints(const std::string& list);

/// Where and how the uploader delivers.
struct UploadOptions {
  std::vector<Endpoint> collectors;  ///< at least one
  bool random_failover = false;      ///< else in order
  tls::ClientTlsFiles tls;
  std::size_t batch = 100;
  std::chrono::seconds deadline{15};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{60000};
};

/// Counters (I/O thread writes, any thread reads).
struct UploadStats {
  std::atomic<std::uint64_t> batches_ok{0};
  std::atomic<std::uint64_t> failures{0};
  std::atomic<std::uint64_t> buckets_acked{0};
  std::atomic<std::uint64_t> buckets_refused{0};  ///< set aside in the dead-letter area
  std::atomic<std::int64_t> last_success{0};      ///< seconds since 1970, 0: never
  std::atomic<std::uint64_t> failovers{0};        ///< moves to another collector
};

/// Sends the spool's buckets to the collector in order, in batches, over HTTPS with mutual
/// TLS, and removes them from the spool only when the collector gave each its verdict:
/// stored or already stored (acknowledged), or refused (moved to the dead-letter area,
/// durably, before the spool lets it go; delivery goes on with the next). Transient
/// failures (connection, 5xx, 429) move delivery to the next collector of the list (in
/// order, or one at random); once every collector failed in a row, attempts back off
/// exponentially with full jitter. The collectors share one database, which deduplicates:
/// a batch a failed collector did store is acknowledged as duplicate by the next. Once the spool
/// is empty, dead letters an operator queued again are sent. Certificates are read again
/// for every connection, so renewed files take effect without a restart. Runs on one
/// io_context thread.
class Uploader {
 public:
  Uploader(boost::asio::io_context& io, Spool& spool, DeadLetterStore& dead, UploadOptions options);

  /// Starts the upload loop on the io_context.
  void start();
  /// Wakes the loop (a bucket was spooled). Any thread.
  void notify();
  /// Stops after the current attempt.
  void stop();

  const UploadStats& stats() const { return stats_; }

  /// New settings (reload), from the next request on. I/O thread only.
  void update(UploadOptions options) {
    options_ = std::move(options);
    batch_ = options_.batch;
    current_ = 0;
  }
  /// The collector delivery goes to now. I/O thread only.
  const Endpoint& collector() const { return options_.collectors[current_]; }

 private:
  boost::asio::awaitable<void> loop();
  boost::asio::awaitable<bool> send_once();

  boost::asio::io_context& io_;
  Spool& spool_;
  DeadLetterStore& dead_;
  UploadOptions options_;
  std::size_t batch_;        ///< buckets per request; halved when the collector answers 413
  std::size_t current_ = 0;  ///< index of the collector in use
  boost::asio::steady_timer wake_;
  std::atomic<bool> stopping_{false};
  std::mt19937_64 rng_;
  UploadStats stats_;
};

}  // namespace teiten::sensor

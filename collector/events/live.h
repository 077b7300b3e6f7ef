// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "collector/collector_config.h"
#include "collector/events/events.h"
#include "collector/store/store.h"

// Live notable changes (docs/notable-changes.md, "Live"): each whole UTC hour, once its
// buckets had time to arrive, judged against the hours before it from the hourly rollups;
// spikes found are counted for Prometheus and posted to the configured webhook.
namespace teiten::collector::events {

/// What the live evaluation did (its thread writes, the metrics read).
struct LiveStats {
  std::atomic<std::uint64_t> hours{0};  ///< hours evaluated
  std::atomic<std::uint64_t> spikes{0};
  std::atomic<std::int64_t> last_event{0};  ///< when the last one was found (UTC seconds)
  std::atomic<std::uint64_t> failures{0};   ///< evaluations that failed in storage
  std::atomic<std::uint64_t> webhook_posts{0}, webhook_failures{0};
  /// The events of the last 24 hours evaluated (at most 20, highest score first).
  std::vector<Event> recent() const;
  void remember(const std::vector<Event>& found, std::int64_t now);

 private:
  mutable std::mutex mu_;
  std::vector<Event> recent_;
};

/// The webhook of `events.webhook`: "https://HOST:PORT/PATH" (PORT defaults to 443).
struct Webhook {
  std::string host, port = "443", path = "/";
};
/// Parses a webhook URL; nullopt unless https://HOST[:PORT][/PATH].
std::optional<Webhook> parse_webhook(const std::string& url);

class LiveEvents {
 public:
  using ConfigSource = std::function<std::shared_ptr<const CollectorConfig>()>;
  /// Starts the thread when `period` is not zero (tests call evaluate() instead). With a
  /// cache, each pass also keeps the events of the ranges people look at found (the
  /// current and previous quarters, the dashboard's last 91 days), at most every 5 minutes.
  LiveEvents(const StoreConfig& store, ConfigSource config, std::chrono::seconds period,
             std::shared_ptr<EventsCache> cache = nullptr);
  ~LiveEvents();  ///< stops the thread (after the evaluation in progress)
  LiveEvents(const LiveEvents&) = delete;
  LiveEvents& operator=(const LiveEvents&) = delete;

  /// Evaluates the whole UTC hours that ended at least events.live_grace before `now` and
  /// were not evaluated yet (at the first call: the latest such hour only), counts and posts
  /// what each hour has as soon as that hour is judged, and returns all of it. Throws
  /// std::runtime_error when storage fails (the hours judged before stay judged).
  std::vector<Event> evaluate(std::int64_t now);
  const LiveStats& stats() const { return stats_; }

 private:
  // One hour of hourly rollups, per region (0 domestic, 1 overseas).
  struct Hour {
    std::array<std::unordered_map<std::uint64_t, double>, 2> packets;  // code << 3 | part
    std::array<std::set<std::string>, 2> delivered;                    // sensors that delivered
  };
  Hour fetch(std::int64_t hour, const CollectorConfig& cfg);
  std::vector<Event> judge(std::int64_t hour, const CollectorConfig& cfg);
  void post(const std::vector<Event>& found, const CollectorConfig& cfg);
  void warm(std::int64_t now, const CollectorConfig& cfg);
  void loop();

  StoreConfig store_config_;
  std::unique_ptr<Store> store_;
  ConfigSource config_;
  std::chrono::seconds period_;
  std::shared_ptr<EventsCache> cache_;
  std::map<std::int64_t, Hour> hours_;  // by UTC hour number
  std::optional<std::int64_t> last_;    // the last hour evaluated
  LiveStats stats_;
  std::uint64_t registry_ = 0;  // the regions hours_ were summed with
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                    // under mu_
  std::atomic<bool> stop_requested_{false};  // read between units of work
  std::thread thread_;
};

}  // namespace teiten::collector::events

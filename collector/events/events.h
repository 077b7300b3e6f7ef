// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collector/collector_config.h"
#include "collector/events/detector.h"
#include "collector/report/destination.h"
#include "collector/store/store.h"

// Notable changes (docs/notable-changes.md): the detector run over the store's daily
// rollups per region, destination, fingerprint and source country (all, the report's and
// the leading ones), its findings merged into dated, ranked events with a sentence each.
namespace teiten::collector::events {

/// The longest range whose notable changes are found at once (what one request may cost).
inline constexpr std::int64_t kMaxEventDays = 400;
/// Whether local days [from, to] are a range whose notable changes may be found at once.
inline constexpr bool events_range_ok(std::int64_t from, std::int64_t to) {
  return from <= to && to - from < kMaxEventDays;
}

struct EventsRequest {
  std::int64_t day_from = 0, day_to = 0;  ///< local days; events that began in the range
  std::string country = "JP";             ///< the source country also examined on its own
  std::vector<std::string> sensors;       ///< only these (empty: all)
  Settings settings;
  std::size_t limit = 200;  ///< the highest-ranked events kept (EventsCache: at most 200)
};

/// One notable change.
struct Event {
  Kind kind = Kind::spike;
  std::int64_t day = 0, last_day = 0;  ///< local days
  std::int64_t detected_on = 0;        ///< the last day of data the finding needed
  Destination dest;
  std::string fingerprint;       ///< the series it was found in: "" ALL, or mirai, masscan, zmap
  std::string country;           ///< "" all source countries, or the one it concerns
  std::string scope;             ///< both, domestic or overseas: where it was seen
  bool divergence = false;       ///< seen in `scope` and measurably not in the other region
  double before = 0, after = 0;  ///< packets per sensor-day (shares for fingerprint shifts)
  double excess = 0;             ///< packets above the baseline (spikes: all days; else a day)
  double score = 0;              ///< robust deviations: the ranking
  /// For changes of ALL: the Mirai-type share of the excess (-1: not known).
  double fingerprinted_share = -1;
  std::string fingerprinted_as = "mirai";
  std::uint64_t sources = 0;         ///< distinct sources on the event's days (estimate)
  std::uint64_t sources_before = 0;  ///< ... on as many days just before
  std::vector<std::pair<std::string, std::uint64_t>> countries;  ///< leading, by excess
  /// Live events: the UTC start of the hour the spike was in (then `day` is its local day).
  std::optional<std::int64_t> hour;
  std::string sentence;
};

/// The events that began in the request's range, ranked (highest score first). Reads the
/// rollups from baseline_days + 14 days before the range to shift_days + 2 after it.
/// Throws std::invalid_argument when the request names a sensor the registry lacks, or
/// covers more than kMaxEventDays.
std::vector<Event> find_events(Store& storage, const CollectorConfig& config,
                               const EventsRequest& req);

/// Events already found, for the reports and /v1/events of the collector and for the live
/// thread to keep warm (docs/notable-changes.md, "Cost"): an entry serves while the
/// coverage of its window is unchanged (no bucket arrived for those days), or, when
/// buckets did arrive, for `max_age` after it was computed. Keyed by the range, country,
/// sensors, settings and the registry's regions. At most 64 entries.
class EventsCache {
 public:
  explicit EventsCache(std::chrono::seconds max_age = std::chrono::minutes(15))
      : max_age_(max_age) {}
  /// The events of `req` (its limit applied), from the cache or found now.
  std::vector<Event> get(Store& storage, const CollectorConfig& config, const EventsRequest& req);
  /// The events of `req` if they were found already (current or not), else nullopt and
  /// the request is noted for the live thread (wanted()): what the dashboard, which anyone
  /// may reach, asks for without making a request pay for finding them.
  std::optional<std::vector<Event>> peek(const CollectorConfig& config, const EventsRequest& req);
  /// Up to 8 requests peek() did not find, oldest first, taken out.
  std::vector<EventsRequest> wanted();
  /// Finds them again if the entry is missing or out of date and at least `min_age` old
  /// (the live thread, for the ranges people look at). Returns whether it computed.
  bool refresh(Store& storage, const CollectorConfig& config, const EventsRequest& req,
               std::chrono::seconds min_age);
  std::uint64_t hits() const { return hits_.load(); }
  std::uint64_t misses() const { return misses_.load(); }

 private:
  struct Entry {
    std::uint64_t version = 0;
    std::chrono::steady_clock::time_point computed;
    std::vector<Event> events;
  };
  static std::string key_of(const CollectorConfig& config, const EventsRequest& req);
  static std::uint64_t version_of(Store& storage, const EventsRequest& req);
  std::vector<Event> compute(Store& storage, const CollectorConfig& config,
                             const EventsRequest& req, std::uint64_t version);
  std::chrono::seconds max_age_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::vector<EventsRequest> wanted_;
  std::atomic<std::uint64_t> hits_{0}, misses_{0};
};

/// The request from query parameters (from, to or quarter; country; sensors; limit).
EventsRequest parse_events_request(const std::vector<std::pair<std::string, std::string>>& params,
                                   const Store& storage, const Settings& settings);

/// The plain sentence of an event ("Packets to 22/TCP from JP at domestic sensors jumped
/// on 2022-06-16 ...").
std::string sentence_of(const Event& e);

/// Events as JSON (an array) and as CSV lines (with a header).
nlohmann::json events_array(const std::vector<Event>& events);
std::string events_json(const std::vector<Event>& events);
std::string events_csv(const std::vector<Event>& events);
/// A numbered Markdown list, one event a line ("No notable changes ..." when none).
std::string events_markdown(const std::vector<Event>& events);

}  // namespace teiten::collector::events

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

// The notable-changes detector (docs/notable-changes.md): robust baselines on the log of
// packets per sensor-day, with a weekly profile, for spikes; a lasting shift of the median
// against that baseline for level shifts and emergence; the same on a fingerprint's share
// of a destination for fingerprint shifts. Pure functions over daily series: no store, no
// clock, so every rule is tested on series built by hand.
namespace teiten::collector::events {

/// The parameters an operator may tune (events: in the collector's configuration).
struct Settings {
  int baseline_days = 28;       ///< trailing days a baseline is taken from
  int min_baseline_days = 10;   ///< observed days a baseline needs before anything is tested
  int shift_days = 7;           ///< observed days a level or share shift must hold
  double spike_z = 5.0;         ///< a spike: this many robust deviations above the baseline
  double spike_ratio = 2.0;     ///< ... and at least this multiple of it
  double shift_z = 4.0;         ///< a level shift: the new median this many deviations away
  double shift_ratio = 1.5;     ///< ... and this multiple of the baseline (or its inverse)
  double min_packets = 20;      ///< a day's packets a change must reach (the larger side)
  double emergence_floor = 1;   ///< emergence: baseline packets per sensor-day at most this
  double emergence_level = 20;  ///< ... and at least this many after
  double share_change = 0.15;   ///< a fingerprint shift: its share moves by this much
  double share_z = 5.0;         ///< ... and this many deviations of the daily share
  double coverage_min = 0.75;   ///< a day covered less than this share of the usual is missing
  bool weekly = true;  ///< a weekly profile in the baselines (daily series; not hourly ones)
  /// Daily events: the leading source countries examined one by one besides the report's.
  int countries = 8;
};

/// One region's daily counts of one key (a destination, for ALL or one fingerprint, from
/// all countries or one). `exposure` is the sensor-days covered that day (0: none); a day
/// without enough coverage is missing: never a fall, never part of a baseline.
struct Series {
  std::int64_t first_day = 0;  ///< local day of packets[0]
  std::vector<double> packets;
  std::vector<double> exposure;
  /// Days the region's sensors changed (one joined or left): a baseline never reaches
  /// back over one, and no window reaches forward over one (a new sensor's ports are not
  /// a change of the traffic).
  std::vector<std::int64_t> breaks;
};

enum class Kind { spike, level_shift, emergence, fingerprint_shift };
std::string_view to_string(Kind k) noexcept;

/// One change found in one series.
struct Change {
  Kind kind = Kind::spike;
  std::int64_t day = 0;          ///< the first day of the change
  std::int64_t last_day = 0;     ///< spikes: the last day above the threshold; others = day
  std::int64_t detected_on = 0;  ///< the last day of data the decision needed
  double before = 0;             ///< baseline: packets per sensor-day (share for fingerprints)
  double after = 0;              ///< the spike's peak day, or the new level (share)
  double excess = 0;             ///< packets above the baseline: the spike's, or a day's after
  double score = 0;              ///< the change in robust deviations (ranks events)
};

/// Spikes, level shifts and emergence in `s`, in day order. A series whose days never
/// reach `min_packets` yields none of the first two; a destination silent before (at most
/// emergence_floor) yields no spike: a day of a port nobody scans is the long tail.
std::vector<Change> count_changes(const Series& s, const Settings& st);

/// Shifts of `part`'s share of `all` (same days, same exposure): a fingerprint's share of
/// a destination. Days with fewer than `min_packets` in `all` are not judged.
std::vector<Change> share_changes(const Series& all, const Series& part, const Settings& st);

/// How far day `day`'s rate (or, with `days` > 1, the median of the observed days from it)
/// stands from its trailing baseline, in log units; nullopt when the baseline or the days
/// are not observed. What a region that did not report a change saw.
std::optional<double> log_change_at(const Series& s, std::int64_t day, int days,
                                    const Settings& st);

/// The packets above the trailing baseline over days [first, last] (negative: below).
std::optional<double> excess_over(const Series& s, std::int64_t first, std::int64_t last,
                                  const Settings& st);

/// How far `part`'s share of `all` over the `days` observed days from `day` stands from its
/// median daily share in the trailing baseline window; nullopt without enough of either.
std::optional<double> share_change_at(const Series& all, const Series& part, std::int64_t day,
                                      int days, const Settings& st);

// Exposed for tests: the weekday (0 = Thursday, as day 0 was) of a local day.
inline int weekday_of(std::int64_t day) {
  return static_cast<int>(((day % 7) + 7) % 7);
}

}  // namespace teiten::collector::events

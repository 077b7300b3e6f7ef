// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::sim {

/// A change put into the simulated traffic, and its label (docs/notable-changes.md,
/// "Evaluation"). Days are UTC days since 1970.
struct SimEvent {
  std::string kind;           ///< spike, level_shift, emergence, fingerprint_shift
  std::string proto = "tcp";  ///< tcp, udp, icmp
  int port = -1;              ///< -1: ICMP
  /// spike, level_shift, emergence: the fingerprint the added packets carry ("": as the
  /// destination's own mix; a fall scales that mix). fingerprint_shift: "mirai".
  std::string fingerprint;
  std::string region = "both";  ///< domestic, overseas or both
  std::string country;          ///< the one source country it concerns ("": all)
  std::int64_t start_day = 0;
  std::int64_t days = 0;  ///< how long it lasts (0: to the end of the simulation)
  /// spike, level_shift: the multiple of the destination's packets (below 1: a fall);
  /// emergence: packets per sensor-day; fingerprint_shift: the fingerprint's new share.
  double size = 0;
  /// A spike of one UTC hour (0-23) of start_day: that hour's packets `size` times (its
  /// whole mix; live detection). -1: whole days.
  int hour = -1;
  friend bool operator==(const SimEvent&, const SimEvent&) = default;
};

/// Settings of the sensor-network simulation: seeded and deterministic.
struct SimOptions {
  std::uint64_t seed = 1;
  std::uint32_t domestic = 3;
  std::uint32_t overseas = 3;
  std::int64_t start_day = 0;  ///< first simulated day (days since 1970, UTC midnight)
  std::uint32_t months = 15;
  std::uint32_t width_s = 3600;    ///< bucket width: 3600 or 86400
  double packets_per_day = 10000;  ///< a domestic sensor's mean; overseas sensors see 1.6x
  double outage_share = 0.01;      ///< sensor-days without any bucket (coverage gaps)
  std::vector<SimEvent> events;    ///< changes put into the otherwise ordinary traffic
};

/// `count` events of every kind in turn, seeded: spikes of 3 to 8 times for 1 to 3 days,
/// level shifts to 2-4 times or a quarter to a half, emergence of a silent port at 30 to
/// 300 packets per sensor-day, Mirai-type shares moving by 0.25 to 0.45 from where they
/// are; a third in each region alone, a third in both, some from one country (JP half of
/// those, else one of CN, US, RU, BR, KR, NL, IN); at
/// most one per destination in any 60 days, none in the first 45 days (the baselines'
/// history) or the last 14.
std::vector<SimEvent> random_events(const SimOptions& o, std::size_t count, std::uint64_t seed);

/// The labels as JSON (an array of objects, dates as YYYY-MM-DD), and back. parse_events
/// throws std::invalid_argument naming the entry and field that is wrong.
std::string events_json(const std::vector<SimEvent>& events);
std::vector<SimEvent> parse_events(const std::string& json);

/// The UTC day after the simulation's last.
std::int64_t end_day(const SimOptions& o);

struct SimSensor {
  std::string id;      ///< sim-d01, sim-o01...
  std::string region;  ///< domestic or overseas
  std::string label;
};

/// The simulated sensors, domestic first.
std::vector<SimSensor> sim_sensors(const SimOptions& o);

/// The registry entries for the collector (YAML `sensors:` list items).
std::string sim_registry_yaml(const SimOptions& o);

/// Calls `sink` with every bucket of one sensor, in time order: a day's traffic of weighted
/// ports (23/TCP, 22/TCP, 445/TCP, ICMP ... and a tail of random ports), source countries,
/// a Mirai-type share per port, unique-source sketches, a monthly trend, a weekly rhythm,
/// the odd burst (one source at one sensor doubling a port's day) and outage, and the
/// `events` that concern the sensor's region. Returns the sensor's packets.
std::uint64_t simulate_sensor(const SimOptions& o, std::size_t sensor_index,
                              const std::function<void(bucket::SealedBucket&&)>& sink);

}  // namespace teiten::sim

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::sim {

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
};

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
/// a Mirai-type share per port, unique-source sketches, a monthly trend, and the odd burst
/// day and outage. Returns the sensor's packets.
std::uint64_t simulate_sensor(const SimOptions& o, std::size_t sensor_index,
                              const std::function<void(bucket::SealedBucket&&)>& sink);

}  // namespace teiten::sim

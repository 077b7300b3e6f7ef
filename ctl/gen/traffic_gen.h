// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/classify/key.h"
#include "common/counters/key_table.h"
#include "common/decode/decode_status.h"

namespace teiten::gen {

/// Packets the generator must send exactly: TCP SYNs (Mirai-type or not) or UDP probes
/// to one port, from `hosts` distinct sources of one country (docs/generator.md).
struct PlanEntry {
  std::string country;  ///< "JP": one of the generator's countries
  classify::Proto proto = classify::Proto::tcp;
  std::uint16_t port = 0;
  bool mirai = false;
  std::uint64_t packets = 0;
  std::uint32_t hosts = 1;          ///< distinct sources (at most 4095), used round robin
  std::optional<std::int64_t> day;  ///< all packets in the 24 hours from here (else spread)
};

/// Parses a plan file: one entry per line, "COUNTRY PROTO PORT mirai|none PACKETS HOSTS
/// [YYYY-MM-DD | YYYY-MM-DDTHH:MM:SSZ]", '#' comments. Throws std::invalid_argument naming the
/// line.
std::vector<PlanEntry> parse_plan(const std::string& text);

/// Settings of the synthetic darknet traffic generator. Same settings, same bytes.
struct GenOptions {
  std::uint64_t seed = 1;
  std::uint64_t packets = 100000;
  std::int64_t start = 1656633600;    ///< 2022-07-01T00:00:00Z
  std::uint32_t duration_s = 3600;    ///< packets spread evenly over this span
  std::uint32_t bucket_width_s = 60;  ///< ground truth is aggregated per bucket of this width
  std::string sensor_v4 = "203.0.113.7";
  std::string sensor_v6 = "2001:db8:7::7";
  double v6_share = 0.03;
  double malformed_share = 0.004;
  double not_for_sensor_share = 0.02;
  double fragment_share = 0.002;
  double vlan_share = 0.05;
  double one_off_share = 0.25;  ///< packets from a source never seen again
  std::uint32_t repeated_sources = 5000;
  /// Planned packets, sent in addition to `packets` others; those others then come from
  /// countries the plan does not name, so the plan's countries carry exactly its counts.
  std::vector<PlanEntry> plan;
};

/// What the generated capture holds, by construction (not by running the classifier).
struct BucketTruth {
  std::map<std::uint64_t, counters::CounterValue> rows;  ///< by classify::Key::pack()
  std::uint64_t not_for_sensor = 0;
  std::uint64_t self_traffic = 0;  ///< the sensor's own upload and its answers
  decode::DecodeCounters malformed{};
};

struct GroundTruth {
  std::uint32_t width_s = 60;
  std::map<std::int64_t, BucketTruth> buckets;  ///< by bucket start
  std::uint64_t packets = 0;
  /// JSON document (docs/generator.md).
  std::string to_json() const;
};

/// One source prefix of the built-in country table (for the test GeoIP database).
struct CountryPrefix {
  std::string prefix;   ///< "126.0.0.0/8" or "240e::/20"
  std::string country;  ///< "JP", or "--" for sources no database knows
};

/// The generator's source prefixes and their countries.
const std::vector<CountryPrefix>& country_prefixes();

/// Writes `opts.packets` Ethernet frames to a pcap file at `pcap_path` and returns the
/// ground truth. Throws std::runtime_error when the file cannot be written.
GroundTruth generate(const GenOptions& opts, const std::string& pcap_path);

}  // namespace teiten::gen

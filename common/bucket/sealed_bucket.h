// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/classify/key.h"
#include "common/decode/decode_status.h"
#include "common/sketch/host_sketch.h"

namespace teiten::bucket {

/// One counter row of a sealed bucket.
struct Row {
  classify::Key key;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  sketch::HostSketch hosts;  ///< the row's distinct sources
  friend bool operator==(const Row&, const Row&) = default;
};

/// Every packet that did not become (or did not stay) a row of its own.
struct Loss {
  std::uint64_t ring_drops = 0;    ///< dropped between capture and classifier (ring full)
  std::uint64_t kernel_drops = 0;  ///< pcap_stats ps_drop delta (live capture only)
  /// The interface's rx_dropped delta (live). Reported beside, not added to the packets
  /// that arrived: Linux also counts there packets the capture did see (no protocol
  /// handler for them).
  std::uint64_t interface_drops = 0;
  decode::DecodeCounters malformed{};  ///< undecodable packets by reason (index: DecodeStatus)
  std::uint64_t spool_dropped = 0;     ///< packets of earlier buckets dropped at the spool bound
  std::uint64_t overflow_packets = 0;  ///< counted, but folded into the overflow row
  std::uint64_t overflow_bytes = 0;    ///< (the bucket's distinct-key cap was reached)
  friend bool operator==(const Loss&, const Loss&) = default;

  std::uint64_t malformed_total() const noexcept {
    std::uint64_t n = 0;
    for (const auto v : malformed) n += v;
    return n;
  }
};

/// Where a bucket's numbers came from.
struct Provenance {
  std::string software_version;
  std::string config_hash;              ///< SHA-256 (hex) of the configuration file's bytes
  std::uint64_t geoip_build_epoch = 0;  ///< 0: no database
  bool clock_synced = false;            ///< system clock NTP-synchronised when sealed
  friend bool operator==(const Provenance&, const Provenance&) = default;
};

/// An immutable record of one UTC-aligned time bucket of one sensor: what arrived, what
/// was counted where, and what was lost. Plain value type.
struct SealedBucket {
  std::string sensor_id;
  std::string boot_id;     ///< changes at every start of the sensor
  std::uint64_t seq = 0;   ///< monotonic per sensor
  std::int64_t start = 0;  ///< seconds since 1970, UTC, multiple of width_s
  std::uint32_t width_s = 60;
  std::vector<Row> rows;             ///< sorted by Key::pack(), no duplicates
  std::uint64_t not_for_sensor = 0;  ///< decoded, but addressed to someone else
  std::uint64_t self_traffic = 0;    ///< the sensor's own traffic (uploads, pulls, DNS...)
  std::uint64_t late_packets = 0;    ///< timestamp before this bucket: counted here
  /// Observed packets whose source the rows' sketches could not record (sketch memory
  /// bound of the sensor reached): unique-host figures are low by at most these.
  std::uint64_t hosts_unrecorded = 0;
  Loss loss;
  Provenance provenance;
  friend bool operator==(const SealedBucket&, const SealedBucket&) = default;

  /// Packets counted as observations: the rows plus the overflow row.
  std::uint64_t observed_packets() const noexcept;
  std::uint64_t observed_bytes() const noexcept;
  /// Every packet the classifier saw for this bucket, plus those dropped before it:
  /// observed + not_for_sensor + self_traffic + malformed + ring drops + kernel drops.
  std::uint64_t accounted_packets() const noexcept;
};

}  // namespace teiten::bucket

// SPDX-License-Identifier: Apache-2.0
#pragma once

// What both stores write the same way for a bucket (collector/store/ only).

#include <cstdint>
#include <string>

#include "common/bucket/sealed_bucket.h"

namespace teiten::collector::store_rows {

/// The malformed packets by reason, as a JSON object.
std::string malformed_json(const bucket::Loss& loss);
/// The bucket's provenance, as a JSON object.
std::string provenance_json(const bucket::Provenance& p);
/// Start of the UTC hour of `t`.
inline std::int64_t hour_of(std::int64_t t) {
  return t - (((t % 3600) + 3600) % 3600);
}
/// Packets the sensor lost (ring and kernel drops, spool drops), as sensor_days counts them.
inline std::uint64_t lost_packets(const bucket::SealedBucket& b) {
  return b.loss.ring_drops + b.loss.kernel_drops + b.loss.spool_dropped;
}

}  // namespace teiten::collector::store_rows

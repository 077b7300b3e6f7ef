// SPDX-License-Identifier: Apache-2.0
#include "common/bucket/sealed_bucket.h"

namespace teiten::bucket {

std::uint64_t SealedBucket::observed_packets() const noexcept {
  std::uint64_t n = loss.overflow_packets;
  for (const auto& r : rows) n += r.packets;
  return n;
}

std::uint64_t SealedBucket::observed_bytes() const noexcept {
  std::uint64_t n = loss.overflow_bytes;
  for (const auto& r : rows) n += r.bytes;
  return n;
}

std::uint64_t SealedBucket::accounted_packets() const noexcept {
  return observed_packets() + not_for_sensor + self_traffic + loss.malformed_total() +
         loss.ring_drops + loss.kernel_drops;
}

}  // namespace teiten::bucket

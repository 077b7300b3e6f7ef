// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::bucket {

/// The next coarser standard width: 3600 for widths below an hour, 86400 below a day,
/// 0 when there is none (a day or more).
std::uint32_t coarser_width(std::uint32_t width_s) noexcept;

/// Sums `parts` into one bucket of `width_s` starting at the first part's start rounded
/// down to `width_s`: rows by key, every counter and loss field. Identity (sensor, boot id,
/// seq) and provenance come from the first part (clock_synced only if every part had it).
/// The parts must be non-empty and share the sensor and boot id.
SealedBucket merge_buckets(const std::vector<const SealedBucket*>& parts, std::uint32_t width_s);

}  // namespace teiten::bucket

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace teiten::sensor {

/// The spool's bound (spool.max_bytes) and what gives way at it (docs/spool.md): a bucket
/// that does not fit makes room by merging the oldest segment's buckets into coarser ones
/// (counts preserved), or, when a merge gives back less than a tenth of the segment, by
/// dropping them (their packets charged to the next bucket's loss.spool_dropped). A
/// segment holding a bucket that may have been sent is never touched: the bound can be
/// exceeded by at most what is in flight.
class BoundPolicy {
 public:
  explicit BoundPolicy(std::uint64_t max_bytes) : max_bytes_(max_bytes) {}
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

  /// Whether `incoming` more bytes fit beside `spooled`.
  bool fits(std::uint64_t spooled, std::uint64_t incoming) const noexcept {
    return spooled + incoming <= max_bytes_;
  }
  /// Whether merging a segment of `before` bytes into `after` bytes is worth it.
  static bool merge_worthwhile(std::uint64_t before, std::uint64_t after) noexcept {
    return after * 10 <= before * 9;
  }
  /// The oldest segment that may give way: `entries` (each with .segment and .seq), and
  /// `sent_below` (buckets with a lower seq may have been sent). "" if none may.
  template <typename Entries>
  static std::string oldest_unpinned(const Entries& entries, std::uint64_t sent_below) {
    // Segments by name (write order), each pinned if it holds a bucket that may have been
    // sent: that one must reach the collector as it is, or be acknowledged.
    std::map<std::string, bool> pinned;
    for (const auto& e : entries) {
      bool& p = pinned[e.segment];
      p = p || e.seq < sent_below;
    }
    for (const auto& [segment, p] : pinned) {
      if (!p) return segment;
    }
    return {};
  }

 private:
  std::uint64_t max_bytes_;
};

}  // namespace teiten::sensor

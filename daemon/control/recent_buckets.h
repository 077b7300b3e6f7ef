// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "common/bucket/bucket_json.h"
#include "common/bucket/sealed_bucket.h"

namespace teiten::sensor {

/// The most recently sealed buckets, for operators' pulls (GET /v1/buckets), kept as
/// their JSON lines (what the pull sends) under a byte bound and a count bound: a busy
/// sensor's day of buckets with their sketches must not grow the daemon without limit.
/// The classifier thread adds, any thread reads.
class RecentBuckets {
 public:
  static constexpr std::size_t kMaxBuckets = 1440;

  explicit RecentBuckets(std::size_t max_bytes, std::size_t max_buckets = kMaxBuckets)
      : max_bytes_(max_bytes), max_buckets_(max_buckets) {}

  void add(const bucket::SealedBucket& b) { add_line(b.start, bucket::to_json_line(b)); }

  /// Keeps `line` (a bucket starting at `start`), then forgets the oldest until both bounds
  /// hold; a line larger than the whole byte bound is not kept at all.
  void add_line(std::int64_t start, std::string line) {
    std::lock_guard lock(mu_);
    bytes_ += line.size();
    lines_.push_back({start, std::move(line)});
    while (!lines_.empty() && (bytes_ > max_bytes_ || lines_.size() > max_buckets_)) {
      bytes_ -= lines_.front().line.size();
      lines_.pop_front();
      ++forgotten_;
    }
  }

  /// JSON lines of the buckets starting at or after `since`, oldest first.
  std::vector<std::string> since(std::int64_t since) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& l : lines_) {
      if (l.start >= since) out.push_back(l.line);
    }
    return out;
  }

  std::size_t bytes() const {
    std::lock_guard lock(mu_);
    return bytes_;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return lines_.size();
  }
  /// Buckets no longer kept because of the bounds (they are in the spool or delivered).
  std::uint64_t forgotten() const {
    std::lock_guard lock(mu_);
    return forgotten_;
  }

 private:
  struct Line {
    std::int64_t start;
    std::string line;
  };
  mutable std::mutex mu_;
  std::size_t max_bytes_, max_buckets_;
  std::size_t bytes_ = 0;
  std::uint64_t forgotten_ = 0;
  std::deque<Line> lines_;
};

}  // namespace teiten::sensor

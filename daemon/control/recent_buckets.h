// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::sensor {

/// The most recently sealed buckets, for operators' pulls (GET /v1/buckets). Bounded by
/// count; the classifier thread adds, any thread reads.
class RecentBuckets {
 public:
  explicit RecentBuckets(std::size_t max = 1440) : max_(max) {}
  void add(const bucket::SealedBucket& b) {
    std::lock_guard lock(mu_);
    buckets_.push_back(b);
    while (buckets_.size() > max_) buckets_.pop_front();
  }
  /// Buckets starting at or after `since`, oldest first.
  std::vector<bucket::SealedBucket> since(std::int64_t since) const {
    std::lock_guard lock(mu_);
    std::vector<bucket::SealedBucket> out;
    for (const auto& b : buckets_) {
      if (b.start >= since) out.push_back(b);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::size_t max_;
  std::deque<bucket::SealedBucket> buckets_;
};

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "daemon/spool/spool.h"

namespace teiten::sensor {

/// Spools sealed buckets with group commit (docs/spool.md): add() keeps a bucket, flush()
/// spools every kept one with Spool::append_group, so buckets sealed close together (a
/// silent gap's empty minutes, a replay's burst) share one fdatasync. The pipeline calls
/// idle() as soon as no other sealed bucket is waiting (Pipeline's `idle`): it flushes
/// once `idle_min` are kept (1, live: at once; a replay as fast as it goes gathers more,
/// and its owner flushes the rest at its end); add() flushes past `max_group` kept. A full disk is
/// retried every 200 ms until it succeeds or `stopping` is set; from then on nothing more is
/// spooled (a later bucket's resume token would skip the packets of one not spooled), and `lost`
/// hears of each bucket left out. A bucket counts as spooled only once flush() wrote it: one thread
/// (the sink's) only.
class SpoolWriter {
 public:
  SpoolWriter(Spool& spool, const std::atomic<bool>& stopping, std::function<void()> spooled,
              std::function<void(const bucket::SealedBucket&)> lost, std::size_t max_group = 1024,
              std::size_t idle_min = 1);

  void add(bucket::SealedBucket&& b, std::uint64_t resume_token = 0);
  void idle() {
    if (kept_.size() >= idle_min_) flush();
  }
  void flush();
  /// Whether a bucket was left out at stop.
  bool abandoned() const noexcept { return abandoned_; }

 private:
  Spool& spool_;
  const std::atomic<bool>& stopping_;
  std::function<void()> spooled_;
  std::function<void(const bucket::SealedBucket&)> lost_;
  std::size_t max_group_, idle_min_;
  std::vector<std::pair<bucket::SealedBucket, std::uint64_t>> kept_;
  bool abandoned_ = false;
};

}  // namespace teiten::sensor

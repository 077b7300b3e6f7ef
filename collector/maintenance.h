// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "collector/store/store.h"

namespace teiten::collector {

/// The retention job, on a thread and a read-write connection of its own (never on the
/// ingest thread): every `period`, per-bucket detail older than `detail_retention_s` and
/// hourly rollups older than `hourly_retention_s` are pruned (daily rollups stay for ever;
/// docs/scale.md, "Tiers"). With PostgreSQL, whole months go as partitions, and one
/// collector prunes at a time.
class Maintenance {
 public:
  Maintenance(const StoreConfig& store, std::uint64_t detail_retention_s,
              std::uint64_t hourly_retention_s,
              std::chrono::seconds period = std::chrono::hours(1));
  ~Maintenance();  ///< stops the thread (after the pass in progress)
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  /// One pass now (the thread also runs one at its start). Returns false if it failed
  /// (logged).
  bool run_once();

 private:
  void loop();
  StoreConfig config_;
  std::unique_ptr<Store> store_;  ///< the job's thread only
  std::uint64_t detail_s_, hourly_s_;
  std::chrono::seconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace teiten::collector

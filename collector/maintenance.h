// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "collector/store/store.h"

namespace teiten::collector {

/// The maintenance job, on a thread and a read-write connection of its own (never on the
/// ingest thread): every `summary_period`, the days whose rollups changed are summarized
/// for reports (Store::summarize_days; docs/scale.md, "Day summaries"); every `period`,
/// per-bucket detail older than `detail_retention_s` and hourly rollups older than
/// `hourly_retention_s` are pruned (daily rollups stay for ever; docs/scale.md, "Tiers").
/// With PostgreSQL, whole months go as partitions, and one collector prunes at a time.
class Maintenance {
 public:
  Maintenance(const StoreConfig& store, std::uint64_t detail_retention_s,
              std::uint64_t hourly_retention_s, std::chrono::seconds period = std::chrono::hours(1),
              std::chrono::seconds summary_period = std::chrono::seconds(60));
  ~Maintenance();  ///< stops the thread (after the pass in progress)
  Maintenance(const Maintenance&) = delete;
  Maintenance& operator=(const Maintenance&) = delete;

  /// One retention pass now. Returns false if it failed (logged).
  bool run_once();
  /// Summarizes every changed day now, a few days per transaction (stopping early when
  /// the job is stopped). Returns the days summarized, or nullopt if it failed (logged).
  std::optional<std::size_t> summarize();

 private:
  void loop();
  StoreConfig config_;
  std::unique_ptr<Store> store_;  ///< the job's thread only
  std::uint64_t detail_s_, hourly_s_;
  std::chrono::seconds period_, summary_period_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace teiten::collector

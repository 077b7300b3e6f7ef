// SPDX-License-Identifier: Apache-2.0
#include "collector/maintenance.h"

#include <algorithm>
#include <ctime>

#include "common/log/log.h"

namespace teiten::collector {

Maintenance::Maintenance(const StoreConfig& store, std::uint64_t detail_retention_s,
                         std::uint64_t hourly_retention_s, std::chrono::seconds period,
                         std::chrono::seconds summary_period)
    : config_(store),
      detail_s_(detail_retention_s),
      hourly_s_(hourly_retention_s),
      period_(period),
      summary_period_(summary_period) {
  thread_ = std::thread([this] { loop(); });
}

Maintenance::~Maintenance() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool Maintenance::run_once() {
  auto logger = log::get("collectord");
  try {
    // One connection for every pass (opened again after a failure).
    if (!store_) store_ = open_store(config_);
    Store* const store = store_.get();
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    const auto buckets = store->prune_detail(now - static_cast<std::int64_t>(detail_s_));
    if (buckets)
      logger->info("pruned the detail of {} buckets (collector.detail_retention)", buckets);
    const auto rows = store->prune_hourly(now - static_cast<std::int64_t>(hourly_s_));
    if (rows) logger->info("pruned {} hourly rollup rows (collector.hourly_retention)", rows);
    return true;
  } catch (const std::exception& e) {
    logger->error("retention pass failed: {}", e.what());
    store_.reset();
    return false;
  }
}

std::optional<std::size_t> Maintenance::summarize() {
  auto logger = log::get("collectord");
  try {
    if (!store_) store_ = open_store(config_);
    constexpr std::size_t kSlice = 4;  // days per call: a stop waits for a few at most
    std::size_t total = 0;
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
      }
      const std::size_t n = store_->summarize_days(kSlice);
      total += n;
      if (n < kSlice) break;
    }
    if (total) logger->debug("summarized {} days for reports", total);
    return total;
  } catch (const std::exception& e) {
    logger->error("day summary pass failed: {}", e.what());
    store_.reset();
    return std::nullopt;
  }
}

void Maintenance::loop() {
  std::unique_lock lock(mu_);
  // The first retention pass a minute after the start: a collector in a restart loop does
  // not prune in a loop.
  const auto wait = std::min<std::chrono::seconds>(summary_period_, std::chrono::seconds(60));
  auto next_prune = std::chrono::steady_clock::now() +
                    std::min<std::chrono::seconds>(period_, std::chrono::seconds(60));
  while (!cv_.wait_for(lock, wait, [&] { return stopping_; })) {
    lock.unlock();
    summarize();
    if (std::chrono::steady_clock::now() >= next_prune) {
      run_once();
      next_prune = std::chrono::steady_clock::now() + period_;
    }
    lock.lock();
  }
}

}  // namespace teiten::collector

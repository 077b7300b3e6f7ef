// SPDX-License-Identifier: Apache-2.0
#include "collector/api/worker_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "common/log/log.h"

namespace teiten::collector {

namespace {

// A replica replays the primary's schema a moment after the primary migrated it (at the
// first start, or after an upgrade), and may still be starting: wait for it a while.
std::unique_ptr<Store> open_read_only(const StoreConfig& reads) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int attempt = 0;; ++attempt) {
    try {
      return open_store(reads, OpenMode::read_only);
    } catch (const std::exception& e) {
      if (reads.report_conninfo.empty() || std::chrono::steady_clock::now() > until) throw;
      if (attempt == 0)
        log::get("collectord")->warn("waiting for the report replica: {}", e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
}

}  // namespace

WorkerPool::WorkerPool(const StoreConfig& store, std::size_t threads, std::size_t max_queued)
    : max_queued_(max_queued) {
  // Reports read the replica when there is one (storage.report_postgresql).
  StoreConfig reads = store;
  if (!reads.report_conninfo.empty()) reads.conninfo = reads.report_conninfo;
  for (std::size_t i = 0; i < threads; ++i) stores_.push_back(open_read_only(reads));
  for (auto& s : stores_) threads_.emplace_back([this, st = s.get()] { run(*st); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WorkerPool::submit(Task task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return true;
}

std::uint64_t WorkerPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkerPool::run(Store& store) {
  // Reports yield the CPU to ingest: on Linux a thread's nice value is its own, so only
  // the report threads are lowered (raising a nice value needs no privilege).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kReportNice) != 0) {
    log::get("collectord")
        ->warn("report worker keeps the collector's priority: {}", std::strerror(errno));
  }
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    busy_.fetch_add(1);
    try {
      task(store);
    } catch (const std::exception& e) {
      // Tasks answer their own errors; this is a last resort that keeps the thread.
      log::get("collectord")->error("report worker: {}", e.what());
    }
    busy_.fetch_sub(1);
  }
}

}  // namespace teiten::collector

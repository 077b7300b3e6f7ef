// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "collector/store/store.h"

namespace teiten::collector {

/// The threads that run reports and queries, each with a read-only connection of its own
/// (SQLite in WAL mode reads beside the writer; PostgreSQL sessions are independent), so
/// that a long report never holds up ingest on the I/O thread, at a lower CPU priority.
class WorkerPool {
 public:
  using Task = std::function<void(Store&)>;
  /// The nice value report threads run at (relative priority below the I/O thread's 0):
  /// with both busy the scheduler gives ingest most of the CPU.
  static constexpr int kReportNice = 10;

  /// Opens `threads` read-only stores and starts the threads. Throws std::runtime_error
  /// when a store cannot be opened.
  WorkerPool(const StoreConfig& store, std::size_t threads, std::size_t max_queued);
  /// Finishes the task each thread is running, drops the queued ones (their callers'
  /// connections are ending), and joins.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Queues a task; false when max_queued tasks are waiting already (answer 503).
  bool submit(Task task);

  std::size_t threads() const noexcept { return threads_.size(); }
  std::uint64_t queued() const;
  std::uint64_t busy() const noexcept { return busy_.load(); }
  std::uint64_t rejected() const noexcept { return rejected_.load(); }

 private:
  void run(Store& store);
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::size_t max_queued_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> busy_{0}, rejected_{0};
};

}  // namespace teiten::collector

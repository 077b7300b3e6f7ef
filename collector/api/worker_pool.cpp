#include "collector/api/worker_pool.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log/log.h"

namespace teiten::collector {

WorkerPool::WorkerPool(const StoreConfig& store, std::size_t threads, std::size_t max_queued)
    : max_queued_(max_queued) {
  for (std::size_t i = 0; i < threads; ++i)
    stores_.push_back(open_store(store, OpenMode::read_only));
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

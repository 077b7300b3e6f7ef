// SPDX-License-Identifier: Apache-2.0
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "collector/api/worker_pool.h"
#include "tests/unit/collector/test_store.h"

using namespace teiten;
using namespace teiten::collector;
using teiten::test::TempDir;
using teiten::test::TestStore;

namespace {
/// A gate the tasks wait at until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void wait() {
    std::unique_lock lock(mu);
    ++waiting;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
  }
  bool until_waiting(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return waiting >= n; });
  }
  void release() {
    {
      std::lock_guard lock(mu);
      open = true;
    }
    cv.notify_all();
  }
};
}  // namespace

TEST_CASE("report workers: own read-only connections, a bounded queue, a lower CPU priority",
          "[collector][workers]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  TempDir dir;
  TestStore ts(backend, dir);
  const int base = [] {
    errno = 0;
    return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
  }();

  Gate gate;
  std::mutex mu;
  std::set<Store*> stores;
  std::set<int> nices;
  std::atomic<int> done{0};
  std::atomic<int> writes_refused{0};
  {
    WorkerPool pool(ts.config, 2, 1);
    REQUIRE(pool.threads() == 2);
    const auto task = [&](Store& s) {
      {
        std::lock_guard lock(mu);
        stores.insert(&s);
        nices.insert(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())));
      }
      // A worker's connection reads and never writes.
      bucket::SealedBucket b;
      b.sensor_id = "s1";
      b.boot_id = "a";
      b.start = 0;
      b.width_s = 60;
      try {
        s.ingest({b});
      } catch (const std::exception&) {
        ++writes_refused;
      }
      gate.wait();
      ++done;
    };
    // The queue holds one: each task is taken by a thread before the next is queued.
    REQUIRE(pool.submit(task));
    REQUIRE(gate.until_waiting(1));
    REQUIRE(pool.submit(task));
    REQUIRE(gate.until_waiting(2));  // both threads busy: one more waits in the queue
    CHECK(pool.busy() == 2);
    REQUIRE(pool.submit(task));
    CHECK(pool.queued() == 1);
    CHECK_FALSE(pool.submit(task));  // the queue holds one: refused, counted
    CHECK(pool.rejected() == 1);
    gate.release();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (done < 3 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(done == 3);
  }
  CHECK(stores.size() == 2);  // a connection per thread, not the ingest one
  CHECK(stores.count(ts.store.get()) == 0);
  CHECK(writes_refused == 3);
  CHECK(ts->empty());
  // The threads run below the I/O thread's priority (a nice value caps at 19).
  CHECK(nices == std::set<int>{std::min(19, base + WorkerPool::kReportNice)});
  // The ingest connection's own priority is untouched.
  CHECK(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())) == base);
}

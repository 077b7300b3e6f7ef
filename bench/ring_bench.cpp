// SPDX-License-Identifier: Apache-2.0
// Ring benchmark: the hand-written SPSC ring (in-place claim/commit of 256-byte slots)
// against boost::lockfree::spsc_queue (push/pop by copy), two threads, same item count.
// Prints items per second of each: the measurement behind the choice in common/ring/.
#include <boost/lockfree/spsc_queue.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/ring/spsc_ring.h"
#include "daemon/pipeline/packet_slot.h"

namespace {
using Clock = std::chrono::steady_clock;
using teiten::sensor::PacketSlot;
constexpr std::uint64_t kItems = 20'000'000;
constexpr std::size_t kCapacity = 32768;

double bench_teiten() {
  teiten::ring::SpscRing<PacketSlot> ring(kCapacity);
  std::uint8_t frame[64] = {};
  const auto t0 = Clock::now();
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kItems;) {
      PacketSlot* s = ring.try_claim();
      if (!s) continue;
      s->ts_sec = static_cast<std::int64_t>(i);
      s->caplen = 64;
      std::memcpy(s->data, frame, 64);
      ring.commit();
      ++i;
    }
  });
  std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < kItems;) {
    const PacketSlot* s = ring.peek();
    if (!s) continue;
    sum += static_cast<std::uint64_t>(s->ts_sec) + s->data[3];
    ring.release();
    ++i;
  }
  producer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sum != kItems * (kItems - 1) / 2) std::printf("teiten ring: wrong sum\n");
  return static_cast<double>(kItems) / secs / 1e6;
}

double bench_boost() {
  auto* q = new boost::lockfree::spsc_queue<PacketSlot, boost::lockfree::capacity<kCapacity>>();
  std::uint8_t frame[64] = {};
  const auto t0 = Clock::now();
  std::thread producer([&] {
    PacketSlot s{};
    for (std::uint64_t i = 0; i < kItems;) {
      s.ts_sec = static_cast<std::int64_t>(i);
      s.caplen = 64;
      std::memcpy(s.data, frame, 64);
      if (q->push(s)) ++i;
    }
  });
  std::uint64_t sum = 0;
  PacketSlot s{};
  for (std::uint64_t i = 0; i < kItems;) {
    if (!q->pop(s)) continue;
    sum += static_cast<std::uint64_t>(s.ts_sec) + s.data[3];
    ++i;
  }
  producer.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (sum != kItems * (kItems - 1) / 2) std::printf("boost queue: wrong sum\n");
  delete q;
  return static_cast<double>(kItems) / secs / 1e6;
}
}  // namespace

int main() {
  double best_t = 0, best_b = 0;
  for (int r = 0; r < 3; ++r) {
    best_t = std::max(best_t, bench_teiten());
    best_b = std::max(best_b, bench_boost());
  }
  std::printf("SPSC ring, %llu slots of %zu bytes, 2 threads, best of 3:\n",
              static_cast<unsigned long long>(kItems), sizeof(PacketSlot));
  std::printf("  teiten::ring::SpscRing (claim/commit in place): %7.1f M items/s\n", best_t);
  std::printf("  boost::lockfree::spsc_queue (push/pop copies):  %7.1f M items/s\n", best_b);
  std::printf("  ratio: %.2f\n", best_t / best_b);
  return 0;
}

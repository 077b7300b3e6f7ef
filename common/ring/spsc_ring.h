// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <stdexcept>

namespace teiten::ring {

/// Bounded lock-free single-producer single-consumer ring of preallocated slots, modelled
/// on rigtorp's SPSCQueue: power-of-two capacity, indices on their own cache lines, each
/// side caching the other's index so the shared line is read only when needed.
/// Slots are filled and read in place (claim/commit, peek/release): a packet is copied
/// once, from libpcap's buffer into the slot. Nothing allocates after construction.
/// Exactly one producer thread and one consumer thread.
template <typename T>
class SpscRing {
 public:
  explicit SpscRing(std::size_t capacity)
      : capacity_(std::bit_ceil(capacity < 2 ? std::size_t{2} : capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<T[]>(capacity_)) {
    if (capacity > (std::size_t{1} << 30)) throw std::invalid_argument("ring too large");
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  /// Producer: the next free slot, or nullptr when the ring is full. Fill it, then commit().
  [[nodiscard]] T* try_claim() noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_cache_ >= capacity_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (head - tail_cache_ >= capacity_) return nullptr;
    }
    return &slots_[head & mask_];
  }
  /// Producer: address of the slot `i` places after the next one try_claim() returns, for
  /// a prefetch only (never to write); nullptr unless that slot is known to be free by the
  /// producer's own copy of the consumer's index (no shared line is read), so that a
  /// prefetch never takes a line the consumer is reading.
  [[nodiscard]] const T* claim_address_ahead(std::size_t i) const noexcept {
    const std::size_t at = head_.load(std::memory_order_relaxed) + i;
    return at - tail_cache_ < capacity_ ? &slots_[at & mask_] : nullptr;
  }
  /// Producer: publishes the slot returned by the last try_claim().
  void commit() noexcept {
    head_.store(head_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  /// Consumer: the oldest published slot, or nullptr when empty. Read it, then release().
  [[nodiscard]] const T* peek() noexcept { return readable(1) ? peek_at(0) : nullptr; }
  /// Consumer: frees the slot returned by the last peek().
  void release() noexcept { release(1); }

  /// Consumer: how many published slots are unread, counting at most `max` (reads the
  /// producer's index only when the cached one shows fewer than `max`).
  [[nodiscard]] std::size_t readable(std::size_t max) noexcept {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    if (head_cache_ - tail < max) head_cache_ = head_.load(std::memory_order_acquire);
    return std::min(max, head_cache_ - tail);
  }
  /// Consumer: the `i`-th unread slot; i < readable(). Read it, then release(n) with n > i.
  [[nodiscard]] const T* peek_at(std::size_t i) const noexcept {
    return &slots_[(tail_.load(std::memory_order_relaxed) + i) & mask_];
  }
  /// Consumer: address of the slot `i` places after the oldest unread one, which may not
  /// be published yet: for a prefetch only, never to read.
  [[nodiscard]] const void* address_ahead(std::size_t i) const noexcept {
    return &slots_[(tail_.load(std::memory_order_relaxed) + i) & mask_];
  }
  /// Consumer: frees the `n` oldest slots.
  void release(std::size_t n) noexcept {
    tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }

  std::size_t capacity() const noexcept { return capacity_; }
  /// Approximate number of published, unread slots (any thread; for metrics).
  std::size_t size_approx() const noexcept {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }

 private:
  static constexpr std::size_t kLine = 64;
  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<T[]> slots_;
  alignas(kLine) std::atomic<std::size_t> head_{0};  // written by the producer
  alignas(kLine) std::size_t tail_cache_ = 0;        // producer's copy of tail_
  alignas(kLine) std::atomic<std::size_t> tail_{0};  // written by the consumer
  alignas(kLine) std::size_t head_cache_ = 0;        // consumer's copy of head_
};

}  // namespace teiten::ring

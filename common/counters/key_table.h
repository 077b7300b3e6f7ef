// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace teiten::counters {

/// Packets and bytes under one key.
struct CounterValue {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

/// Fixed-capacity open-addressing hash table from packed keys (never 0) to counters.
/// Holds at most `max_keys` distinct keys; all memory is allocated at construction, so
/// add() never allocates. clear() costs O(keys in use). Single thread.
class KeyTable {
 public:
  explicit KeyTable(std::size_t max_keys);

  static constexpr std::uint32_t kFull = UINT32_MAX;

  /// Adds one packet of `bytes` under `key`. Returns the key's ordinal (its position in
  /// insertion order, below max_keys), or kFull, changing nothing, when the key is new and
  /// the table already holds max_keys keys (the caller folds it into overflow).
  std::uint32_t add(std::uint64_t key, std::uint64_t bytes) noexcept {
    std::size_t i = index_of(key);
    for (;;) {
      Slot& s = slots_[i];
      if (s.key == key) {
        ++s.value.packets;
        s.value.bytes += bytes;
        return s.ordinal;
      }
      if (s.key == 0) {
        if (order_.size() == max_keys_) return kFull;
        s.key = key;
        s.value = CounterValue{1, bytes};
        s.ordinal = static_cast<std::uint32_t>(order_.size());
        order_.push_back(static_cast<std::uint32_t>(i));  // capacity reserved: no allocation
        return s.ordinal;
      }
      i = (i + 1) & mask_;
    }
  }

  /// Where add(key, ...) probes first, for the caller to prefetch. (An inline member that
  /// only prefetches is dropped by g++ 12 when inlined further: it counts as pure.)
  const void* probe_address(std::uint64_t key) const noexcept { return &slots_[index_of(key)]; }

  /// Calls f(key, value) for every key in use, in insertion order (ordinal 0, 1, ...).
  template <typename F>
  void for_each(F&& f) const {
    for (const std::uint32_t i : order_) f(slots_[i].key, slots_[i].value);
  }

  std::size_t size() const noexcept { return order_.size(); }
  std::size_t max_keys() const noexcept { return max_keys_; }
  void clear() noexcept;

 private:
  // A slot holds the key's counters too, so that the one cache line a batch prefetches
  // (probe_address) serves the whole add().
  struct alignas(32) Slot {
    std::uint64_t key = 0;
    CounterValue value;
    std::uint32_t ordinal = 0;
  };
  std::size_t index_of(std::uint64_t key) const noexcept {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  std::size_t max_keys_;
  std::size_t mask_;
  unsigned shift_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> order_;  ///< slot index by ordinal (insertion order)
};

}  // namespace teiten::counters

#include "common/counters/key_table.h"

#include <bit>
#include <stdexcept>

namespace teiten::counters {

KeyTable::KeyTable(std::size_t max_keys) : max_keys_(max_keys) {
  if (max_keys == 0 || max_keys > (std::size_t{1} << 24)) {
    throw std::invalid_argument("KeyTable: max_keys must be in [1, 16777216]");
  }
  // Load factor at most 1/2 keeps linear probing short.
  const std::size_t capacity = std::bit_ceil(max_keys * 2);
  mask_ = capacity - 1;
  slots_.resize(capacity);
  used_.reserve(max_keys);
}

void KeyTable::clear() noexcept {
  for (const std::uint32_t i : used_) slots_[i] = Slot{};
  used_.clear();
}

}  // namespace teiten::counters

// SPDX-License-Identifier: Apache-2.0
#include "common/counters/key_table.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

namespace teiten::counters {

KeyTable::KeyTable(std::size_t max_keys) : max_keys_(max_keys) {
  if (max_keys == 0 || max_keys > (std::size_t{1} << 24)) {
    throw std::invalid_argument("KeyTable: max_keys must be in [1, 16777216]");
  }
  // Load factor at most 2/3 keeps linear probing short (and the table small).
  const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(4, max_keys + max_keys / 2));
  mask_ = capacity - 1;
  shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
  slots_.resize(capacity);
  order_.reserve(max_keys);
}

void KeyTable::clear() noexcept {
  for (const std::uint32_t i : order_) slots_[i] = Slot{};
  order_.clear();
}

}  // namespace teiten::counters

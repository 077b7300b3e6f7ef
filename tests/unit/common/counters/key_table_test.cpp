// SPDX-License-Identifier: Apache-2.0
#include "common/counters/key_table.h"

#include <catch2/catch.hpp>
#include <map>

using teiten::counters::CounterValue;
using teiten::counters::KeyTable;

TEST_CASE("key table counts packets and bytes per key", "[counters]") {
  KeyTable t(4);
  CHECK(t.add(1ULL << 63 | 5, 40) == 0);  // ordinals in insertion order
  CHECK(t.add(1ULL << 63 | 5, 60) == 0);
  CHECK(t.add(1ULL << 63 | 9, 28) == 1);
  std::map<std::uint64_t, CounterValue> seen;
  t.for_each([&](std::uint64_t k, const CounterValue& v) { seen[k] = v; });
  REQUIRE(seen.size() == 2);
  CHECK(seen[1ULL << 63 | 5].packets == 2);
  CHECK(seen[1ULL << 63 | 5].bytes == 100);
  CHECK(seen[1ULL << 63 | 9].packets == 1);
}

TEST_CASE("key table refuses a new key beyond its cap but keeps counting known ones",
          "[counters]") {
  KeyTable t(3);
  for (std::uint64_t k = 1; k <= 3; ++k) CHECK(t.add(1ULL << 63 | k, 1) == k - 1);
  CHECK(t.add(1ULL << 63 | 4, 1) == KeyTable::kFull);
  CHECK(t.add(1ULL << 63 | 2, 1) == 1);
  CHECK(t.size() == 3);
  t.clear();
  CHECK(t.size() == 0);
  CHECK(t.add(1ULL << 63 | 4, 1) == 0);
}

TEST_CASE("key table survives many colliding keys", "[counters]") {
  KeyTable t(5000);
  for (std::uint64_t k = 1; k <= 5000; ++k) REQUIRE(t.add(1ULL << 63 | (k << 23), k) == k - 1);
  std::uint64_t packets = 0, bytes = 0;
  t.for_each([&](std::uint64_t, const CounterValue& v) {
    packets += v.packets;
    bytes += v.bytes;
  });
  CHECK(packets == 5000);
  CHECK(bytes == 5000ULL * 5001 / 2);
  CHECK_THROWS(KeyTable(0));
}

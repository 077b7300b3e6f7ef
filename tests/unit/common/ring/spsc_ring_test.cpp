// SPDX-License-Identifier: Apache-2.0
#include "common/ring/spsc_ring.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>

using teiten::ring::SpscRing;

TEST_CASE("ring rounds capacity up and reports full and empty", "[ring]") {
  SpscRing<int> r(3);
  CHECK(r.capacity() == 4);
  CHECK(r.peek() == nullptr);
  for (int i = 0; i < 4; ++i) {
    int* s = r.try_claim();
    REQUIRE(s != nullptr);
    *s = i;
    r.commit();
  }
  CHECK(r.try_claim() == nullptr);
  for (int i = 0; i < 4; ++i) {
    const int* s = r.peek();
    REQUIRE(s != nullptr);
    CHECK(*s == i);
    r.release();
  }
  CHECK(r.peek() == nullptr);
  CHECK(r.try_claim() != nullptr);
}

TEST_CASE("ring names a slot ahead for the producer only while it is known to be free", "[ring]") {
  SpscRing<int> r(8);
  CHECK(r.claim_address_ahead(0) == r.try_claim());
  const int* first = r.claim_address_ahead(0);
  CHECK(r.claim_address_ahead(7) == first + 7);
  CHECK(r.claim_address_ahead(8) == nullptr);  // slot 8 is slot 0 again
  for (int i = 0; i < 6; ++i) {
    REQUIRE(r.try_claim() != nullptr);
    r.commit();
  }
  // Six published, none read: two slots are free, the third ahead is the unread slot 0.
  CHECK(r.claim_address_ahead(1) == first + 7);
  CHECK(r.claim_address_ahead(2) == nullptr);
  // Once the consumer has freed slots and the producer has seen it (try_claim of a full
  // ring reads the consumer's index), the addresses wrap round to them.
  r.release(4);
  for (int i = 0; i < 2; ++i) {
    REQUIRE(r.try_claim() != nullptr);
    r.commit();
  }
  CHECK(r.claim_address_ahead(0) == nullptr);  // not seen yet: the cached index says full
  REQUIRE(r.try_claim() == first);
  CHECK(r.claim_address_ahead(3) == first + 3);
  CHECK(r.claim_address_ahead(4) == nullptr);
}

TEST_CASE("ring passes every item in order between two threads", "[ring][threads]") {
  // Run under ThreadSanitizer by the tsan preset. Small ring, many items: both the full and
  // the empty paths are taken many times; the producer drops nothing, it retries. The
  // consumer reads one slot at a time (peek/release) or, as the classifier does, up to 16
  // (readable/peek_at/release(n)).
  const bool batched = GENERATE(false, true);
  INFO((batched ? "batches" : "one at a time"));
  struct Item {
    std::uint64_t seq;
    std::uint64_t check;
  };
  SpscRing<Item> r(64);
  constexpr std::uint64_t kItems = 2'000'000;
  std::uint64_t full_seen = 0;
  std::thread producer([&] {
    for (std::uint64_t i = 0; i < kItems;) {
      Item* s = r.try_claim();
      if (!s) {
        ++full_seen;
        std::this_thread::yield();
        continue;
      }
      s->seq = i;
      s->check = i * 0x9E3779B97F4A7C15ULL;
      r.commit();
      ++i;
    }
  });
  std::uint64_t expected = 0, bad = 0;
  while (expected < kItems) {
    const std::size_t n = batched ? r.readable(16) : (r.peek() ? 1 : 0);
    if (n == 0) {
      std::this_thread::yield();
      continue;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const Item* s = batched ? r.peek_at(i) : r.peek();
      if (s->seq != expected || s->check != expected * 0x9E3779B97F4A7C15ULL) ++bad;
      ++expected;
    }
    if (batched) {
      r.release(n);
    } else {
      r.release();
    }
  }
  producer.join();
  CHECK(bad == 0);
  CHECK(expected == kItems);
  CHECK(r.peek() == nullptr);
}

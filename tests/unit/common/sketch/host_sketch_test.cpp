// SPDX-License-Identifier: Apache-2.0
#include "common/sketch/host_sketch.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

using teiten::sketch::hash_ipv4;
using teiten::sketch::hash_ipv6;
using teiten::sketch::HostSketch;

namespace {

HostSketch of_range(std::uint32_t first, std::uint32_t n) {
  HostSketch s;
  for (std::uint32_t i = 0; i < n; ++i) s.add(hash_ipv4(first + i));
  return s;
}

double rel_error(const HostSketch& s, double truth) {
  return std::abs(s.estimate() - truth) / truth;
}

}  // namespace

TEST_CASE("host sketch: exact while sparse, repeats counted once") {
  HostSketch s;
  CHECK(s.empty());
  CHECK(s.count() == 0);
  for (int rep = 0; rep < 3; ++rep)
    for (std::uint32_t i = 0; i < 99; ++i) s.add(hash_ipv4(0x7E000000u + i * 7919u));
  CHECK_FALSE(s.dense());
  CHECK(s.count() == 99);
  std::array<std::uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8};
  s.add(hash_ipv6(v6));
  s.add(hash_ipv6(v6));
  CHECK(s.count() == 100);
}

TEST_CASE("host sketch: near exact just past the sparse limit") {
  const auto n = static_cast<std::uint32_t>(HostSketch::kSparseMax);
  HostSketch s = of_range(0x0A000000u, n);
  CHECK_FALSE(s.dense());
  CHECK(s.count() == n);
  s.add(hash_ipv4(0x0B000000u));
  CHECK(s.dense());
  CHECK(rel_error(s, n + 1.0) < 0.01);
}

TEST_CASE("host sketch: within 2% at 100,000 distinct sources, and merges are unions") {
  HostSketch a = of_range(0x01000000u, 60000);
  HostSketch b = of_range(0x01000000u + 40000, 60000);  // 20,000 in common with a
  HostSketch all = of_range(0x01000000u, 100000);
  CHECK(rel_error(all, 100000) < 0.02);
  HostSketch u = a;
  u.merge(b);
  CHECK(u == all);  // register-wise max: the same sketch as one pass over the union
  // Other ranges and sizes stay within the bound as well (not a lucky seed).
  for (std::uint32_t base : {0x22000000u, 0x7E000000u, 0xC0A80000u}) {
    CHECK(rel_error(of_range(base, 100000), 100000) < 0.02);
    CHECK(rel_error(of_range(base, 20000), 20000) < 0.02);
    CHECK(rel_error(of_range(base, 1000000), 1000000) < 0.02);
  }
}

TEST_CASE("host sketch: sparse and dense sketches merge either way") {
  HostSketch small = of_range(0x05000000u, 50);
  HostSketch big = of_range(0x06000000u, 5000);
  HostSketch x = small;
  x.merge(big);
  HostSketch y = big;
  y.merge(small);
  CHECK(x == y);
  CHECK(rel_error(x, 5050) < 0.02);
  HostSketch z = of_range(0x05000000u, 30);
  z.merge(of_range(0x05000000u + 20, 30));
  CHECK(z.count() == 50);
}

TEST_CASE("host sketch: encodings round-trip") {
  for (std::uint32_t n : {0u, 1u, 77u, 1536u, 1537u, 40000u}) {
    const HostSketch s = of_range(0x30000000u, n);
    std::string err;
    const auto back = HostSketch::from_base64(s.to_base64(), &err);
    INFO(n << " " << err);
    REQUIRE(back);
    CHECK(*back == s);
    CHECK(back->count() == s.count());
  }
}

TEST_CASE("host sketch: malformed encodings are refused with a reason") {
  std::string err;
  CHECK_FALSE(HostSketch::decode("", &err));
  CHECK(err == "sketch shorter than its header");
  CHECK_FALSE(HostSketch::decode(std::string("\x02\x00\x00", 3), &err));
  CHECK(err == "unknown sketch version");
  CHECK_FALSE(HostSketch::decode(std::string("\x01\x07\x00", 3), &err));
  CHECK(err == "unknown sketch mode");
  CHECK_FALSE(HostSketch::decode(std::string("\x01\x00\x02\x05", 4), &err));
  CHECK(err == "truncated sketch");
  CHECK_FALSE(HostSketch::decode(std::string("\x01\x00\x02\x05\x00", 5), &err));
  CHECK(err == "sparse sketch entries not strictly increasing");
  CHECK_FALSE(HostSketch::decode(std::string("\x01\x00\x01\x05\x00", 5), &err));
  CHECK(err == "trailing bytes after sketch");
  CHECK_FALSE(HostSketch::decode(std::string("\x01\x00\xff\xff\x03", 5), &err));
  CHECK(err == "sparse sketch with too many entries");
  std::string dense("\x01\x01", 2);
  dense.append(HostSketch::kRegisters, '\x01');
  CHECK(HostSketch::decode(dense, &err));
  dense[100] = 52;
  CHECK_FALSE(HostSketch::decode(dense, &err));
  CHECK(err == "sketch register out of range");
  dense.pop_back();
  CHECK_FALSE(HostSketch::decode(dense, &err));
  CHECK(err == "dense sketch of the wrong length");
  CHECK_FALSE(HostSketch::from_base64("AQ!=", &err));
  CHECK(err == "sketch is not valid base64");
  CHECK_FALSE(HostSketch::from_base64("AQA", &err));
  // An 11-byte varint (beyond 64 bits) is refused, not wrapped.
  CHECK_FALSE(HostSketch::decode(
      std::string("\x01\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 13), &err));
}

TEST_CASE("host sketch: add_needs_memory predicts growth") {
  HostSketch s;
  std::size_t grown = 0;
  for (std::uint32_t i = 0; i < 3000; ++i) {
    const std::uint64_t h = hash_ipv4(i);
    const bool predicted = s.add_needs_memory(h);
    const std::size_t g = s.add(h);
    CHECK(predicted == (g > 0));
    grown += g;
  }
  CHECK(s.dense());
  CHECK(grown == s.memory());
  CHECK(s.memory() == HostSketch::kDenseBytes);
}

TEST_CASE("host sketch: adding many at once equals adding one by one") {
  for (const std::uint32_t n : {0u, 1u, 7u, 1000u, 1536u, 1537u, 5000u}) {
    INFO(n);
    std::vector<std::uint64_t> batch;
    HostSketch one;
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::uint64_t h = hash_ipv4(0x0A000000u + (i * 37u) % (n / 2 + 1));  // repeats
      batch.push_back(h);
      one.add(h);
    }
    // Into an empty sketch, and into one that holds part of the sources already.
    HostSketch many;
    const std::size_t grown = many.add_many(batch);
    CHECK(many == one);
    CHECK(grown == many.memory());
    CHECK(many.memory() <= HostSketch::kDenseBytes);
    HostSketch half;
    std::vector<std::uint64_t> first(batch.begin(), batch.begin() + batch.size() / 2);
    half.add_many(first);
    const std::size_t before = half.memory();
    CHECK(half.add_many(batch) <= HostSketch::kDenseBytes);
    CHECK(half == one);
    CHECK(half.memory() >= before);
    CHECK(half.count() == one.count());
  }
}

TEST_CASE("host sketch: sorted batches merge in place into a sparse sketch as a union") {
  // Many small batches into one sketch, as the sealing thread's folds do: the merge
  // runs in place once the capacity suffices, and overlapping hashes are taken once.
  std::mt19937_64 rng(20261126);
  for (int trial = 0; trial < 200; ++trial) {
    INFO(trial);
    HostSketch merged, one_by_one;
    std::uniform_int_distribution<std::uint64_t> pick(0, 3000);  // a small universe: overlaps
    for (int round = 0; round < 12; ++round) {
      std::vector<std::uint64_t> batch(static_cast<std::size_t>(rng() % 40));
      for (auto& h : batch) h = hash_ipv4(static_cast<std::uint32_t>(pick(rng)));
      std::sort(batch.begin(), batch.end());
      batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
      merged.add_sorted(batch);
      for (const auto h : batch) one_by_one.add(h);
      REQUIRE(merged == one_by_one);
      REQUIRE(merged.count() == one_by_one.count());
    }
  }
}

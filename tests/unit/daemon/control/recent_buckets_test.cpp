// SPDX-License-Identifier: Apache-2.0
#include "daemon/control/recent_buckets.h"

#include <catch2/catch.hpp>

using teiten::sensor::RecentBuckets;

namespace {
teiten::bucket::SealedBucket bucket_at(std::int64_t start, std::uint16_t rows) {
  teiten::bucket::SealedBucket b;
  b.sensor_id = "s";
  b.boot_id = "b";
  b.seq = static_cast<std::uint64_t>(start / 60);
  b.start = start;
  b.width_s = 60;
  for (std::uint16_t i = 0; i < rows; ++i)
    b.rows.push_back(
        {teiten::classify::Key{teiten::classify::Proto::tcp, true, i,
                               teiten::classify::make_country('J', 'P'),
                               teiten::classify::Fingerprint::none, teiten::classify::Kind::scan},
         1, 60});
  return b;
}
}  // namespace

TEST_CASE("recent buckets are kept as their JSON lines under a byte bound and a count bound",
          "[control][recent]") {
  const std::string one = teiten::bucket::to_json_line(bucket_at(0, 10));
  SECTION("the byte bound forgets the oldest first") {
    RecentBuckets r(3 * one.size() + one.size() / 2);
    for (std::int64_t i = 0; i < 5; ++i) r.add(bucket_at(i * 60, 10));
    CHECK(r.size() == 3);
    CHECK(r.bytes() <= 3 * one.size() + one.size() / 2);
    CHECK(r.forgotten() == 2);
    const auto lines = r.since(0);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == teiten::bucket::to_json_line(bucket_at(120, 10)));
    CHECK(lines[2] == teiten::bucket::to_json_line(bucket_at(240, 10)));
    CHECK(r.since(180).size() == 2);
    CHECK(r.since(300).empty());
  }
  SECTION("the count bound holds with room to spare in bytes") {
    RecentBuckets r(1 << 20, 4);
    for (std::int64_t i = 0; i < 10; ++i) r.add(bucket_at(i * 60, 1));
    CHECK(r.size() == 4);
    CHECK(r.since(0).front() == teiten::bucket::to_json_line(bucket_at(360, 1)));
  }
  SECTION("a bucket larger than the whole bound is not kept, and the bound holds") {
    RecentBuckets r(one.size() * 2);
    r.add(bucket_at(0, 10));
    r.add(bucket_at(60, 1000));
    CHECK(r.size() == 0);
    CHECK(r.bytes() == 0);
    CHECK(r.forgotten() == 2);
    r.add(bucket_at(120, 10));
    CHECK(r.size() == 1);
  }
}

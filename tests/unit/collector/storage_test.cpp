// SPDX-License-Identifier: Apache-2.0
#include "collector/store/store.h"

#include <catch2/catch.hpp>
#include <map>
#include <tuple>

#include "tests/integration/test_support.h"
#include "tests/unit/collector/test_store.h"

using namespace teiten;
using namespace teiten::collector;

namespace {
bucket::SealedBucket make(const std::string& boot, std::uint64_t seq, std::int64_t start,
                          std::uint16_t port, std::uint64_t packets) {
  bucket::SealedBucket b;
  b.sensor_id = "s1";
  b.boot_id = boot;
  b.seq = seq;
  b.start = start;
  b.width_s = 60;
  b.rows.push_back(
      {classify::Key{classify::Proto::tcp, true, port, classify::make_country('J', 'P'),
                     classify::Fingerprint::mirai, classify::Kind::scan},
       packets, packets * 40});
  b.not_for_sensor = 1;
  b.self_traffic = 2;
  return b;
}
}  // namespace

TEST_CASE("storage ingests idempotently on sensor, boot id and sequence", "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  const std::vector<bucket::SealedBucket> batch = {make("a", 0, 0, 23, 5), make("a", 1, 60, 23, 7)};
  CHECK(s.ingest(batch) == std::vector<IngestResult>{IngestResult::stored, IngestResult::stored});
  CHECK(s.ingest(batch) ==
        std::vector<IngestResult>{IngestResult::duplicate, IngestResult::duplicate});
  // Same seq after a restart (new boot id) is a different bucket.
  CHECK(s.ingest({make("b", 0, 120, 22, 3)}) == std::vector<IngestResult>{IngestResult::stored});
  Query q;
  q.group_by = {"port"};
  const auto rows = s.query(q);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].group == std::vector<std::string>{"23"});
  CHECK(rows[0].packets == 12);
  CHECK(rows[0].bytes == 480);
  CHECK(rows[1].packets == 3);
  const Accounting a = s.accounting(q);
  CHECK(a.buckets == 3);
  CHECK(a.observed_packets == 15);
  CHECK(a.not_for_sensor == 3);
  CHECK(a.self_traffic == 6);
}

TEST_CASE("storage filters by time range, sensor and key fields", "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  s.ingest({make("a", 0, 0, 23, 5), make("a", 1, 60, 22, 7), make("a", 2, 3600, 23, 11)});
  Query q;
  q.from = 60;
  q.to = 3601;
  CHECK(s.query(q).at(0).packets == 18);
  q.port = 23;
  CHECK(s.query(q).at(0).packets == 11);
  q = Query{};
  q.sensors = {"nobody"};
  CHECK(s.query(q).empty());
  q = Query{};
  q.group_by = {"sensor; DROP TABLE buckets"};
  CHECK_THROWS_AS(s.query(q), std::invalid_argument);
}

TEST_CASE("storage keeps data across reopening and prunes detail, not accounting",
          "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  ts.store->ingest({make("a", 0, 0, 23, 5), make("a", 1, 86400, 23, 7)});
  ts.store.reset();
  const auto reopened = ts.open();
  Store& s = *reopened;
  CHECK(s.ingest({make("a", 0, 0, 23, 5)}) == std::vector<IngestResult>{IngestResult::duplicate});
  CHECK(s.prune_detail(3600) == 1);
  Query q;
  // An open range: the daily rollups answer, whole (they never lose anything).
  CHECK(s.tier(q) == Tier::daily);
  CHECK(s.query(q).at(0).packets == 12);
  CHECK(s.accounting(q).buckets == 2);
  // kind is not in the daily rollups: the hourly ones.
  q.group_by = {"kind"};
  CHECK(s.tier(q) == Tier::hourly);
  CHECK(s.query(q).at(0).packets == 12);
  // From 01:00 UTC (10:00 in Tokyo: no local midnight): hourly, exact.
  q = Query{};
  q.from = 3600;
  CHECK(s.tier(q) == Tier::hourly);
  CHECK(s.query(q).at(0).packets == 7);
  // Between hour boundaries, detail where it is kept...
  q.from = 1800;
  CHECK(s.tier(q) == Tier::detail);
  CHECK(s.query(q).at(0).packets == 7);
  // ...and the whole hours starting in the range where it was pruned.
  q.from = 0;
  q.to = 1800;
  CHECK(s.tier(q) == Tier::hourly);
  CHECK(s.query(q).at(0).packets == 5);
  // Hourly rollups pruned too: kind is gone for that range; the daily rollups stay.
  CHECK(s.prune_hourly(7200) == 1);
  q.group_by = {"kind"};
  CHECK_THROWS_AS(s.tier(q), std::invalid_argument);
  q = Query{};
  CHECK(s.query(q).at(0).packets == 12);
  CHECK(s.prune_hourly(3600) == 0);  // an earlier cutoff never un-prunes
  // Days are cut again from the hourly rollups: refused where those were pruned.
  CHECK_THROWS_WITH(ts.open_in("UTC"), Catch::Contains("cannot be cut again"));
  if (backend == "postgresql") {
    // Several collectors share the days: a start never re-cuts them, --migrate does.
    CHECK_THROWS_WITH(ts.open_in("UTC", OpenMode::read_write), Catch::Contains("--migrate"));
  }
  // Where the detail is still kept, it answers what the pruned hours no longer can.
  q.from = 3600;
  q.group_by = {"kind"};
  CHECK(s.tier(q) == Tier::detail);
  CHECK(s.query(q).at(0).packets == 7);
  StoreConfig bad = ts.config;
  bad.path = "/nonexistent/folder/c.sqlite";
  bad.conninfo += "_missing";
  CHECK_THROWS(open_store(bad));
}

TEST_CASE("every tier gives the same totals for a range on its boundaries",
          "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  // Buckets at 30 s past the hour over four days (Tokyo days start at 15:00 UTC).
  std::vector<bucket::SealedBucket> batch;
  std::uint64_t seq = 0;
  for (std::int64_t h = 0; h < 96; h += 5) {
    auto b = make("t", seq++, 1656633600 + h * 3600 + 30, static_cast<std::uint16_t>(20 + h % 7),
                  1 + static_cast<std::uint64_t>(h));
    b.rows[0].key.kind = h % 2 ? classify::Kind::scan : classify::Kind::backscatter;
    batch.push_back(b);
  }
  s.ingest(batch);
  // 2022-07-01 15:00 UTC to 2022-07-03 15:00 UTC: two whole Tokyo days.
  Query days;
  days.from = 1656687600;
  days.to = days.from + 2 * 86400;
  days.group_by = {"port", "sensor", "country", "fingerprint", "proto"};
  Query detail = days;  // a second past the bounds: no bucket starts there
  detail.from += 1;
  detail.to += 1;
  CHECK(s.tier(days) == Tier::daily);
  CHECK(s.tier(detail) == Tier::detail);
  const auto d = s.query(days);
  CHECK(d.size() == 7);
  CHECK(d == s.query(detail));
  Query hours = days;
  hours.from += 3600;
  hours.to += 3600;
  Query hours_detail = hours;
  hours_detail.from += 1;
  hours_detail.to += 1;
  CHECK(s.tier(hours) == Tier::hourly);
  CHECK(s.query(hours) == s.query(hours_detail));
  hours.group_by = {"kind"};
  hours_detail.group_by = {"kind"};
  CHECK(s.query(hours) == s.query(hours_detail));
  CHECK(s.query(hours).size() == 2);
}

TEST_CASE("the daily breakdown sums per day and destination by country and fingerprint",
          "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  // Two sensors over two Tokyo days (a UTC bucket at 15:00 or later is the next local
  // day), rows from three countries and unknown, with and without a fingerprint.
  const std::vector<std::string> countries = {"JP", "US"};  // CN and "--" only in "all"
  using Key = std::tuple<std::int64_t, std::string, std::int64_t, std::string, std::string>;
  std::map<Key, std::uint64_t> want_all, want_s1;
  std::vector<bucket::SealedBucket> batch;
  std::uint64_t seq = 0;
  for (const std::string sensor : {"s1", "s2"})
    for (std::int64_t h = 0; h < 40; h += 3) {
      bucket::SealedBucket b;
      b.sensor_id = sensor;
      b.boot_id = "b";
      b.seq = seq++;
      b.start = 1656633600 + h * 3600;  // 2022-07-01 09:00 JST on
      b.width_s = 3600;
      const std::int64_t day = (b.start + 9 * 3600) / 86400;
      for (const char* cc : {"JP", "CN", "US", "--"})
        for (auto fp : {classify::Fingerprint::none, classify::Fingerprint::mirai,
                        classify::Fingerprint::masscan, classify::Fingerprint::zmap}) {
          const std::uint16_t port = h % 2 ? 23 : 445;
          const std::uint64_t packets = 1 + static_cast<std::uint64_t>(h) +
                                        static_cast<std::uint64_t>(cc[0]) % 5 +
                                        static_cast<std::uint64_t>(fp) * 3;
          b.rows.push_back(
              {classify::Key{classify::Proto::tcp, true, port, classify::country_from_string(cc),
                             fp, classify::Kind::scan},
               packets, packets * 40});
          const std::string fp_name =
              fp == classify::Fingerprint::none ? "" : std::string{classify::to_string(fp)};
          const bool named = std::find(countries.begin(), countries.end(), cc) != countries.end();
          for (auto* want : {&want_all, &want_s1}) {
            if (want == &want_s1 && sensor != "s1") continue;
            (*want)[{day, "tcp", port, "", ""}] += packets;
            if (!fp_name.empty()) (*want)[{day, "tcp", port, "", fp_name}] += packets;
            if (named) (*want)[{day, "tcp", port, cc, ""}] += packets;
            if (named && !fp_name.empty()) (*want)[{day, "tcp", port, cc, fp_name}] += packets;
          }
        }
      batch.push_back(std::move(b));
    }
  REQUIRE(s.ingest(batch).size() == batch.size());
  const std::int64_t first = (1656633600 + 9 * 3600) / 86400;
  const auto got = [&](std::vector<std::string> sensors) {
    std::map<Key, std::uint64_t> m;
    s.daily_breakdown(DailyBreakdownQuery{first, first + 1, countries, std::move(sensors)},
                      [&](const DailyBreakdown& r) {
                        const auto [it, fresh] =
                            m.emplace(Key{r.day, std::string{r.proto}, r.port,
                                          std::string{r.country}, std::string{r.fingerprint}},
                                      r.packets);
                        CHECK(fresh);  // each sum once
                      });
    return m;
  };
  // The range cuts off the last local day the buckets reach.
  std::erase_if(want_all, [&](const auto& kv) { return std::get<0>(kv.first) > first + 1; });
  std::erase_if(want_s1, [&](const auto& kv) { return std::get<0>(kv.first) > first + 1; });
  REQUIRE(want_all.size() == 2 * 2 * (1 + 3 + 2 + 6));  // days x ports x sums
  CHECK(got({}) == want_all);
  CHECK(got({"s1"}) == want_s1);
  // From the day summaries (all sensors) the same; one sensor still from the rollups.
  while (s.summarize_days(10) > 0) {
  }
  REQUIRE(s.summarized_days(first, first + 1) == std::vector<std::int64_t>{first, first + 1});
  CHECK(got({}) == want_all);
  CHECK(got({"s1"}) == want_s1);
  // More countries than a breakdown takes is refused.
  CHECK_THROWS_AS(
      s.daily_breakdown(DailyBreakdownQuery{first, first, std::vector<std::string>(64, "JP"), {}},
                        [](const DailyBreakdown&) {}),
      std::invalid_argument);
}

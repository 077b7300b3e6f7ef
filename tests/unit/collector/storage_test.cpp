// SPDX-License-Identifier: Apache-2.0
#include "collector/store/store.h"

#include <catch2/catch.hpp>
#include <map>
#include <tuple>

#include "collector/store/detail_block.h"
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

TEST_CASE("a detail block gives back every row and refuses a damaged one",
          "[collector][storage][single-threaded]") {
  using collector::detail_block::Row;
  sketch::HostSketch hosts;
  for (std::uint64_t h = 1; h < 40; ++h) hosts.add(h * 0x9e3779b97f4a7c15ULL);
  const std::string sketch = hosts.encode();
  const std::vector<Row> rows = {
      {"tcp", 23, "JP", "mirai", "scan", 5, 200, sketch},
      {"icmp", -1, "--", "none", "backscatter", 0, 0, ""},
      {"udp", 65535, "US", "none", "scan", UINT64_MAX, UINT64_MAX - 1, ""},
      {"tcp", 0, "JP", "none", "scan", 1, 60, sketch}};
  collector::detail_block::Writer w;
  for (const auto& r : rows) w.add(r);
  CHECK(w.rows() == rows.size());
  const std::string block = w.finish();
  CHECK(w.rows() == 0);
  std::vector<std::tuple<std::string, std::int64_t, std::string, std::string, std::string,
                         std::uint64_t, std::uint64_t, std::string>>
      back;
  collector::detail_block::read(block, [&](const Row& r) {
    back.emplace_back(r.proto, r.port, r.country, r.fingerprint, r.kind, r.packets, r.bytes,
                      r.hosts);
  });
  REQUIRE(back.size() == rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(std::get<0>(back[i]) == rows[i].proto);
    CHECK(std::get<1>(back[i]) == rows[i].port);
    CHECK(std::get<2>(back[i]) == rows[i].country);
    CHECK(std::get<3>(back[i]) == rows[i].fingerprint);
    CHECK(std::get<4>(back[i]) == rows[i].kind);
    CHECK(std::get<5>(back[i]) == rows[i].packets);
    CHECK(std::get<6>(back[i]) == rows[i].bytes);
    CHECK(std::get<7>(back[i]) == rows[i].hosts);
  }
  // Every cut, a byte too many, an unknown format, an index past the strings: refused
  // with a reason, never read past the end.
  const auto refuses = [](const std::string& b, const char* why) {
    CHECK_THROWS_WITH(collector::detail_block::read(b, [](const Row&) {}), Catch::Contains(why));
  };
  for (std::size_t n = 0; n < block.size(); ++n) {
    INFO("cut at " << n);
    CHECK_THROWS_AS(collector::detail_block::read(block.substr(0, n), [](const Row&) {}),
                    std::runtime_error);
  }
  refuses(block + '\0', "bytes after the last row");
  std::string other = block;
  other[0] = 2;
  refuses(other, "format: unknown");
  collector::detail_block::Writer one;
  one.add({"tcp", 23, "JP", "none", "scan", 1, 1, ""});
  std::string bad = one.finish();
  // format, 4 strings ("tcp", "JP", "none", "scan": 4 + 3 + 5 + 5 bytes), 1 row: its proto.
  bad[1 + 1 + 4 + 3 + 5 + 5 + 1] = 9;
  refuses(bad, "proto: a string index out of range");
  refuses(std::string{"\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11}, "over 64 bits");
}

TEST_CASE("detail queries group filter and order alike on both backends",
          "[collector][storage][single-threaded]") {
  test::TempDir dir;
  test::TestStore lite("sqlite", dir);
  test::TestStore pg("postgresql", dir);
  // 3 sensors x 90 one-minute buckets, several rows each, ties in packets included.
  std::vector<bucket::SealedBucket> batch;
  const classify::Fingerprint fps[] = {classify::Fingerprint::none, classify::Fingerprint::mirai};
  const classify::Kind kinds[] = {classify::Kind::scan, classify::Kind::backscatter};
  for (int s = 0; s < 3; ++s) {
    for (std::uint64_t i = 0; i < 90; ++i) {
      bucket::SealedBucket b;
      b.sensor_id = "s" + std::to_string(s);
      b.boot_id = "b";
      b.seq = i;
      b.start = 1656633600 + static_cast<std::int64_t>(i) * 60;
      for (std::uint16_t k = 0; k < 6; ++k) {
        const bool icmp = k == 5;
        b.rows.push_back(
            {classify::Key{icmp ? classify::Proto::icmp : classify::Proto::tcp, !icmp,
                           static_cast<std::uint16_t>(icmp ? 0 : 20 + (k + i) % 4 * 1000),
                           classify::make_country('J', static_cast<char>('P' + (k + s) % 3)),
                           fps[(k + i) % 2], kinds[(k * 7 + i) % 2]},
             1 + (k + i + static_cast<std::uint64_t>(s)) % 5, 40u + k});
      }
      std::sort(b.rows.begin(), b.rows.end(),
                [](const auto& x, const auto& y) { return x.key.pack() < y.key.pack(); });
      b.rows.erase(std::unique(b.rows.begin(), b.rows.end(),
                               [](const auto& x, const auto& y) { return x.key == y.key; }),
                   b.rows.end());
      batch.push_back(b);
    }
  }
  lite->ingest(batch);
  pg->ingest(batch);
  const std::vector<std::vector<std::string>> groupings = {
      {},
      {"port"},
      {"sensor", "proto", "port", "country", "fingerprint", "kind"},
      {"kind", "port"},
      {"country", "sensor"}};
  int compared = 0;
  for (const auto& g : groupings) {
    for (int filter = 0; filter < 6; ++filter) {
      Query q;
      q.from = 1656633600 + 125;  // between minutes: the detail answers
      q.to = q.from + 80 * 60;
      q.group_by = g;
      if (filter == 1) q.port = 1020;
      if (filter == 2) q.port = -1;
      if (filter == 3) q.country = "JQ";
      if (filter == 4) q.kind = "backscatter", q.fingerprint = "mirai", q.proto = "tcp";
      if (filter == 5) q.sensors = {"s2", "s0"};
      INFO("groups " << g.size() << " filter " << filter);
      REQUIRE(pg->tier(q) == Tier::detail);
      const auto a = lite->query(q), b = pg->query(q);
      CHECK(a == b);
      CHECK_FALSE(b.empty());
      ++compared;
    }
  }
  CHECK(compared == 30);
  Query none;
  none.from = 1656633600 + 125;
  none.to = none.from + 600;
  none.country = "ZZ";
  CHECK(pg->query(none).empty());
  CHECK(lite->query(none).empty());
}

TEST_CASE("a PostgreSQL store of schema 3 has its bucket_rows made blocks at the start",
          "[collector][storage][single-threaded]") {
  test::TempDir dir;
  test::TestStore pg("postgresql", dir);
  std::vector<bucket::SealedBucket> batch;
  for (std::uint64_t i = 0; i < 50; ++i) {
    auto b = make("a", i, 1656633600 + static_cast<std::int64_t>(i) * 60,
                  static_cast<std::uint16_t>(20 + i % 3), 1 + i);
    // One bucket in the next month, and a second row in some.
    if (i == 49) b.start = 1659312000 + 60;
    if (i % 4 == 0)
      b.rows.push_back(
          {classify::Key{classify::Proto::udp, true, 53, classify::make_country('U', 'S'),
                         classify::Fingerprint::none, classify::Kind::backscatter},
           i, i * 3});
    batch.push_back(b);
  }
  pg->ingest(batch);
  Query q;
  q.from = 1656633600 + 1;  // the detail
  q.group_by = {"sensor", "proto", "port", "country", "kind"};
  REQUIRE(pg->tier(q) == Tier::detail);
  const auto before = pg->query(q);
  REQUIRE(before.size() == 4);
  // What schema 3 held: a row per counter in bucket_rows, monthly partitions.
  std::string values;
  for (const auto& b : batch) {
    for (const auto& r : b.rows) {
      values +=
          std::string{values.empty() ? "" : ","} +
          "((SELECT id FROM buckets WHERE seq = " + std::to_string(b.seq) + "), " +
          std::to_string(b.start) + ", 's1', '" + std::string{to_string(r.key.proto)} + "', " +
          std::to_string(r.key.port) + ", '" + classify::country_to_string(r.key.country) + "', '" +
          std::string{to_string(r.key.fingerprint)} + "', '" + std::string{to_string(r.key.kind)} +
          "', " + std::to_string(r.packets) + ", " + std::to_string(r.bytes) + ", NULL)";
    }
  }
  pg.store.reset();
  pg.exec_sql(
      "CREATE TABLE bucket_rows (bucket_id bigint NOT NULL, start bigint NOT NULL, sensor text "
      "COLLATE \"C\" NOT NULL, proto text COLLATE \"C\" NOT NULL, port integer NOT NULL, country "
      "text COLLATE \"C\" NOT NULL, fingerprint text COLLATE \"C\" NOT NULL, kind text COLLATE "
      "\"C\" NOT NULL, packets bigint NOT NULL, bytes bigint NOT NULL, hosts bytea) PARTITION BY "
      "RANGE (start)");
  pg.exec_sql(
      "CREATE TABLE bucket_rows_p202207 PARTITION OF bucket_rows FOR VALUES FROM (1656633600) TO "
      "(1659312000)");
  pg.exec_sql(
      "CREATE TABLE bucket_rows_p202208 PARTITION OF bucket_rows FOR VALUES FROM (1659312000) TO "
      "(1661990400)");
  pg.exec_sql("INSERT INTO bucket_rows VALUES " + values);
  pg.exec_sql("TRUNCATE bucket_detail");
  pg.exec_sql("UPDATE teiten_meta SET value = '3' WHERE key = 'schema_version'");
  pg.store = pg.open();
  CHECK(pg->query(q) == before);
  CHECK_THROWS_WITH(pg.exec_sql("SELECT 1 FROM bucket_rows"), Catch::Contains("does not exist"));
  // And it goes on storing and answering as before.
  CHECK(pg->ingest({make("b", 0, 1656633600 + 30 * 60, 20, 1000)}) ==
        std::vector<IngestResult>{IngestResult::stored});
  std::uint64_t total = 0;
  for (const auto& r : before) total += r.packets;
  std::uint64_t after = 0;
  for (const auto& r : pg->query(q)) after += r.packets;
  CHECK(after == total + 1000);
}

TEST_CASE("texts with quotes backslashes and braces are stored as they came",
          "[collector][storage][single-threaded]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  // PostgreSQL receives a batch as array parameters: every character that array syntax
  // gives a meaning must come back as it was, or the duplicate below would be stored again.
  const std::string odd = "a\"b\\c,{d} e\\\"NULL";
  auto b = make(odd, 0, 0, 23, 5);
  b.loss.malformed[1] = 2;  // malformed_by_reason: JSON text with quotes
  b.provenance.software_version = "teiten \"x\\y\"";
  CHECK(s.ingest({b, make("NULL", 0, 0, 23, 1)}) ==
        std::vector<IngestResult>{IngestResult::stored, IngestResult::stored});
  CHECK(s.ingest({b}) == std::vector<IngestResult>{IngestResult::duplicate});
  CHECK(s.ingest({make("NULL", 0, 0, 23, 1)}) ==
        std::vector<IngestResult>{IngestResult::duplicate});
  const Accounting a = s.accounting(Query{});
  CHECK(a.buckets == 2);
  CHECK(a.malformed == 2);
}

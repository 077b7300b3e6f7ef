// SPDX-License-Identifier: Apache-2.0
// The quarterly analyses on a small dataset whose every expected figure is worked out by
// hand in the comments: a real SQLite store, the report engine and its four formats.
#include "collector/report/report.h"

#include <chrono>
#include <thread>

#include "collector/maintenance.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "common/bucket/bucket_json.h"
#include "tests/integration/test_support.h"
#include "tests/unit/collector/test_store.h"

using namespace teiten;
using namespace teiten::collector;
using classify::Fingerprint;
using classify::Key;
using classify::Kind;
using classify::Proto;

namespace {

std::int64_t at(const std::string& rfc3339) {
  return *bucket::parse_rfc3339(rfc3339);
}

// "2022-04-07T00:00:00Z" for month "2022-04" and day 7.
std::string midnight(const std::string& month, int day) {
  return month + (day < 10 ? "-0" : "-") + std::to_string(day) + "T00:00:00Z";
}

std::int64_t day_of(const std::string& date) {
  return at(date + "T00:00:00Z") / 86400;
}

struct Builder {
  std::map<std::string, std::uint64_t> seq;
  bucket::SealedBucket make(const std::string& sensor, const std::string& start,
                            std::uint32_t width) {
    bucket::SealedBucket b;
    b.sensor_id = sensor;
    b.boot_id = "boot";
    b.seq = seq[sensor]++;
    b.start = at(start);
    b.width_s = width;
    return b;
  }
};

void row(bucket::SealedBucket& b, Proto proto, int port, const char* country, Fingerprint fp,
         std::uint64_t packets, std::vector<std::uint32_t> sources = {}) {
  Key k;
  k.proto = proto;
  k.has_port = port >= 0;
  k.port = static_cast<std::uint16_t>(std::max(port, 0));
  k.country = classify::country_from_string(country);
  k.fingerprint = fp;
  k.kind = Kind::scan;
  bucket::Row r{k, packets, packets * 40, {}};
  for (const auto s : sources) r.hosts.add(sketch::hash_ipv4(s));
  b.rows.push_back(r);
  std::sort(b.rows.begin(), b.rows.end(),
            [](const auto& x, const auto& y) { return x.key.pack() < y.key.pack(); });
}

CollectorConfig registry() {
  auto loaded = parse_collector_config("test.yaml", R"(
collector:
  database: c.sqlite
tls:
  ca: /etc/hostname
  cert: /etc/hostname
  key: /etc/hostname
sensors:
  - id: d1
    region: domestic
    label: Tokyo 1
    active_from: 2022-01-01
  - id: d2
    region: domestic
    active_from: 2022-04-01
  - id: o1
    region: overseas
    active_from: 2021-01-01
)");
  REQUIRE(std::holds_alternative<CollectorConfig>(loaded));
  return std::get<CollectorConfig>(loaded);
}

ReportRequest quarter(const std::string& rank = "mirai") {
  ReportRequest r;
  r.day_from = day_of("2022-04-01");
  r.day_to = day_of("2022-06-30");
  r.rank = rank;
  return r;
}

}  // namespace

TEST_CASE("report: Table 1, daily series, unique hosts and time zone edges",
          "[collector][report]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;  // Asia/Tokyo
  Builder b;
  // 2022-04-01 00:00-01:00 JST (an hour of UTC 2022-03-31).
  auto b1 = b.make("d1", "2022-03-31T15:00:00Z", 3600);
  row(b1, Proto::tcp, 23, "JP", Fingerprint::mirai, 10, {1, 2, 3});
  row(b1, Proto::tcp, 23, "JP", Fingerprint::none, 5, {4, 5});
  row(b1, Proto::tcp, 22, "JP", Fingerprint::none, 4, {6});
  row(b1, Proto::tcp, 23, "CN", Fingerprint::mirai, 7, {7});
  row(b1, Proto::icmp, 8, "JP", Fingerprint::none, 2, {8});
  row(b1, Proto::icmp, 3, "JP", Fingerprint::none, 1, {9});
  // 2022-04-01 23:00 JST: one more Mirai-type packet from a source seen before (3).
  auto b2 = b.make("d1", "2022-04-01T14:00:00Z", 3600);
  row(b2, Proto::tcp, 23, "JP", Fingerprint::mirai, 1, {3});
  // One-second buckets: 23:59:59 and 00:00:00 Japan time fall on different days.
  auto e1 = b.make("d1", "2022-04-01T14:59:59Z", 1);
  row(e1, Proto::udp, 5060, "JP", Fingerprint::none, 1, {10});
  auto e2 = b.make("d1", "2022-04-01T15:00:00Z", 1);
  row(e2, Proto::udp, 5060, "JP", Fingerprint::none, 1, {10});
  // Outside the quarter (2022-07-01 00:00 JST): not counted.
  auto late = b.make("d1", "2022-06-30T15:00:00Z", 3600);
  row(late, Proto::tcp, 23, "JP", Fingerprint::mirai, 1000, {11});
  s.ingest({b1, b2, e1, e2, late});

  const CollectorConfig cfg = registry();
  Report r = build_report(s, cfg, quarter());
  // Ranked by Mirai-type packets, only 23/TCP has any: ALL 10+5+1 = 16, Mirai 11, 68.75%;
  // sources {1,2,3,4,5} of which {1,2,3} Mirai-type.
  REQUIRE(r.table.size() == 1);
  CHECK(r.table[0].dest.label() == "23/TCP");
  CHECK(r.table[0].all == 16);
  CHECK(r.table[0].fingerprinted == 11);
  CHECK(percent(r.table[0].fingerprinted, r.table[0].all) == "68.75%");
  CHECK(r.table[0].hosts_all == 5);
  CHECK(r.table[0].hosts_fingerprinted == 3);
  // Figure 1/2 series: every day of the quarter, all 16 on April 1 (JST).
  REQUIRE(r.daily[0].size() == 91);
  CHECK(r.daily[0][0].day == day_of("2022-04-01"));
  CHECK(r.daily[0][0].all == 16);
  CHECK(r.daily[0][0].fingerprinted == 11);
  CHECK(r.daily[0][1].all == 0);

  // Ranked by ALL: 23/TCP 16, 22/TCP 4, ICMP (types 8 and 3 as one) 3, 5060/UDP 2.
  r = build_report(s, cfg, quarter("all"));
  REQUIRE(r.table.size() == 4);
  CHECK(r.table[1].dest.label() == "22/TCP");
  CHECK(r.table[2].dest.label() == "ICMP");
  CHECK(r.table[2].all == 3);
  CHECK(r.table[2].hosts_all == 2);
  CHECK(r.table[3].dest.label() == "5060/UDP");
  CHECK(r.table[3].hosts_all == 1);
  CHECK(r.daily[3][0].all == 1);  // 23:59:59 on April 1
  CHECK(r.daily[3][1].all == 1);  // 00:00:00 on April 2
  CHECK(percent(0, 3) == "0.00%");
  CHECK(percent(2, 3) == "66.67%");
  CHECK(percent(1, 0) == "-");

  // The same store cut in UTC days: 14:59:59Z and 15:00:00Z are both on UTC April 1; the
  // first hour (15:00Z March 31) leaves the quarter and the July one (15:00Z June 30) joins.
  const auto utc = ts.open_in("UTC");
  r = build_report(*utc, cfg, quarter("all"));
  std::uint64_t udp_first_day = 0, tcp23 = 0;
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    if (r.table[i].dest.label() == "5060/UDP") udp_first_day = r.daily[i][0].all;
    if (r.table[i].dest.label() == "23/TCP") tcp23 = r.table[i].all;
  }
  CHECK(udp_first_day == 2);
  CHECK(tcp23 == 1 + 1000);
}

TEST_CASE("report: monthly averages divide by the days sensors were observed",
          "[collector][report]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  Builder b;
  std::vector<bucket::SealedBucket> all;
  // d2: 10 days of April 2022, 100 packets a day (daily buckets starting 09:00 JST).
  for (int d = 1; d <= 10; ++d) {
    auto x = b.make("d2", midnight("2022-04", d), 86400);
    row(x, Proto::tcp, 23, "CN", Fingerprint::none, 100);
    all.push_back(x);
  }
  // o1: every day of April 2022 (50 a day) and of April 2021 (20 a day).
  for (int d = 1; d <= 30; ++d) {
    auto x = b.make("o1", midnight("2022-04", d), 86400);
    row(x, Proto::tcp, 445, "US", Fingerprint::none, 50);
    auto y = b.make("o1", midnight("2021-04", d), 86400);
    row(y, Proto::tcp, 445, "US", Fingerprint::none, 20);
    all.push_back(x);
    all.push_back(y);
  }
  s.ingest(all);
  ReportRequest q = quarter();
  q.day_to = day_of("2022-04-30");
  const Report r = build_report(s, registry(), q);
  REQUIRE(r.months.size() == 1);
  const MonthRow& m = r.months[0];
  CHECK(m.year == 2022);
  CHECK(m.month == 4);
  // Domestic: 1000 packets over 10 sensor-days = 100.0 a day, though d1 and d2 were
  // expected for 30 days each: incomplete.
  CHECK(m.domestic.packets == 1000);
  CHECK(m.domestic.sensor_days == Approx(10.0));
  CHECK(m.domestic.expected_sensor_days == Approx(60.0));
  CHECK(m.domestic.average() == Approx(100.0));
  CHECK_FALSE(m.domestic.complete());
  CHECK(m.overseas.average() == Approx(50.0));
  CHECK(m.overseas.complete());
  CHECK(m.overseas_year_before.average() == Approx(20.0));
  CHECK(m.overseas_year_before.complete());
  CHECK(m.domestic_year_before.expected_sensor_days == Approx(0.0));  // none registered then
  const std::string md = report_markdown(r);
  CHECK(md.find("| 2022-04 | 100.0* | - | 50.0 | 20.0 | 10.0/60.0 | 30.0/30.0 |") !=
        std::string::npos);
  // The footnote explains the "*", and comes only with one.
  CHECK(md.find("\\* incomplete coverage") != std::string::npos);
  CHECK(report_html(r).find("* incomplete coverage") != std::string::npos);
  ReportRequest overseas = q;
  overseas.sensors = {"o1"};
  const Report complete = build_report(s, registry(), overseas);
  CHECK(report_markdown(complete).find("incomplete coverage") == std::string::npos);
  CHECK(report_html(complete).find("incomplete coverage") == std::string::npos);
  // Health: o1 last bucket ends 2022-05-01T00:00:00Z; d1 never sent one.
  REQUIRE(r.health.size() == 3);
  CHECK_FALSE(r.health[0].last_end);
  CHECK(*r.health[2].last_end == at("2022-05-01T00:00:00Z"));
  CHECK(r.health[2].days_observed == Approx(30.0));
}

TEST_CASE("report: per-sensor TOP10 ranks ICMP as one entry, weekly sums, formats agree",
          "[collector][report]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  Builder b;
  // d1 on Sunday 2022-04-03 (JST): eleven destinations, 23/TCP first, ICMP (5 + 4) second.
  auto x = b.make("d1", "2022-04-03T00:00:00Z", 3600);
  row(x, Proto::tcp, 23, "JP", Fingerprint::mirai, 20, {1});
  row(x, Proto::icmp, 8, "US", Fingerprint::none, 5, {2});
  row(x, Proto::icmp, 0, "US", Fingerprint::none, 4, {3});
  for (int p = 0; p < 8; ++p) row(x, Proto::tcp, 1000 + p, "US", Fingerprint::none, 8 - p, {4});
  row(x, Proto::udp, 53, "US", Fingerprint::none, 1, {4});  // ties with 1007/TCP, ranked after
  // Monday 2022-04-04: 23/TCP again, in the next week.
  auto y = b.make("d1", "2022-04-04T00:00:00Z", 3600);
  row(y, Proto::tcp, 23, "JP", Fingerprint::none, 6, {5});
  s.ingest({x, y});
  ReportRequest q = quarter();
  q.top = 2;
  const Report r = build_report(s, registry(), q);
  const SensorTop& d1 = r.sensors[0];
  CHECK(d1.sensor == "d1");
  CHECK(d1.total == 20 + 9 + 36 + 1 + 6);
  REQUIRE(d1.top.size() == 10);
  CHECK(d1.top[0].first.label() == "23/TCP");
  CHECK(d1.top[0].second == 26);
  CHECK(d1.top[1].first.label() == "ICMP");
  CHECK(d1.top[1].second == 9);
  CHECK(d1.top[2].first.label() == "1000/TCP");
  CHECK(d1.top[9].first.label() == "1007/TCP");  // 53/UDP, as many packets, is 11th
  // Weekly: 23/TCP in the week of Monday 2022-03-28 (20, all Mirai-type) and of 04-04 (6).
  REQUIRE(r.weekly_ports.size() == 2);
  CHECK(r.weekly_ports[0].label() == "23/TCP");
  CHECK(r.weekly[0][0].week_start == day_of("2022-03-28"));
  CHECK(r.weekly[0][0].all == 20);
  CHECK(r.weekly[0][0].fingerprinted == 20);
  CHECK(r.weekly[0][1].all == 6);
  CHECK(r.weekly[0][1].fingerprinted == 0);

  // Every format carries the same numbers.
  const auto j = nlohmann::json::parse(report_json(r));
  const auto html = test::html_cells(report_html(r));
  const std::string csv = report_csv(r);
  const std::string md = report_markdown(r);
  REQUIRE(j["ports"].size() == 1);
  for (const auto& p : j["ports"]) {
    const std::string label = p["destination"];
    CHECK(html.at("ports/" + label + "/all") == std::to_string(p["all"].get<std::uint64_t>()));
    CHECK(html.at("ports/" + label + "/ratio") == p["ratio"].get<std::string>());
    CHECK(csv.find("ports," + label + ",2022-04-01/2022-06-30,ALL," +
                   std::to_string(p["all"].get<std::uint64_t>()) + "\n") != std::string::npos);
    CHECK(csv.find("ports," + label + ",2022-04-01/2022-06-30,ratio," +
                   p["ratio"].get<std::string>() + "\n") != std::string::npos);
    CHECK(md.find("| ratio | " + p["ratio"].get<std::string>() + " |") != std::string::npos);
  }
  for (const auto& sensor : j["sensors"]) {
    int rank = 0;
    for (const auto& t : sensor["top"]) {
      const std::string k =
          "sensors/" + sensor["sensor"].get<std::string>() + "/" + std::to_string(++rank);
      CHECK(html.at(k + "/destination") == t["destination"].get<std::string>());
      CHECK(html.at(k + "/packets") == std::to_string(t["packets"].get<std::uint64_t>()));
      CHECK(html.at(k + "/share") == t["share"].get<std::string>());
      CHECK(md.find("| " + std::to_string(rank) + " | " + t["destination"].get<std::string>() +
                    " | " + std::to_string(t["packets"].get<std::uint64_t>()) + " | " +
                    t["share"].get<std::string>() + " |") != std::string::npos);
    }
  }
  CHECK(csv.find("weekly,23/TCP,2022-03-28,ALL,20\n") != std::string::npos);

  // Only some sensors: o1 sent nothing here, so nothing is ranked and only o1 is listed.
  q.sensors = {"o1"};
  const Report only = build_report(s, registry(), q);
  CHECK(only.table.empty());
  REQUIRE(only.sensors.size() == 1);
  CHECK(only.sensors[0].sensor == "o1");
  CHECK(only.sensors[0].top.empty());
  q.sensors = {"nobody"};
  CHECK_THROWS_WITH(build_report(s, registry(), q),
                    "sensors: 'nobody' is not in the collector's registry");
  CHECK(j["weekly"][0]["weeks"][0]["all"] == 20);
}

TEST_CASE("report: a month's year-before days, and hosts of packets without a port",
          "[collector][report]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  Builder b;
  std::vector<bucket::SealedBucket> all;
  // o1 on every day of February 2024 (29 days, 10 a day) and of February 2025 (28, 20).
  for (int d = 1; d <= 29; ++d) {
    auto x = b.make("o1", midnight("2024-02", d), 86400);
    row(x, Proto::tcp, 23, "US", Fingerprint::none, 10);
    all.push_back(x);
    if (d == 29) continue;
    auto y = b.make("o1", midnight("2025-02", d), 86400);
    row(y, Proto::tcp, 23, "US", Fingerprint::none, 20, {1});
    // Fragments (no port) from two sources, and 80/TCP from a third: TCP without a port
    // counts its own sources only.
    row(y, Proto::tcp, -1, "JP", Fingerprint::none, 1, {2, 3});
    row(y, Proto::tcp, 80, "JP", Fingerprint::none, 1, {4});
    all.push_back(y);
  }
  s.ingest(all);
  ReportRequest q = quarter("all");
  q.day_from = day_of("2025-02-01");
  q.day_to = day_of("2025-02-28");
  const Report r = build_report(s, registry(), q);
  REQUIRE(r.months.size() == 1);
  CHECK(r.months[0].overseas_year_before.packets == 290);  // 29 days, the 29th included
  CHECK(r.months[0].overseas_year_before.sensor_days == Approx(29.0));
  CHECK(r.months[0].overseas_year_before.average() == Approx(10.0));
  CHECK(r.months[0].overseas.average() == Approx(22.0));
  REQUIRE(r.table.size() == 2);
  CHECK(r.table[0].dest.label() == "TCP (no port)");
  CHECK(r.table[0].hosts_all == 2);
  CHECK(r.table[1].dest.label() == "80/TCP");
  CHECK(r.table[1].hosts_all == 1);
}

TEST_CASE("report requests: ranges, quarters and refusals", "[collector][report]") {
  test::TempDir dir;
  test::TestStore ts("sqlite", dir);
  Store& s = *ts;
  const auto q = parse_report_request({{"quarter", "2022Q2"}, {"rank", "all"}, {"top", "7"}}, s);
  CHECK(q.day_from == day_of("2022-04-01"));
  CHECK(q.day_to == day_of("2022-06-30"));
  CHECK(q.rank == "all");
  CHECK(q.top == 7);
  CHECK(parse_report_request({{"quarter", "2022Q2"}, {"sensors", "d1,o1,d1"}}, s).sensors ==
        std::vector<std::string>{"d1", "o1"});
  const auto bad = [&](std::vector<std::pair<std::string, std::string>> p, const std::string& msg) {
    try {
      (void)parse_report_request(p, s);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string{e.what()} == msg);
    }
  };
  bad({{"from", "2022-02-30"}, {"to", "2022-03-01"}},
      "from: '2022-02-30' is not a date (YYYY-MM-DD)");
  bad({{"from", "2022-04-01"}}, "give from and to (YYYY-MM-DD), or quarter");
  bad({{"from", "2022-04-02"}, {"to", "2022-04-01"}}, "to is before from");
  bad({{"quarter", "2022Q5"}}, "quarter: '2022Q5' is not a quarter such as 2022Q2");
  bad({{"quarter", "2022Q2"}, {"rank", "x"}}, "rank: 'x' is not all, mirai, masscan or zmap");
  bad({{"quarter", "2022Q2"}, {"country", "jp"}},
      "country: 'jp' is not a two-letter code such as JP");
  bad({{"quarter", "2022Q2"}, {"top", "0"}}, "top: '0' is not a number from 1 to 100");
  bad({{"quarter", "2022Q2"}, {"tz", "UTC"}},
      "tz: this collector cuts days in Asia/Tokyo (reports.time_zone in its configuration), not "
      "'UTC'");
  bad({{"quarter", "2022Q2"}, {"x", "1"}}, "unknown parameter 'x'");
  bad({{"quarter", "2022Q2"}, {"sensors", "d1,,o1"}}, "sensors: expected id,id,...");
  bad({{"from", "2000-01-01"}, {"to", "2022-01-01"}}, "a report covers at most 3660 days");
  CHECK_THROWS_WITH(open_store(StoreConfig{"sqlite", dir / "d.sqlite", "", "Mars/Olympus"}),
                    "unknown time zone 'Mars/Olympus' (a tz database name such as Asia/Tokyo)");
}

TEST_CASE("report: day summaries answer as the rollups do, and a late bucket is never missed",
          "[collector][report]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  Builder b;
  // Three sensors over three days (JST 2022-04-05..07), destinations shared between them,
  // sources overlapping across sensors and days (the merged sketches must count them once).
  std::vector<bucket::SealedBucket> batch;
  for (int day = 5; day <= 7; ++day) {
    for (const char* sensor : {"d1", "d2", "o1"}) {
      for (int hour = 0; hour < 2; ++hour) {
        auto x = b.make(
            sensor, midnight("2022-04", day).substr(0, 11) + "0" + std::to_string(hour) + ":00:00Z",
            3600);
        const auto n = static_cast<std::uint64_t>(day * 3 + hour + (sensor[0] == 'o' ? 5 : 0));
        const auto src = static_cast<std::uint32_t>(day * 10 + hour);
        row(x, Proto::tcp, 23, "JP", Fingerprint::mirai, n, {src, src + 1, 7});
        row(x, Proto::tcp, 23, "JP", Fingerprint::none, n / 2 + 1, {src + 2});
        row(x, Proto::tcp, 22, "JP", Fingerprint::none, sensor[1] == '2' ? 9 : 2, {src, 8});
        row(x, Proto::tcp, 22, "CN", Fingerprint::none, 4, {100});
        row(x, Proto::icmp, 8, "JP", Fingerprint::none, 1, {src});
        row(x, Proto::udp, 53, "US", Fingerprint::none, 3);  // no sketch
        batch.push_back(x);
      }
    }
  }
  s.ingest(batch);
  const CollectorConfig cfg = registry();
  const auto json_of = [&](Store& store, ReportRequest q) {
    Report r = build_report(store, cfg, q);
    r.request.sensors.clear();  // the request aside: the figures compared
    return report_json(r);
  };
  ReportRequest all = quarter("all"), mirai = quarter("mirai"), named = quarter("all"),
                d1 = quarter("all");
  named.sensors = {"d1", "d2", "o1"};  // every sensor named: read from the rollups
  d1.sensors = {"d1"};
  const std::string by_all = json_of(s, all), by_mirai = json_of(s, mirai),
                    only_d1 = json_of(s, d1);
  CHECK(json_of(s, named) == by_all);
  // Queries of the daily tier read the summaries too, where one holds their dimensions.
  std::vector<Query> queries(6);
  queries[0].group_by = {"proto", "port"};      // day_totals
  queries[1].group_by = {"sensor", "proto"};    // day_sensor_totals
  queries[2].group_by = {"country", "sensor"};  // the rollups alone
  queries[3].group_by = {"fingerprint"};
  queries[3].sensors = {"d1"};  // the rollups alone
  queries[4].group_by = {"proto"};
  queries[4].sensors = {"d2"};  // day_sensor_totals
  queries[5].group_by = {"country"};
  queries[5].proto = "tcp";
  queries[5].from = at("2022-04-05T15:00:00Z");  // from 2022-04-06 JST; day_totals
  const auto answers = [&](Store& store) {
    std::vector<std::vector<QueryRow>> a;
    for (const auto& q : queries) {
      Tier t = Tier::detail;
      a.push_back(store.query(q, &t));
      CHECK(t == Tier::daily);
    }
    return a;
  };
  const auto total = [](const std::vector<QueryRow>& rows) {
    std::uint64_t n = 0;
    for (const auto& r : rows) n += r.packets;
    return n;
  };
  const auto from_rollups = answers(s);
  CHECK(total(from_rollups[0]) > 0);
  const std::int64_t from = day_of("2022-04-01"), to = day_of("2022-06-30");
  const std::int64_t x = day_of("2022-04-05");
  CHECK(s.summarized_days(from, to).empty());

  CHECK(s.summarize_days(2) == 2);  // oldest first, as many as asked
  CHECK(s.summarized_days(from, to) == std::vector<std::int64_t>{x, x + 1});
  CHECK(json_of(s, all) == by_all);  // two days from summaries, one from the rollups
  CHECK(s.summarize_days(100) == 1);
  CHECK(s.summarize_days(100) == 0);  // nothing changed since
  auto days = s.summarized_days(from, to);
  std::sort(days.begin(), days.end());
  CHECK(days == std::vector<std::int64_t>{x, x + 1, x + 2});
  CHECK(json_of(s, all) == by_all);
  CHECK(json_of(s, mirai) == by_mirai);
  CHECK(json_of(s, d1) == only_d1);
  CHECK(answers(s) == from_rollups);
  const auto reader = ts.open(OpenMode::read_only);  // a report worker's connection
  CHECK(json_of(*reader, all) == by_all);

  // Reports over all sensors read the summaries: one changed behind the store's back
  // changes them, and not a report naming its sensors (read from the rollups).
  ts.exec_sql("UPDATE day_totals SET packets = packets + 1000 WHERE day = " + std::to_string(x) +
              " AND proto = 'tcp' AND port = 23 AND country = 'JP' AND fingerprint = 'mirai'");
  ts.exec_sql("UPDATE day_sensor_totals SET packets = packets + 1000 WHERE day = " +
              std::to_string(x) + " AND sensor = 'd2' AND proto = 'tcp' AND port = 23");
  CHECK(json_of(s, all) != by_all);
  CHECK(json_of(s, named) == by_all);
  const auto tampered = answers(s);
  CHECK(total(tampered[0]) == total(from_rollups[0]) + 1000);
  CHECK(total(tampered[1]) == total(from_rollups[1]) + 1000);
  CHECK(tampered[2] == from_rollups[2]);
  CHECK(tampered[3] == from_rollups[3]);
  CHECK(total(tampered[4]) == total(from_rollups[4]) + 1000);
  CHECK(tampered[5] == from_rollups[5]);  // day x is before its range

  // A late bucket for a summarized day: the day is read from the rollups again at once
  // (the bad summary no longer counts), with the late packets and source.
  auto late = b.make("d2", "2022-04-05T05:00:00Z", 3600);
  row(late, Proto::tcp, 23, "JP", Fingerprint::mirai, 50, {999});
  s.ingest({late});
  CHECK(s.summarized_days(x, x).empty());
  const std::string with_late = json_of(s, named);
  CHECK(with_late != by_all);
  CHECK(json_of(s, all) == with_late);
  const auto late_answers = answers(s);
  for (const std::size_t i : {0, 1, 2, 4})
    CHECK(total(late_answers[i]) == total(from_rollups[i]) + 50);
  CHECK(late_answers[3] == from_rollups[3]);
  CHECK(late_answers[5] == from_rollups[5]);
  const Report r = build_report(s, cfg, all);
  REQUIRE(!r.table.empty());
  CHECK(r.table[0].dest.label() == "23/TCP");
  CHECK(r.daily[0][x - from].fingerprinted ==
        nlohmann::json::parse(by_all)["ports"][0]["daily"][x - from]["fingerprinted"]
                .get<std::uint64_t>() +
            50);

  // The maintenance job summarizes it again within its period.
  {
    Maintenance job(ts.config, 1u << 30, 1u << 30, std::chrono::hours(1), std::chrono::seconds(1));
    for (int i = 0; i < 200 && s.summarized_days(x, x).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(s.summarized_days(x, x) == std::vector<std::int64_t>{x});
  CHECK(json_of(s, all) == with_late);
  CHECK(answers(s) == late_answers);

  // Days cut again in another time zone: the summaries of the old days go with them.
  const auto utc = ts.open_in("UTC");
  CHECK(utc->summarized_days(from, to).empty());
  CHECK(utc->summarize_days(100) == 3);
}

TEST_CASE("day runs: summarized days apart, days without coverage beside them read the rollups",
          "[collector][report]") {
  using Runs = std::vector<std::pair<std::int64_t, std::int64_t>>;
  const std::vector<std::pair<std::int64_t, bool>> days{
      {10, true}, {11, true}, {13, false}, {14, true}};
  DayRuns r = day_runs_of(days, 5, 20);
  CHECK(r.summarized == Runs{{10, 11}, {14, 14}});
  CHECK(r.rollups == Runs{{9, 9}, {12, 13}, {15, 15}});
  r = day_runs_of(days, 10, 14);  // the range bounds every run
  CHECK(r.summarized == Runs{{10, 11}, {14, 14}});
  CHECK(r.rollups == Runs{{12, 13}});
  r = day_runs_of(days, 5, 20, false);  // a report naming sensors: all from the rollups
  CHECK(r.summarized.empty());
  CHECK(r.rollups == Runs{{9, 15}});
  CHECK(day_runs_of({}, 5, 20).rollups.empty());
  CHECK(day_runs_sql(Runs{{9, 9}, {12, 13}}) == "(day BETWEEN 9 AND 9 OR day BETWEEN 12 AND 13)");
  CHECK(day_runs_sql({}) == "FALSE");
}

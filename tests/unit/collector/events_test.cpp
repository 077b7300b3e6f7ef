// SPDX-License-Identifier: Apache-2.0
// Notable changes over a real SQLite store: simulated sensors with changes put in at known
// days, found by find_events as dated, scoped events; coverage gaps that must not read as
// falls; days cut in the reports' time zone; the events: settings of the configuration.
#include "collector/events/events.h"
#include "collector/events/live.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <variant>

#include "collector/report/report.h"
#include "ctl/sim/simulator.h"
#include "tests/integration/test_support.h"

using namespace teiten;
using namespace teiten::collector;
using events::Event;
using events::Kind;

namespace {

constexpr std::int64_t kStart = 18718;  // 2021-04-01

struct World {
  test::TempDir dir;
  sim::SimOptions o;
  CollectorConfig cfg;
  std::unique_ptr<Store> store;

  explicit World(std::vector<sim::SimEvent> events, std::uint32_t months = 4,
                 const std::string& zone = "Asia/Tokyo") {
    o.seed = 11;
    o.domestic = 3;
    o.overseas = 3;
    o.months = months;
    o.width_s = 86400;
    o.start_day = kStart;
    o.outage_share = 0;
    o.events = std::move(events);
    const std::string yaml =
        "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
        "  key: /etc/hostname\nsensors:\n" +
        sim::sim_registry_yaml(o);
    cfg = std::get<CollectorConfig>(parse_collector_config("t.yaml", yaml));
    StoreConfig sc;
    sc.path = dir / "store.sqlite";
    sc.time_zone = zone;
    store = open_store(sc);
  }

  void fill(const std::function<bool(bucket::SealedBucket&)>& keep = {}) {
    for (std::size_t i = 0; i < o.domestic + o.overseas; ++i) {
      std::vector<bucket::SealedBucket> batch;
      sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) {
        if (!keep || keep(b)) batch.push_back(std::move(b));
      });
      store->ingest(batch);
    }
  }

  std::vector<Event> find(std::int64_t from = kStart, std::int64_t to = -1,
                          const events::Settings& settings = {}) {
    events::EventsRequest r;
    r.day_from = from;
    r.day_to = to < 0 ? sim::end_day(o) - 1 : to;
    r.limit = 1000;
    r.settings = settings;
    return events::find_events(*store, cfg, r);
  }
};

sim::SimEvent ev(std::string kind, int port, std::int64_t start, double size,
                 std::string region = "both") {
  sim::SimEvent e;
  e.kind = std::move(kind);
  e.port = port;
  e.start_day = start;
  e.size = size;
  e.region = std::move(region);
  return e;
}

const Event* on(const std::vector<Event>& v, int port, std::int64_t day) {
  for (const auto& e : v)
    if (e.dest.port == port && std::llabs(e.day - day) <= 1) return &e;
  return nullptr;
}

}  // namespace

TEST_CASE("events of every kind are found on their days, and nothing else",
          "[events][single-threaded]") {
  auto spike = ev("spike", 445, kStart + 50, 5, "domestic");
  spike.days = 2;
  auto mirai = ev("fingerprint_shift", 22, kStart + 70, 0.75, "overseas");
  mirai.fingerprint = "mirai";
  World w({spike, ev("level_shift", 3389, kStart + 60, 3), ev("emergence", 41234, kStart + 80, 100),
           mirai});
  w.fill();
  const auto found = w.find();
  for (const auto& e : found) UNSCOPED_INFO(e.sentence);
  // The four put in, and at most the false alarms the defaults allow (one per 100
  // sensor-days: 7 here; bench/events_bench measures the rate).
  REQUIRE(found.size() >= 4);
  CHECK(found.size() <= 4 + 7);

  const Event* s = on(found, 445, kStart + 50);
  REQUIRE(s);
  CHECK(s->kind == Kind::spike);
  CHECK(s->day == kStart + 50);  // a UTC-midnight bucket is 09:00 in Tokyo: the same date
  CHECK(s->last_day == kStart + 51);
  CHECK(s->scope == "domestic");
  CHECK(s->country.empty());  // every country's packets jumped: not said of one
  CHECK(s->divergence);       // the overseas sensors had 445/TCP and saw no jump
  CHECK(s->after / s->before == Approx(5).epsilon(0.3));
  CHECK(s->sentence.find("Packets to 445/TCP at domestic sensors (not at overseas sensors) "
                         "jumped on 2021-05-21 (to 2021-05-22)") == 0);

  const Event* l = on(found, 3389, kStart + 60);
  REQUIRE(l);
  CHECK(l->kind == Kind::level_shift);
  CHECK(l->scope == "both");
  CHECK(!l->divergence);
  CHECK(l->detected_on >= l->day + 5);
  CHECK(l->sentence.find(" rose from 2021-05-31") != std::string::npos);

  const Event* em = on(found, 41234, kStart + 80);
  REQUIRE(em);
  CHECK(em->kind == Kind::emergence);
  CHECK(em->sentence.find("Scans of 41234/TCP at domestic and overseas sensors began on") == 0);
  CHECK(em->sources > 20);  // scanners from every country
  CHECK(em->sources_before == 0);

  const Event* f = on(found, 22, kStart + 70);
  REQUIRE(f);
  CHECK(f->kind == Kind::fingerprint_shift);
  CHECK(f->fingerprint == "mirai");
  CHECK(f->scope == "overseas");
  CHECK(f->divergence);
  CHECK(f->before == Approx(0.28).margin(0.05));  // 22/TCP: 30% Mirai-type, US half that
  CHECK(f->after == Approx(0.75).margin(0.05));
  CHECK(f->sentence.find("The Mirai-type share of packets to 22/TCP at overseas sensors (not at "
                         "domestic sensors) rose from") == 0);

  // Ranked by score; a range that starts later keeps only what began in it.
  for (std::size_t i = 1; i < found.size(); ++i) CHECK(found[i - 1].score >= found[i].score);
  const auto later = w.find(kStart + 65);
  CHECK(on(later, 41234, kStart + 80));
  CHECK(!on(later, 445, kStart + 50));
  for (const auto& e : later) CHECK(e.day >= kStart + 65);
}

TEST_CASE("sensors that stop delivering are never read as a fall", "[events][single-threaded]") {
  World w({});
  // One domestic sensor down for 20 days, then both for 10: their coverage goes with them.
  w.fill([&](const bucket::SealedBucket& b) {
    const std::int64_t day = b.start / 86400;
    if (b.sensor_id == "sim-d01" && day >= kStart + 40 && day < kStart + 60) return false;
    if (b.sensor_id.rfind("sim-d", 0) == 0 && day >= kStart + 70 && day < kStart + 80) return false;
    return true;
  });
  const auto found = w.find();
  for (const auto& e : found) {
    UNSCOPED_INFO(e.sentence);
    // No fall anywhere, and nothing at all at the edges of the gaps.
    CHECK(!(e.kind == Kind::level_shift && e.after < e.before));
    for (std::int64_t edge : {kStart + 40, kStart + 60, kStart + 70, kStart + 80})
      CHECK(std::llabs(e.day - edge) > 2);
  }
  CHECK(found.size() <= 7);  // the ordinary false alarms, at most one per 100 sensor-days
}

TEST_CASE("a change from one of the leading source countries is found and said of that country",
          "[events][single-threaded]") {
  // Korea sends about 5% of a port's packets, the United States 17%: a fivefold day from
  // Korea lifts 445/TCP by a fifth, tripled US packets 3389/TCP by a third. Neither is a
  // change of all countries; both are of the country's own series.
  auto kr = ev("spike", 445, kStart + 50, 5, "domestic");
  kr.days = 2;
  kr.country = "KR";
  auto us = ev("level_shift", 3389, kStart + 60, 3);
  us.country = "US";
  World w({kr, us});
  w.fill();
  const auto found = w.find();
  for (const auto& e : found) UNSCOPED_INFO(e.sentence);
  const Event* s = on(found, 445, kStart + 50);
  REQUIRE(s);
  CHECK(s->kind == Kind::spike);
  CHECK(s->country == "KR");
  CHECK(s->scope == "domestic");
  CHECK(s->after / s->before == Approx(5).epsilon(0.35));
  CHECK(s->sentence.find("Packets to 445/TCP from KR at domestic sensors") == 0);
  REQUIRE(!s->countries.empty());
  CHECK(s->countries[0].first == "KR");  // the leading source country of the change
  const Event* l = on(found, 3389, kStart + 60);
  REQUIRE(l);
  CHECK(l->kind == Kind::level_shift);
  CHECK(l->country == "US");
  CHECK(l->scope == "both");
  CHECK(found.size() <= 2 + 7);  // and at most the false alarms the defaults allow

  // Only the report's country (JP) examined: the changes of all countries are too small.
  events::Settings only_jp;
  only_jp.countries = 0;
  const auto without = w.find(kStart, -1, only_jp);
  for (const auto& e : without) UNSCOPED_INFO("JP only: " << e.sentence);
  CHECK(!on(without, 445, kStart + 50));
  CHECK(!on(without, 3389, kStart + 60));
}

TEST_CASE("a change of a whole destination is not said of the country that sends most of it",
          "[events][single-threaded]") {
  // China sends 60% of 445/TCP and of 23/TCP, the United States the rest (daily buckets
  // built here, each country's day log-normal). On one day every country's 445/TCP
  // quadruples at the domestic sensors: China made 60% of that change, but it is the
  // destination's, not China's. On another, China's 23/TCP alone quadruples: China's.
  World w({}, 3);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> wobble(0.0, 0.1);
  const std::int64_t all_jump = kStart + 60, china_jump = kStart + 45;
  std::vector<bucket::SealedBucket> batch;
  std::uint64_t seq = 0;
  for (const auto& sensor : sim::sim_sensors(w.o))
    for (std::int64_t day = kStart; day < kStart + 90; ++day) {
      bucket::SealedBucket b = test::hour_bucket(sensor.id, "b", seq++, day * 24, 445, 0);
      b.width_s = 86400;
      b.rows.clear();
      const bool domestic = sensor.region == "domestic";
      for (const int port : {445, 23})
        for (const char* cc : {"CN", "US"}) {
          double n = (cc[0] == 'C' ? 600 : 400) * std::exp(wobble(rng));
          if (domestic && port == 445 && day == all_jump) n *= 4;
          if (domestic && port == 23 && day == china_jump && cc[0] == 'C') n *= 4;
          classify::Key k;
          k.proto = classify::Proto::tcp;
          k.has_port = true;
          k.port = static_cast<std::uint16_t>(port);
          k.country = classify::country_from_string(cc);
          k.kind = classify::Kind::scan;
          const auto packets = static_cast<std::uint64_t>(std::llround(n));
          b.rows.push_back(bucket::Row{k, packets, packets * 40, {}});
        }
      batch.push_back(std::move(b));
    }
  w.store->ingest(batch);
  const auto found = w.find();
  for (const auto& e : found) UNSCOPED_INFO(e.sentence);
  const Event* all = on(found, 445, all_jump);
  REQUIRE(all);
  CHECK(all->kind == Kind::spike);
  CHECK(all->day == all_jump);
  CHECK(all->country.empty());
  CHECK(all->scope == "domestic");
  const Event* china = on(found, 23, china_jump);
  REQUIRE(china);
  CHECK(china->kind == Kind::spike);
  CHECK(china->day == china_jump);
  CHECK(china->country == "CN");
  CHECK(found.size() == 2);  // nothing else: steady traffic of two countries
}

TEST_CASE("events are dated by the reports' time zone", "[events][single-threaded]") {
  // A spike on the UTC day kStart + 50: Tokyo's same date (09:00 JST), but in Los Angeles
  // the bucket starts at 17:00 of the day before.
  auto spike = ev("spike", 445, kStart + 50, 6);
  spike.days = 1;
  World tokyo({spike});
  tokyo.fill();
  const auto a = tokyo.find();
  const auto at = [](const std::vector<Event>& v) {
    for (const auto& e : v)
      if (e.dest.port == 445 && e.kind == Kind::spike) return e;
    FAIL("no spike of 445/TCP");
    return Event{};
  };
  CHECK(at(a).day == kStart + 50);
  World la({spike}, 4, "America/Los_Angeles");
  la.fill();
  const Event b = at(la.find());
  CHECK(b.day == kStart + 49);
  CHECK(b.sentence.find("jumped on 2021-05-20") != std::string::npos);
}

TEST_CASE("the events settings are read from the configuration and checked", "[events]") {
  const std::string base =
      "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
      "  key: /etc/hostname\nsensors: []\n";
  auto ok = parse_collector_config("t.yaml", base +
                                                 "events:\n  spike_ratio: 3.5\n  shift_days: 10\n"
                                                 "  countries: 3\n");
  REQUIRE(std::holds_alternative<CollectorConfig>(ok));
  CHECK(std::get<CollectorConfig>(ok).events.spike_ratio == 3.5);
  CHECK(std::get<CollectorConfig>(ok).events.shift_days == 10);
  CHECK(std::get<CollectorConfig>(ok).events.countries == 3);
  CHECK(std::get<CollectorConfig>(ok).events.spike_z == 5.0);  // the default
  for (const char* bad :
       {"  spike_ratio: lots\n", "  spike_ratio: 0.5\n", "  coverage_min: 2\n", "  shift_days: 1\n",
        "  spike_ratio: 2x\n", "  countries: 33\n", "  countries: -1\n", "  countries: all\n"}) {
    INFO(bad);
    const auto r = parse_collector_config("t.yaml", base + "events:\n" + bad);
    REQUIRE(std::holds_alternative<std::vector<config::ConfigError>>(r));
  }
  const auto r = parse_collector_config("t.yaml", base + "events:\n  spike_ratio: lots\n");
  const auto& errors = std::get<std::vector<config::ConfigError>>(r);
  CHECK(errors.at(0).message.find("'lots' is not a number from 1.01 to 1000") != std::string::npos);
}

TEST_CASE("an events request is parsed and checked like a report's", "[events]") {
  World w({});
  const auto r =
      events::parse_events_request({{"quarter", "2021Q2"}, {"limit", "5"}}, *w.store, {});
  CHECK(r.day_from == kStart);
  CHECK(r.day_to == kStart + 90);
  CHECK(r.limit == 5);
  CHECK_THROWS_WITH(
      events::parse_events_request({{"quarter", "2021Q2"}, {"limit", "0"}}, *w.store, {}),
      Catch::Contains("limit"));
  CHECK_THROWS_WITH(
      events::parse_events_request({{"quarter", "2021Q2"}, {"rank", "all"}}, *w.store, {}),
      Catch::Contains("unknown parameter 'rank'"));
  CHECK_THROWS_WITH(events::parse_events_request({}, *w.store, {}), Catch::Contains("from and to"));
  events::EventsRequest bad;
  bad.sensors = {"nobody"};
  CHECK_THROWS_WITH(events::find_events(*w.store, w.cfg, bad), Catch::Contains("nobody"));
  events::EventsCache cache;
  CHECK_THROWS_WITH(cache.get(*w.store, w.cfg, bad), Catch::Contains("nobody"));
  // What one request may cost is bounded: 400 days at once.
  events::EventsRequest wide;
  wide.day_from = kStart;
  wide.day_to = kStart + 400;
  CHECK_THROWS_WITH(events::find_events(*w.store, w.cfg, wide), Catch::Contains("400 days"));
  ReportRequest long_report;
  long_report.day_from = kStart;
  long_report.day_to = kStart + 500;
  const Report rep = build_report(*w.store, w.cfg, long_report);
  CHECK(rep.events.empty());
  CHECK(rep.events_note.find("at most 400 days") != std::string::npos);
  CHECK(report_markdown(rep).find("## Notable changes\n\nNotable changes are found over at most") !=
        std::string::npos);
}

TEST_CASE("labelled events round-trip through their JSON, and a bad file is refused by name",
          "[events]") {
  sim::SimOptions o;
  o.start_day = kStart;
  auto events = sim::random_events(o, 12, 3);
  REQUIRE(events.size() == 12);
  auto hourly = ev("spike", 22, kStart + 60, 4);
  hourly.hour = 13;
  hourly.days = 1;
  events.push_back(hourly);
  const auto back = sim::parse_events(sim::events_json(events));
  REQUIRE(back.size() == events.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    CHECK(back[i].kind == events[i].kind);
    CHECK(back[i].port == events[i].port);
    CHECK(back[i].start_day == events[i].start_day);
    CHECK(back[i].hour == events[i].hour);
    CHECK(back[i].size == Approx(events[i].size));
  }
  // Every kind, every region, in the seeded set.
  for (const char* k : {"spike", "level_shift", "emergence", "fingerprint_shift"})
    CHECK(std::count_if(events.begin(), events.end(), [&](const auto& e) { return e.kind == k; }) >=
          3);
  for (const auto& [text, says] : std::vector<std::pair<std::string, std::string>>{
           {"{", "expected a JSON array"},
           {"[1]", "events[0]: not an object"},
           {R"([{"kind":"boom","port":23,"start":"2021-05-01","size":2}])", "events[0].kind"},
           {R"([{"kind":"spike","port":23,"start":"2021-02-30","size":2}])", "events[0].start"},
           {R"([{"kind":"spike","port":23,"start":"2021-05-01"}])", "events[0].size: missing"},
           {R"([{"kind":"spike","start":"2021-05-01","size":2,"port":70000}])", "events[0].port"},
           {R"([{"kind":"spike","proto":"icmp","port":22,"start":"2021-05-01","size":2}])",
            "events[0].port"},
           {R"([{"kind":"emergence","proto":"icmp","start":"2021-05-01","size":50}])",
            "events[0].proto"},
           {R"([{"kind":"fingerprint_shift","proto":"udp","port":53,"fingerprint":"mirai",)"
            R"("start":"2021-05-01","size":0.5}])",
            "events[0].proto"},
           {R"([{"kind":"level_shift","port":23,"start":"2021-05-01","size":2,"hour":3}])",
            "events[0].hour"},
           {R"([{"kind":"spike","port":23,"start":"2021-05-01","size":2,"country":"japan"}])",
            "events[0].country"},
       }) {
    INFO(text);
    CHECK_THROWS_WITH(sim::parse_events(text), Catch::Contains(says));
  }
}

TEST_CASE("a spike of one hour puts its packets in that hour's bucket only", "[events]") {
  sim::SimOptions o;
  o.domestic = 1;
  o.overseas = 0;
  o.months = 1;
  o.width_s = 3600;
  o.start_day = kStart;
  o.outage_share = 0;
  std::map<std::int64_t, std::uint64_t> plain, spiked;
  const auto port22 = [](const bucket::SealedBucket& b) {
    std::uint64_t n = 0;
    for (const auto& r : b.rows)
      if (r.key.proto == classify::Proto::tcp && r.key.port == 22) n += r.packets;
    return n;
  };
  sim::simulate_sensor(o, 0, [&](bucket::SealedBucket&& b) { plain[b.start] = port22(b); });
  auto e = ev("spike", 22, kStart + 10, 5, "domestic");
  e.hour = 7;
  e.days = 1;
  o.events = {e};
  sim::simulate_sensor(o, 0, [&](bucket::SealedBucket&& b) { spiked[b.start] = port22(b); });
  const std::int64_t at = (kStart + 10) * 86400 + 7 * 3600;
  std::uint64_t day_total = 0;
  for (int h = 0; h < 24; ++h) day_total += plain[(kStart + 10) * 86400 + h * 3600];
  for (const auto& [start, n] : plain) {
    INFO(start);
    if (start == at)  // four times the hour's share of the day more
      CHECK(static_cast<double>(spiked[start] - n) ==
            Approx(4.0 * static_cast<double>(day_total) / 24).epsilon(0.1));
    else
      CHECK(spiked[start] == n);
  }
}

TEST_CASE("sensors that join, leave or are late are breaks or gaps for the live evaluation",
          "[events][single-threaded]") {
  // Up to four domestic sensors with 23/TCP, 24 hours of baseline; the last hour is judged.
  // packets(sensor, hour): 0 when the sensor delivered nothing that hour.
  const std::int64_t first = kStart * 24, last = first + 40;
  const auto usual = [](std::int64_t h) { return 45 + static_cast<std::uint64_t>(h * 7 % 11); };
  const auto judge = [&](const std::function<std::uint64_t(int, std::int64_t)>& packets) {
    test::TempDir dir;
    std::string yaml =
        "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
        "  key: /etc/hostname\nevents:\n  live_grace: 0\n  live_baseline_hours: 24\nsensors:\n";
    for (int i = 0; i < 4; ++i)
      yaml +=
          "  - id: s" + std::to_string(i) + "\n    region: domestic\n    active_from: 2021-01-01\n";
    const auto cfg = std::make_shared<const CollectorConfig>(
        std::get<CollectorConfig>(parse_collector_config("t.yaml", yaml)));
    StoreConfig sc;
    sc.path = dir / "store.sqlite";
    sc.time_zone = "UTC";
    {
      auto store = open_store(sc);
      std::vector<bucket::SealedBucket> batch;
      for (int i = 0; i < 4; ++i)
        for (std::int64_t h = first; h <= last; ++h) {
          const std::uint64_t n = packets(i, h);
          if (n == 0) continue;
          batch.push_back(test::hour_bucket("s" + std::to_string(i), "live",
                                            static_cast<std::uint64_t>(h), h, 23, n));
        }
      store->ingest(batch);
    }
    events::LiveEvents live(
        sc, [cfg] { return cfg; }, std::chrono::seconds(0));
    return live.evaluate((last + 1) * 3600);  // the first call judges the latest hour only
  };
  SECTION("the jump of a sensor that was there is a spike") {
    const auto found = judge([&](int i, std::int64_t h) -> std::uint64_t {
      return i == 0 ? (h == last ? 275 : usual(h)) : 0;
    });
    REQUIRE(found.size() == 1);
    CHECK(found[0].dest.port == 23);
    CHECK(*found[0].hour == last * 3600);
  }
  SECTION("a busy sensor joining is no spike") {
    CHECK(judge([&](int i, std::int64_t h) -> std::uint64_t {
            return i == 0 ? usual(h) : i == 1 && h == last ? 500 : 0;
          }).empty());
  }
  SECTION("a busy sensor back after 15 hours away is no spike") {
    CHECK(judge([&](int i, std::int64_t h) -> std::uint64_t {
            return i == 0 ? usual(h) : i == 1 && (h < last - 15 || h == last) ? 500 : 0;
          }).empty());
  }
  SECTION("a sensor late with the judged hour leaves the others judged") {
    // s3's bucket of the last hour has not come; s0 jumps (three of four sensors: covered).
    const auto found = judge([&](int i, std::int64_t h) -> std::uint64_t {
      if (i == 3 && h == last) return 0;
      return i == 0 && h == last ? 600 : usual(h);
    });
    REQUIRE(found.size() == 1);
    CHECK(*found[0].hour == last * 3600);
  }
  SECTION("and one gone for good for longer than a baseline needs leaves them judged too") {
    const auto found = judge([&](int i, std::int64_t h) -> std::uint64_t {
      if (i == 3 && h > last - 10) return 0;
      return i == 0 && h == last ? 600 : usual(h);
    });
    REQUIRE(found.size() == 1);
    CHECK(*found[0].hour == last * 3600);
  }
}

// SPDX-License-Identifier: Apache-2.0
// teitenctl db copy's core: a populated SQLite store moved into PostgreSQL answers every
// query and report the same, byte for byte.
#include <catch2/catch.hpp>

#include "collector/report/report.h"
#include "collector/store/store.h"
#include "ctl/sim/simulator.h"
#include "tests/unit/collector/test_store.h"

using namespace teiten;
using namespace teiten::collector;

namespace {

CollectorConfig registry_of(const sim::SimOptions& o) {
  auto loaded = parse_collector_config(
      "test.yaml",
      "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n  key: "
      "/etc/hostname\nsensors:\n" +
          sim::sim_registry_yaml(o));
  REQUIRE(std::holds_alternative<CollectorConfig>(loaded));
  return std::get<CollectorConfig>(loaded);
}

}  // namespace

TEST_CASE("db copy: a SQLite store in PostgreSQL answers every query and report the same",
          "[collector][copy][single-threaded]") {
  test::TempDir dir;
  test::TestStore lite("sqlite", dir);
  sim::SimOptions o;
  o.domestic = 2;
  o.overseas = 2;
  o.months = 4;
  o.start_day = 19083;  // 2022-04-01
  o.packets_per_day = 2000;
  std::uint64_t packets = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    std::vector<bucket::SealedBucket> batch;
    packets += sim::simulate_sensor(
        o, i, [&](bucket::SealedBucket&& b) { batch.push_back(std::move(b)); });
    lite->ingest(batch);
  }
  REQUIRE(packets > 0);
  // Pruning marks travel too: the first month's detail and its first week's hours.
  const std::int64_t april = 19083LL * 86400;
  CHECK(lite->prune_detail(april + 30 * 86400) > 0);
  CHECK(lite->prune_hourly(april + 7 * 86400) > 0);

  test::TestStore pg("postgresql", dir);
  const CopyCounts n = copy_store(*lite, *pg);
  CHECK(n.buckets > 2000);
  CHECK(n.detail_rows > 0);
  CHECK(n.hourly_rows > 0);
  CHECK(n.daily_rows > 0);
  CHECK(n.sensor_days > 0);
  CHECK_FALSE(pg->empty());

  // Queries over every tier: open, whole local days, whole hours, between boundaries,
  // inside the pruned ranges; every grouping.
  const std::vector<std::pair<std::int64_t, std::int64_t>> ranges = {
      {0, INT64_MAX},
      {april - 9 * 3600, april + 40 * 86400 - 9 * 3600},  // Tokyo midnights
      {april + 3 * 86400, april + 50 * 86400 + 7200},     // UTC hours
      {april + 1234, april + 45 * 86400 + 77},            // neither
      {april + 40 * 86400 + 5, INT64_MAX}};
  const std::vector<std::vector<std::string>> groupings = {
      {}, {"proto", "port"}, {"sensor", "country"}, {"fingerprint", "kind"}, {"port", "sensor"}};
  int compared = 0;
  for (const auto& [from, to] : ranges) {
    for (const auto& g : groupings) {
      Query q;
      q.from = from;
      q.to = to;
      q.group_by = g;
      INFO("from " << from << " to " << to << " groups " << g.size());
      std::optional<Tier> tier;
      try {
        tier = lite->tier(q);
      } catch (const std::invalid_argument&) {
        // kind where only the daily rollups are left: refused by both.
        CHECK_THROWS_AS(pg->tier(q), std::invalid_argument);
        continue;
      }
      CHECK(pg->tier(q) == *tier);
      CHECK(lite->query(q) == pg->query(q));
      CHECK(lite->accounting(q) == pg->accounting(q));
      ++compared;
    }
  }
  CHECK(compared >= 20);
  const CollectorConfig cfg = registry_of(o);
  for (const char* quarter : {"2022Q2", "2022Q3"}) {
    const auto rq = parse_report_request({{"quarter", quarter}, {"rank", "all"}}, *lite);
    const Report a = build_report(*lite, cfg, rq);
    const Report b = build_report(*pg, cfg, rq);
    CHECK(report_json(a) == report_json(b));
    CHECK(report_markdown(a) == report_markdown(b));
    CHECK(report_csv(a) == report_csv(b));
    CHECK(report_html(a) == report_html(b));
    CHECK(a.table.size() == 5);
  }
  // Into a store that holds buckets: refused, nothing changed.
  const auto before = pg->accounting(Query{});
  CHECK_THROWS_WITH(copy_store(*lite, *pg), Catch::Contains("already holds buckets"));
  CHECK(pg->accounting(Query{}) == before);
}

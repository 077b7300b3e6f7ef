// SPDX-License-Identifier: Apache-2.0
// Storage at the scale of a sensor network: 100 sensors (50 domestic, 50 overseas) over
// 15 months of simulated buckets (hourly by default) ingested into a real collector store
// (SQLite, or PostgreSQL on a durable server this program starts with
// tests/tools/pg-fixture.sh), then: the quarterly report of the last quarter (with the
// same months a year earlier) built and rendered in every format, a full grouped query
// (teitenctl query --group-by proto,port over all of it), and the bytes each tier takes
// per sensor-day. Targets (docs/scale.md): report <= 1 s, grouped query <= 2 s. The day
// summaries are made first (as the collector's maintenance job would), and the report is
// also built from the rollups alone (every sensor named) and its output compared. The
// report's notable changes are found once (timed: the collector's live thread pays that
// in the background), then read from the events cache as the collector's reports do.
//
// Usage: report_bench [--backend sqlite|postgresql] [--sensors 100] [--months 15]
//                     [--width 3600|86400] [--db PATH] [--runs 5] [--keep yes]
//   A SQLite database is built once per PATH, size and width and kept; PostgreSQL's is
//   built anew each run (its ingest rate is part of the figures) unless --keep yes kept
//   the server of an earlier run.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "collector/report/report.h"
#include "collector/store/store.h"
#include "ctl/sim/simulator.h"

using namespace teiten;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  sim::SimOptions o;
  o.domestic = 50;
  o.overseas = 50;
  o.months = 15;
  o.width_s = 86400;
  o.start_day = 18993;  // 2022-01-01
  o.width_s = 3600;
  std::string db = "/tmp/teiten-report-bench.sqlite", backend = "sqlite";
  int runs = 5;
  bool keep = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--sensors")
      o.domestic = o.overseas = static_cast<std::uint32_t>(std::stoul(v) / 2);
    else if (a == "--months")
      o.months = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--db")
      db = v;
    else if (a == "--backend")
      backend = v;
    else if (a == "--keep")
      keep = v == "yes";
    else if (a == "--width")
      o.width_s = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--runs")
      runs = std::stoi(v);
    else {
      std::fprintf(stderr,
                   "usage: report_bench [--backend sqlite|postgresql] [--sensors N] [--months N] "
                   "[--width 3600|86400] [--db PATH] [--runs N] [--keep yes]\n");
      return 2;
    }
  }
  const std::string tag = db + "." + std::to_string(o.domestic + o.overseas) + "x" +
                          std::to_string(o.months) + "w" + std::to_string(o.width_s);
  const std::string fixture = std::string{TEITEN_SOURCE_DIR} + "/tests/tools/pg-fixture.sh";
  const std::string pg_state = "/tmp/teiten-report-bench-pg.state";
  collector::StoreConfig where{"sqlite", tag, "", "Asia/Tokyo"};
  bool pg_built = false;
  if (backend == "postgresql") {
    // --keep yes: the server (and the database of this size) stays for the next run.
    std::string pgdir;
    std::ifstream(pg_state) >> pgdir;
    if (pgdir.empty() || !std::filesystem::exists(pgdir + "/.s.PGSQL.5432")) {
      if (std::system(("PG_FIXTURE_DURABLE=1 '" + fixture + "' start " + pg_state).c_str()))
        return 1;
      std::ifstream(pg_state) >> pgdir;
    }
    const std::string dbname = "bench_" + std::to_string(o.domestic + o.overseas) + "x" +
                               std::to_string(o.months) + "w" + std::to_string(o.width_s);
    (void)!std::system(("psql -q 'host=" + pgdir +
                        " user=teiten dbname=postgres' -c 'CREATE "
                        "DATABASE " +
                        dbname + "' >/dev/null 2>&1")
                           .c_str());
    where = {"postgresql", "", "host=" + pgdir + " user=teiten dbname=" + dbname, "Asia/Tokyo"};
    pg_built = !collector::open_store(where)->empty();
  } else if (backend != "sqlite") {
    std::fprintf(stderr, "--backend: sqlite or postgresql\n");
    return 2;
  }
  std::string yaml =
      "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
      "  key: /etc/hostname\nsensors:\n" +
      sim::sim_registry_yaml(o);
  auto loaded = collector::parse_collector_config("bench.yaml", yaml);
  if (!std::holds_alternative<collector::CollectorConfig>(loaded)) {
    std::fprintf(stderr, "registry did not parse\n");
    return 1;
  }
  const auto cfg = std::get<collector::CollectorConfig>(loaded);
  std::uint64_t buckets = 0, packets = 0, rows = 0;
  const bool build_it = backend == "postgresql" ? !pg_built : !std::filesystem::exists(tag);
  if (build_it) {
    for (const char* suffix : {".tmp", ".tmp-wal", ".tmp-shm"})
      std::filesystem::remove(tag + suffix);
    collector::StoreConfig building = where;
    if (backend == "sqlite") building.path = tag + ".tmp";
    auto s = collector::open_store(building);
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < o.domestic + o.overseas; ++i) {
      std::vector<bucket::SealedBucket> batch;
      packets += sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) {
        rows += b.rows.size();
        batch.push_back(std::move(b));
      });
      buckets += batch.size();
      // As sensors deliver: batches of 100 buckets (the uploader's default).
      for (std::size_t b = 0; b < batch.size(); b += 100) {
        const std::vector<bucket::SealedBucket> part(
            batch.begin() + static_cast<std::ptrdiff_t>(b),
            batch.begin() + static_cast<std::ptrdiff_t>(std::min(batch.size(), b + 100)));
        s->ingest(part);
      }
    }
    std::printf(
        "database: %llu buckets, %llu rows, %llu packets ingested in %.1f s (%.0f buckets/s)\n",
        static_cast<unsigned long long>(buckets), static_cast<unsigned long long>(rows),
        static_cast<unsigned long long>(packets), seconds_since(t0),
        static_cast<double>(buckets) / seconds_since(t0));
    s.reset();  // closed: the WAL is checkpointed into the file before it is renamed
    if (backend == "sqlite") std::filesystem::rename(tag + ".tmp", tag);
  } else {
    std::printf("database: %s (kept from an earlier run)\n",
                backend == "postgresql" ? where.conninfo.c_str() : tag.c_str());
  }
  {
    // What the collector's maintenance job does a minute after ingest: the changed days
    // are summarized for reports (all of them here, at once).
    auto w = collector::open_store(where);
    const auto t0 = Clock::now();
    std::size_t days = 0;
    for (std::size_t n; (n = w->summarize_days(16)) > 0;) days += n;
    std::printf("day summaries: %zu days summarized in %.1f s\n", days, seconds_since(t0));
  }
  const auto store = collector::open_store(where, collector::OpenMode::read_only);
  collector::Store& s = *store;
  collector::ReportRequest q;
  // The last full quarter of the data: months 13-15 (2023-01..03 by default).
  q.day_from = o.start_day + 365;
  q.day_to = o.start_day + 365 + 89;
  // The same report read from the daily rollups alone (every sensor named: summaries are
  // for reports over all sensors), once, and its output compared.
  collector::ReportRequest named = q;
  for (const auto& sensor : cfg.sensors) named.sensors.push_back(sensor.id);
  named.events = false;  // compared apart from its notable changes
  const auto t_rollups = Clock::now();
  const auto from_rollups = collector::build_report(s, cfg, named);
  const double rollups_s = seconds_since(t_rollups);
  // The quarter's notable changes, found once (the collector's live thread does this in
  // the background and keeps them in the cache its reports read).
  collector::events::EventsCache cache;
  const auto t_events = Clock::now();
  const auto cold = collector::build_report(s, cfg, q, &cache);
  const double cold_s = seconds_since(t_events);
  std::printf("report with its notable changes found now (%zu events): %.3f s\n",
              cold.events.size(), cold_s);
  std::vector<double> build, render;
  std::size_t bytes = 0;
  bool same = true;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    const auto rep = collector::build_report(s, cfg, q, &cache);
    build.push_back(seconds_since(t0));
    const auto t1 = Clock::now();
    const std::string json = collector::report_json(rep);
    bytes = json.size() + collector::report_markdown(rep).size() +
            collector::report_csv(rep).size() + collector::report_html(rep).size();
    render.push_back(seconds_since(t1));
    collector::Report again = from_rollups;
    again.request = rep.request;  // the request's sensor list aside
    again.events = rep.events;
    same = same && collector::report_json(again) == json;
  }
  std::printf("report from the daily rollups alone: build %.3f s; from the day summaries: %s\n",
              rollups_s, same ? "the same output" : "OUTPUT DIFFERS");
  if (!same) return 1;
  // The full grouped query, as teitenctl query --group-by proto,port asks it.
  collector::Query full;
  full.group_by = {"proto", "port"};
  std::vector<double> query, grouping, accounting;
  std::size_t groups = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    groups = s.query(full).size();
    grouping.push_back(seconds_since(t0));
    const auto t1 = Clock::now();
    (void)s.accounting(full);
    accounting.push_back(seconds_since(t1));
    query.push_back(seconds_since(t0));
  }
  std::sort(query.begin(), query.end());
  std::sort(grouping.begin(), grouping.end());
  std::sort(accounting.begin(), accounting.end());
  std::sort(build.begin(), build.end());
  std::sort(render.begin(), render.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double median = build[build.size() / 2] + render[render.size() / 2];
  std::printf(
      "report %s..%s, %u sensors, %u months of data, notable changes from the cache: build %.3f s "
      "(min %.3f), render 4 formats "
      "%.3f s (%zu bytes); total %.3f s, target <= 1 s: %s; peak RSS %ld MiB\n",
      collector::day_string(q.day_from).c_str(), collector::day_string(q.day_to).c_str(),
      o.domestic + o.overseas, o.months, build[build.size() / 2], build.front(),
      render[render.size() / 2], bytes, median, median <= 1.0 ? "met" : "MISSED",
      ru.ru_maxrss / 1024);
  std::printf(
      "full grouped query (group by proto,port, all %u months, from the %s tier, %zu groups, "
      "with accounting): %.3f s median of %d (min %.3f; the groups %.3f s, the accounting %.3f "
      "s); target <= 2 s: %s\n",
      o.months, std::string{to_string(s.tier(full))}.c_str(), groups, query[query.size() / 2], runs,
      query.front(), grouping[grouping.size() / 2], accounting[accounting.size() / 2],
      query[query.size() / 2] <= 2.0 ? "met" : "MISSED");
  const double sensor_days = static_cast<double>(o.domestic + o.overseas) * o.months * 30.4;
  std::printf("storage per sensor-day (%s, %.0f sensor-days):", backend.c_str(), sensor_days);
  std::uint64_t total = 0;
  for (const auto& [tier, b] : s.bytes_per_tier()) {
    std::printf(" %s %.0f B,", tier.c_str(), static_cast<double>(b) / sensor_days);
    total += b;
  }
  std::printf(" total %.2f GB\n", static_cast<double>(total) / 1e9);
  if (backend == "postgresql" && !keep)
    (void)!std::system(("'" + fixture + "' stop " + pg_state).c_str());
  return 0;
}

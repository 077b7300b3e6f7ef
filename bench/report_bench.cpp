// Report generation for a sensor network: 100 sensors (50 domestic, 50 overseas) over 15
// months of simulated data in a real collector database, then the quarterly report of
// the last quarter (with the same months a year earlier) built and rendered in every
// format. Prints the times; target: under 2 s for the report.
//
// Usage: report_bench [--sensors 100] [--months 15] [--db PATH] [--runs 5]
//   The database is built once per PATH and kept (building it takes minutes).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
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
  std::string db = "/tmp/teiten-report-bench.sqlite";
  int runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--sensors")
      o.domestic = o.overseas = static_cast<std::uint32_t>(std::stoul(v) / 2);
    else if (a == "--months")
      o.months = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--db")
      db = v;
    else if (a == "--runs")
      runs = std::stoi(v);
    else {
      std::fprintf(stderr,
                   "usage: report_bench [--sensors N] [--months N] [--db PATH] [--runs N]\n");
      return 2;
    }
  }
  const std::string tag =
      db + "." + std::to_string(o.domestic + o.overseas) + "x" + std::to_string(o.months);
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
  if (!std::filesystem::exists(tag)) {
    for (const char* suffix : {".tmp", ".tmp-wal", ".tmp-shm"})
      std::filesystem::remove(tag + suffix);
    auto s = collector::open_store({"sqlite", tag + ".tmp", "", "Asia/Tokyo"});
    const auto t0 = Clock::now();
    for (std::size_t i = 0; i < o.domestic + o.overseas; ++i) {
      std::vector<bucket::SealedBucket> batch;
      packets += sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) {
        rows += b.rows.size();
        batch.push_back(std::move(b));
      });
      buckets += batch.size();
      s->ingest(batch);
    }
    std::printf(
        "database: %llu buckets, %llu rows, %llu packets ingested in %.1f s (%.0f buckets/s)\n",
        static_cast<unsigned long long>(buckets), static_cast<unsigned long long>(rows),
        static_cast<unsigned long long>(packets), seconds_since(t0),
        static_cast<double>(buckets) / seconds_since(t0));
    s.reset();  // closed: the WAL is checkpointed into the file before it is renamed
    std::filesystem::rename(tag + ".tmp", tag);
  } else {
    std::printf("database: %s (kept from an earlier run)\n", tag.c_str());
  }
  const auto store = collector::open_store({"sqlite", tag, "", "Asia/Tokyo"});
  collector::Store& s = *store;
  collector::ReportRequest q;
  // The last full quarter of the data: months 13-15 (2023-01..03 by default).
  q.day_from = o.start_day + 365;
  q.day_to = o.start_day + 365 + 89;
  std::vector<double> build, render;
  std::size_t bytes = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = Clock::now();
    const auto rep = collector::build_report(s, cfg, q);
    build.push_back(seconds_since(t0));
    const auto t1 = Clock::now();
    bytes = collector::report_json(rep).size() + collector::report_markdown(rep).size() +
            collector::report_csv(rep).size() + collector::report_html(rep).size();
    render.push_back(seconds_since(t1));
  }
  std::sort(build.begin(), build.end());
  std::sort(render.begin(), render.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double median = build[build.size() / 2] + render[render.size() / 2];
  std::printf(
      "report %s..%s, %u sensors, %u months of data: build %.3f s (min %.3f), render 4 formats "
      "%.3f s (%zu bytes); total %.3f s, target < 2 s: %s; peak RSS %ld MiB\n",
      collector::day_string(q.day_from).c_str(), collector::day_string(q.day_to).c_str(),
      o.domestic + o.overseas, o.months, build[build.size() / 2], build.front(),
      render[render.size() / 2], bytes, median, median < 2.0 ? "met" : "MISSED",
      ru.ru_maxrss / 1024);
  return 0;
}

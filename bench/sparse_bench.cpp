// SPDX-License-Identifier: Apache-2.0
// Replay of a sparse capture into the spool (issue 14): two quarters of a quiet sensor
// (40,000 packets over 182 days: most minutes empty) replayed with 60 s buckets through
// the sensor's pipeline into a spool, as `teiten-sensord --read --upload` does it
// (SpoolWriter: buckets sealed together share one fdatasync), and, for comparison, the
// first --compare-days of the same traffic with one fdatasync per bucket (the spool before
// group commit). Prints sealed buckets per second of each; target (docs/spool.md):
// >= 20,000 buckets/s to the spool with group commit. Figures only: nothing asserts a time.
//
// Usage: sparse_bench [--packets 40000] [--days 182] [--compare-days 7] [--dir DIR]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "ctl/gen/traffic_gen.h"
#include "daemon/capture/savefile.h"
#include "daemon/config/sensor_config.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/spool/spool.h"
#include "daemon/spool/spool_writer.h"

using namespace teiten;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
  std::uint64_t buckets = 0, groups = 0, lost = 0;
  double seconds = 0;
};

// Replays `pcap` into a new spool in `dir`; max_group 1: one fdatasync per bucket.
Run replay(const config::SensorConfig& cfg, const std::string& pcap, const std::string& dir,
           std::size_t max_group) {
  std::filesystem::remove_all(dir);
  sensor::Spool spool(dir, std::uint64_t{4} << 30);
  std::atomic<bool> stopping{false};
  Run r;
  sensor::SpoolWriter writer(
      spool, stopping, [&] { ++r.groups; }, [&](const bucket::SealedBucket&) { ++r.lost; },
      max_group, 256);  // as teiten-sensord --read --upload (a replay as fast as it goes)
  sensor::PipelineOptions opts;
  opts.boot_id = "bench";
  opts.ring_full = config::RingFullPolicy::wait;
  sensor::Pipeline pipeline(
      cfg, nullptr, opts,
      [&](bucket::SealedBucket&& b, std::uint64_t done) { writer.add(std::move(b), done); },
      [&] { writer.idle(); });
  std::string error;
  const auto savefile = sensor::open_savefile(pcap, error);
  if (!savefile) {
    std::fprintf(stderr, "sparse_bench: %s\n", error.c_str());
    std::exit(1);
  }
  const auto t0 = Clock::now();
  const std::string failure = pipeline.run(*savefile);
  writer.flush();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!failure.empty()) {
    std::fprintf(stderr, "sparse_bench: %s\n", failure.c_str());
    std::exit(1);
  }
  r.buckets = spool.stats().appended;
  std::filesystem::remove_all(dir);
  return r;
}

std::string capture(const std::string& dir, std::uint64_t packets, std::uint32_t days) {
  const std::string path =
      dir + "/sparse-" + std::to_string(packets) + "-" + std::to_string(days) + "d.pcap";
  if (!std::filesystem::exists(path)) {
    gen::GenOptions g;
    g.packets = packets;
    g.duration_s = days * 86400;
    gen::generate(g, path + ".tmp");
    std::filesystem::rename(path + ".tmp", path);
  }
  return path;
}

void print(const char* what, const Run& r) {
  std::printf("%-52s %8llu buckets in %7.2f s: %9.0f buckets/s (%llu writes)\n", what,
              static_cast<unsigned long long>(r.buckets), r.seconds,
              static_cast<double>(r.buckets) / r.seconds,
              static_cast<unsigned long long>(r.groups));
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t packets = 40000;
  std::uint32_t days = 182, compare_days = 7;
  std::string dir = "/tmp/teiten-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--packets")
      packets = std::stoull(v);
    else if (a == "--days")
      days = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--compare-days")
      compare_days = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--dir")
      dir = v;
    else {
      std::fprintf(stderr,
                   "usage: sparse_bench [--packets N] [--days N] [--compare-days N] [--dir DIR]\n");
      return 2;
    }
  }
  if (days == 0 || days > 49000 || compare_days == 0 || compare_days > days) {
    std::fprintf(stderr, "sparse_bench: --days 1..49000, --compare-days 1..days\n");
    return 2;
  }
  std::filesystem::create_directories(dir);
  const auto parsed = config::parse_sensor_config(
      "bench.yaml",
      "sensor:\n  id: sparse\n  addresses: [203.0.113.7, \"2001:db8:7::7\"]\n"
      "geoip:\n  database: \"\"\nlog:\n  level: warn\n");
  if (!std::holds_alternative<config::SensorConfig>(parsed)) {
    std::fprintf(stderr, "sparse_bench: configuration did not parse\n");
    return 1;
  }
  const auto& cfg = std::get<config::SensorConfig>(parsed);
  const std::string whole = capture(dir, packets, days);
  const std::string part = capture(dir, packets * compare_days / days, compare_days);
  std::printf("sparse capture: %llu packets over %u days, 60 s buckets, spool in %s\n",
              static_cast<unsigned long long>(packets), days, dir.c_str());
  const Run one = replay(cfg, part, dir + "/spool-one", 1);
  const Run grouped_part = replay(cfg, part, dir + "/spool-group", 1024);
  const Run grouped = replay(cfg, whole, dir + "/spool-group", 1024);
  print(("first " + std::to_string(compare_days) + " days, one fdatasync per bucket").c_str(), one);
  print(("first " + std::to_string(compare_days) + " days, group commit").c_str(), grouped_part);
  print(("all " + std::to_string(days) + " days, group commit").c_str(), grouped);
  const double rate = static_cast<double>(grouped.buckets) / grouped.seconds;
  std::printf("group commit / one per bucket: %.1fx; target >= 20,000 buckets/s: %s\n",
              rate / (static_cast<double>(one.buckets) / one.seconds),
              rate >= 20000 ? "met" : "NOT met");
  return one.lost + grouped.lost + grouped_part.lost == 0 ? 0 : 1;
}

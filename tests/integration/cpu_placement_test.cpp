// SPDX-License-Identifier: Apache-2.0
// capture.cpu_affinity: the plan for the CPUs a process may use, and a real pipeline run
// that binds its threads as planned and gives the calling thread its CPUs back.
#include "daemon/pipeline/cpu_placement.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <variant>

#include "ctl/gen/traffic_gen.h"
#include "daemon/capture/savefile.h"
#include "daemon/pipeline/pipeline.h"
#include "tests/integration/test_support.h"

using namespace teiten;
using namespace teiten::sensor;

namespace {

/// A kernel CPU list ("0-2,5") as CPU numbers.
std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string part = text.substr(pos, comma - pos);
    const std::size_t dash = part.find('-');
    const int first = std::stoi(part.substr(0, dash));
    const int last = dash == std::string::npos ? first : std::stoi(part.substr(dash + 1));
    for (int c = first; c <= last; ++c) cpus.push_back(c);
    pos = comma + 1;
  }
  return cpus;
}

/// The CPU lists every thread of this process may use now (/proc/self/task/*/status).
std::set<std::vector<int>> thread_cpu_lists() {
  std::set<std::vector<int>> lists;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "status");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) == 0) {
        const std::size_t start = line.find_first_not_of(" \t", 18);
        if (start != std::string::npos) lists.insert(parse_cpu_list(line.substr(start)));
      }
    }
  }
  return lists;
}

}  // namespace

TEST_CASE("cpu placement: the plan for one, two and more CPUs", "[integration][cpu]") {
  CHECK(plan_cpus({}).capture.empty());
  const CpuPlan one = plan_cpus({3});
  CHECK(one.capture.empty());
  CHECK(one.classifier.empty());
  CHECK(one.sealing.empty());
  const CpuPlan two = plan_cpus({2, 5});
  CHECK(two.capture == std::vector<int>{2});
  CHECK(two.classifier == std::vector<int>{5});
  CHECK(two.sealing == std::vector<int>{2});  // shares the capture thread's CPU
  const CpuPlan four = plan_cpus({0, 1, 2, 3});
  CHECK(four.capture == std::vector<int>{0});
  CHECK(four.classifier == std::vector<int>{1});
  CHECK(four.sealing == std::vector<int>({2, 3}));
  CHECK(describe_cpus({}) == "-");
  CHECK(describe_cpus({4}) == "4");
  CHECK(describe_cpus({0, 1}) == "0,1");
  CHECK(describe_cpus({0, 1, 2, 3}) == "0-3");
  CHECK(describe_cpus({1, 3, 4, 5, 7}) == "1,3-5,7");
}

TEST_CASE("cpu placement: a replay runs its threads where the plan says", "[integration][cpu]") {
  const bool placed = GENERATE(true, false);
  INFO("capture.cpu_affinity: " << (placed ? "auto" : "off"));
  test::TempDir dir;
  gen::GenOptions g;
  g.packets = 20000;
  g.duration_s = 600;  // ten buckets: the sink runs ten times on the sealing thread
  gen::generate(g, dir / "in.pcap");
  const auto parsed = config::parse_sensor_config(
      "sensor.yaml", std::string{"sensor:\n  id: cpu-1\n  addresses: [203.0.113.7]\n"
                                 "geoip:\n  database: \"\"\ncapture:\n  cpu_affinity: "} +
                         (placed ? "auto" : "off") + "\n");
  REQUIRE(std::holds_alternative<config::SensorConfig>(parsed));
  const auto& cfg = std::get<config::SensorConfig>(parsed);

  const std::vector<int> before = allowed_cpus();
  REQUIRE_FALSE(before.empty());
  if (before.size() < 2) WARN("one CPU only: nothing is bound, the run must still work");
  std::vector<std::vector<int>> sealing_seen;
  PipelineOptions opts;
  opts.ring_full = config::RingFullPolicy::wait;
  std::atomic<bool> done{false};
  std::set<std::vector<int>> seen;
  std::thread watcher([&] {
    while (!done.load()) {
      for (const auto& l : thread_cpu_lists()) seen.insert(l);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  Pipeline pipeline(cfg, nullptr, opts, [&](bucket::SealedBucket&&, std::uint64_t) {
    sealing_seen.push_back(allowed_cpus());  // on the sealing thread
  });
  std::string error;
  const auto savefile = open_savefile(dir / "in.pcap", error);
  REQUIRE(savefile);
  savefile->pace(40000);  // half a second: long enough to watch the threads
  const std::string failure = pipeline.run(*savefile);
  done.store(true);
  watcher.join();
  REQUIRE(failure.empty());

  CHECK(pipeline.stats().captured.load() == 20000);
  CHECK(allowed_cpus() == before);  // the calling thread has its CPUs back
  REQUIRE(sealing_seen.size() >= 10);
  const CpuPlan plan = plan_cpus(before);
  for (const auto& cpus : sealing_seen) {
    if (placed && !plan.sealing.empty()) {
      CHECK(cpus == plan.sealing);
    } else {
      CHECK(cpus == before);
    }
  }
  // The classifier thread: some thread ran on exactly its planned CPUs, and only when
  // placed (unplaced, every thread keeps the process's CPUs).
  if (placed && !plan.classifier.empty()) {
    CHECK(seen.count(plan.classifier) == 1);
    CHECK(seen.count(plan.capture) == 1);
  } else {
    CHECK(seen == std::set<std::vector<int>>{before});
  }
}

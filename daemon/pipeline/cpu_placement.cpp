// SPDX-License-Identifier: Apache-2.0
#include "daemon/pipeline/cpu_placement.h"

#include <sched.h>

#include <cstring>

namespace teiten::sensor {

CpuPlan plan_cpus(const std::vector<int>& allowed) {
  CpuPlan plan;
  if (allowed.size() < 2) return plan;
  plan.capture = {allowed[0]};
  plan.classifier = {allowed[1]};
  if (allowed.size() == 2) {
    plan.sealing = {allowed[0]};
  } else {
    plan.sealing.assign(allowed.begin() + 2, allowed.end());
  }
  return plan;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {};
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

std::string bind_thread(pthread_t thread, const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE) return "CPU " + std::to_string(c) + " out of range";
    CPU_SET(c, &set);
  }
  const int rc = pthread_setaffinity_np(thread, sizeof set, &set);
  return rc == 0 ? std::string{} : std::string{std::strerror(rc)};
}

std::string describe_cpus(const std::vector<int>& cpus) {
  if (cpus.empty()) return "-";
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(cpus[i]);
    if (j > i) out += (j == i + 1 ? "," : "-") + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace teiten::sensor

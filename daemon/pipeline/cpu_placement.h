// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <pthread.h>

#include <string>
#include <vector>

namespace teiten::sensor {

/// Where the pipeline's three busy threads run (`capture.cpu_affinity: auto`).
///
/// Left to the scheduler on a two-core box, the capture and classifier threads often share
/// one core: there they take turns, one filling the ring while the other waits, then the
/// other draining it, while the second core idles or runs the sealing thread. Bound to
/// different CPUs they run side by side; the sealing thread, which works in bursts, shares
/// the capture thread's CPU (the capture thread is the faster and waits for ring space).
/// Replay of the benchmark capture on a two-core machine: 0.86 to 0.94 s unbound, 0.80 to
/// 0.83 s bound (docs/sensor-pipeline.md).
struct CpuPlan {
  std::vector<int> capture;     ///< empty: not bound
  std::vector<int> classifier;  ///< empty: not bound
  std::vector<int> sealing;     ///< empty: not bound
};

/// The plan for a process that may run on `allowed` (ascending CPU numbers): nothing bound
/// below two CPUs; with two, capture and sealing on the first, classifier on the second;
/// with more, capture on the first, classifier on the second, sealing on the others.
CpuPlan plan_cpus(const std::vector<int>& allowed);

/// The CPUs the calling thread may run on (sched_getaffinity), ascending; empty if unknown.
std::vector<int> allowed_cpus();

/// Binds `thread` to `cpus` (pthread_setaffinity_np). Returns "" or what failed.
std::string bind_thread(pthread_t thread, const std::vector<int>& cpus);

/// "0", "2,3", "4-7": CPU numbers for a log line ("-" when empty).
std::string describe_cpus(const std::vector<int>& cpus);

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#include "common/bucket/merge.h"

#include <algorithm>
#include <map>

namespace teiten::bucket {

std::uint32_t coarser_width(std::uint32_t width_s) noexcept {
  if (width_s < 3600) return 3600;
  if (width_s < 86400) return 86400;
  return 0;
}

SealedBucket merge_buckets(const std::vector<const SealedBucket*>& parts, std::uint32_t width_s) {
  const SealedBucket& first = *parts.front();
  SealedBucket out;
  out.sensor_id = first.sensor_id;
  out.boot_id = first.boot_id;
  out.seq = first.seq;
  out.width_s = width_s;
  out.start = first.start - first.start % static_cast<std::int64_t>(width_s);
  out.provenance = first.provenance;
  std::map<std::uint64_t, Row> rows;
  for (const SealedBucket* p : parts) {
    for (const Row& r : p->rows) {
      Row& acc = rows.try_emplace(r.key.pack(), Row{r.key, 0, 0, {}}).first->second;
      acc.packets += r.packets;
      acc.bytes += r.bytes;
      acc.hosts.merge(r.hosts);
    }
    out.not_for_sensor += p->not_for_sensor;
    out.self_traffic += p->self_traffic;
    out.late_packets += p->late_packets;
    out.hosts_unrecorded += p->hosts_unrecorded;
    out.loss.ring_drops += p->loss.ring_drops;
    out.loss.kernel_drops += p->loss.kernel_drops;
    out.loss.interface_drops += p->loss.interface_drops;
    for (std::size_t i = 0; i < out.loss.malformed.size(); ++i)
      out.loss.malformed[i] += p->loss.malformed[i];
    out.loss.spool_dropped += p->loss.spool_dropped;
    out.loss.overflow_packets += p->loss.overflow_packets;
    out.loss.overflow_bytes += p->loss.overflow_bytes;
    out.provenance.clock_synced = out.provenance.clock_synced && p->provenance.clock_synced;
  }
  out.rows.reserve(rows.size());
  for (auto& [packed, row] : rows) out.rows.push_back(row);  // std::map: sorted by pack()
  return out;
}

}  // namespace teiten::bucket

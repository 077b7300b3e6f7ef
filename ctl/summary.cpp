// SPDX-License-Identifier: Apache-2.0
#include "ctl/summary.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <ostream>
#include <set>

#include "common/bucket/bucket_json.h"

namespace teiten::ctl {
namespace {

std::string pct(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%",
                100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

std::string pad(std::string s, std::size_t w, bool right = true) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

std::string num(std::uint64_t v) {
  return std::to_string(v);
}

}  // namespace

std::string destination_label(const classify::Key& k) {
  using classify::Proto;
  switch (k.proto) {
    case Proto::tcp:
      return k.has_port ? std::to_string(k.port) + "/TCP" : "TCP (fragment)";
    case Proto::udp:
      return k.has_port ? std::to_string(k.port) + "/UDP" : "UDP (fragment)";
    case Proto::icmp:
      return "ICMP";
    case Proto::icmpv6:
      return "ICMPv6";
    default:
      return "other";
  }
}

void print_summary(std::ostream& out, const std::vector<bucket::SealedBucket>& buckets,
                   std::size_t top) {
  if (buckets.empty()) {
    out << "No buckets.\n";
    return;
  }
  struct AllMirai {
    std::uint64_t all = 0, mirai = 0;
  };
  std::map<std::string, AllMirai> by_dest;
  std::map<std::string, std::uint64_t> by_country;
  std::set<std::string> sensors;
  bucket::Loss loss;
  std::uint64_t observed = 0, not_for_sensor = 0, self = 0, late = 0;
  std::int64_t first = buckets.front().start, last = buckets.front().start;
  std::uint32_t width = buckets.front().width_s;
  std::size_t empty = 0;
  for (const auto& b : buckets) {
    sensors.insert(b.sensor_id);
    first = std::min(first, b.start);
    last = std::max(last, b.start + b.width_s);
    observed += b.observed_packets();
    not_for_sensor += b.not_for_sensor;
    self += b.self_traffic;
    late += b.late_packets;
    loss.ring_drops += b.loss.ring_drops;
    loss.kernel_drops += b.loss.kernel_drops;
    loss.interface_drops += b.loss.interface_drops;
    loss.overflow_packets += b.loss.overflow_packets;
    for (std::size_t i = 0; i < loss.malformed.size(); ++i)
      loss.malformed[i] += b.loss.malformed[i];
    if (b.rows.empty() && b.loss.overflow_packets == 0) ++empty;
    for (const auto& r : b.rows) {
      auto& d = by_dest[destination_label(r.key)];
      d.all += r.packets;
      if (r.key.fingerprint == classify::Fingerprint::mirai) d.mirai += r.packets;
      by_country[classify::country_to_string(r.key.country)] += r.packets;
    }
  }
  std::string sensor_list;
  for (const auto& s : sensors) sensor_list += (sensor_list.empty() ? "" : ", ") + s;

  out << "Teiten summary\n"
      << "  sensor(s)   " << sensor_list << "\n"
      << "  period      " << bucket::format_rfc3339(first) << " .. " << bucket::format_rfc3339(last)
      << " (" << buckets.size() << " buckets of " << width << " s, " << empty << " empty)\n"
      << "  packets     "
      << observed + not_for_sensor + self + loss.malformed_total() + loss.ring_drops +
             loss.kernel_drops
      << " = observed " << observed << " + not for sensor " << not_for_sensor << " + self traffic "
      << self << " + malformed " << loss.malformed_total() << " + ring drops " << loss.ring_drops
      << " + kernel drops " << loss.kernel_drops << " (interface drops " << loss.interface_drops
      << " beside)\n\n";

  std::vector<std::pair<std::string, AllMirai>> dests(by_dest.begin(), by_dest.end());
  std::sort(dests.begin(), dests.end(), [](const auto& a, const auto& b) {
    return a.second.all != b.second.all ? a.second.all > b.second.all : a.first < b.first;
  });
  out << "TOP " << std::min(top, dests.size()) << " destinations\n"
      << "  " << pad("rank", 4) << "  " << pad("destination", 14, false) << pad("ALL", 12)
      << pad("Mirai-type", 12) << pad("ratio", 9) << pad("share", 9) << "\n";
  for (std::size_t i = 0; i < dests.size() && i < top; ++i) {
    const auto& [label, v] = dests[i];
    out << "  " << pad(num(i + 1), 4) << "  " << pad(label, 14, false) << pad(num(v.all), 12)
        << pad(num(v.mirai), 12) << pad(pct(v.mirai, v.all), 9) << pad(pct(v.all, observed), 9)
        << "\n";
  }

  std::vector<std::pair<std::string, std::uint64_t>> countries(by_country.begin(),
                                                               by_country.end());
  std::sort(countries.begin(), countries.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  out << "\nTOP " << std::min(top, countries.size()) << " source countries\n";
  for (std::size_t i = 0; i < countries.size() && i < top; ++i) {
    out << "  " << pad(num(i + 1), 4) << "  " << pad(countries[i].first, 4, false)
        << pad(num(countries[i].second), 12) << pad(pct(countries[i].second, observed), 9) << "\n";
  }

  out << "\nLoss and accounting\n"
      << "  ring drops        " << loss.ring_drops << "\n"
      << "  kernel drops      " << loss.kernel_drops << "\n"
      << "  interface drops   " << loss.interface_drops << "\n"
      << "  overflow packets  " << loss.overflow_packets << " (counted, detail folded)\n"
      << "  late packets      " << late << " (counted in a later bucket)\n"
      << "  malformed         " << loss.malformed_total() << "\n";
  for (std::size_t i = 1; i < loss.malformed.size(); ++i) {
    if (loss.malformed[i]) {
      out << "    " << pad(std::string{to_string(static_cast<decode::DecodeStatus>(i))}, 28, false)
          << loss.malformed[i] << "\n";
    }
  }
}

}  // namespace teiten::ctl

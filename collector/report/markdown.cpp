// SPDX-License-Identifier: Apache-2.0
#include <sstream>

#include "collector/report/format.h"
#include "collector/report/report.h"

namespace teiten::collector {

using namespace report_format;

std::string report_markdown(const Report& r) {
  std::ostringstream o;
  const std::string fpn = fingerprint_name(r.fingerprint);
  o << "# Teiten report: " << range_title(r) << "\n\n";
  o << "## Notable changes\n\n"
    << (r.events_note.empty() ? events::events_markdown(r.events) : r.events_note + "\n") << "\n";
  o << "## 1. Destination ports of packets from " << r.request.country << ", TOP" << r.request.top
    << " by " << (r.request.rank == "all" ? std::string{"ALL"} : fpn) << " packets\n\n";
  if (r.table.empty()) {
    o << "No packets from " << r.request.country << " in this range.\n\n";
  } else {
    o << "| |";
    for (const auto& p : r.table) o << " " << p.dest.label() << " |";
    o << "\n|---|";
    for (std::size_t i = 0; i < r.table.size(); ++i) o << "---:|";
    o << "\n| ALL |";
    for (const auto& p : r.table) o << " " << p.all << " |";
    o << "\n| " << fpn << " |";
    for (const auto& p : r.table) o << " " << p.fingerprinted << " |";
    o << "\n| ratio |";
    for (const auto& p : r.table) o << " " << percent(p.fingerprinted, p.all) << " |";
    o << "\n| unique hosts (ALL) |";
    for (const auto& p : r.table) o << " " << p.hosts_all << " |";
    o << "\n| unique hosts (" << fpn << ") |";
    for (const auto& p : r.table) o << " " << p.hosts_fingerprinted << " |";
    o << "\n\n";
  }
  o << "## 2. Daily packets of those ports from " << r.request.country << " (ALL / " << fpn
    << ")\n\n| day |";
  for (const auto& p : r.table)
    o << " " << p.dest.label() << " ALL | " << p.dest.label() << " " << fpn << " |";
  o << "\n|---|";
  for (std::size_t i = 0; i < r.table.size(); ++i) o << "---:|---:|";
  o << "\n";
  for (std::size_t d = 0; !r.daily.empty() && d < r.daily[0].size(); ++d) {
    o << "| " << day_string(r.daily[0][d].day) << " |";
    for (const auto& s : r.daily) o << " " << s[d].all << " | " << s[d].fingerprinted << " |";
    o << "\n";
  }
  o << "\n## 3. Average packets one sensor received per day\n\n";
  o << "| month | domestic | a year earlier | overseas | a year earlier | domestic sensor-days | "
       "overseas sensor-days |\n|---|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& m : r.months) {
    o << "| " << month_string(m.year, m.month) << " | " << avg_cell(m.domestic) << " | "
      << avg_cell(m.domestic_year_before) << " | " << avg_cell(m.overseas) << " | "
      << avg_cell(m.overseas_year_before) << " | " << coverage(m.domestic) << " | "
      << coverage(m.overseas) << " |\n";
  }
  o << "\n";
  if (any_incomplete(r)) {
    o << "\\* incomplete coverage: the sensors were observed on fewer days than the registry "
         "expects (sensor-days observed/expected).\n\n";
  }
  o << "## 4. Per-sensor TOP" << r.request.sensor_top << "\n\n";
  for (const auto& s : r.sensors) {
    o << "### " << s.sensor << " (" << s.region << (s.label.empty() ? "" : ", " + s.label)
      << ")\n\n";
    if (s.top.empty()) {
      o << "No packets in this range.\n\n";
      continue;
    }
    o << "| # | destination | packets | share |\n|---:|---|---:|---:|\n";
    for (std::size_t i = 0; i < s.top.size(); ++i)
      o << "| " << i + 1 << " | " << s.top[i].first.label() << " | " << s.top[i].second << " | "
        << percent(s.top[i].second, s.total) << " |\n";
    o << "\n";
  }
  o << "## 5. Weekly packets per port (all sources, ALL / " << fpn << ")\n\n| week of |";
  for (const auto& d : r.weekly_ports) o << " " << d.label() << " |";
  o << "\n|---|";
  for (std::size_t i = 0; i < r.weekly_ports.size(); ++i) o << "---:|";
  o << "\n";
  for (std::size_t w = 0; !r.weekly.empty() && w < r.weekly[0].size(); ++w) {
    o << "| " << day_string(r.weekly[0][w].week_start) << " |";
    for (const auto& s : r.weekly) o << " " << s[w].all << " / " << s[w].fingerprinted << " |";
    o << "\n";
  }
  o << "\n## Sensor coverage and health\n\n| sensor | region | last bucket end | days observed | "
       "observed packets | lost packets |\n|---|---|---|---:|---:|---:|\n";
  for (const auto& h : r.health)
    o << "| " << h.sensor << " | " << h.region << " | "
      << (h.last_end ? time_string(*h.last_end) : std::string{"never"}) << " | "
      << fmt_avg(h.days_observed) << " | " << h.observed_packets << " | " << h.lost_packets
      << " |\n";
  return o.str();
}

}  // namespace teiten::collector

// SPDX-License-Identifier: Apache-2.0
#include <nlohmann/json.hpp>

#include "collector/report/format.h"
#include "collector/report/report.h"

namespace teiten::collector {

using namespace report_format;

namespace {
nlohmann::json region_json(const RegionMonth& m) {
  return {{"packets", m.packets},
          {"sensor_days", std::round(m.sensor_days * 10) / 10},
          {"expected_sensor_days", std::round(m.expected_sensor_days * 10) / 10},
          {"average", m.sensor_days > 0 ? nlohmann::json(std::round(m.average() * 10) / 10)
                                        : nlohmann::json()},
          {"complete", m.complete()}};
}
}  // namespace

std::string report_json(const Report& r) {
  nlohmann::json j;
  j["time_zone"] = r.time_zone;
  j["from"] = day_string(r.request.day_from);
  j["to"] = day_string(r.request.day_to);
  j["country"] = r.request.country;
  j["rank"] = r.request.rank;
  j["fingerprint"] = r.fingerprint;
  j["events"] = events::events_array(r.events);
  if (!r.events_note.empty()) j["events_note"] = r.events_note;
  j["ports"] = nlohmann::json::array();
  for (std::size_t i = 0; i < r.table.size(); ++i) {
    const auto& p = r.table[i];
    nlohmann::json daily = nlohmann::json::array();
    for (const auto& d : r.daily[i])
      daily.push_back(
          {{"day", day_string(d.day)}, {"all", d.all}, {"fingerprinted", d.fingerprinted}});
    j["ports"].push_back(
        {{"destination", p.dest.label()},
         {"proto", p.dest.proto},
         {"port", p.dest.port < 0 ? nlohmann::json() : nlohmann::json(p.dest.port)},
         {"all", p.all},
         {"fingerprinted", p.fingerprinted},
         {"ratio", percent(p.fingerprinted, p.all)},
         {"unique_hosts_all", p.hosts_all},
         {"unique_hosts_fingerprinted", p.hosts_fingerprinted},
         {"daily", daily}});
  }
  j["months"] = nlohmann::json::array();
  for (const auto& m : r.months)
    j["months"].push_back({{"month", month_string(m.year, m.month)},
                           {"domestic", region_json(m.domestic)},
                           {"overseas", region_json(m.overseas)},
                           {"domestic_year_before", region_json(m.domestic_year_before)},
                           {"overseas_year_before", region_json(m.overseas_year_before)}});
  j["sensors"] = nlohmann::json::array();
  for (const auto& s : r.sensors) {
    nlohmann::json top = nlohmann::json::array();
    for (const auto& [d, n] : s.top)
      top.push_back({{"destination", d.label()}, {"packets", n}, {"share", percent(n, s.total)}});
    j["sensors"].push_back({{"sensor", s.sensor},
                            {"label", s.label},
                            {"region", s.region},
                            {"total", s.total},
                            {"top", top}});
  }
  j["weekly"] = nlohmann::json::array();
  for (std::size_t i = 0; i < r.weekly_ports.size(); ++i) {
    nlohmann::json weeks = nlohmann::json::array();
    for (const auto& w : r.weekly[i])
      weeks.push_back({{"week_of", day_string(w.week_start)},
                       {"all", w.all},
                       {"fingerprinted", w.fingerprinted}});
    j["weekly"].push_back({{"destination", r.weekly_ports[i].label()}, {"weeks", weeks}});
  }
  j["health"] = nlohmann::json::array();
  for (const auto& h : r.health)
    j["health"].push_back({{"sensor", h.sensor},
                           {"label", h.label},
                           {"region", h.region},
                           {"last_bucket_end", h.last_end ? nlohmann::json(time_string(*h.last_end))
                                                          : nlohmann::json()},
                           {"days_observed", std::round(h.days_observed * 10) / 10},
                           {"observed_packets", h.observed_packets},
                           {"lost_packets", h.lost_packets}});
  return j.dump(1) + "\n";
}

}  // namespace teiten::collector

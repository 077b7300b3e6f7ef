// SPDX-License-Identifier: Apache-2.0
#include <sstream>

#include "collector/report/format.h"
#include "collector/report/report.h"

namespace teiten::collector {

using namespace report_format;

namespace {
std::string csv(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (const char c : s) {
    if (c == '"') o += '"';
    o += c;
  }
  return o + "\"";
}
}  // namespace

std::string report_csv(const Report& r) {
  std::ostringstream o;
  const std::string fpn = fingerprint_name(r.fingerprint);
  auto line = [&](const std::string& a, const std::string& subject, const std::string& period,
                  const std::string& series, const std::string& value) {
    o << a << "," << csv(subject) << "," << csv(period) << "," << csv(series) << "," << csv(value)
      << "\n";
  };
  o << "analysis,subject,period,series,value\n";
  const std::string range = day_string(r.request.day_from) + "/" + day_string(r.request.day_to);
  for (std::size_t i = 0; i < r.events.size(); ++i) {
    const auto& e = r.events[i];
    const std::string day = day_string(e.day);
    const std::string n = "#" + std::to_string(i + 1);
    line("events", n, day, "sentence", e.sentence);
    line("events", n, day, "kind", std::string{events::to_string(e.kind)});
    line("events", n, day, "destination", e.dest.label());
    line("events", n, day, "fingerprint", e.fingerprint.empty() ? "all" : e.fingerprint);
    line("events", n, day, "country", e.country.empty() ? "all" : e.country);
    line("events", n, day, "scope", e.scope);
    line("events", n, day, "before", fmt_avg(e.before));
    line("events", n, day, "after", fmt_avg(e.after));
    line("events", n, day, "score", fmt_avg(e.score));
  }
  for (const auto& p : r.table) {
    const std::string l = p.dest.label();
    line("ports", l, range, "ALL", std::to_string(p.all));
    line("ports", l, range, fpn, std::to_string(p.fingerprinted));
    line("ports", l, range, "ratio", percent(p.fingerprinted, p.all));
    line("ports", l, range, "unique hosts (ALL)", std::to_string(p.hosts_all));
    line("ports", l, range, "unique hosts (" + fpn + ")", std::to_string(p.hosts_fingerprinted));
  }
  for (std::size_t i = 0; i < r.table.size(); ++i)
    for (const auto& d : r.daily[i]) {
      line("daily", r.table[i].dest.label(), day_string(d.day), "ALL", std::to_string(d.all));
      line("daily", r.table[i].dest.label(), day_string(d.day), fpn,
           std::to_string(d.fingerprinted));
    }
  for (const auto& m : r.months) {
    const std::string ms = month_string(m.year, m.month);
    const std::string prev = month_string(m.year - 1, m.month);
    auto region = [&](const std::string& name, const RegionMonth& x, const std::string& period) {
      line("monthly", name, period, "average per sensor-day",
           x.sensor_days > 0 ? fmt_avg(x.average()) : "-");
      line("monthly", name, period, "packets", std::to_string(x.packets));
      line("monthly", name, period, "sensor-days observed", fmt_avg(x.sensor_days));
      line("monthly", name, period, "sensor-days expected", fmt_avg(x.expected_sensor_days));
      line("monthly", name, period, "complete", x.complete() ? "yes" : "no");
    };
    region("domestic", m.domestic, ms);
    region("overseas", m.overseas, ms);
    region("domestic", m.domestic_year_before, prev);
    region("overseas", m.overseas_year_before, prev);
  }
  for (const auto& s : r.sensors)
    for (std::size_t i = 0; i < s.top.size(); ++i) {
      line("sensor_top", s.sensor, range, std::to_string(i + 1) + " " + s.top[i].first.label(),
           std::to_string(s.top[i].second));
    }
  for (std::size_t i = 0; i < r.weekly_ports.size(); ++i)
    for (const auto& w : r.weekly[i]) {
      line("weekly", r.weekly_ports[i].label(), day_string(w.week_start), "ALL",
           std::to_string(w.all));
      line("weekly", r.weekly_ports[i].label(), day_string(w.week_start), fpn,
           std::to_string(w.fingerprinted));
    }
  for (const auto& h : r.health) {
    line("health", h.sensor, range, "last bucket end",
         h.last_end ? time_string(*h.last_end) : "never");
    line("health", h.sensor, range, "days observed", fmt_avg(h.days_observed));
    line("health", h.sensor, range, "observed packets", std::to_string(h.observed_packets));
    line("health", h.sensor, range, "lost packets", std::to_string(h.lost_packets));
  }
  return o.str();
}

}  // namespace teiten::collector

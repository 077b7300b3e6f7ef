// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include <sstream>

#include "collector/report/format.h"
#include "collector/report/report.h"
#include "collector/report/svg_chart.h"

namespace teiten::collector {

using namespace report_format;
using svg::chart;
using svg::esc;
using svg::Series;

namespace {

std::string cell(const std::string& key, const std::string& value) {
  return "<td data-k=\"" + esc(key) + "\">" + esc(value) + "</td>";
}

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px "
    "8px}td{text-align:right}td:first-child,th{text-align:left}"
    "figure{margin:1em 0}.note{color:#666;font-size:90%}form input{margin-right:1em}";

}  // namespace

std::string report_html(const Report& r, bool dashboard) {
  const std::string fpn = fingerprint_name(r.fingerprint);
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Teiten "
    << (dashboard ? "dashboard" : "report") << ": " << esc(range_title(r))
    << "</title><link rel=\"icon\" href=\"data:,\"><style>" << kStyle << "</style></head><body>\n";
  o << "<h1>Teiten " << (dashboard ? "dashboard" : "report") << "</h1><p>" << esc(range_title(r))
    << "</p>\n";
  if (dashboard) {
    o << "<form method=\"get\" action=\"/\">from <input name=\"from\" type=\"date\" value=\""
      << day_string(r.request.day_from) << "\">to <input name=\"to\" type=\"date\" value=\""
      << day_string(r.request.day_to) << "\">country <input name=\"country\" size=\"2\" value=\""
      << esc(r.request.country) << "\"><input type=\"submit\" value=\"show\"></form>\n";
    o << "<h2>Sensor coverage and health</h2><p class=\"note\">updated <span id=\"health-updated\">"
         "(loading)</span></p><table><thead><tr><th>sensor</th><th>region</th><th>last bucket end"
         "</th><th>days observed</th><th>observed packets</th><th>lost packets</th></tr></thead>"
         "<tbody id=\"health\"></tbody></table>\n";
  }
  o << "<h2>Notable changes</h2>\n";
  if (!r.events_note.empty()) {
    o << "<p id=\"events-note\">" << esc(r.events_note) << "</p>\n";
  } else if (r.events.empty()) {
    o << "<p id=\"events-none\">No notable changes began in this range.</p>\n";
  } else {
    o << "<ol id=\"events\">";
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      const auto& e = r.events[i];
      o << "<li data-kind=\"" << esc(std::string{events::to_string(e.kind)}) << "\" data-day=\""
        << day_string(e.day) << "\" data-destination=\"" << esc(e.dest.label()) << "\"><b>"
        << day_string(e.day) << "</b> " << esc(e.sentence) << "</li>";
    }
    o << "</ol>\n";
  }
  o << "<h2>1. Destination ports of packets from " << esc(r.request.country) << "</h2>\n";
  if (r.table.empty()) {
    o << "<p>No packets from " << esc(r.request.country) << " in this range.</p>\n";
  } else {
    o << "<table id=\"ports\"><tr><th></th>";
    for (const auto& p : r.table) o << "<th>" << esc(p.dest.label()) << "</th>";
    auto row = [&](const std::string& name, const std::string& key, auto value) {
      o << "<tr><th>" << esc(name) << "</th>";
      for (const auto& p : r.table) o << cell("ports/" + p.dest.label() + "/" + key, value(p));
      o << "</tr>";
    };
    o << "</tr>";
    row("ALL", "all", [](const PortRow& p) { return std::to_string(p.all); });
    row(fpn, "fingerprinted", [](const PortRow& p) { return std::to_string(p.fingerprinted); });
    row("ratio", "ratio", [](const PortRow& p) { return percent(p.fingerprinted, p.all); });
    row("unique hosts (ALL)", "unique_hosts_all",
        [](const PortRow& p) { return std::to_string(p.hosts_all); });
    row("unique hosts (" + fpn + ")", "unique_hosts_fingerprinted",
        [](const PortRow& p) { return std::to_string(p.hosts_fingerprinted); });
    o << "</table>\n";
    std::vector<std::string> days;
    for (const auto& d : r.daily[0]) days.push_back(day_string(d.day).substr(5));
    std::vector<Series> all, fp;
    for (std::size_t i = 0; i < r.table.size(); ++i) {
      Series a{r.table[i].dest.label(), {}}, f{r.table[i].dest.label(), {}};
      for (const auto& d : r.daily[i]) {
        a.values.push_back(static_cast<double>(d.all));
        f.values.push_back(static_cast<double>(d.fingerprinted));
      }
      all.push_back(std::move(a));
      fp.push_back(std::move(f));
    }
    // The days the notable changes of these ports name.
    std::vector<svg::Mark> marks;
    for (std::size_t k = 0; k < r.events.size(); ++k) {
      const auto& e = r.events[k];
      const bool shown = std::any_of(r.table.begin(), r.table.end(),
                                     [&](const PortRow& p) { return p.dest == e.dest; });
      if (shown && e.day >= r.request.day_from && e.day <= r.request.day_to)
        marks.push_back({static_cast<std::size_t>(e.day - r.request.day_from),
                         std::to_string(k + 1), e.sentence});
    }
    o << chart("daily-all", "Figure 1. Daily packets from " + r.request.country + " (ALL)", days,
               all, false, marks);
    o << chart("daily-fingerprinted",
               "Figure 2. Daily packets from " + r.request.country + " (" + fpn + ")", days, fp,
               false, marks);
  }
  o << "<h2>2. Average packets one sensor received per day</h2>\n<table id=\"months\"><tr><th>month"
       "</th><th>domestic</th><th>a year earlier</th><th>overseas</th><th>a year earlier</th>"
       "<th>domestic sensor-days</th><th>overseas sensor-days</th></tr>";
  std::vector<std::string> months;
  Series dom{"domestic", {}}, dom_prev{"domestic, a year earlier", {}}, ovs{"overseas", {}},
      ovs_prev{"overseas, a year earlier", {}};
  for (const auto& m : r.months) {
    const std::string ms = month_string(m.year, m.month);
    months.push_back(ms);
    o << "<tr><th>" << ms << "</th>" << cell("months/" + ms + "/domestic", avg_cell(m.domestic))
      << cell("months/" + ms + "/domestic_year_before", avg_cell(m.domestic_year_before))
      << cell("months/" + ms + "/overseas", avg_cell(m.overseas))
      << cell("months/" + ms + "/overseas_year_before", avg_cell(m.overseas_year_before))
      << cell("months/" + ms + "/domestic_coverage", coverage(m.domestic))
      << cell("months/" + ms + "/overseas_coverage", coverage(m.overseas)) << "</tr>";
    dom.values.push_back(m.domestic.average());
    dom_prev.values.push_back(m.domestic_year_before.average());
    ovs.values.push_back(m.overseas.average());
    ovs_prev.values.push_back(m.overseas_year_before.average());
  }
  o << "</table>";
  if (any_incomplete(r))
    o << "<p class=\"note\">* incomplete coverage (sensor-days observed/expected)</p>";
  o << "\n";
  o << chart("monthly-domestic", "Figure 3. Domestic sensors: packets per sensor per day", months,
             {dom, dom_prev}, true);
  o << chart("monthly-overseas", "Figure 4. Overseas sensors: packets per sensor per day", months,
             {ovs, ovs_prev}, true);
  o << "<h2>3. Per-sensor TOP" << r.request.sensor_top << "</h2>\n";
  for (const auto& s : r.sensors) {
    o << "<h3>" << esc(s.sensor) << " (" << esc(s.region)
      << (s.label.empty() ? "" : ", " + esc(s.label)) << ")</h3>";
    if (s.top.empty()) {
      o << "<p>No packets in this range.</p>\n";
      continue;
    }
    o << "<table "
         "class=\"sensor-top\"><tr><th>#</th><th>destination</th><th>packets</th><th>share</th></"
         "tr>";
    for (std::size_t i = 0; i < s.top.size(); ++i) {
      const std::string k = "sensors/" + s.sensor + "/" + std::to_string(i + 1);
      o << "<tr><td>" << i + 1 << "</td>" << cell(k + "/destination", s.top[i].first.label())
        << cell(k + "/packets", std::to_string(s.top[i].second))
        << cell(k + "/share", percent(s.top[i].second, s.total)) << "</tr>";
    }
    o << "</table>\n";
  }
  o << "<h2>4. Weekly packets per port (all sources)</h2>\n";
  for (std::size_t i = 0; i < r.weekly_ports.size(); ++i) {
    std::vector<std::string> weeks;
    Series a{"ALL", {}}, f{fpn, {}};
    for (const auto& w : r.weekly[i]) {
      weeks.push_back(day_string(w.week_start).substr(5));
      a.values.push_back(static_cast<double>(w.all));
      f.values.push_back(static_cast<double>(w.fingerprinted));
    }
    std::vector<svg::Mark> marks;
    for (std::size_t k = 0; k < r.events.size(); ++k) {
      const auto& e = r.events[k];
      if (e.dest != r.weekly_ports[i]) continue;
      for (std::size_t w = 0; w < r.weekly[i].size(); ++w)
        if (e.day >= r.weekly[i][w].week_start && e.day < r.weekly[i][w].week_start + 7)
          marks.push_back({w, std::to_string(k + 1), e.sentence});
    }
    o << chart("weekly-" + r.weekly_ports[i].label(),
               "Weekly packets to " + r.weekly_ports[i].label(), weeks, {a, f}, false, marks);
  }
  if (!dashboard) {
    o << "<h2>Sensor coverage and health</h2><table><tr><th>sensor</th><th>region</th><th>last "
         "bucket "
         "end</th><th>days observed</th><th>observed packets</th><th>lost packets</th></tr>";
    for (const auto& h : r.health) {
      const std::string k = "health/" + h.sensor + "/";
      o << "<tr><td>" << esc(h.sensor) << "</td><td>" << esc(h.region) << "</td>"
        << cell(k + "last_bucket_end", h.last_end ? time_string(*h.last_end) : "never")
        << cell(k + "days_observed", fmt_avg(h.days_observed))
        << cell(k + "observed_packets", std::to_string(h.observed_packets))
        << cell(k + "lost_packets", std::to_string(h.lost_packets)) << "</tr>";
    }
    o << "</table>\n";
  } else {
    o << "<script src=\"/dashboard.js\"></script>\n";
  }
  o << "<p class=\"note\">Teiten. Ratios and averages are computed from the counts "
       "shown.</p></body></html>\n";
  return o.str();
}

}  // namespace teiten::collector

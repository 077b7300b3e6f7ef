// SPDX-License-Identifier: Apache-2.0
#include "collector/report/format.h"
#include "collector/report/report.h"

#include <date/date.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::collector {

using namespace report_format;

namespace {

constexpr std::int64_t kMaxReportDays = 3660;  // ten years: bounds the work of one request

// A YYYY-MM-DD date as days since 1970 (the bucket format's strict parser: 31 February
// and the like are refused).
std::optional<std::int64_t> parse_day(const std::string& s) {
  if (s.size() != 10) return std::nullopt;
  const auto t = bucket::parse_rfc3339(s + "T00:00:00Z");
  if (!t) return std::nullopt;
  return *t / 86400;
}

struct Pair {
  std::uint64_t all = 0, fp = 0;
};

// Sums sensor_days over [a, b] per region.
struct CoverageRow {
  std::string sensor;
  std::int64_t day;
  std::int64_t covered_s;
  std::uint64_t observed;
};

bool wanted(const ReportRequest& r, const std::string& sensor) {
  return r.sensors.empty() ||
         std::find(r.sensors.begin(), r.sensors.end(), sensor) != r.sensors.end();
}

RegionMonth region_figures(const std::vector<CoverageRow>& cov, const CollectorConfig& config,
                           const ReportRequest& req, const std::string& region, std::int64_t a,
                           std::int64_t b) {
  RegionMonth r;
  for (const auto& c : cov) {
    if (c.day < a || c.day > b || !wanted(req, c.sensor)) continue;
    const RegisteredSensor* s = config.find_sensor(c.sensor);
    if (!s || s->region != region) continue;
    r.packets += c.observed;
    r.sensor_days += static_cast<double>(std::min<std::int64_t>(c.covered_s, 86400)) / 86400.0;
  }
  for (const auto& s : config.sensors) {
    if (s.region != region || !wanted(req, s.id)) continue;
    const std::int64_t from = std::max(a, s.active_from / 86400);
    const std::int64_t to = s.active_to ? std::min(b, *s.active_to / 86400 - 1) : b;
    if (to >= from) r.expected_sensor_days += static_cast<double>(to - from + 1);
  }
  return r;
}

}  // namespace

ReportRequest parse_report_request(const std::vector<std::pair<std::string, std::string>>& params,
                                   const Store& storage) {
  ReportRequest r;
  std::optional<std::int64_t> from, to;
  for (const auto& [k, v] : params) {
    if (k == "from" || k == "to") {
      const auto d = parse_day(v);
      if (!d) throw std::invalid_argument(k + ": '" + v + "' is not a date (YYYY-MM-DD)");
      (k == "from" ? from : to) = d;
    } else if (k == "quarter") {
      int y = 0;
      unsigned q = 0;
      char tail = 0;
      if (v.size() != 6 || std::sscanf(v.c_str(), "%4dQ%1u%c", &y, &q, &tail) != 2 || q < 1 ||
          q > 4)
        throw std::invalid_argument("quarter: '" + v + "' is not a quarter such as 2022Q2");
      const date::year_month_day first{date::year{y}, date::month{3 * q - 2}, date::day{1}};
      from = days_of(first);
      to = days_of(first + date::months{3}) - 1;
    } else if (k == "country") {
      if (v.size() != 2 || !std::isupper(static_cast<unsigned char>(v[0])) ||
          !std::isupper(static_cast<unsigned char>(v[1])))
        throw std::invalid_argument("country: '" + v + "' is not a two-letter code such as JP");
      r.country = v;
    } else if (k == "rank") {
      if (v != "all" && v != "mirai" && v != "masscan" && v != "zmap")
        throw std::invalid_argument("rank: '" + v + "' is not all, mirai, masscan or zmap");
      r.rank = v;
    } else if (k == "top" || k == "sensor_top") {
      if (v.empty() || v.size() > 3 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) < 1 || std::stoul(v) > 100)
        throw std::invalid_argument(k + ": '" + v + "' is not a number from 1 to 100");
      (k == "top" ? r.top : r.sensor_top) = std::stoul(v);
    } else if (k == "sensors") {
      for (std::size_t p = 0; p <= v.size();) {
        const auto comma = std::min(v.find(',', p), v.size());
        if (comma == p) throw std::invalid_argument("sensors: expected id,id,...");
        const std::string id = v.substr(p, comma - p);
        if (std::find(r.sensors.begin(), r.sensors.end(), id) == r.sensors.end())
          r.sensors.push_back(id);
        if (r.sensors.size() > 1000) throw std::invalid_argument("sensors: more than 1000");
        p = comma + 1;
      }
    } else if (k == "events") {
      if (v != "yes" && v != "no") throw std::invalid_argument("events: 'yes' or 'no'");
      r.events = v == "yes";
    } else if (k == "tz") {
      if (v != storage.time_zone())
        throw std::invalid_argument("tz: this collector cuts days in " + storage.time_zone() +
                                    " (reports.time_zone in its configuration), not '" + v + "'");
    } else if (k != "format") {
      throw std::invalid_argument("unknown parameter '" + k + "'");
    }
  }
  if (!from || !to) throw std::invalid_argument("give from and to (YYYY-MM-DD), or quarter");
  if (*to < *from) throw std::invalid_argument("to is before from");
  if (*to - *from >= kMaxReportDays)
    throw std::invalid_argument("a report covers at most 3660 days");
  r.day_from = *from;
  r.day_to = *to;
  return r;
}

Report build_report(Store& storage, const CollectorConfig& config, const ReportRequest& req,
                    events::EventsCache* cache) {
  Report rep;
  rep.time_zone = storage.time_zone();
  rep.request = req;
  rep.fingerprint = req.rank == "all" ? "mirai" : req.rank;
  config.require_registered(req.sensors);

  // The daily rollups of the range summed by destination, per day and per sensor (the
  // store sums millions of rows where they are); destinations coded as integers here.
  std::unordered_map<std::uint32_t, Pair> ct, at;
  std::unordered_map<std::uint64_t, Pair> cd, ad;  // code << 32 | day offset
  std::map<std::string, std::unordered_map<std::uint32_t, std::uint64_t>, std::less<>> ps;
  DailySumsQuery dq{req.day_from, req.day_to, req.country, rep.fingerprint, req.sensors};
  storage.daily_sums(dq, [&](const DailySums& r) {
    const std::uint32_t code = destination_code(r.proto, r.port);
    if (r.day < 0) {
      auto it = ps.find(r.sensor);
      if (it == ps.end()) it = ps.try_emplace(std::string{r.sensor}).first;
      it->second[code] += r.all;
      return;
    }
    const std::uint64_t daykey =
        (std::uint64_t{code} << 32) | static_cast<std::uint64_t>(r.day - req.day_from);
    for (Pair* p : {&at[code], &ad[daykey]}) {
      p->all += r.all;
      p->fp += r.fingerprinted;
    }
    if (r.country_all) {
      for (Pair* p : {&ct[code], &cd[daykey]}) {
        p->all += r.country_all;
        p->fp += r.country_fingerprinted;
      }
    }
  });
  // Back to destinations, in their order (ties then rank the same way every time).
  std::map<Destination, Pair> country_totals, all_totals;
  std::map<std::string, std::map<Destination, std::uint64_t>> per_sensor;
  std::map<std::pair<Destination, std::int64_t>, Pair> country_daily, all_daily;
  for (const auto& [c, v] : ct) country_totals[destination_of(c)] = v;
  for (const auto& [c, v] : at) all_totals[destination_of(c)] = v;
  for (const auto& [k, v] : cd)
    country_daily[{destination_of(k >> 32),
                   req.day_from + static_cast<std::int64_t>(k & 0xFFFFFFFF)}] = v;
  for (const auto& [k, v] : ad)
    all_daily[{destination_of(k >> 32), req.day_from + static_cast<std::int64_t>(k & 0xFFFFFFFF)}] =
        v;
  for (const auto& [sensor, sums] : ps)
    for (const auto& [c, v] : sums)
      if (v) per_sensor[sensor][destination_of(c)] = v;

  // Table 1: ranked by ALL or by the fingerprint; ties by destination, for stable output.
  std::vector<std::pair<Destination, Pair>> ranked(country_totals.begin(), country_totals.end());
  const bool by_all = req.rank == "all";
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& x, const auto& y) {
    return (by_all ? x.second.all : x.second.fp) > (by_all ? y.second.all : y.second.fp);
  });
  for (const auto& [d, v] : ranked) {
    if (rep.table.size() == req.top || (!by_all && v.fp == 0)) break;
    PortRow row{d, v.all, v.fp, 0, 0};
    sketch::HostSketch all, fp;
    // TCP and UDP match their port (-1: fragments without one); ICMP and others any.
    const bool by_port = d.port >= 0 || d.proto == "tcp" || d.proto == "udp";
    storage.scan_daily_hosts(req.day_from, req.day_to, req.country, d.proto,
                             by_port ? std::optional<std::int64_t>{d.port} : std::nullopt,
                             req.sensors, [&](const DailyHosts& h) {
                               std::string why;
                               const auto s = sketch::HostSketch::decode(h.hosts, &why);
                               if (!s) throw std::runtime_error("stored host sketch: " + why);
                               all.merge(*s);
                               if (h.fingerprint == rep.fingerprint) fp.merge(*s);
                             });
    row.hosts_all = all.count();
    row.hosts_fingerprinted = fp.count();
    rep.table.push_back(row);
  }
  for (const auto& row : rep.table) {
    std::vector<DailyPoint> series;
    for (std::int64_t day = req.day_from; day <= req.day_to; ++day) {
      const auto it = country_daily.find({row.dest, day});
      series.push_back(it == country_daily.end() ? DailyPoint{day, 0, 0}
                                                 : DailyPoint{day, it->second.all, it->second.fp});
    }
    rep.daily.push_back(std::move(series));
  }

  // Figures 3 and 4: per calendar month of the range, and the same days a year earlier.
  std::vector<CoverageRow> cov;
  const std::int64_t year_before_from =
      days_of(ymd_of(req.day_from) - date::years{1}) - 1;  // (29 February: a day earlier)
  for (auto& d : storage.sensor_days(year_before_from, req.day_to))
    if (wanted(req, d.sensor))
      cov.push_back({std::move(d.sensor), d.day, d.covered_s, d.observed_packets});
  for (auto ym = ymd_of(req.day_from).year() / ymd_of(req.day_from).month();
       days_of(ym / date::day{1}) <= req.day_to; ym += date::months{1}) {
    MonthRow m;
    m.year = static_cast<int>(ym.year());
    m.month = static_cast<unsigned>(ym.month());
    const std::int64_t a = std::max(req.day_from, days_of(ym / date::day{1}));
    const std::int64_t b = std::min(req.day_to, days_of((ym + date::months{1}) / date::day{1}) - 1);
    const auto prev = ym - date::years{1};
    const std::int64_t pa = days_of(ymd_of(a) - date::years{1});
    // The same days a year earlier; a range to the end of the month ends there then too
    // (February 2025 compares with the whole of February 2024, its 29th included).
    const std::int64_t prev_last = days_of((prev + date::months{1}) / date::day{1}) - 1;
    const bool to_month_end = b == days_of((ym + date::months{1}) / date::day{1}) - 1;
    const auto b_before = ymd_of(b) - date::years{1};
    const std::int64_t pb =
        to_month_end ? prev_last
                     : std::min(b_before.ok() ? days_of(b_before) : prev_last, prev_last);
    m.domestic = region_figures(cov, config, req, "domestic", a, b);
    m.overseas = region_figures(cov, config, req, "overseas", a, b);
    m.domestic_year_before = region_figures(cov, config, req, "domestic", pa, pb);
    m.overseas_year_before = region_figures(cov, config, req, "overseas", pa, pb);
    rep.months.push_back(m);
  }

  // Per-sensor TOP10, registry order, then sensors the registry no longer lists.
  auto sensor_top = [&](const std::string& id, const std::string& label,
                        const std::string& region) {
    SensorTop t{id, label, region, 0, {}};
    const auto it = per_sensor.find(id);
    if (it != per_sensor.end()) {
      std::vector<std::pair<Destination, std::uint64_t>> v(it->second.begin(), it->second.end());
      for (const auto& e : v) t.total += e.second;
      std::stable_sort(v.begin(), v.end(),
                       [](const auto& x, const auto& y) { return x.second > y.second; });
      if (v.size() > req.sensor_top) v.resize(req.sensor_top);
      t.top = std::move(v);
    }
    rep.sensors.push_back(std::move(t));
  };
  for (const auto& s : config.sensors)
    if (wanted(req, s.id)) sensor_top(s.id, s.label, s.region);
  for (const auto& [id, _] : per_sensor)
    if (!config.find_sensor(id)) sensor_top(id, id, "unregistered");

  // Weekly graphs of the top ports over all sources (weeks start on Monday).
  std::vector<std::pair<Destination, Pair>> by_port(all_totals.begin(), all_totals.end());
  std::stable_sort(by_port.begin(), by_port.end(),
                   [](const auto& x, const auto& y) { return x.second.all > y.second.all; });
  const std::int64_t first_week = req.day_from - ((req.day_from + 3) % 7 + 7) % 7;
  for (std::size_t i = 0; i < by_port.size() && i < req.top; ++i) {
    rep.weekly_ports.push_back(by_port[i].first);
    std::vector<WeekPoint> weeks;
    for (std::int64_t w = first_week; w <= req.day_to; w += 7) {
      WeekPoint p{w, 0, 0};
      for (std::int64_t day = std::max(w, req.day_from); day < w + 7 && day <= req.day_to; ++day) {
        const auto it = all_daily.find({by_port[i].first, day});
        if (it == all_daily.end()) continue;
        p.all += it->second.all;
        p.fingerprinted += it->second.fp;
      }
      weeks.push_back(p);
    }
    rep.weekly.push_back(std::move(weeks));
  }

  // Coverage and health.
  std::map<std::string, SensorHealth> health;
  for (const auto& t : storage.sensor_totals(req.day_from, req.day_to)) {
    SensorHealth h;
    h.sensor = t.sensor;
    h.last_end = t.last_end;
    h.days_observed = static_cast<double>(t.covered_s) / 86400.0;
    h.observed_packets = t.observed_packets;
    h.lost_packets = t.lost_packets;
    health[h.sensor] = h;
  }
  for (const auto& s : config.sensors) {
    if (!wanted(req, s.id)) continue;
    SensorHealth h = health.count(s.id) ? health[s.id] : SensorHealth{};
    h.sensor = s.id;
    h.label = s.label;
    h.region = s.region;
    rep.health.push_back(h);
  }
  // Notable changes that began in the range (docs/notable-changes.md).
  if (req.events && !events::events_range_ok(req.day_from, req.day_to)) {
    rep.events_note = "Notable changes are found over at most " +
                      std::to_string(events::kMaxEventDays) +
                      " days at once: ask for a shorter range.";
  } else if (req.events) {
    events::EventsRequest er;
    er.day_from = req.day_from;
    er.day_to = req.day_to;
    er.country = req.country;
    er.sensors = req.sensors;
    er.settings = config.events;
    er.limit = req.events_limit;
    if (cache && req.events_cached_only) {
      if (auto found = cache->peek(config, er))
        rep.events = std::move(*found);
      else
        rep.events_note =
            "The notable changes of this range are being found: they show on a later visit.";
    } else {
      rep.events =
          cache ? cache->get(storage, config, er) : events::find_events(storage, config, er);
    }
  }
  return rep;
}
}  // namespace teiten::collector

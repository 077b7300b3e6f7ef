#include "collector/report.h"

#include <date/date.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "collector/sqlite_stmt.h"
#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::collector {
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

std::int64_t days_of(date::year_month_day ymd) {
  return date::sys_days{ymd}.time_since_epoch().count();
}

date::year_month_day ymd_of(std::int64_t day) {
  return date::year_month_day{date::sys_days{date::days{day}}};
}

std::string fingerprint_name(const std::string& fp) {
  if (fp == "mirai") return "Mirai-type";
  if (fp == "masscan") return "masscan-type";
  if (fp == "zmap") return "ZMap-type";
  return fp;
}

std::string fmt_avg(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string month_string(int y, unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", y, m);
  return buf;
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

std::string Destination::label() const {
  if (proto == "tcp" || proto == "udp") {
    std::string p = proto == "tcp" ? "TCP" : "UDP";
    return port < 0 ? p + " (no port)" : std::to_string(port) + "/" + p;
  }
  if (proto == "icmp") return "ICMP";
  if (proto == "icmpv6") return "ICMPv6";
  return "other";
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  // Hundredths of a percent, rounded half up, in integers: no binary-float surprises.
  __extension__ using u128 = unsigned __int128;
  const u128 bp = (static_cast<u128>(part) * 20000 + whole) / (2 * static_cast<u128>(whole));
  const auto v = static_cast<std::uint64_t>(bp);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%llu.%02llu%%", static_cast<unsigned long long>(v / 100),
                static_cast<unsigned long long>(v % 100));
  return buf;
}

std::string day_string(std::int64_t day) {
  const auto ymd = ymd_of(day);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

ReportRequest parse_report_request(const std::vector<std::pair<std::string, std::string>>& params,
                                   const Storage& storage) {
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

Report build_report(const Storage& storage, const CollectorConfig& config,
                    const ReportRequest& req) {
  Report rep;
  rep.time_zone = storage.time_zone();
  rep.request = req;
  rep.fingerprint = req.rank == "all" ? "mirai" : req.rank;
  sqlite3* db = storage.handle();
  for (const auto& id : req.sensors)
    if (!config.find_sensor(id))
      throw std::invalid_argument("sensors: '" + id + "' is not in the collector's registry");

  // One pass over the daily rollups of the range. Millions of rows for a network's
  // quarter: destinations are coded as integers and nothing is allocated per row.
  static constexpr const char* kProtos[] = {"tcp", "udp", "icmp", "icmpv6", "other"};
  const auto code_of = [](std::string_view proto, std::int64_t port) -> std::uint32_t {
    const std::uint32_t i = proto == "tcp"      ? 0
                            : proto == "udp"    ? 1
                            : proto == "icmp"   ? 2
                            : proto == "icmpv6" ? 3
                                                : 4;
    if (i >= 2 || port < -1 || port > 65535) port = -1;  // ICMP: every type as one entry
    return i * 65537 + static_cast<std::uint32_t>(port + 1);
  };
  const auto dest_of = [](std::uint64_t code) {
    return Destination{kProtos[code / 65537], static_cast<int>(code % 65537) - 1};
  };
  std::unordered_map<std::uint32_t, Pair> ct, at;
  std::unordered_map<std::uint64_t, Pair> cd, ad;  // code << 32 | day offset
  std::vector<std::string> sensor_names;
  std::vector<std::unordered_map<std::uint32_t, std::uint64_t>> ps;
  {
    Stmt st(db,
            "SELECT day, sensor, proto, port, country, fingerprint, packets FROM daily "
            "WHERE day >= ?1 AND day <= ?2");
    st.bind(1, req.day_from);
    st.bind(2, req.day_to);
    const auto text = [&](int col) {
      const unsigned char* t = sqlite3_column_text(st.s, col);
      return std::string_view{t ? reinterpret_cast<const char*>(t) : ""};
    };
    std::size_t sensor = 0;
    bool sensor_wanted = false;
    while (st.step(db) == SQLITE_ROW) {
      const std::string_view name = text(1);  // rows come sorted by day, then sensor
      if (sensor_names.empty() || sensor_names[sensor] != name) {
        const auto it = std::find(sensor_names.begin(), sensor_names.end(), name);
        sensor = static_cast<std::size_t>(it - sensor_names.begin());
        if (it == sensor_names.end()) {
          sensor_names.emplace_back(name);
          ps.emplace_back();
        }
        sensor_wanted = wanted(req, sensor_names[sensor]);
      }
      if (!sensor_wanted) continue;
      const auto day = static_cast<std::uint64_t>(st.i64(0) - req.day_from);
      const std::uint32_t code = code_of(text(2), st.i64(3));
      const std::uint64_t daykey = (std::uint64_t{code} << 32) | day;
      const bool fp = text(5) == rep.fingerprint;
      const auto packets = static_cast<std::uint64_t>(st.i64(6));
      const bool from_country = text(4) == req.country;
      ps[sensor][code] += packets;
      for (Pair* p : {&at[code], &ad[daykey]}) {
        p->all += packets;
        if (fp) p->fp += packets;
      }
      if (from_country) {
        for (Pair* p : {&ct[code], &cd[daykey]}) {
          p->all += packets;
          if (fp) p->fp += packets;
        }
      }
    }
  }
  // Back to destinations, in their order (ties then rank the same way every time).
  std::map<Destination, Pair> country_totals, all_totals;
  std::map<std::string, std::map<Destination, std::uint64_t>> per_sensor;
  std::map<std::pair<Destination, std::int64_t>, Pair> country_daily, all_daily;
  for (const auto& [c, v] : ct) country_totals[dest_of(c)] = v;
  for (const auto& [c, v] : at) all_totals[dest_of(c)] = v;
  for (const auto& [k, v] : cd)
    country_daily[{dest_of(k >> 32), req.day_from + static_cast<std::int64_t>(k & 0xFFFFFFFF)}] = v;
  for (const auto& [k, v] : ad)
    all_daily[{dest_of(k >> 32), req.day_from + static_cast<std::int64_t>(k & 0xFFFFFFFF)}] = v;
  for (std::size_t i = 0; i < sensor_names.size(); ++i)
    for (const auto& [c, v] : ps[i])
      if (v) per_sensor[sensor_names[i]][dest_of(c)] = v;

  // Table 1: ranked by ALL or by the fingerprint; ties by destination, for stable output.
  std::vector<std::pair<Destination, Pair>> ranked(country_totals.begin(), country_totals.end());
  const bool by_all = req.rank == "all";
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& x, const auto& y) {
    return (by_all ? x.second.all : x.second.fp) > (by_all ? y.second.all : y.second.fp);
  });
  for (const auto& [d, v] : ranked) {
    if (rep.table.size() == req.top || (!by_all && v.fp == 0)) break;
    PortRow row{d, v.all, v.fp, 0, 0};
    Stmt st(db,
            std::string{
                "SELECT fingerprint, hosts, sensor FROM daily WHERE country = ?1 AND proto = ?2"} +
                (d.port >= 0 || d.proto == "tcp" || d.proto == "udp" ? " AND port = ?3" : "") +
                " AND day >= ?4 AND day <= ?5 AND hosts IS NOT NULL");
    st.bind(1, req.country);
    st.bind(2, d.proto);
    st.bind(3, std::int64_t{d.port});  // -1: TCP/UDP without a port (fragments)
    st.bind(4, req.day_from);
    st.bind(5, req.day_to);
    sketch::HostSketch all, fp;
    while (st.step(db) == SQLITE_ROW) {
      if (!wanted(req, st.text(2))) continue;
      std::string why;
      const auto s = sketch::HostSketch::decode(st.blob(1), &why);
      if (!s) throw std::runtime_error("stored host sketch: " + why);
      all.merge(*s);
      if (st.text(0) == rep.fingerprint) fp.merge(*s);
    }
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
  {
    Stmt st(db,
            "SELECT sensor, day, covered_s, observed_packets FROM sensor_days "
            "WHERE day >= ?1 AND day <= ?2");
    st.bind(1, year_before_from);
    st.bind(2, req.day_to);
    while (st.step(db) == SQLITE_ROW)
      if (wanted(req, st.text(0)))
        cov.push_back({st.text(0), st.i64(1), st.i64(2), static_cast<std::uint64_t>(st.i64(3))});
  }
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
  {
    Stmt st(db,
            "SELECT sensor, MAX(last_end), "
            "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN MIN(covered_s, 86400) ELSE 0 END), "
            "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN observed_packets ELSE 0 END), "
            "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN lost_packets ELSE 0 END) "
            "FROM sensor_days GROUP BY sensor");
    st.bind(1, req.day_from);
    st.bind(2, req.day_to);
    while (st.step(db) == SQLITE_ROW) {
      SensorHealth h;
      h.sensor = st.text(0);
      h.last_end = st.i64(1);
      h.days_observed = static_cast<double>(st.i64(2)) / 86400.0;
      h.observed_packets = static_cast<std::uint64_t>(st.i64(3));
      h.lost_packets = static_cast<std::uint64_t>(st.i64(4));
      health[h.sensor] = h;
    }
  }
  for (const auto& s : config.sensors) {
    if (!wanted(req, s.id)) continue;
    SensorHealth h = health.count(s.id) ? health[s.id] : SensorHealth{};
    h.sensor = s.id;
    h.label = s.label;
    h.region = s.region;
    rep.health.push_back(h);
  }
  return rep;
}

// ---- Markdown ---------------------------------------------------------------------------

namespace {

std::string range_title(const Report& r) {
  return day_string(r.request.day_from) + " to " + day_string(r.request.day_to) + " (" +
         r.time_zone + ")";
}

std::string avg_cell(const RegionMonth& m) {
  if (m.sensor_days <= 0) return "-";
  return fmt_avg(m.average()) + (m.complete() ? "" : "*");
}

std::string coverage(const RegionMonth& m) {
  return fmt_avg(m.sensor_days) + "/" + fmt_avg(m.expected_sensor_days);
}

std::string time_string(std::int64_t t) {
  const auto tp = date::sys_seconds{std::chrono::seconds{t}};
  return date::format("%Y-%m-%dT%H:%M:%SZ", tp);
}

}  // namespace

std::string report_markdown(const Report& r) {
  std::ostringstream o;
  const std::string fpn = fingerprint_name(r.fingerprint);
  o << "# Teiten report: " << range_title(r) << "\n\n";
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
  o << "\n\\* incomplete coverage: the sensors were observed on fewer days than the registry "
       "expects (sensor-days observed/expected).\n\n";
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

// ---- CSV --------------------------------------------------------------------------------

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

// ---- JSON -------------------------------------------------------------------------------

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

// ---- HTML -------------------------------------------------------------------------------

namespace teiten::collector {
namespace {

std::string esc(const std::string& s) {
  std::string o;
  for (const char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct Series {
  std::string name;
  std::vector<double> values;
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string axis_label(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.0fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// A line chart (bars = false) or grouped bar chart of the series over the x labels.
std::string chart(const std::string& id, const std::string& title,
                  const std::vector<std::string>& x, const std::vector<Series>& series, bool bars) {
  constexpr double W = 760, H = 280, L = 60, R = 150, T = 30, B = 40;
  double max = 0;
  for (const auto& s : series)
    for (const double v : s.values) max = std::max(max, v);
  if (max <= 0) max = 1;
  const double pw = W - L - R, ph = H - T - B;
  const std::size_t n = std::max<std::size_t>(x.size(), 1);
  const double nd = static_cast<double>(n);
  auto d = [](std::size_t v) { return static_cast<double>(v); };
  auto ypos = [&](double v) { return T + ph - v / max * ph; };
  std::ostringstream o;
  o << "<figure><svg class=\"chart\" id=\"" << esc(id) << "\" data-chart=\"" << esc(id)
    << "\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>" << esc(title) << "</title>";
  o << "<text x=\"" << L << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << esc(title)
    << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double v = max * i / 4.0, y = ypos(v);
    o << "<line x1=\"" << L << "\" x2=\"" << L + pw << "\" y1=\"" << num(y) << "\" y2=\"" << num(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << num(y + 4)
      << "\" font-size=\"11\" text-anchor=\"end\">" << axis_label(v) << "</text>";
  }
  const std::size_t step = std::max<std::size_t>(1, n / 6);
  for (std::size_t i = 0; i < x.size(); i += step) {
    const double cx = L + (bars ? (d(i) + 0.5) * pw / nd : (n > 1 ? d(i) * pw / (nd - 1) : pw / 2));
    o << "<text x=\"" << num(cx) << "\" y=\"" << H - B + 16
      << "\" font-size=\"11\" text-anchor=\"middle\">" << esc(x[i]) << "</text>";
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    const char* color = kColors[k % std::size(kColors)];
    const auto& s = series[k];
    if (bars) {
      const double group = pw / nd, bw = group * 0.8 / d(series.size());
      o << "<g class=\"series\" data-series=\"" << esc(s.name) << "\" fill=\"" << color << "\">";
      for (std::size_t i = 0; i < s.values.size(); ++i) {
        const double bx = L + d(i) * group + group * 0.1 + d(k) * bw;
        o << "<rect x=\"" << num(bx) << "\" y=\"" << num(ypos(s.values[i])) << "\" width=\""
          << num(bw) << "\" height=\"" << num(T + ph - ypos(s.values[i])) << "\" data-value=\""
          << num(s.values[i]) << "\"><title>" << esc(s.name) << " " << esc(x[i]) << ": "
          << num(s.values[i]) << "</title></rect>";
      }
      o << "</g>";
    } else {
      o << "<polyline class=\"series\" data-series=\"" << esc(s.name)
        << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
      for (std::size_t i = 0; i < s.values.size(); ++i)
        o << (i ? " " : "") << num(L + (n > 1 ? d(i) * pw / (nd - 1) : pw / 2)) << ","
          << num(ypos(s.values[i]));
      o << "\"/>";
    }
    o << "<rect x=\"" << W - R + 10 << "\" y=\"" << T + d(k) * 18
      << "\" width=\"12\" height=\"12\" fill=\"" << color << "\"/><text x=\"" << W - R + 28
      << "\" y=\"" << T + d(k) * 18 + 10 << "\" font-size=\"12\">" << esc(s.name) << "</text>";
  }
  o << "</svg></figure>\n";
  return o.str();
}

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
    o << chart("daily-all", "Figure 1. Daily packets from " + r.request.country + " (ALL)", days,
               all, false);
    o << chart("daily-fingerprinted",
               "Figure 2. Daily packets from " + r.request.country + " (" + fpn + ")", days, fp,
               false);
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
  o << "</table><p class=\"note\">* incomplete coverage (sensor-days observed/expected)</p>\n";
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
    o << chart("weekly-" + r.weekly_ports[i].label(),
               "Weekly packets to " + r.weekly_ports[i].label(), weeks, {a, f}, false);
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

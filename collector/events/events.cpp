// SPDX-License-Identifier: Apache-2.0
#include "collector/events/events.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "collector/report/format.h"
#include "collector/report/report.h"
#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::collector::events {

namespace {

constexpr std::array<const char*, 3> kFingerprints = {"mirai", "masscan", "zmap"};
constexpr std::array<const char*, 2> kRegions = {"domestic", "overseas"};
constexpr std::int64_t kMergeDays = 2;
constexpr std::size_t kMaxEvents = 200;  // what a request may ask for, and what is cached  //
                                         // findings this close on one destination are one event

// The series kept per destination and region: ALL and each fingerprint, from all source
// countries and from each country examined on its own. A part is country << 2 |
// fingerprint: country 0 all of them, else the index of the examined one plus 1;
// fingerprint 0 ALL, else the index in kFingerprints plus 1.
unsigned part_of(unsigned country, int fingerprint /* -1: ALL */) {
  return country << 2 | static_cast<unsigned>(fingerprint + 1);
}
int fingerprint_index(unsigned part) {  // -1: ALL
  return static_cast<int>(part & 3) - 1;
}
unsigned country_of(unsigned part) {  // 0: all countries
  return part >> 2;
}
// The ALL series a part's fingerprint is a share of.
unsigned all_of(unsigned part) {
  return part & ~3u;
}

// One region's daily series, filled from the store's sums.
struct RegionData {
  std::vector<std::string> sensors;
  std::vector<double> exposure;      // sensor-days per day
  std::vector<std::int64_t> breaks;  // days a sensor of the region joined or left
  std::unordered_map<std::uint64_t, std::vector<float>> series;  // code << 8 | part
  // As read: (day offset, packets) per series, before densify() (a darknet sees nearly
  // every port on some day: only the series seen on enough days become dense).
  std::unordered_map<std::uint64_t, std::vector<std::pair<std::uint32_t, float>>> sparse;

  // A country's series whose ALL never reaches min_packets on a day can show no change
  // (count_changes and share_changes judge no such day): it and its fingerprints stay
  // out, so the examined countries cost only where they send enough.
  void densify(std::size_t days, int min_days, double min_packets) {
    const auto part = [](std::uint64_t key) { return static_cast<unsigned>(key & 0xFF); };
    const auto is_country = [&](std::uint64_t key) { return country_of(part(key)) != 0; };
    std::unordered_set<std::uint64_t> quiet;  // the keys of those countries' ALL
    for (auto& [key, points] : sparse) {
      std::sort(points.begin(), points.end());
      if (!is_country(key) || fingerprint_index(part(key)) >= 0) continue;
      double day = 0, most = 0;
      for (std::size_t i = 0; i < points.size(); ++i) {
        if (i > 0 && points[i].first != points[i - 1].first) day = 0;
        day += points[i].second;
        most = std::max(most, day);
      }
      if (most < min_packets) quiet.insert(key);
    }
    for (auto& [key, points] : sparse) {
      if (is_country(key) && quiet.count(key - part(key) + all_of(part(key)))) continue;
      int seen = 0;
      for (std::size_t i = 0; i < points.size(); ++i)
        if (i == 0 || points[i].first != points[i - 1].first) ++seen;
      if (seen < min_days) continue;
      auto& vec = series[key];
      vec.assign(days, 0.0f);
      for (const auto& [at, v] : points) vec[at] += v;
    }
    sparse.clear();
  }
};

Series series_of(const RegionData& r, std::int64_t first_day, std::uint32_t code, unsigned part) {
  Series s;
  s.first_day = first_day;
  s.exposure = r.exposure;
  s.breaks = r.breaks;
  const auto it = r.series.find(std::uint64_t{code} << 8 | part);
  if (it == r.series.end()) {
    s.packets.assign(r.exposure.size(), 0.0);
  } else {
    s.packets.assign(it->second.begin(), it->second.end());
  }
  return s;
}

struct Finding {
  int region = 0;  // index into kRegions
  std::uint32_t code = 0;
  unsigned part = 0;
  Change change;
};

// The order in which a cluster's findings speak for it: all countries before one (a
// country's finding speaks alone, or through the half rule in find_events), then the kind
// an analyst names first, then ALL before a fingerprint, then the strongest.
int kind_rank(Kind k) {
  switch (k) {
    case Kind::emergence:
      return 0;
    case Kind::level_shift:
      return 1;
    case Kind::spike:
      return 2;
    case Kind::fingerprint_shift:
      return 3;
  }
  return 4;
}

std::int64_t local_midnight(const date::time_zone* zone, std::int64_t day) {
  const auto t = zone->to_sys(date::local_days{date::days{day}}, date::choose::earliest);
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string fmt(double v, int decimals = 0) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

// "1,234".
std::string grouped(double v) {
  std::string s = fmt(std::fabs(v));
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return (v < 0 ? "-" : "") + s;
}

std::string rate(double v) {
  return v >= 10 || v == 0 ? grouped(v) : fmt(v, 1);
}

// Whether a count change found in one country's series is that country's own: its move
// against its baseline, less the move of the rest of the destination's packets (every
// other country, same fingerprint) against theirs, still reaches the ratio the kind asks.
// A burst or a trend that lifts every country is the destination's change, found in its
// series of all countries; counted once per country examined, it would be many false ones.
bool own_change(const RegionData& r, std::int64_t first, std::uint32_t code, unsigned part,
                const Series& country, const Change& c, const Settings& st) {
  if (c.kind == Kind::emergence || c.kind == Kind::fingerprint_shift) return true;
  const int span = c.kind == Kind::spike ? 1 : st.shift_days;
  const auto own = log_change_at(country, c.day, span, st);
  if (!own) return false;
  // Every country, same fingerprint.
  Series rest = series_of(r, first, code, part_of(0, fingerprint_index(part)));
  for (std::size_t i = 0; i < rest.packets.size(); ++i)
    rest.packets[i] = std::max(0.0, rest.packets[i] - country.packets[i]);
  const double moved = *own - log_change_at(rest, c.day, span, st).value_or(0.0);
  const double ratio = c.kind == Kind::spike ? st.spike_ratio : st.shift_ratio;
  return c.after >= c.before ? moved >= std::log(ratio) : moved <= -std::log(ratio);
}

// The request's country, then the leading source countries of local days [first, last]
// by packets, each with at least min_packets a day on average (fewer have no series a
// change could be found in), up to settings.countries more; "--" (unknown) is none.
std::vector<std::string> examined_countries(Store& storage, const EventsRequest& req,
                                            const Settings& st, std::int64_t first,
                                            std::int64_t last) {
  std::vector<std::string> out;
  if (!req.country.empty()) out.push_back(req.country);
  if (st.countries <= 0) return out;
  const date::time_zone* zone = locate_time_zone(storage.time_zone());
  Query q;
  q.sensors = req.sensors;
  q.from = local_midnight(zone, first);
  q.to = local_midnight(zone, last + 1);
  q.group_by = {"country"};
  std::vector<std::pair<std::uint64_t, std::string>> by_packets;
  for (auto& row : storage.query(q))
    if (row.group.at(0) != "--" && row.group.at(0) != req.country)
      by_packets.emplace_back(row.packets, std::move(row.group[0]));
  std::sort(by_packets.begin(), by_packets.end(), [](const auto& a, const auto& b) {
    return std::tie(b.first, a.second) < std::tie(a.first, b.second);
  });
  const double enough = st.min_packets * static_cast<double>(last - first + 1);
  const std::size_t most =
      std::min(out.size() + static_cast<std::size_t>(st.countries), kMaxBreakdownCountries);
  for (const auto& [packets, cc] : by_packets) {
    if (out.size() >= most || static_cast<double>(packets) < enough) break;
    out.push_back(cc);
  }
  return out;
}

}  // namespace

std::vector<Event> find_events(Store& storage, const CollectorConfig& config,
                               const EventsRequest& req) {
  config.require_registered(req.sensors);
  if (!events_range_ok(req.day_from, req.day_to))
    throw std::invalid_argument("notable changes are found over at most " +
                                std::to_string(kMaxEventDays) + " days at once");
  Settings st = req.settings;
  st.min_baseline_days = std::min(st.min_baseline_days, st.baseline_days);
  const std::int64_t first = req.day_from - st.baseline_days - 14;
  const std::int64_t last = req.day_to + st.shift_days + 2;
  const auto days = static_cast<std::size_t>(last - first + 1);
  std::array<RegionData, kRegions.size()> regions;
  for (const auto& s : config.sensors) {
    if (!req.sensors.empty() &&
        std::find(req.sensors.begin(), req.sensors.end(), s.id) == req.sensors.end())
      continue;
    for (std::size_t r = 0; r < kRegions.size(); ++r)
      if (s.region == kRegions[r]) regions[r].sensors.push_back(s.id);
  }
  for (auto& r : regions) r.exposure.assign(days, 0.0);
  // Coverage per region, and the days a sensor joined (its first covered day in the
  // window) or left (the day after its last): a region's baselines restart there.
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> covered;  // first, last day
  for (const SensorDay& d : storage.sensor_days(first, last)) {
    const RegisteredSensor* s = config.find_sensor(d.sensor);
    if (!s || d.day < first || d.day > last || d.covered_s <= 0) continue;
    for (std::size_t r = 0; r < kRegions.size(); ++r)
      if (std::find(regions[r].sensors.begin(), regions[r].sensors.end(), d.sensor) !=
          regions[r].sensors.end()) {
        regions[r].exposure[static_cast<std::size_t>(d.day - first)] +=
            static_cast<double>(std::min<std::int64_t>(d.covered_s, 86400)) / 86400.0;
        const auto it = covered.try_emplace(d.sensor, d.day, d.day).first;
        it->second.first = std::min(it->second.first, d.day);
        it->second.second = std::max(it->second.second, d.day);
      }
  }
  for (auto& r : regions)
    for (const auto& id : r.sensors)
      if (const auto it = covered.find(id); it != covered.end()) {
        if (it->second.first > first) r.breaks.push_back(it->second.first);
        if (it->second.second < last) r.breaks.push_back(it->second.second + 1);
      }
  // The countries examined one by one: the request's, and the leading ones of the window
  // by packets (where the counts allow: at least min_packets a day on average).
  const std::vector<std::string> countries = examined_countries(storage, req, st, first, last);
  std::vector<std::string> names{""};
  names.insert(names.end(), countries.begin(), countries.end());
  // The rollups, summed per day, destination, country and fingerprint by the store: one
  // pass per region.
  for (auto& r : regions) {
    if (r.sensors.empty()) continue;
    storage.daily_breakdown(
        DailyBreakdownQuery{first, last, countries, r.sensors}, [&](const DailyBreakdown& s) {
          if (s.day < first || s.day > last || s.packets == 0) return;
          unsigned c = 0;
          if (!s.country.empty()) {
            while (c < names.size() && names[c] != s.country) ++c;
            if (c == names.size()) return;
          }
          int f = -1;
          if (!s.fingerprint.empty()) {
            const auto it = std::find(kFingerprints.begin(), kFingerprints.end(), s.fingerprint);
            if (it == kFingerprints.end()) return;
            f = static_cast<int>(it - kFingerprints.begin());
          }
          const std::uint32_t code = destination_code(s.proto, s.port);
          r.sparse[std::uint64_t{code} << 8 | part_of(c, f)].emplace_back(
              static_cast<std::uint32_t>(s.day - first), static_cast<float>(s.packets));
        });
  }

  // Every series through the detector; fingerprint shares against their ALL. A destination
  // seen on fewer days than a shift needs has nothing to find.
  const int held = static_cast<int>(std::ceil(0.8 * st.shift_days));
  for (auto& r : regions) r.densify(days, held, st.min_packets);
  std::vector<Finding> found;
  const auto keep = [&](int region, std::uint32_t code, unsigned part, const Change& c) {
    if (c.day >= req.day_from && c.day <= req.day_to) found.push_back({region, code, part, c});
  };
  for (std::size_t r = 0; r < regions.size(); ++r) {
    for (const auto& [key, vec] : regions[r].series) {
      const auto code = static_cast<std::uint32_t>(key >> 8);
      const auto part = static_cast<unsigned>(key & 0xFF);
      const Series s = series_of(regions[r], first, code, part);
      for (const Change& c : count_changes(s, st)) {
        if (country_of(part) != 0 && !own_change(regions[r], first, code, part, s, c, st)) continue;
        keep(static_cast<int>(r), code, part, c);
      }
      if (fingerprint_index(part) < 0) continue;
      const Series all = series_of(regions[r], first, code, all_of(part));
      for (const Change& c : share_changes(all, s, st)) keep(static_cast<int>(r), code, part, c);
    }
  }

  // One event per destination and time: the findings of both regions and every series.
  std::sort(found.begin(), found.end(), [](const Finding& a, const Finding& b) {
    return std::tie(a.code, a.change.day) < std::tie(b.code, b.change.day);
  });
  std::vector<Event> out;
  for (std::size_t i = 0; i < found.size();) {
    std::size_t j = i + 1;
    // Shifts of one destination within a shift window are one change (a small series
    // dates it less precisely); spikes within two days.
    const auto window = [&](const Finding& a, const Finding& b) {
      return a.change.kind != Kind::spike && b.change.kind != Kind::spike
                 ? static_cast<std::int64_t>(st.shift_days)
                 : kMergeDays;
    };
    while (j < found.size() && found[j].code == found[i].code &&
           found[j].change.day - found[i].change.day <= window(found[i], found[j]))
      ++j;
    const auto begin = found.begin() + static_cast<std::ptrdiff_t>(i);
    const auto end = found.begin() + static_cast<std::ptrdiff_t>(j);
    // A share shift with no change of ALL (all countries) in its region is a fingerprint
    // shift; otherwise the count change speaks, the broadest series first.
    const auto all_changed = [&](int region) {
      return std::any_of(begin, end, [&](const Finding& f) {
        return f.region == region && f.change.kind != Kind::fingerprint_shift && f.part == 0;
      });
    };
    const auto rank = [&](const Finding& f) {
      int k = kind_rank(f.change.kind);
      if (f.change.kind == Kind::fingerprint_shift && !all_changed(f.region)) k = -1;
      return std::make_tuple(country_of(f.part) != 0, k, fingerprint_index(f.part) >= 0,
                             -f.change.score);
    };
    const Finding* chosen = &*std::min_element(
        begin, end, [&](const Finding& a, const Finding& b) { return rank(a) < rank(b); });
    // The same change in one country's series, its own (own_change) and at least half of
    // it: said of that country (the one that made most, when several did).
    if (country_of(chosen->part) == 0 && chosen->change.excess > 0) {
      const Finding* most = nullptr;
      for (auto it = begin; it != end; ++it)
        if (it->region == chosen->region && it->change.kind == chosen->change.kind &&
            country_of(it->part) != 0 &&
            fingerprint_index(it->part) == fingerprint_index(chosen->part) &&
            it->change.excess >= 0.5 * chosen->change.excess &&
            (!most || it->change.excess > most->change.excess))
          most = &*it;
      if (most) chosen = most;
    }
    const Finding& rep = *chosen;
    bool regions_seen[2] = {false, false};
    for (auto it = begin; it != end; ++it)
      if (it->part == rep.part && it->change.kind == rep.change.kind)
        regions_seen[it->region] = true;
    Event e;
    e.kind = rep.change.kind;
    e.day = rep.change.day;
    e.last_day = rep.change.last_day;
    e.detected_on = rep.change.detected_on;
    e.dest = destination_of(rep.code);
    const int fi = fingerprint_index(rep.part);
    e.fingerprint = fi < 0 ? "" : kFingerprints[static_cast<std::size_t>(fi)];
    e.country = names[country_of(rep.part)];
    e.before = rep.change.before;
    e.after = rep.change.after;
    e.excess = rep.change.excess;
    e.score = rep.change.score;
    if (regions_seen[0] && regions_seen[1]) {
      e.scope = "both";
    } else {
      const int seen = regions_seen[0] ? 0 : 1, other = 1 - seen;
      e.scope = kRegions[static_cast<std::size_t>(seen)];
      // Divergence: the other region had the data and did not move half as far.
      if (!regions[static_cast<std::size_t>(other)].sensors.empty()) {
        const RegionData& o = regions[static_cast<std::size_t>(other)];
        const int span = e.kind == Kind::spike ? 1 : st.shift_days;
        if (e.kind == Kind::fingerprint_shift) {
          const Series all = series_of(o, first, rep.code, all_of(rep.part));
          const auto moved =
              share_change_at(all, series_of(o, first, rep.code, rep.part), e.day, span, st);
          const double own = e.after - e.before;
          e.divergence = moved && *moved * own < 0.25 * own * own;
        } else {
          const auto moved =
              log_change_at(series_of(o, first, rep.code, rep.part), e.day, span, st);
          const double own = std::log1p(e.after) - std::log1p(e.before);
          e.divergence = moved && *moved * own < 0.5 * own * own;
        }
      }
    }
    // How much of a change of ALL the fingerprint made.
    if (fi < 0 && e.kind != Kind::fingerprint_shift) {
      const RegionData& r = regions[static_cast<std::size_t>(rep.region)];
      const std::int64_t to = e.kind == Kind::spike ? e.last_day : e.day + st.shift_days - 1;
      const unsigned fp_part = part_of(country_of(rep.part), 0);
      const auto all_excess = excess_over(series_of(r, first, rep.code, rep.part), e.day, to, st);
      const auto fp_excess = excess_over(series_of(r, first, rep.code, fp_part), e.day, to, st);
      if (all_excess && fp_excess && std::fabs(*all_excess) > 0)
        e.fingerprinted_share = std::clamp(*fp_excess / *all_excess, 0.0, 1.0);
    }
    out.push_back(std::move(e));
    i = j;
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) {
    return std::tie(b.score, a.day) < std::tie(a.score, b.day);
  });
  if (out.size() > req.limit) out.resize(req.limit);

  // The sources behind each kept event: the leading countries by excess packets over as
  // many days just before, and the distinct sources of those countries then and before.
  const date::time_zone* zone = locate_time_zone(storage.time_zone());
  for (Event& e : out) {
    const std::int64_t span =
        e.kind == Kind::spike ? e.last_day - e.day + 1 : static_cast<std::int64_t>(st.shift_days);
    const std::vector<std::string>& sensors =
        e.scope == "both" ? req.sensors : regions[e.scope == "domestic" ? 0 : 1].sensors;
    Query q;
    q.sensors = sensors;
    q.proto = e.dest.proto;
    if (e.dest.proto == "tcp" || e.dest.proto == "udp") q.port = e.dest.port;
    if (!e.fingerprint.empty()) q.fingerprint = e.fingerprint;
    if (!e.country.empty()) q.country = e.country;
    q.group_by = {"country"};
    const auto by_country = [&](std::int64_t from_day) {
      q.from = local_midnight(zone, from_day);
      q.to = local_midnight(zone, from_day + span);
      std::map<std::string, double> m;
      for (const auto& row : storage.query(q))
        m[row.group.at(0)] = static_cast<double>(row.packets);
      return m;
    };
    const auto during = by_country(e.day);
    auto before = by_country(e.day - span);
    std::vector<std::pair<std::string, double>> moved;
    for (const auto& [cc, n] : during) moved.emplace_back(cc, n - before[cc]);
    const bool fall = e.kind == Kind::level_shift && e.after < e.before;
    std::sort(moved.begin(), moved.end(), [&](const auto& a, const auto& b) {
      return fall ? a.second < b.second : a.second > b.second;
    });
    for (const auto& [cc, n] : moved) {
      if (e.countries.size() == 3 || (fall ? n >= 0 : n <= 0)) break;
      e.countries.emplace_back(cc, static_cast<std::uint64_t>(std::llround(std::fabs(n))));
    }
    const bool by_port = e.dest.port >= 0 || e.dest.proto == "tcp" || e.dest.proto == "udp";
    const auto sources = [&](std::int64_t from_day) {
      sketch::HostSketch merged;
      for (const auto& [cc, n] : e.countries) {
        (void)n;
        storage.scan_daily_hosts(from_day, from_day + span - 1, cc, e.dest.proto,
                                 by_port ? std::optional<std::int64_t>{e.dest.port} : std::nullopt,
                                 sensors, [&](const DailyHosts& h) {
                                   if (!e.fingerprint.empty() && h.fingerprint != e.fingerprint)
                                     return;
                                   std::string why;
                                   const auto s = sketch::HostSketch::decode(h.hosts, &why);
                                   if (!s) throw std::runtime_error("stored host sketch: " + why);
                                   merged.merge(*s);
                                 });
      }
      return merged.count();
    };
    e.sources = sources(e.day);
    e.sources_before = sources(e.day - span);
    e.sentence = sentence_of(e);
  }
  return out;
}

std::string sentence_of(const Event& e) {
  using report_format::fingerprint_name;
  const std::string fp = e.fingerprint.empty() ? "" : fingerprint_name(e.fingerprint) + " ";
  const std::string from = e.country.empty() ? "" : " from " + e.country;
  std::string where =
      e.scope == "both" ? " at domestic and overseas sensors" : " at " + e.scope + " sensors";
  if (e.divergence)
    where +=
        std::string{" (not at "} + (e.scope == "domestic" ? "overseas" : "domestic") + " sensors)";
  const std::string when =
      e.hour ? "the hour from " + report_format::time_string(*e.hour) : day_string(e.day);
  std::string s;
  switch (e.kind) {
    case Kind::spike:
      s = fp + "packets to " + e.dest.label() + from + where +
          (e.hour ? " jumped in " : " jumped on ") + when +
          (e.last_day > e.day ? " (to " + day_string(e.last_day) + ")" : "") + ": " +
          rate(e.after) + (e.hour ? " per sensor-hour" : " per sensor-day") +
          " against a baseline of " + rate(e.before) + " (" +
          fmt((e.after + 1) / (e.before + 1), 1) + "x), " + grouped(e.excess) + " packets above it";
      break;
    case Kind::level_shift:
      s = fp + "packets to " + e.dest.label() + from + where +
          (e.after > e.before ? " rose" : " fell") + " from " + when + ": " + rate(e.before) +
          " to " + rate(e.after) + " per sensor-day (" + fmt((e.after + 1) / (e.before + 1), 1) +
          "x)";
      break;
    case Kind::emergence:
      s = fp + "scans of " + e.dest.label() + from + where + " began on " + when + ": " +
          rate(e.after) + " packets per sensor-day where there had been " + rate(e.before);
      break;
    case Kind::fingerprint_shift:
      s = "the " + fingerprint_name(e.fingerprint) + " share of packets to " + e.dest.label() +
          from + where + (e.after > e.before ? " rose" : " fell") + " from " + fmt(100 * e.before) +
          "% to " + fmt(100 * e.after) + "% on " + when;
      break;
  }
  if (e.fingerprinted_share >= 0) {
    const std::string name = fingerprint_name(e.fingerprinted_as);
    if (e.fingerprinted_share < 0.05)
      s += "; none of the change was " + name;
    else if (e.fingerprinted_share > 0.95)
      s += "; nearly all of it " + name;
    else
      s += "; " + fmt(100 * e.fingerprinted_share) + "% of it " + name;
  }
  if (!e.countries.empty()) {
    s += "; leading source countries ";
    for (std::size_t i = 0; i < e.countries.size(); ++i)
      s += (i ? ", " : "") + e.countries[i].first + " (" +
           (e.kind == Kind::level_shift && e.after < e.before ? "-" : "+") +
           grouped(static_cast<double>(e.countries[i].second)) + ")";
    s += ", " + grouped(static_cast<double>(e.sources)) + " distinct sources from them (" +
         grouped(static_cast<double>(e.sources_before)) + " just before)";
  }
  s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s + ".";
}

EventsRequest parse_events_request(const std::vector<std::pair<std::string, std::string>>& params,
                                   const Store& storage, const Settings& settings) {
  std::vector<std::pair<std::string, std::string>> report_params;
  EventsRequest req;
  req.settings = settings;
  for (const auto& [k, v] : params) {
    if (k == "limit") {
      if (v.empty() || v.size() > 4 || v.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(v) < 1 || std::stoul(v) > 200)
        throw std::invalid_argument("limit: '" + v + "' is not a number from 1 to 200");
      req.limit = std::stoul(v);
    } else if (k == "rank" || k == "top" || k == "sensor_top" || k == "events") {
      throw std::invalid_argument("unknown parameter '" + k + "'");
    } else {
      report_params.emplace_back(k, v);
    }
  }
  const ReportRequest r = parse_report_request(report_params, storage);
  req.day_from = r.day_from;
  req.day_to = r.day_to;
  req.country = r.country;
  req.sensors = r.sensors;
  return req;
}

std::string events_json(const std::vector<Event>& events) {
  return events_array(events).dump(1) + "\n";
}

nlohmann::json events_array(const std::vector<Event>& events) {
  nlohmann::json a = nlohmann::json::array();
  for (const Event& e : events) {
    nlohmann::json countries = nlohmann::json::array();
    for (const auto& [cc, n] : e.countries) countries.push_back({{"country", cc}, {"packets", n}});
    a.push_back(
        {{"kind", to_string(e.kind)},
         {"day", day_string(e.day)},
         {"last_day", day_string(e.last_day)},
         {"detected_on", day_string(e.detected_on)},
         {"destination", e.dest.label()},
         {"proto", e.dest.proto},
         {"port", e.dest.port},
         {"fingerprint", e.fingerprint.empty() ? "all" : e.fingerprint},
         {"country", e.country.empty() ? "all" : e.country},
         {"scope", e.scope},
         {"divergence", e.divergence},
         {"before", e.before},
         {"after", e.after},
         {"excess", e.excess},
         {"score", e.score},
         {"fingerprinted_share", e.fingerprinted_share < 0 ? nlohmann::json(nullptr)
                                                           : nlohmann::json(e.fingerprinted_share)},
         {"sources", e.sources},
         {"sources_before", e.sources_before},
         {"countries", countries},
         {"hour",
          e.hour ? nlohmann::json(report_format::time_string(*e.hour)) : nlohmann::json(nullptr)},
         {"sentence", e.sentence}});
  }
  return a;
}

std::string events_csv(const std::vector<Event>& events) {
  std::string out =
      "day,last_day,kind,destination,fingerprint,country,scope,divergence,before,after,excess,"
      "score,sources,sentence\n";
  for (const Event& e : events) {
    std::string sentence = e.sentence;
    for (std::size_t p = 0; (p = sentence.find('"', p)) != std::string::npos; p += 2)
      sentence.insert(p, "\"");
    out += day_string(e.day) + "," + day_string(e.last_day) + "," + std::string{to_string(e.kind)} +
           "," + e.dest.label() + "," + (e.fingerprint.empty() ? "all" : e.fingerprint) + "," +
           (e.country.empty() ? "all" : e.country) + "," + e.scope + "," +
           (e.divergence ? "yes" : "no") + "," + fmt(e.before, 3) + "," + fmt(e.after, 3) + "," +
           fmt(e.excess) + "," + fmt(e.score, 1) + "," + std::to_string(e.sources) + ",\"" +
           sentence + "\"\n";
  }
  return out;
}

std::string events_markdown(const std::vector<Event>& events) {
  if (events.empty()) return "No notable changes began in this range.\n";
  std::string out;
  for (std::size_t i = 0; i < events.size(); ++i)
    out += std::to_string(i + 1) + ". **" + day_string(events[i].day) + "** " + events[i].sentence +
           " (" + std::string{to_string(events[i].kind)} + ", score " + fmt(events[i].score, 1) +
           ")\n";
  return out;
}

std::string EventsCache::key_of(const CollectorConfig& config, const EventsRequest& r) {
  const Settings& s = r.settings;
  std::string k = std::to_string(r.day_from) + "/" + std::to_string(r.day_to) + "/" + r.country;
  for (const auto& id : r.sensors) k += "," + id;
  char b[512];
  std::snprintf(b, sizeof b,
                "/%d %d %d %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %d %d",
                s.baseline_days, s.min_baseline_days, s.shift_days, s.spike_z, s.spike_ratio,
                s.shift_z, s.shift_ratio, s.min_packets, s.emergence_floor, s.emergence_level,
                s.share_change, s.share_z, s.coverage_min, s.weekly ? 1 : 0, s.countries);
  k += b;
  // The regions of the registry: a reload that moves or adds sensors changes the events.
  return k + "/" + std::to_string(config.regions_hash());
}

std::uint64_t EventsCache::version_of(Store& storage, const EventsRequest& r) {
  // What a bucket arriving for the window's days changes: its sensor-day's coverage.
  std::uint64_t h = 1469598103934665603ULL;
  const auto mix = [&](std::uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  for (const SensorDay& d : storage.sensor_days(r.day_from - r.settings.baseline_days - 14,
                                                r.day_to + r.settings.shift_days + 2)) {
    for (char c : d.sensor) mix(static_cast<unsigned char>(c));
    mix(static_cast<std::uint64_t>(d.day));
    mix(static_cast<std::uint64_t>(d.covered_s));
    mix(d.observed_packets);
  }
  return h;
}

std::vector<Event> EventsCache::compute(Store& storage, const CollectorConfig& config,
                                        const EventsRequest& req, std::uint64_t version) {
  EventsRequest all = req;
  all.limit = kMaxEvents;
  Entry e{version, std::chrono::steady_clock::now(), find_events(storage, config, all)};
  const std::string key = key_of(config, req);
  std::lock_guard lock(mu_);
  if (entries_.size() >= 64 && !entries_.contains(key)) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->second.computed < oldest->second.computed) oldest = it;
    entries_.erase(oldest);
  }
  return (entries_[key] = std::move(e)).events;
}

std::optional<std::vector<Event>> EventsCache::peek(const CollectorConfig& config,
                                                    const EventsRequest& req) {
  config.require_registered(req.sensors);
  const std::string key = key_of(config, req);
  std::lock_guard lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (std::none_of(wanted_.begin(), wanted_.end(),
                     [&](const EventsRequest& w) { return key_of(config, w) == key; })) {
      if (wanted_.size() >= 8) wanted_.erase(wanted_.begin());
      wanted_.push_back(req);
    }
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  auto out = it->second.events;
  if (out.size() > req.limit) out.resize(req.limit);
  return out;
}

std::vector<EventsRequest> EventsCache::wanted() {
  std::lock_guard lock(mu_);
  return std::exchange(wanted_, {});
}

std::vector<Event> EventsCache::get(Store& storage, const CollectorConfig& config,
                                    const EventsRequest& req) {
  config.require_registered(req.sensors);
  const std::string key = key_of(config, req);
  const std::uint64_t version = version_of(storage, req);
  std::vector<Event> out;
  bool found = false;
  {
    std::lock_guard lock(mu_);
    const auto it = entries_.find(key);
    if (it != entries_.end() &&
        (it->second.version == version ||
         std::chrono::steady_clock::now() - it->second.computed < max_age_)) {
      out = it->second.events;
      found = true;
    }
  }
  if (found) {
    hits_.fetch_add(1, std::memory_order_relaxed);
  } else {
    misses_.fetch_add(1, std::memory_order_relaxed);
    out = compute(storage, config, req, version);
  }
  if (out.size() > req.limit) out.resize(req.limit);
  return out;
}

bool EventsCache::refresh(Store& storage, const CollectorConfig& config, const EventsRequest& req,
                          std::chrono::seconds min_age) {
  const std::string key = key_of(config, req);
  const std::uint64_t version = version_of(storage, req);
  {
    std::lock_guard lock(mu_);
    const auto it = entries_.find(key);
    if (it != entries_.end() && (it->second.version == version ||
                                 std::chrono::steady_clock::now() - it->second.computed < min_age))
      return false;
  }
  compute(storage, config, req, version);
  return true;
}

}  // namespace teiten::collector::events

// SPDX-License-Identifier: Apache-2.0
#include "ctl/sim/simulator.h"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::sim {
namespace {

using classify::Fingerprint;
using classify::Key;
using classify::Kind;
using classify::Proto;

struct PortWeight {
  Proto proto;
  int port;  // -1: ICMP, every type as one destination
  double weight;
  double mirai;  // share of Mirai-type packets (TCP only)
  std::uint32_t bytes;
};

// Shaped like a darknet telescope's destinations.
constexpr std::array<PortWeight, 24> kPorts{{
    {Proto::tcp, 23, 0.22, 0.92, 40},   {Proto::tcp, 22, 0.08, 0.30, 40},
    {Proto::tcp, 445, 0.07, 0.0, 48},   {Proto::tcp, 80, 0.06, 0.05, 40},
    {Proto::tcp, 3389, 0.04, 0.0, 48},  {Proto::tcp, 443, 0.04, 0.0, 44},
    {Proto::tcp, 8080, 0.03, 0.10, 40}, {Proto::tcp, 37215, 0.025, 0.99, 40},
    {Proto::tcp, 2323, 0.02, 0.85, 40}, {Proto::tcp, 5555, 0.02, 0.40, 40},
    {Proto::tcp, 1433, 0.02, 0.0, 48},  {Proto::tcp, 6379, 0.01, 0.0, 44},
    {Proto::tcp, 5501, 0.006, 1.0, 40}, {Proto::tcp, 81, 0.01, 0.30, 40},
    {Proto::tcp, 8443, 0.01, 0.0, 44},  {Proto::tcp, 5900, 0.01, 0.0, 44},
    {Proto::tcp, 21, 0.01, 0.0, 40},    {Proto::tcp, 25, 0.008, 0.0, 40},
    {Proto::udp, 5060, 0.03, 0.0, 420}, {Proto::udp, 53, 0.02, 0.0, 64},
    {Proto::udp, 123, 0.01, 0.0, 76},   {Proto::udp, 1900, 0.01, 0.0, 120},
    {Proto::icmp, -1, 0.06, 0.0, 84},   {Proto::tcp, 0, 0.15, 0.0, 40},  // 0: the random tail
}};

struct CountryWeight {
  char code[3];
  double weight;
  std::uint32_t pool;  // distinct sources the country's scanners come from
};

constexpr std::array<CountryWeight, 9> kCountries{{{"CN", 0.26, 60000},
                                                   {"US", 0.17, 30000},
                                                   {"JP", 0.07, 12000},
                                                   {"RU", 0.07, 15000},
                                                   {"BR", 0.06, 20000},
                                                   {"KR", 0.05, 10000},
                                                   {"NL", 0.05, 4000},
                                                   {"IN", 0.05, 20000},
                                                   {"--", 0.02, 3000}}};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 29;
  return h;
}

std::string day_label(std::int64_t day) {
  return bucket::format_rfc3339(day * 86400).substr(0, 10);
}

std::int64_t add_months(std::int64_t day, std::uint32_t months) {
  const date::year_month_day ymd{date::sys_days{date::days{day}}};
  return date::sys_days{ymd + date::months{months}}.time_since_epoch().count();
}

}  // namespace

std::vector<SimSensor> sim_sensors(const SimOptions& o) {
  std::vector<SimSensor> out;
  char id[32];
  for (std::uint32_t i = 1; i <= o.domestic; ++i) {
    std::snprintf(id, sizeof id, "sim-d%02u", i);
    out.push_back({id, "domestic", "Domestic " + std::to_string(i)});
  }
  for (std::uint32_t i = 1; i <= o.overseas; ++i) {
    std::snprintf(id, sizeof id, "sim-o%02u", i);
    out.push_back({id, "overseas", "Overseas " + std::to_string(i)});
  }
  return out;
}

std::string sim_registry_yaml(const SimOptions& o) {
  std::string y;
  for (const auto& s : sim_sensors(o))
    y += "  - id: " + s.id + "\n    region: " + s.region + "\n    label: " + s.label +
         "\n    active_from: " + day_label(o.start_day) + "\n";
  return y;
}

std::int64_t end_day(const SimOptions& o) {
  return add_months(o.start_day, o.months);
}

namespace {

bool in_region(const SimEvent& e, bool domestic) {
  return e.region == "both" || e.region == (domestic ? "domestic" : "overseas");
}

bool active(const SimEvent& e, std::int64_t day) {
  return day >= e.start_day && (e.days == 0 || day < e.start_day + e.days);
}

Fingerprint fingerprint_of(const std::string& name) {
  if (name == "mirai") return Fingerprint::mirai;
  if (name == "masscan") return Fingerprint::masscan;
  if (name == "zmap") return Fingerprint::zmap;
  return Fingerprint::none;
}

// One destination's packets of one country on one day, by fingerprint.
using Parts = std::array<std::uint64_t, static_cast<std::size_t>(Fingerprint::count_)>;

}  // namespace

std::uint64_t simulate_sensor(const SimOptions& o, std::size_t index,
                              const std::function<void(bucket::SealedBucket&&)>& sink) {
  const auto sensors = sim_sensors(o);
  const SimSensor& sensor = sensors.at(index);
  const bool domestic = sensor.region == "domestic";
  const std::int64_t last = end_day(o);
  const std::uint32_t per_day = 86400 / o.width_s;
  std::mt19937_64 sensor_rng(mix(o.seed, index + 1));
  const double scale = std::uniform_real_distribution<double>(0.6, 1.5)(sensor_rng) *
                       o.packets_per_day * (domestic ? 1.0 : 1.6);
  std::uint64_t seq = 0, total = 0;
  for (std::int64_t day = o.start_day; day < last; ++day) {
    std::mt19937_64 rng(mix(mix(o.seed, index + 1), static_cast<std::uint64_t>(day)));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::normal_distribution<double> spread(0.0, 0.15);
    if (u(rng) < o.outage_share) continue;  // the box was down: no bucket at all
    const double months_in = static_cast<double>(day - o.start_day) / 30.44;
    const int weekday = static_cast<int>(((day % 7) + 7) % 7);          // 0: Thursday
    const double weekly = (weekday == 2 || weekday == 3) ? 0.85 : 1.0;  // weekends
    const double trend = (1.0 + 0.03 * months_in) * (1.0 + 0.15 * std::sin(months_in / 2.0)) *
                         std::exp(std::normal_distribution<double>(0.0, 0.12)(rng)) * weekly;
    const double volume = scale * trend;
    // Tail ports of the day, and the odd burst: one port, one source, twice its day.
    std::array<int, 6> tail{};
    for (auto& t : tail) {
      // The tail: ports no one names (a few tries; events may name very many ports).
      for (int attempt = 0; attempt < 16; ++attempt) {
        t = 1024 + static_cast<int>(rng() % 64511);
        if (std::none_of(kPorts.begin(), kPorts.end(),
                         [&](const PortWeight& p) { return p.port == t; }) &&
            std::none_of(o.events.begin(), o.events.end(),
                         [&](const SimEvent& e) { return e.port == t; }))
          break;
      }
    }
    const std::size_t burst = u(rng) < 0.03 ? rng() % 4 : kPorts.size();
    // The events of this day at this sensor.
    std::vector<const SimEvent*> today;
    for (const auto& e : o.events)
      if (in_region(e, domestic) && active(e, day)) today.push_back(&e);
    // Rows of the day, as (key, packets, sketch).
    std::map<std::uint64_t, bucket::Row> rows;
    const auto add = [&](const Key& key, std::uint64_t count, std::uint32_t bytes,
                         std::uint64_t distinct, const CountryWeight& c) {
      bucket::Row& row = rows.try_emplace(key.pack(), bucket::Row{key, 0, 0, {}}).first->second;
      row.packets += count;
      row.bytes += count * bytes;
      for (std::uint64_t s = 0; s < distinct; ++s) {
        const std::uint64_t src = rng() % c.pool;
        row.hosts.add(sketch::hash_ipv4(
            static_cast<std::uint32_t>((static_cast<std::uint32_t>(c.code[0]) << 24) ^
                                       (static_cast<std::uint32_t>(c.code[1]) << 16) ^
                                       static_cast<std::uint32_t>(src * 2654435761u))));
      }
    };
    // Sources: scanners repeat.
    const auto sources = [](std::uint64_t count) {
      return std::max<std::uint64_t>(1, std::min<std::uint64_t>(count / 3 + 1, 400));
    };
    for (std::size_t p = 0; p < kPorts.size(); ++p) {
      const PortWeight& pw = kPorts[p];
      double n_port = volume * pw.weight * std::exp(spread(rng));
      if (p == burst) n_port *= 2.0;
      const std::string proto{classify::to_string(pw.proto)};
      const auto concerns = [&](const SimEvent& e) {
        return pw.port != 0 && e.proto == proto && e.port == pw.port;
      };
      for (const CountryWeight& c : kCountries) {
        const std::string_view code{c.code, 2};
        double w = c.weight;
        if (code == "JP") w *= domestic ? 1.8 : 0.7;
        const double n_usual = n_port * w * std::exp(spread(rng));
        double mirai_share = pw.mirai * (c.code[0] == 'U' ? 0.5 : 1.0);
        double factor = 1.0;
        Parts extra{};
        for (const SimEvent* e : today) {
          if (!concerns(*e) || e->hour >= 0 || (!e->country.empty() && e->country != code))
            continue;
          if (e->kind == "fingerprint_shift") {
            mirai_share = e->size;
          } else if (e->kind == "spike" || e->kind == "level_shift") {
            if (e->fingerprint.empty())
              factor *= e->size;
            else
              extra[static_cast<std::size_t>(fingerprint_of(e->fingerprint))] +=
                  static_cast<std::uint64_t>(std::llround(n_usual * std::max(0.0, e->size - 1)));
          }
        }
        const auto n = static_cast<std::uint64_t>(std::llround(n_usual * factor));
        const auto mirai =
            pw.proto == Proto::tcp
                ? static_cast<std::uint64_t>(std::llround(static_cast<double>(n) * mirai_share))
                : 0;
        Parts parts = extra;
        parts[0] += n - mirai;
        parts[1] += mirai;
        for (std::size_t f = 0; f < parts.size(); ++f) {
          if (parts[f] == 0) continue;
          Key k;
          k.proto = pw.proto;
          k.has_port = pw.port >= 0;
          k.port = static_cast<std::uint16_t>(pw.port == 0 ? tail[rng() % tail.size()]
                                                           : std::max(pw.port, 0));
          if (pw.proto == Proto::icmp) {
            k.has_port = true;
            k.port = u(rng) < 0.7 ? 8 : 3;  // echo requests; unreachables are backscatter
          }
          k.country = classify::country_from_string(code);
          k.fingerprint = static_cast<Fingerprint>(f);
          k.kind = (pw.proto == Proto::icmp && k.port == 3) ? Kind::backscatter : Kind::scan;
          // A burst comes from one host.
          add(k, parts[f], pw.bytes, p == burst ? 1 : sources(parts[f]), c);
        }
      }
    }
    // Emergence: a port that was silent, now scanned from every country (or one).
    for (const SimEvent* e : today) {
      if (e->kind != "emergence") continue;
      const double n_event = e->size * (scale / o.packets_per_day) * std::exp(spread(rng));
      for (const CountryWeight& c : kCountries) {
        const std::string_view code{c.code, 2};
        if (!e->country.empty() && e->country != code) continue;
        const double w = e->country.empty() ? c.weight : 1.0;
        const auto n = static_cast<std::uint64_t>(std::llround(n_event * w));
        if (n == 0) continue;
        Key k;
        k.proto = e->proto == "udp" ? Proto::udp : Proto::tcp;
        k.has_port = true;
        k.port = static_cast<std::uint16_t>(e->port);
        k.country = classify::country_from_string(code);
        k.fingerprint = fingerprint_of(e->fingerprint);
        k.kind = Kind::scan;
        add(k, n, 40, sources(n), c);
      }
    }
    // Spikes of one hour: that hour's share of the matching rows, `size` times.
    const auto hour_spike = [&](const bucket::Row& row, std::uint32_t b) {
      double extra = 0;
      for (const SimEvent* e : today) {
        if (e->kind != "spike" || e->hour < 0) continue;
        const std::int64_t from = static_cast<std::int64_t>(b) * o.width_s / 3600;
        const std::int64_t to = static_cast<std::int64_t>(b + 1) * o.width_s / 3600;
        if (e->hour < from || e->hour >= to) continue;
        if (e->proto != classify::to_string(row.key.proto)) continue;
        if (e->proto != "icmp" && (!row.key.has_port || row.key.port != e->port)) continue;
        if (!e->country.empty() && e->country != classify::country_to_string(row.key.country))
          continue;
        extra += static_cast<double>(row.packets) / 24.0 * (e->size - 1);
      }
      return static_cast<std::uint64_t>(std::llround(extra));
    };
    // Spread the day over its buckets: each row's packets evenly, the remainder one by one.
    for (std::uint32_t b = 0; b < per_day; ++b) {
      bucket::SealedBucket out;
      out.sensor_id = sensor.id;
      out.boot_id = "sim-" + std::to_string(o.seed);
      out.seq = seq++;
      out.start = day * 86400 + static_cast<std::int64_t>(b) * o.width_s;
      out.width_s = o.width_s;
      out.provenance = {"teitenctl simulate", std::string(64, '0'), 0, true};
      for (const auto& [packed, row] : rows) {
        // The remainder: one each to `remainder` buckets from a place of the row's own.
        const std::uint64_t offset = mix(packed, static_cast<std::uint64_t>(day)) % per_day;
        const std::uint64_t extra = (b + per_day - offset) % per_day < row.packets % per_day;
        const std::uint64_t share = row.packets / per_day + extra + hour_spike(row, b);
        if (share == 0) continue;
        const std::uint64_t bytes = row.bytes / row.packets * share;
        out.rows.push_back(
            bucket::Row{row.key, share, bytes, b == 0 ? row.hosts : sketch::HostSketch{}});
        total += share;
      }
      sink(std::move(out));
    }
  }
  return total;
}

}  // namespace teiten::sim

namespace teiten::sim {

std::vector<SimEvent> random_events(const SimOptions& o, std::size_t count, std::uint64_t seed) {
  // Destinations busy enough to change (weight at least 0.02), and those whose Mirai-type
  // share can move: TCP.
  struct Dest {
    std::string proto;
    int port;
    double mirai;
  };
  std::vector<Dest> busy, shiftable;
  for (const PortWeight& pw : kPorts) {
    if (pw.port == 0 || pw.weight < 0.02) continue;
    const Dest d{std::string{classify::to_string(pw.proto)}, pw.port, pw.mirai};
    busy.push_back(d);
    if (pw.proto == Proto::tcp) shiftable.push_back(d);
  }
  const std::int64_t first = o.start_day + 45, last = end_day(o) - 14;
  if (last - first < 30) throw std::invalid_argument("too few months for events (at least 3)");
  std::mt19937_64 rng(mix(seed, 0xE7E7));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const auto pick = [&](double a, double b) { return a + (b - a) * u(rng); };
  // A change from one source country: Japan half the time, else one of the others.
  const auto one_country = [&]() -> std::string {
    static constexpr std::array<const char*, 7> others = {"CN", "US", "RU", "BR", "KR", "NL", "IN"};
    return u(rng) < 0.5 ? "JP" : others[rng() % others.size()];
  };
  static constexpr std::array<const char*, 4> kinds = {"spike", "level_shift", "emergence",
                                                       "fingerprint_shift"};
  static constexpr std::array<const char*, 3> regions = {"domestic", "overseas", "both"};
  // Kinds, regions and starts first; destinations and sizes then in time order, so that a
  // fingerprint shift moves the share as it is by then.
  std::vector<SimEvent> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    out[i].kind = kinds[i % kinds.size()];
    out[i].region = regions[(i / kinds.size()) % regions.size()];
    out[i].start_day =
        first + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(last - first));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SimEvent& a, const SimEvent& b) { return a.start_day < b.start_day; });
  std::map<std::string, std::vector<std::int64_t>> taken;  // starts per destination
  std::map<std::string, std::array<double, 2>> share;      // Mirai-type share per region
  int used_ports = 0;
  for (SimEvent& e : out) {
    for (int attempt = 0;; ++attempt) {
      if (attempt > 1000) throw std::invalid_argument("too many events for the months simulated");
      if (e.kind == "emergence") {
        e.proto = "tcp";
        e.port = 40000 + 97 * ++used_ports % 20000;
      } else {
        const auto& pool = e.kind == "fingerprint_shift" ? shiftable : busy;
        const Dest& d = pool[rng() % pool.size()];
        e.proto = d.proto;
        e.port = d.proto == "icmp" ? -1 : d.port;
        if (e.kind == "fingerprint_shift") {
          auto it = share
                        .try_emplace(e.proto + std::to_string(e.port),
                                     std::array<double, 2>{d.mirai, d.mirai})
                        .first;
          auto& now = it->second;
          const bool dom = e.region != "overseas", ovs = e.region != "domestic";
          if (dom && ovs && std::fabs(now[0] - now[1]) > 0.05) continue;  // apart: no common move
          const double cur = dom ? now[0] : now[1];
          e.size = cur <= 0.5 ? cur + pick(0.3, 0.45) : cur - pick(0.3, 0.45);
          e.size = std::clamp(e.size, 0.02, 0.95);
          if (std::fabs(e.size - cur) < 0.25) continue;
        }
      }
      auto& starts = taken[e.proto + std::to_string(e.port)];
      if (std::any_of(starts.begin(), starts.end(),
                      [&](std::int64_t s) { return std::llabs(s - e.start_day) < 60; }))
        continue;
      starts.push_back(e.start_day);
      if (e.kind == "fingerprint_shift") {
        auto& now = share[e.proto + std::to_string(e.port)];
        if (e.region != "overseas") now[0] = e.size;
        if (e.region != "domestic") now[1] = e.size;
      }
      break;
    }
    if (e.kind == "spike") {
      e.days = 1 + static_cast<std::int64_t>(rng() % 3);
      e.size = pick(3, 8);
      if (u(rng) < 0.33 && e.proto == "tcp") e.fingerprint = "mirai";
      if (u(rng) < 0.25) e.country = one_country();
    } else if (e.kind == "level_shift") {
      e.size = u(rng) < 0.67 ? pick(2, 4) : pick(0.25, 0.5);
      if (e.size > 1 && u(rng) < 0.25) e.country = one_country();
    } else if (e.kind == "emergence") {
      e.size = pick(30, 300);
      if (u(rng) < 0.33) e.fingerprint = "mirai";
    } else {
      e.fingerprint = "mirai";
    }
  }
  return out;
}

std::string events_json(const std::vector<SimEvent>& events) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& e : events)
    a.push_back({{"kind", e.kind},
                 {"proto", e.proto},
                 {"port", e.port},
                 {"fingerprint", e.fingerprint},
                 {"region", e.region},
                 {"country", e.country},
                 {"start", day_label(e.start_day)},
                 {"days", e.days},
                 {"size", e.size},
                 {"hour", e.hour}});
  return a.dump(1) + "\n";
}

std::vector<SimEvent> parse_events(const std::string& text) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_array())
    throw std::invalid_argument("events: expected a JSON array of events");
  if (doc.size() > 100000) throw std::invalid_argument("events: more than 100000");
  std::vector<SimEvent> out;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& j = doc[i];
    const std::string where = "events[" + std::to_string(i) + "]";
    const auto str = [&](const char* key, std::initializer_list<const char*> allowed,
                         const char* fallback) {
      if (!j.contains(key)) return std::string{fallback};
      if (!j[key].is_string()) throw std::invalid_argument(where + "." + key + ": not a string");
      const std::string v = j[key];
      if (allowed.size() &&
          std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; }))
        throw std::invalid_argument(where + "." + key + ": '" + v + "' is not allowed");
      return v;
    };
    const auto num = [&](const char* key, double lo, double hi, double fallback) {
      if (!j.contains(key)) return fallback;
      if (!j[key].is_number()) throw std::invalid_argument(where + "." + key + ": not a number");
      const double v = j[key];
      if (!(v >= lo && v <= hi)) throw std::invalid_argument(where + "." + key + ": out of range");
      return v;
    };
    if (!j.is_object()) throw std::invalid_argument(where + ": not an object");
    SimEvent e;
    e.kind = str("kind", {"spike", "level_shift", "emergence", "fingerprint_shift"}, "");
    if (e.kind.empty()) throw std::invalid_argument(where + ".kind: missing");
    e.proto = str("proto", {"tcp", "udp", "icmp"}, "tcp");
    e.port = static_cast<int>(num("port", -1, 65535, -1));
    if ((e.proto == "icmp") != (e.port < 0))
      throw std::invalid_argument(where + ".port: -1 for ICMP only, 0-65535 otherwise");
    e.fingerprint = str("fingerprint", {"", "mirai", "masscan", "zmap"}, "");
    e.region = str("region", {"domestic", "overseas", "both"}, "both");
    e.country = str("country", {}, "");
    if (!e.country.empty() &&
        (e.country.size() != 2 || !std::isupper(static_cast<unsigned char>(e.country[0])) ||
         !std::isupper(static_cast<unsigned char>(e.country[1]))))
      throw std::invalid_argument(where + ".country: a two-letter code such as JP");
    const auto start = bucket::parse_rfc3339(str("start", {}, "") + "T00:00:00Z");
    if (!start) throw std::invalid_argument(where + ".start: expected YYYY-MM-DD");
    e.start_day = *start / 86400;
    e.days = static_cast<std::int64_t>(num("days", 0, 100000, 0));
    const bool share = e.kind == "fingerprint_shift";
    e.size = num("size", share ? 0 : 0.01, share ? 1 : 1e7, -1);
    if (e.size < 0) throw std::invalid_argument(where + ".size: missing");
    if (share && e.fingerprint != "mirai")
      throw std::invalid_argument(where + ".fingerprint: a fingerprint shift moves 'mirai'");
    if (share && e.proto != "tcp")
      throw std::invalid_argument(where + ".proto: Mirai-type packets are TCP");
    if (e.kind == "emergence" && e.proto == "icmp")
      throw std::invalid_argument(where + ".proto: a port emerges: tcp or udp");
    if (e.kind != "level_shift" && e.kind != "fingerprint_shift" && e.size < 1 &&
        e.kind != "emergence")
      throw std::invalid_argument(where + ".size: a spike is at least 1");
    if (e.size < 1 && !e.fingerprint.empty() && !share)
      throw std::invalid_argument(where + ".size: only the whole mix can fall");
    e.hour = static_cast<int>(num("hour", -1, 23, -1));
    if (e.hour >= 0 && (e.kind != "spike" || !e.fingerprint.empty() || e.days > 1))
      throw std::invalid_argument(where + ".hour: only for a spike of the whole mix, one day");
    if (e.hour >= 0) e.days = 1;
    out.push_back(e);
  }
  return out;
}

}  // namespace teiten::sim

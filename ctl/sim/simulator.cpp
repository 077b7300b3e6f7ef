// SPDX-License-Identifier: Apache-2.0
#include "ctl/sim/simulator.h"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>

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

std::uint64_t simulate_sensor(const SimOptions& o, std::size_t index,
                              const std::function<void(bucket::SealedBucket&&)>& sink) {
  const auto sensors = sim_sensors(o);
  const SimSensor& sensor = sensors.at(index);
  const bool domestic = sensor.region == "domestic";
  const std::int64_t end_day = add_months(o.start_day, o.months);
  const std::uint32_t per_day = 86400 / o.width_s;
  std::mt19937_64 sensor_rng(mix(o.seed, index + 1));
  const double scale = std::uniform_real_distribution<double>(0.6, 1.5)(sensor_rng) *
                       o.packets_per_day * (domestic ? 1.0 : 1.6);
  std::uint64_t seq = 0, total = 0;
  for (std::int64_t day = o.start_day; day < end_day; ++day) {
    std::mt19937_64 rng(mix(mix(o.seed, index + 1), static_cast<std::uint64_t>(day)));
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (u(rng) < o.outage_share) continue;  // the box was down: no bucket at all
    const double months_in = static_cast<double>(day - o.start_day) / 30.44;
    const double trend = (1.0 + 0.03 * months_in) * (1.0 + 0.15 * std::sin(months_in / 2.0)) *
                         std::exp(std::normal_distribution<double>(0.0, 0.12)(rng));
    const double volume = scale * trend;
    // Tail ports of the day, and the odd burst: one port, one source, ten times its day.
    std::array<int, 6> tail{};
    for (auto& t : tail) t = 1024 + static_cast<int>(rng() % 64511);
    const std::size_t burst = u(rng) < 0.03 ? rng() % 4 : kPorts.size();
    // Rows of the day, as (key, packets, sketch).
    std::map<std::uint64_t, bucket::Row> rows;
    for (std::size_t p = 0; p < kPorts.size(); ++p) {
      const PortWeight& pw = kPorts[p];
      double n_port = volume * pw.weight * u(rng) * 2.0;
      if (p == burst) n_port *= 10.0;
      for (const CountryWeight& c : kCountries) {
        double w = c.weight;
        if (c.code[0] == 'J' && c.code[1] == 'P') w *= domestic ? 1.8 : 0.7;
        const auto n = static_cast<std::uint64_t>(std::llround(n_port * w * (0.5 + u(rng))));
        if (n == 0) continue;
        const double mirai_share = pw.mirai * (c.code[0] == 'U' ? 0.5 : 1.0);
        const auto mirai =
            pw.proto == Proto::tcp
                ? static_cast<std::uint64_t>(std::llround(static_cast<double>(n) * mirai_share))
                : 0;
        for (int part = 0; part < 2; ++part) {
          std::uint64_t count = part == 0 ? n - mirai : mirai;
          if (count == 0) continue;
          Key k;
          k.proto = pw.proto;
          k.has_port = pw.port >= 0;
          k.port = static_cast<std::uint16_t>(pw.port == 0 ? tail[rng() % tail.size()]
                                                           : std::max(pw.port, 0));
          if (pw.proto == Proto::icmp) {
            k.has_port = true;
            k.port = u(rng) < 0.7 ? 8 : 3;  // echo requests; unreachables are backscatter
          }
          k.country = classify::country_from_string(std::string_view{c.code, 2});
          k.fingerprint = part == 1 ? Fingerprint::mirai : Fingerprint::none;
          k.kind = (pw.proto == Proto::icmp && k.port == 3) ? Kind::backscatter : Kind::scan;
          bucket::Row& row = rows.try_emplace(k.pack(), bucket::Row{k, 0, 0, {}}).first->second;
          row.packets += count;
          row.bytes += count * pw.bytes;
          // Sources: scanners repeat; a burst comes from one host.
          const std::uint64_t distinct =
              p == burst ? 1
                         : std::max<std::uint64_t>(1, std::min<std::uint64_t>(count / 3 + 1, 400));
          for (std::uint64_t s = 0; s < distinct; ++s) {
            const std::uint64_t src = rng() % c.pool;
            row.hosts.add(sketch::hash_ipv4(
                static_cast<std::uint32_t>((static_cast<std::uint32_t>(c.code[0]) << 24) ^
                                           (static_cast<std::uint32_t>(c.code[1]) << 16) ^
                                           static_cast<std::uint32_t>(src * 2654435761u))));
          }
        }
      }
    }
    // Spread the day over its buckets (each row's packets evenly, remainder to the first).
    for (std::uint32_t b = 0; b < per_day; ++b) {
      bucket::SealedBucket out;
      out.sensor_id = sensor.id;
      out.boot_id = "sim-" + std::to_string(o.seed);
      out.seq = seq++;
      out.start = day * 86400 + static_cast<std::int64_t>(b) * o.width_s;
      out.width_s = o.width_s;
      out.provenance = {"teitenctl simulate", std::string(64, '0'), 0, true};
      for (const auto& [packed, row] : rows) {
        const std::uint64_t share = row.packets / per_day + (b == 0 ? row.packets % per_day : 0);
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

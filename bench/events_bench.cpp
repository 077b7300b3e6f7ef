// SPDX-License-Identifier: Apache-2.0
// The notable-changes detector, evaluated (docs/notable-changes.md, "Evaluation"): six
// simulated sensors (three domestic, three overseas) over 15 months with seeded labelled
// events of every kind put in (teitenctl simulate --random-events), ingested into a real
// collector store (SQLite), then the events found over the whole span compared with the
// labels: precision, recall and detection delay per kind. Then the same months without
// any event: false alarms per 100 sensor-days. Then live: a month of hourly buckets with
// spikes of single hours, each hour judged as the collector's live thread does. Targets:
// precision and recall >= 0.9 for every kind, at most one false alarm per 100 sensor-days,
// live spikes known within two hours.
//
// Usage: events_bench [--events 60] [--runs 3] [--seed 1] [--months 15] [--part both|daily|live]
//   Each run simulates with seed + run and its own event set (live: its own month with 40
//   spikes, and a month without); the figures are over all.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "collector/events/events.h"
#include "collector/events/live.h"
#include "collector/store/store.h"
#include "common/bucket/bucket_json.h"
#include "common/log/log.h"
#include "ctl/sim/simulator.h"

using namespace teiten;
using collector::events::Event;
using collector::events::Kind;
using Clock = std::chrono::steady_clock;

namespace {

struct Tally {
  int detected = 0, true_positive = 0;  // precision: of the detections of this kind
  int labels = 0, recalled = 0;         // recall: of the labels of this kind
  std::vector<double> delays;           // days from the start to the decision
};

bool same_dest(const Event& d, const sim::SimEvent& l) {
  if (l.proto == "icmp") return d.dest.proto == "icmp";
  return d.dest.proto == l.proto && d.dest.port == l.port;
}

// A detection belongs to a label when it names its destination within a day or two of
// its start (a spike anywhere in its days).
bool matches(const Event& d, const sim::SimEvent& l) {
  if (!same_dest(d, l)) return false;
  const std::int64_t end = l.kind == "spike" ? l.start_day + l.days - 1 : l.start_day;
  return d.day >= l.start_day - 2 && d.day <= end + 2;
}

struct World {
  sim::SimOptions o;
  std::vector<Event> events;
  double sensor_days = 0;
};

World run(sim::SimOptions o, const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string yaml =
      "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
      "  key: /etc/hostname\nsensors:\n" +
      sim::sim_registry_yaml(o);
  auto loaded = collector::parse_collector_config("bench.yaml", yaml);
  if (!std::holds_alternative<collector::CollectorConfig>(loaded))
    throw std::runtime_error("registry did not parse");
  const auto cfg = std::get<collector::CollectorConfig>(loaded);
  collector::StoreConfig sc;
  sc.path = dir + "/store.sqlite";
  sc.time_zone = "Asia/Tokyo";
  auto store = collector::open_store(sc);
  World w;
  w.o = o;
  for (std::size_t i = 0; i < o.domestic + o.overseas; ++i) {
    std::vector<bucket::SealedBucket> batch;
    sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) { batch.push_back(std::move(b)); });
    w.sensor_days += static_cast<double>(batch.size());  // daily buckets
    store->ingest(batch);
  }
  // Found in ranges of 200 days (a request finds at most 400 at once).
  for (std::int64_t from = o.start_day; from < sim::end_day(o); from += 200) {
    collector::events::EventsRequest req;
    req.day_from = from;
    req.day_to = std::min(from + 199, sim::end_day(o) - 1);
    req.limit = 100000;
    for (auto& e : collector::events::find_events(*store, cfg, req))
      w.events.push_back(std::move(e));
  }
  return w;
}

struct LiveFigures {
  int labels = 0, detected = 0, true_positive = 0, recalled = 0;
  double delay_minutes = 0, sensor_days = 0;
};

LiveFigures live_run(std::uint64_t seed, int spikes) {
  const std::string dir = "/tmp/teiten-events-bench-live";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  sim::SimOptions o;
  o.seed = seed;
  o.months = 1;
  o.width_s = 3600;
  o.start_day = 18718;
  const std::int64_t days = sim::end_day(o) - o.start_day;
  // Spikes of one hour: 3-8 times, after four days of history, one per destination a day.
  std::mt19937_64 rng(seed * 77 + 1);
  const std::vector<std::pair<std::string, int>> dests = {
      {"tcp", 23},   {"tcp", 22},   {"tcp", 445},  {"tcp", 80}, {"tcp", 3389}, {"tcp", 443},
      {"tcp", 8080}, {"tcp", 2323}, {"udp", 5060}, {"udp", 53}, {"icmp", -1}};
  static constexpr const char* regions[] = {"domestic", "overseas", "both"};
  for (int i = 0; i < spikes; ++i) {
    sim::SimEvent e;
    e.kind = "spike";
    e.region = regions[i % 3];
    for (;;) {
      const auto& d = dests[rng() % dests.size()];
      e.proto = d.first;
      e.port = d.second;
      e.start_day = o.start_day + 4 + static_cast<std::int64_t>(rng() % (days - 5));
      if (std::none_of(o.events.begin(), o.events.end(), [&](const sim::SimEvent& x) {
            return x.proto == e.proto && x.port == e.port &&
                   std::llabs(x.start_day - e.start_day) < 4;
          }))
        break;
    }
    e.hour = static_cast<int>(rng() % 24);
    e.days = 1;
    e.size = 3 + 5 * std::uniform_real_distribution<double>(0, 1)(rng);
    o.events.push_back(e);
  }
  const std::string yaml =
      "collector:\n  database: x\ntls:\n  ca: /etc/hostname\n  cert: /etc/hostname\n"
      "  key: /etc/hostname\nevents:\n  live_grace: 10m\nsensors:\n" +
      sim::sim_registry_yaml(o);
  const auto cfg = std::make_shared<const collector::CollectorConfig>(
      std::get<collector::CollectorConfig>(collector::parse_collector_config("b.yaml", yaml)));
  collector::StoreConfig sc;
  sc.path = dir + "/store.sqlite";
  sc.time_zone = "Asia/Tokyo";
  LiveFigures f;
  {
    auto store = collector::open_store(sc);
    for (std::size_t i = 0; i < o.domestic + o.overseas; ++i) {
      std::vector<bucket::SealedBucket> batch;
      sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) { batch.push_back(std::move(b)); });
      f.sensor_days += static_cast<double>(batch.size()) / 24.0;
      store->ingest(batch);
    }
  }
  teiten::log::set_level("error");  // the live thread logs each event it finds
  collector::events::LiveEvents live(
      sc, [cfg] { return cfg; }, std::chrono::seconds(0));
  std::vector<Event> found;
  std::vector<std::int64_t> when;  // the clock of the evaluation that found each
  // From the fourth day on, every hour, as the live thread would see the clock.
  for (std::int64_t h = (o.start_day + 4) * 24; h < sim::end_day(o) * 24; ++h) {
    const std::int64_t now = (h + 1) * 3600 + 600;
    for (auto& e : live.evaluate(now)) {
      found.push_back(std::move(e));
      when.push_back(now);
    }
  }
  f.labels = spikes;
  f.detected = static_cast<int>(found.size());
  const auto hour_of = [](const sim::SimEvent& l) { return l.start_day * 86400 + l.hour * 3600; };
  for (const Event& d : found)
    if (std::any_of(o.events.begin(), o.events.end(), [&](const sim::SimEvent& l) {
          return same_dest(d, l) && *d.hour == hour_of(l);
        }))
      ++f.true_positive;
  std::vector<double> delays;
  for (const sim::SimEvent& l : o.events) {
    bool hit = false;
    for (std::size_t k = 0; k < found.size() && !hit; ++k)
      if (same_dest(found[k], l) && *found[k].hour == hour_of(l)) {
        ++f.recalled;
        delays.push_back(static_cast<double>(when[k] - hour_of(l)) / 60.0);
        hit = true;
      }
    if (!hit)
      std::printf("  live missed: %s %d/%s size %.2f at %s\n", l.region.c_str(), l.port,
                  l.proto.c_str(), l.size, bucket::format_rfc3339(hour_of(l)).c_str());
  }
  if (!delays.empty()) f.delay_minutes = *std::max_element(delays.begin(), delays.end());
  std::filesystem::remove_all(dir);
  return f;
}

// The daily events over `runs` simulations of `months`, and the same months without any.
bool daily(std::size_t n_events, int runs, std::uint64_t seed, std::uint32_t months) {
  const std::string dir = "/tmp/teiten-events-bench";
  std::map<std::string, Tally> tally;
  const std::vector<std::string> kinds = {"spike", "level_shift", "emergence", "fingerprint_shift",
                                          "divergence"};
  double seconds = 0;
  // Labels from one source country: recalled, and said of that country.
  int one_country = 0, one_country_recalled = 0, one_country_named = 0, jp = 0, jp_recalled = 0;
  for (int r = 0; r < runs; ++r) {
    sim::SimOptions o;
    o.seed = seed + static_cast<std::uint64_t>(r);
    o.months = months;
    o.width_s = 86400;
    o.start_day = 18718;  // 2021-04-01
    o.events = sim::random_events(o, n_events, o.seed);
    const auto t0 = Clock::now();
    const World w = run(o, dir);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    for (const Event& d : w.events) {
      const std::string k{collector::events::to_string(d.kind)};
      ++tally[k].detected;
      if (std::any_of(o.events.begin(), o.events.end(),
                      [&](const sim::SimEvent& l) { return matches(d, l); })) {
        ++tally[k].true_positive;
      } else {
        std::printf("  unlabelled (%s, score %.1f): %s\n", to_string(d.kind).data(), d.score,
                    d.sentence.c_str());
      }
      if (d.divergence) {
        ++tally["divergence"].detected;
        if (std::any_of(o.events.begin(), o.events.end(), [&](const sim::SimEvent& l) {
              return matches(d, l) && l.region == d.scope;
            }))
          ++tally["divergence"].true_positive;
      }
    }
    for (const sim::SimEvent& l : o.events) {
      Tally& t = tally[l.kind];
      ++t.labels;
      const Event* hit = nullptr;
      for (const Event& d : w.events)
        if (matches(d, l) && collector::events::to_string(d.kind) == l.kind) {
          hit = &d;
          break;
        }
      if (!l.country.empty()) {
        ++one_country;
        jp += l.country == "JP";
        one_country_recalled += hit != nullptr;
        jp_recalled += hit != nullptr && l.country == "JP";
        one_country_named += hit != nullptr && hit->country == l.country;
      }
      if (hit) {
        ++t.recalled;
        t.delays.push_back(static_cast<double>(hit->detected_on - l.start_day + 1));
      } else {
        std::printf("  missed: %s %s %d/%s %s%s start %s size %.2f\n", l.kind.c_str(),
                    l.region.c_str(), l.port, l.proto.c_str(), l.fingerprint.c_str(),
                    l.country.empty() ? "" : (" from " + l.country).c_str(),
                    bucket::format_rfc3339(l.start_day * 86400).substr(0, 10).c_str(), l.size);
      }
      if (l.region != "both") {
        Tally& dv = tally["divergence"];
        ++dv.labels;
        const bool found = std::any_of(w.events.begin(), w.events.end(), [&](const Event& d) {
          return matches(d, l) && d.divergence && d.scope == l.region;
        });
        if (found) ++dv.recalled;
      }
    }
  }
  std::printf("\n%d runs of 6 sensors over %u months, %zu labelled events each (%.1f s a run)\n",
              runs, months, n_events, seconds / runs);
  std::printf("%-18s %9s %9s %10s %8s %14s\n", "kind", "detected", "labels", "precision", "recall",
              "delay (days)");
  bool met = true;
  for (const auto& k : kinds) {
    const Tally& t = tally[k];
    const double p = t.detected ? static_cast<double>(t.true_positive) / t.detected : 1.0;
    const double rc = t.labels ? static_cast<double>(t.recalled) / t.labels : 1.0;
    std::vector<double> d = t.delays;
    std::sort(d.begin(), d.end());
    char delay[64] = "-";
    if (!d.empty())
      std::snprintf(delay, sizeof delay, "median %.0f, max %.0f", d[d.size() / 2], d.back());
    std::printf("%-18s %9d %9d %10.3f %8.3f %14s\n", k.c_str(), t.detected, t.labels, p, rc, delay);
    met = met && p >= 0.9 && rc >= 0.9;
  }

  const auto ratio = [](int a, int b) { return b ? static_cast<double>(a) / b : 1.0; };
  std::printf(
      "from one source country: %d labels, recall %.3f (JP %d of %d, the others %d of %d), "
      "said of that country %d (%.3f)\n",
      one_country, ratio(one_country_recalled, one_country), jp_recalled, jp,
      one_country_recalled - jp_recalled, one_country - jp, one_country_named,
      ratio(one_country_named, one_country_recalled));

  // The same months, nothing put in.
  std::size_t false_alarms = 0;
  double sensor_days = 0;
  for (int r = 0; r < runs; ++r) {
    sim::SimOptions o;
    o.seed = seed + 1000 + static_cast<std::uint64_t>(r);
    o.months = months;
    o.width_s = 86400;
    o.start_day = 18718;
    const World w = run(o, dir);
    false_alarms += w.events.size();
    sensor_days += w.sensor_days;
    for (const Event& d : w.events)
      std::printf("  false alarm (%s, score %.1f): %s\n", to_string(d.kind).data(), d.score,
                  d.sentence.c_str());
  }
  const double per_100 = 100.0 * static_cast<double>(false_alarms) / sensor_days;
  std::printf(
      "without events: %zu false alarms over %.0f sensor-days: %.3f per 100 sensor-days "
      "(%.1f per sensor-year; target <= 1 per 100)\n",
      false_alarms, sensor_days, per_100, per_100 * 3.65);
  std::filesystem::remove_all(dir);
  return met && per_100 <= 1.0;
}

// Live: hourly buckets over a month with spikes of single hours, each whole hour judged
// as the collector's live thread does (LiveEvents::evaluate at the hour's end + grace).
bool live(int runs, std::uint64_t seed) {
  LiveFigures with, without;
  for (int r = 0; r < runs; ++r) {
    const LiveFigures a = live_run(seed + static_cast<std::uint64_t>(r), 40);
    const LiveFigures b = live_run(seed + 1000 + static_cast<std::uint64_t>(r), 0);
    with.labels += a.labels;
    with.detected += a.detected;
    with.true_positive += a.true_positive;
    with.recalled += a.recalled;
    with.delay_minutes = std::max(with.delay_minutes, a.delay_minutes);
    without.detected += b.detected;
    without.sensor_days += b.sensor_days;
  }
  const double live_precision =
      with.detected ? static_cast<double>(with.true_positive) / with.detected : 1.0;
  const double live_recall = with.labels ? static_cast<double>(with.recalled) / with.labels : 1.0;
  const double live_alarms = 100.0 * static_cast<double>(without.detected) / without.sensor_days;
  std::printf(
      "live (hourly buckets, %d run(s) of one month, 6 sensors): %d hourly spikes put in, %d "
      "found (%d right): precision %.3f, recall %.3f; detected %.0f minutes after the spike's "
      "hour began (its end + live_grace 10 min; target <= 2 h); without events: %d false "
      "alarms over %.0f sensor-days (%.3f per 100)\n",
      runs, with.labels, with.detected, with.true_positive, live_precision, live_recall,
      with.delay_minutes, without.detected, without.sensor_days, live_alarms);
  return live_precision >= 0.9 && live_recall >= 0.9 && with.delay_minutes <= 120 &&
         live_alarms <= 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n_events = 60;
  int runs = 3;
  std::uint64_t seed = 1;
  std::uint32_t months = 15;
  std::string part = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--events")
      n_events = std::stoul(v);
    else if (a == "--runs")
      runs = std::stoi(v);
    else if (a == "--seed")
      seed = std::stoull(v);
    else if (a == "--months")
      months = static_cast<std::uint32_t>(std::stoul(v));
    else if (a == "--part" && (v == "both" || v == "daily" || v == "live"))
      part = v;
    else {
      std::fprintf(stderr,
                   "usage: events_bench [--events 60] [--runs 3] [--seed 1] [--months 15] "
                   "[--part both|daily|live]\n");
      return 2;
    }
  }
  bool met = true;
  if (part != "live") met = daily(n_events, runs, seed, months);
  if (part != "daily") met = live(runs, seed) && met;
  std::printf("targets %s\n", met ? "met" : "NOT met");
  return 0;
}

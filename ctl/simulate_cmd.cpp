// SPDX-License-Identifier: Apache-2.0
// teitenctl simulate: buckets of a simulated sensor network, pushed through the
// collector's real ingest API (mutual TLS, one certificate per simulated sensor).
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/http/client.h"
#include "ctl/commands.h"
#include "ctl/sim/simulator.h"

namespace teiten::ctl {

namespace {

bool parse_count(const std::string& s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  out = std::stoull(s);
  return out <= max;
}

}  // namespace

int cmd_simulate(const std::vector<std::string>& args) {
  sim::SimOptions o;
  std::string collector, pki, start = "2022-01", events_in, labels_out;
  std::uint64_t random_events = 0, events_seed = 1;
  bool registry_only = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--print-registry") {
      registry_only = true;
      continue;
    }
    if (i + 1 >= args.size()) return fail_usage("simulate: " + a + " needs a value");
    const std::string& v = args[++i];
    std::uint64_t n = 0;
    if (a == "--collector") {
      collector = v;
    } else if (a == "--pki") {
      pki = v;
    } else if (a == "--start") {
      start = v;
    } else if (a == "--domestic" || a == "--overseas") {
      if (!parse_count(v, 999, n)) return fail_usage("simulate: " + a + ": expected 0 to 999");
      (a == "--domestic" ? o.domestic : o.overseas) = static_cast<std::uint32_t>(n);
    } else if (a == "--months") {
      if (!parse_count(v, 240, n) || n == 0)
        return fail_usage("simulate: --months: expected 1 to 240");
      o.months = static_cast<std::uint32_t>(n);
    } else if (a == "--seed") {
      if (!parse_count(v, 999999999, n)) return fail_usage("simulate: --seed: expected a number");
      o.seed = n;
    } else if (a == "--width") {
      if (v != "3600" && v != "86400") return fail_usage("simulate: --width: 3600 or 86400");
      o.width_s = static_cast<std::uint32_t>(std::stoul(v));
    } else if (a == "--events") {
      events_in = v;
    } else if (a == "--random-events") {
      if (!parse_count(v, 10000, random_events))
        return fail_usage("simulate: --random-events: expected 0 to 10000");
    } else if (a == "--events-seed") {
      if (!parse_count(v, 999999999, events_seed))
        return fail_usage("simulate: --events-seed: expected a number");
    } else if (a == "--labels") {
      labels_out = v;
    } else if (a == "--packets-per-day") {
      if (!parse_count(v, 100000000, n) || n == 0)
        return fail_usage("simulate: --packets-per-day: expected 1 to 100000000");
      o.packets_per_day = static_cast<double>(n);
    } else {
      return fail_usage("simulate: unknown option '" + a + "'");
    }
  }
  const auto month_start = bucket::parse_rfc3339(start + "-01T00:00:00Z");
  if (start.size() != 7 || !month_start) return fail_usage("simulate: --start: expected YYYY-MM");
  o.start_day = *month_start / 86400;
  if (o.domestic + o.overseas == 0)
    return fail_usage("simulate: no sensors (--domestic, --overseas)");
  if (!events_in.empty() && random_events > 0)
    return fail_usage("simulate: --events and --random-events exclude each other");
  try {
    if (!events_in.empty()) {
      // At most 64 MiB is read (a labels file is kilobytes; /dev/zero is refused).
      constexpr std::size_t kMax = 64u << 20;
      std::ifstream in(events_in, std::ios::binary);
      if (!in) return fail_usage("simulate: cannot read " + events_in);
      std::string text(kMax + 1, '\0');
      in.read(text.data(), static_cast<std::streamsize>(text.size()));
      text.resize(static_cast<std::size_t>(in.gcount()));
      if (in.bad()) return fail_usage("simulate: cannot read " + events_in);
      if (text.size() > kMax) return fail_usage("simulate: " + events_in + ": over 64 MiB");
      o.events = sim::parse_events(text);
    } else if (random_events > 0) {
      o.events = sim::random_events(o, random_events, events_seed);
    }
  } catch (const std::invalid_argument& e) {
    return fail_usage(std::string{"simulate: "} + e.what());
  }
  if (!labels_out.empty()) {
    std::ofstream out(labels_out, std::ios::binary | std::ios::trunc);
    out << sim::events_json(o.events);
    if (!out.flush()) {
      std::cerr << "teitenctl simulate: cannot write " << labels_out << "\n";
      return 1;
    }
  }
  if (registry_only) {
    std::cout << "sensors:\n" << sim::sim_registry_yaml(o);
    return 0;
  }
  const auto colon = collector.rfind(':');
  if (collector.empty() || colon == std::string::npos || pki.empty())
    return fail_usage("simulate: --collector HOST:PORT and --pki DIR are required");
  const std::string host = collector.substr(0, colon), port = collector.substr(colon + 1);
  const auto sensors = sim::sim_sensors(o);
  std::uint64_t packets = 0, buckets = 0, stored = 0, duplicate = 0;
  try {
    for (std::size_t i = 0; i < sensors.size(); ++i) {
      const std::string base = pki + "/sensor-" + sensors[i].id;
      if (!std::filesystem::exists(base + ".pem")) {
        const int rc = cmd_pki({"sensor", "--dir", pki, "--id", sensors[i].id});
        if (rc != 0) return rc;
      }
      auto ctx = tls::make_client_tls({pki + "/ca.pem", base + ".pem", base + ".key"},
                                      tls::Role::collector);
      std::vector<bucket::SealedBucket> batch;
      std::size_t batch_bytes = 0;
      auto flush = [&] {
        if (batch.empty()) return;
        const auto res =
            http::https_request_sync(ctx, host, port, "POST", "/v1/buckets",
                                     bucket::to_batch_json(batch), std::chrono::seconds(120));
        const auto body = nlohmann::json::parse(res.body, nullptr, false);
        if (res.status != 200 || body.is_discarded())
          throw std::runtime_error("collector answered " + std::to_string(res.status) + ": " +
                                   res.body);
        stored += body["stored"].size();
        duplicate += body["duplicate"].size();
        buckets += batch.size();
        batch.clear();
        batch_bytes = 0;
      };
      packets += sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) {
        batch_bytes += bucket::to_json_line(b).size() + 1;  // what the body will hold
        batch.push_back(std::move(b));
        if (batch.size() >= 1000 || batch_bytes >= (4u << 20)) flush();  // the collector: 16 MiB
      });
      flush();
      std::cerr << "teitenctl simulate: " << sensors[i].id << " done\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "teitenctl simulate: " << e.what() << "\n";
    return 1;
  }
  if (!o.events.empty())
    std::cout << o.events.size() << " labelled events put in"
              << (labels_out.empty() ? "" : " (labels: " + labels_out + ")") << "\n";
  std::cout << "simulated " << sensors.size() << " sensors over " << o.months
            << " months: " << buckets << " buckets (" << stored << " stored, " << duplicate
            << " already there), " << packets << " packets\n";
  return 0;
}

}  // namespace teiten::ctl

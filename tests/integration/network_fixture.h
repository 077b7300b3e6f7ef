// SPDX-License-Identifier: Apache-2.0
#pragma once

// A test sensor network on loopback: a CA, collector and sensor certificates made with
// teitenctl pki, a real teiten-collectord, and helpers to compare its totals with the
// traffic generator's ground truth.
#include <utility>  // before Asio

#include <fcntl.h>
#include <sched.h>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <thread>

#include "common/http/client.h"
#include "ctl/gen/traffic_gen.h"
#include "tests/integration/test_support.h"
#include "tests/unit/test_paths.h"

namespace teiten::test {

using Totals = std::map<std::string, std::uint64_t>;

inline std::string collector_path() {
  std::string s = sensord_path();
  return s.substr(0, s.rfind("/daemon/")) + "/collector/teiten-collectord";
}

/// Runs `fn` in network namespace `ns` ("" = here) on a thread of its own (setns changes
/// only the calling thread), returning its result or rethrowing its exception.
template <typename F>
auto in_netns(const std::string& ns, F fn) -> decltype(fn()) {
  if (ns.empty()) return fn();
  std::optional<decltype(fn())> result;
  std::exception_ptr error;
  std::thread t([&] {
    try {
      const int fd = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
        throw std::runtime_error("cannot enter network namespace " + ns);
      ::close(fd);
      result.emplace(fn());
    } catch (...) {
      error = std::current_exception();
    }
  });
  t.join();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

/// A CA, a collector and sensors with certificates, in a temporary folder.
class Network {
 public:
  Network() {
    ctl({"pki", "init", "--dir", pki()});
    ctl({"pki", "collector", "--dir", pki(), "--name", "localhost", "--ip", "127.0.0.1"});
    ctl({"pki", "sensor", "--dir", pki(), "--id", "gen-1"});
    ctl({"pki", "sensor", "--dir", pki(), "--id", "gen-2"});
    ctl({"pki", "operator", "--dir", pki(), "--name", "op"});
  }
  std::string pki() const { return dir / "pki"; }
  void ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {teitenctl_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = run(argv, dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  /// Writes collector.yaml: the fixture's registry (and extra_sensors), `extra` sections.
  void write_collector_config(const std::string& extra = "") {
    write_file(
        dir / "collector.yaml",
        "collector:\n  listen: " + listen + "\n  port: " + std::to_string(port ? port : 0) +
            "\n  database: collector.sqlite\ntls:\n  ca: pki/ca.pem\n  cert: pki/collector.pem\n"
            "  key: pki/collector.key\ndashboard:\n  listen: " +
            listen + "\n  port: 0\n" + extra +
            "sensors:\n  - id: gen-1\n    region: domestic\n    label: Tokyo 1\n    active_from: "
            "2022-01-01\n"
            "  - id: gen-2\n    region: overseas\n    active_from: 2022-01-01\n"
            "  - id: retired-1\n    region: domestic\n    active_from: 2022-01-01\n"
            "    active_to: 2022-06-01\n" +
            extra_sensors);
  }

  /// Starts the collector (port chosen by the kernel) and waits until it listens.
  std::unique_ptr<Process> start_collector(const std::string& extra = "") {
    write_collector_config(extra);
    const std::string log = dir / ("collector-" + std::to_string(++starts) + ".log");
    std::vector<std::string> argv = wrap;
    argv.insert(argv.end(), {collector_path(), "-c", dir / "collector.yaml"});
    auto p = std::make_unique<Process>(argv, log, collector_env);
    std::smatch m;
    const std::regex re("listening address=\\S+ port=(\\d+)");
    REQUIRE(eventually(
        [&] {
          const std::string text = read_file(log);
          if (!std::regex_search(text, m, re)) return false;
          // The dashboard (always configured here) is logged on the line after: wait for
          // it too (under TSan the log was once read between the two lines).
          std::smatch d;
          if (!std::regex_search(text, d, std::regex("dashboard address=\\S+ port=(\\d+)")))
            return false;
          port = static_cast<std::uint16_t>(std::stoi(m[1]));
          dashboard_port = static_cast<std::uint16_t>(std::stoi(d[1]));
          return true;
        },
        std::chrono::seconds(20)));
    return p;
  }

  void write_sensor_config(const std::string& id, const std::string& mmdb,
                           const std::string& extra = "") {
    write_file(dir / (id + ".yaml"),
               "sensor:\n  id: " + id +
                   "\n  addresses: [203.0.113.7, \"2001:db8:7::7\"]\ngeoip:\n  database: \"" +
                   mmdb + "\"\nstate:\n  dir: state-" + id + "\nupload:\n  collector: " +
                   (collectors.empty() ? host + ":" + std::to_string(port) : collectors) +
                   "\n  ca: pki/ca.pem\n  cert: pki/sensor-" + id + ".pem\n  key: pki/sensor-" +
                   id + ".key\n" + extra);
  }

  http::HttpResponse request(const std::string& who, const std::string& method,
                             const std::string& target, const std::string& body = "",
                             std::chrono::seconds timeout = std::chrono::seconds(20)) {
    return in_netns(netns, [&] {
      auto ctx = tls::make_client_tls(
          {pki() + "/ca.pem", pki() + "/" + who + ".pem", pki() + "/" + who + ".key"},
          tls::Role::collector);
      return http::https_request_sync(ctx, host, std::to_string(port), method, target, body,
                                      timeout);
    });
  }

  /// The collector's totals per (proto, port, country, fingerprint, kind) for one sensor.
  Totals totals(const std::string& sensor) {
    const auto res =
        request("operator-op", "GET",
                "/v1/query?sensor=" + sensor + "&group_by=proto,port,country,fingerprint,kind");
    REQUIRE(res.status == 200);
    Totals out;
    const auto body = nlohmann::json::parse(res.body);  // kept alive for the loop
    for (const auto& r : body["rows"]) {
      out[r["proto"].get<std::string>() + "/" + r["port"].dump() + "/" +
          r["country"].get<std::string>() + "/" + r["fingerprint"].get<std::string>() + "/" +
          r["kind"].get<std::string>()] = r["packets"].get<std::uint64_t>();
    }
    return out;
  }
  nlohmann::json accounting(const std::string& sensor) {
    const auto res =
        request("operator-op", "GET", "/v1/query?sensor=" + sensor + "&group_by=proto");
    REQUIRE(res.status == 200);
    return nlohmann::json::parse(res.body)["accounting"];
  }

  TempDir dir;
  std::uint16_t port = 0;
  std::uint16_t dashboard_port = 0;  ///< the dashboard listener (port 0 in the config)
  std::string extra_sensors;         ///< registry entries after the fixture's own
  std::string listen = "127.0.0.1";  ///< the collector's address
  std::string host = "localhost";    ///< the name sensors and requests use for it
  std::vector<std::string> wrap;     ///< prefix of the collector's command line
                                     ///< (e.g. ip netns exec NS)
  std::string netns;                 ///< where requests to it are made from ("": here)
  std::string collectors;            ///< sensors' upload.collector when set (several collectors)
  std::vector<std::string> collector_env;  ///< NAME=value for the collector's environment
  int starts = 0;
};

inline Totals truth_totals(const gen::GroundTruth& t) {
  Totals out;
  for (const auto& [start, b] : t.buckets) {
    for (const auto& [packed, v] : b.rows) {
      const classify::Key k = classify::Key::unpack(packed);
      out[std::string{to_string(k.proto)} + "/" + (k.has_port ? std::to_string(k.port) : "null") +
          "/" + classify::country_to_string(k.country) + "/" +
          std::string{to_string(k.fingerprint)} + "/" + std::string{to_string(k.kind)}] +=
          v.packets;
    }
  }
  return out;
}

/// "" when equal, else the first differences, readable.
inline std::string diff(const Totals& got, const Totals& want) {
  std::string out;
  int shown = 0;
  std::uint64_t got_sum = 0, want_sum = 0;
  for (const auto& [k, v] : got) got_sum += v;
  for (const auto& [k, v] : want) want_sum += v;
  for (const auto& [k, v] : want) {
    const auto it = got.find(k);
    const std::uint64_t g = it == got.end() ? 0 : it->second;
    if (g != v && shown++ < 8)
      out += k + ": got " + std::to_string(g) + ", want " + std::to_string(v) + "\n";
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k) && shown++ < 8) out += k + ": got " + std::to_string(v) + ", want none\n";
  }
  if (!out.empty())
    out += "total: got " + std::to_string(got_sum) + ", want " + std::to_string(want_sum) + "\n";
  return out;
}

inline std::string make_mmdb(const TempDir& dir) {
  std::string text;
  for (const auto& p : gen::country_prefixes()) text += p.prefix + "\t" + p.country + "\n";
  write_file(dir / "prefixes.tsv", text);
  const RunResult r = run({"perl", source_dir() + "/tests/tools/write_mmdb.pl", "country_code",
                           dir / "prefixes.tsv", dir / "test.mmdb"},
                          dir);
  REQUIRE(r.exit_code == 0);
  return dir / "test.mmdb";
}

inline gen::GroundTruth generate(const TempDir& dir, std::uint64_t packets, std::uint32_t duration,
                                 std::uint32_t width = 60) {
  gen::GenOptions o;
  o.packets = packets;
  o.duration_s = duration;
  o.bucket_width_s = width;
  o.seed = 5;
  return gen::generate(o, dir / "in.pcap");
}

inline std::vector<std::string> sensord(Network& n, const std::string& id,
                                        const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {sensord_path(),    "-c",      n.dir / (id + ".yaml"), "-r",
                                   n.dir / "in.pcap", "--upload"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

}  // namespace teiten::test

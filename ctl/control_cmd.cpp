// SPDX-License-Identifier: Apache-2.0
// teitenctl status / pull: a sensor's control server, over mutual TLS.
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/http/client.h"
#include "ctl/commands.h"
#include "daemon/spool/dead_letter.h"

namespace teiten::ctl {

namespace {

struct Target {
  std::string sensor;  ///< HOST:PORT
  tls::ClientTlsFiles files;
  bool json = false;
  std::string since;
  std::string state_dir;  ///< dead-letter: a stopped sensor's state.dir instead of --sensor
};

// Parses the options both commands share. Returns "" or a usage message.
std::string parse(const std::string& cmd, const std::vector<std::string>& args, Target& t,
                  bool with_since, bool with_state_dir = false) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      t.json = true;
      continue;
    }
    if (i + 1 >= args.size()) return cmd + ": " + a + " needs a value";
    const std::string& v = args[++i];
    if (a == "--sensor") {
      t.sensor = v;
    } else if (a == "--ca") {
      t.files.ca = v;
    } else if (a == "--cert") {
      t.files.cert = v;
    } else if (a == "--key") {
      t.files.key = v;
    } else if (with_since && a == "--since") {
      if (!bucket::parse_rfc3339(v))
        return cmd + ": --since: '" + v + "' is not YYYY-MM-DDTHH:MM:SSZ";
      t.since = v;
    } else if (with_state_dir && a == "--state-dir") {
      t.state_dir = v;
    } else {
      return cmd + ": unknown option '" + a + "'";
    }
  }
  if (with_state_dir && !t.state_dir.empty()) {
    if (!t.sensor.empty()) return cmd + ": give --state-dir or --sensor, not both";
    return {};
  }
  const auto colon = t.sensor.rfind(':');
  if (t.sensor.empty() || colon == std::string::npos || t.files.ca.empty() ||
      t.files.cert.empty() || t.files.key.empty()) {
    return cmd + ": --sensor HOST:PORT, --ca, --cert and --key are required";
  }
  return {};
}

// GET (or POST) `path` from the sensor; the parsed JSON body, or nullopt after printing why.
std::optional<nlohmann::json> get(const std::string& cmd, const Target& t, const std::string& path,
                                  const std::string& method = "GET") {
  try {
    auto ctx = tls::make_client_tls(t.files, tls::Role::sensor);
    const auto colon = t.sensor.rfind(':');
    const auto res =
        http::https_request_sync(ctx, t.sensor.substr(0, colon), t.sensor.substr(colon + 1), method,
                                 path, "", std::chrono::seconds(30));
    auto body = nlohmann::json::parse(res.body, nullptr, false);
    if (res.status != 200 || body.is_discarded()) {
      std::cerr << "teitenctl " << cmd << ": sensor answered " << res.status << ": " << res.body
                << "\n";
      return std::nullopt;
    }
    return body;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl " << cmd << ": " << t.sensor << ": " << e.what() << "\n";
    return std::nullopt;
  }
}

std::string text(const nlohmann::json& v) {
  return v.is_null() ? "-" : v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

int cmd_status(const std::vector<std::string>& args) {
  Target t;
  if (const auto err = parse("status", args, t, false); !err.empty()) return fail_usage(err);
  const auto body = get("status", t, "/v1/status");
  if (!body) return 1;
  if (t.json) {
    std::cout << body->dump(1) << "\n";
    return 0;
  }
  const auto& b = *body;
  std::printf("sensor        %s (teiten %s, boot %s)\n", text(b["sensor"]).c_str(),
              text(b["version"]).c_str(), text(b["boot_id"]).c_str());
  std::printf("up since      %s (%s s)\n", text(b["started"]).c_str(), text(b["uptime_s"]).c_str());
  std::printf("capture       %s on %s (opened %s times, lost %s times)\n",
              text(b["capture"]["state"]).c_str(), text(b["interface"]).c_str(),
              text(b["capture"]["opens"]).c_str(), text(b["capture"]["errors"]).c_str());
  std::printf("packets       %s captured: %s observed, %s self, %s not for sensor, %s malformed\n",
              text(b["packets"]["captured"]).c_str(), text(b["packets"]["observed"]).c_str(),
              text(b["packets"]["self_traffic"]).c_str(),
              text(b["packets"]["not_for_sensor"]).c_str(),
              text(b["packets"]["malformed"]).c_str());
  std::printf("drops         ring %s, kernel %s, interface %s\n", text(b["drops"]["ring"]).c_str(),
              text(b["drops"]["kernel"]).c_str(), text(b["drops"]["interface"]).c_str());
  std::printf("buckets       %s sealed\n", text(b["buckets_sealed"]).c_str());
  if (b["spool"].is_object()) {
    std::printf("spool         %s buckets (%s bytes) awaiting delivery, %s dropped packets\n",
                text(b["spool"]["pending"]).c_str(), text(b["spool"]["bytes"]).c_str(),
                text(b["spool"]["dropped_packets"]).c_str());
  }
  std::printf("last upload   %s (%s failures)\n", text(b["last_upload"]).c_str(),
              text(b["upload_failures"]).c_str());
  if (b.contains("dead_letter") && b["dead_letter"].is_object()) {
    const auto& d = b["dead_letter"];
    std::printf(
        "dead letters  %s refused buckets kept (%s packets, %s queued to resend), %s "
        "removed at the bound\n",
        text(d["held"]).c_str(), text(d["packets"]).c_str(), text(d["queued"]).c_str(),
        text(d["dropped_buckets"]).c_str());
  }
  std::printf("certificate   expires %s\n", text(b["certificate_expiry"]).c_str());
  std::printf("GeoIP         built %s\n", text(b["geoip_build"]).c_str());
  return 0;
}

int cmd_pull(const std::vector<std::string>& args) {
  Target t;
  if (const auto err = parse("pull", args, t, true); !err.empty()) return fail_usage(err);
  const auto body = get("pull", t, "/v1/buckets" + (t.since.empty() ? "" : "?since=" + t.since));
  if (!body) return 1;
  if (t.json) {
    std::cout << body->dump(1) << "\n";
    return 0;
  }
  std::printf("%-20s %-6s %10s %10s %8s %8s %8s %8s\n", "start", "width", "observed", "self", "nfs",
              "malform", "drops", "seq");
  auto row = [](const nlohmann::json& b, const char* mark) {
    std::uint64_t malformed = 0;
    for (const auto& [k, v] : b["loss"]["malformed"].items()) malformed += v.get<std::uint64_t>();
    const auto& l = b["loss"];
    const std::uint64_t drops = l["ring_drops"].get<std::uint64_t>() +
                                l["kernel_drops"].get<std::uint64_t>() +
                                l["interface_drops"].get<std::uint64_t>();
    std::printf("%-20s %-6s %10s %10s %8s %8llu %8llu %8s%s\n", text(b["start"]).c_str(),
                text(b["width_s"]).c_str(), text(b["observed"]["packets"]).c_str(),
                text(b["self_traffic"]).c_str(), text(b["not_for_sensor"]).c_str(),
                static_cast<unsigned long long>(malformed), static_cast<unsigned long long>(drops),
                text(b["seq"]).c_str(), mark);
  };
  for (const auto& b : (*body)["buckets"]) row(b, "");
  if ((*body)["open"].is_object()) row((*body)["open"], "  (open)");
  return 0;
}

int cmd_dead_letter(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "list" && args[0] != "resend"))
    return fail_usage("dead-letter: expected list or resend");
  const std::string what = args[0];
  const std::string cmd = "dead-letter " + what;
  Target t;
  if (const auto err = parse(cmd, {args.begin() + 1, args.end()}, t, false, true); !err.empty())
    return fail_usage(err);
  nlohmann::json letters = nlohmann::json::array();
  if (!t.state_dir.empty()) {
    // A stopped sensor's own folder (a running one is asked through its control server).
    try {
      sensor::DeadLetterStore store(t.state_dir + "/dead-letter", UINT64_MAX);
      if (what == "resend") {
        const std::size_t n = store.queue_all();
        std::cout << n << " dead letters queued; the sensor sends them at its next start\n";
        return 0;
      }
      for (const auto& d : store.list()) letters.push_back(nlohmann::json::parse(to_json(d)));
    } catch (const std::exception& e) {
      std::cerr << "teitenctl " << cmd << ": " << e.what() << "\n";
      return 1;
    }
  } else if (what == "resend") {
    const auto body = get(cmd, t, "/v1/dead-letter/resend", "POST");
    if (!body) return 1;
    std::cout << text((*body)["queued"]) << " dead letters queued; the sensor sends them now\n";
    return 0;
  } else {
    const auto body = get(cmd, t, "/v1/dead-letter");
    if (!body) return 1;
    letters = (*body)["dead_letters"];
  }
  if (t.json) {
    std::cout << nlohmann::json{{"dead_letters", letters}}.dump(1) << "\n";
    return 0;
  }
  std::printf("%-20s %-37s %8s %10s %-7s %s\n", "start", "boot_id", "seq", "packets", "queued",
              "reason");
  for (const auto& d : letters) {
    std::printf("%-20s %-37s %8s %10s %-7s %s: %s\n", text(d["start"]).c_str(),
                text(d["boot_id"]).c_str(), text(d["seq"]).c_str(), text(d["packets"]).c_str(),
                d["queued"].get<bool>() ? "yes" : "no", text(d["reason"]).c_str(),
                text(d["message"]).c_str());
  }
  return 0;
}

}  // namespace teiten::ctl

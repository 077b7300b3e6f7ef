// SPDX-License-Identifier: Apache-2.0
// teitenctl query: totals from a collector, as a table or JSON.
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/http/client.h"
#include "ctl/commands.h"

namespace teiten::ctl {

bool collector_option(const std::string& option, const std::string& value, std::string& endpoint,
                      tls::ClientTlsFiles& files) {
  if (option == "--collector") {
    endpoint = value;
  } else if (option == "--ca") {
    files.ca = value;
  } else if (option == "--cert") {
    files.cert = value;
  } else if (option == "--key") {
    files.key = value;
  } else {
    return false;
  }
  return true;
}

int cmd_query(const std::vector<std::string>& args) {
  std::string collector, target = "/v1/query?", group_by = "proto,port";
  tls::ClientTlsFiles files;
  bool json = false;
  auto add = [&](const std::string& k, const std::string& v) {
    target += (target.back() == '?' ? "" : "&") + k + "=" + v;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= args.size()) return fail_usage("query: " + a + " needs a value");
    const std::string& v = args[++i];
    if (collector_option(a, v, collector, files)) {
      continue;
    } else if (a == "--group-by") {
      group_by = v;
    } else if (a == "--from" || a == "--to") {
      if (!bucket::parse_rfc3339(v))
        return fail_usage("query: " + a + ": '" + v + "' is not YYYY-MM-DDTHH:MM:SSZ");
      add(a.substr(2), v);
    } else if (a == "--sensor" || a == "--proto" || a == "--port" || a == "--country" ||
               a == "--fingerprint" || a == "--kind") {
      if (v.find_first_of("&?= ") != std::string::npos)
        return fail_usage("query: " + a + ": invalid value");
      add(a.substr(2), v);
    } else {
      return fail_usage("query: unknown option '" + a + "'");
    }
  }
  if (collector.empty() || files.ca.empty() || files.cert.empty() || files.key.empty()) {
    return fail_usage("query: --collector HOST:PORT, --ca, --cert and --key are required");
  }
  add("group_by", group_by);
  const auto colon = collector.rfind(':');
  if (colon == std::string::npos) return fail_usage("query: --collector: expected HOST:PORT");
  try {
    auto ctx = tls::make_client_tls(files, tls::Role::collector);
    const auto res =
        http::https_request_sync(ctx, collector.substr(0, colon), collector.substr(colon + 1),
                                 "GET", target, "", std::chrono::seconds(30));
    const auto body = nlohmann::json::parse(res.body, nullptr, false);
    if (res.status != 200 || body.is_discarded()) {
      std::cerr << "teitenctl query: collector answered " << res.status << ": " << res.body << "\n";
      return 1;
    }
    if (json) {
      std::cout << body.dump(1) << "\n";
      return 0;
    }
    std::vector<std::string> dims;
    for (std::size_t p = 0; p <= group_by.size();) {
      const auto c = group_by.find(',', p);
      dims.push_back(group_by.substr(p, c - p));
      if (c == std::string::npos) break;
      p = c + 1;
    }
    for (const auto& d : dims) std::printf("%-12s ", d.c_str());
    std::printf("%14s %16s\n", "packets", "bytes");
    for (const auto& row : body["rows"]) {
      for (const auto& d : dims) {
        const auto& v = row[d];
        std::printf("%-12s ", (v.is_string() ? v.get<std::string>() : v.dump()).c_str());
      }
      std::printf("%14llu %16llu\n",
                  static_cast<unsigned long long>(row["packets"].get<std::uint64_t>()),
                  static_cast<unsigned long long>(row["bytes"].get<std::uint64_t>()));
    }
    const auto& acc = body["accounting"];
    std::printf(
        "\nbuckets %llu, observed %llu, not for sensor %llu, self traffic %llu, malformed %llu, "
        "ring drops %llu\n",
        static_cast<unsigned long long>(acc["buckets"].get<std::uint64_t>()),
        static_cast<unsigned long long>(acc["observed_packets"].get<std::uint64_t>()),
        static_cast<unsigned long long>(acc["not_for_sensor"].get<std::uint64_t>()),
        static_cast<unsigned long long>(acc["self_traffic"].get<std::uint64_t>()),
        static_cast<unsigned long long>(acc["malformed"].get<std::uint64_t>()),
        static_cast<unsigned long long>(acc["ring_drops"].get<std::uint64_t>()));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl query: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace teiten::ctl

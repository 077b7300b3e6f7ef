// SPDX-License-Identifier: Apache-2.0
// teitenctl report: the quarterly analyses from a collector, in Markdown, CSV, JSON or HTML;
// teitenctl events: its notable changes alone.
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <algorithm>
#include <fstream>
#include <iostream>

#include "common/http/client.h"
#include "ctl/commands.h"

namespace teiten::ctl {

namespace {

// What one of the two commands asks the collector.
struct Fetch {
  std::string name;                  // report, events
  std::string target;                // /v1/report?
  std::vector<std::string> formats;  // the first is the default
  std::vector<std::string> options;  // passed on as query parameters (--sensor-top: sensor_top)
};

int fetch(const std::vector<std::string>& args, const Fetch& f) {
  std::string collector, output, format = f.formats.front(), target = f.target;
  tls::ClientTlsFiles files;
  bool has_range = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return fail_usage(f.name + ": " + a + " needs a value");
    const std::string& v = args[++i];
    if (collector_option(a, v, collector, files)) {
      continue;
    } else if (a == "--output") {
      output = v;
    } else if (a == "--format") {
      if (std::find(f.formats.begin(), f.formats.end(), v) == f.formats.end()) {
        std::string all;
        for (const auto& x : f.formats) all += (all.empty() ? "" : ", ") + x;
        return fail_usage(f.name + ": --format: '" + v + "' is not one of " + all);
      }
      format = v;
    } else if (std::find(f.options.begin(), f.options.end(), a) != f.options.end()) {
      // The collector checks the values and explains a refusal; only keep the URL intact.
      if (v.empty() || v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_/+.,") != std::string::npos)
        return fail_usage(f.name + ": " + a + ": invalid value '" + v + "'");
      std::string key = a.substr(2);
      if (key == "sensor-top") key = "sensor_top";
      has_range = has_range || key == "from" || key == "to" || key == "quarter";
      target += key + "=" + v + "&";
    } else {
      return fail_usage(f.name + ": unknown option '" + a + "'");
    }
  }
  const auto colon = collector.rfind(':');
  if (collector.empty() || colon == std::string::npos || files.ca.empty() || files.cert.empty() ||
      files.key.empty())
    return fail_usage(f.name + ": --collector HOST:PORT, --ca, --cert and --key are required");
  if (!has_range) return fail_usage(f.name + ": give --quarter (2022Q2) or --from and --to");
  target += "format=" + format;
  try {
    auto ctx = tls::make_client_tls(files, tls::Role::collector);
    const auto res =
        http::https_request_sync(ctx, collector.substr(0, colon), collector.substr(colon + 1),
                                 "GET", target, "", std::chrono::seconds(120));
    if (res.status != 200) {
      std::cerr << "teitenctl " << f.name << ": collector answered " << res.status << ": "
                << res.body << "\n";
      return 1;
    }
    if (output.empty() || output == "-") {
      std::cout << res.body;
      return 0;
    }
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    out << res.body;
    out.close();
    if (!out) {
      std::cerr << "teitenctl " << f.name << ": cannot write " << output << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl " << f.name << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int cmd_report(const std::vector<std::string>& args) {
  return fetch(args, {"report",
                      "/v1/report?",
                      {"markdown", "csv", "json", "html"},
                      {"--from", "--to", "--quarter", "--country", "--rank", "--top",
                       "--sensor-top", "--tz", "--sensors", "--events"}});
}

int cmd_events(const std::vector<std::string>& args) {
  return fetch(args,
               {"events",
                "/v1/events?",
                {"markdown", "csv", "json"},
                {"--from", "--to", "--quarter", "--country", "--tz", "--sensors", "--limit"}});
}

}  // namespace teiten::ctl

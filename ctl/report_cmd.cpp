// SPDX-License-Identifier: Apache-2.0
// teitenctl report: the quarterly analyses from a collector, in Markdown, CSV, JSON or HTML.
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <fstream>
#include <iostream>

#include "common/http/client.h"
#include "ctl/commands.h"

namespace teiten::ctl {

int cmd_report(const std::vector<std::string>& args) {
  std::string collector, output, format = "markdown", target = "/v1/report?";
  tls::ClientTlsFiles files;
  bool has_range = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return fail_usage("report: " + a + " needs a value");
    const std::string& v = args[++i];
    if (collector_option(a, v, collector, files)) {
      continue;
    } else if (a == "--output") {
      output = v;
    } else if (a == "--format") {
      if (v != "markdown" && v != "csv" && v != "json" && v != "html")
        return fail_usage("report: --format: '" + v + "' is not markdown, csv, json or html");
      format = v;
    } else if (a == "--from" || a == "--to" || a == "--quarter" || a == "--country" ||
               a == "--rank" || a == "--top" || a == "--sensor-top" || a == "--tz" ||
               a == "--sensors") {
      // The collector checks the values and explains a refusal; only keep the URL intact.
      if (v.empty() || v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789-_/+.,") != std::string::npos)
        return fail_usage("report: " + a + ": invalid value '" + v + "'");
      std::string key = a.substr(2);
      if (key == "sensor-top") key = "sensor_top";
      has_range = has_range || key == "from" || key == "to" || key == "quarter";
      target += key + "=" + v + "&";
    } else {
      return fail_usage("report: unknown option '" + a + "'");
    }
  }
  const auto colon = collector.rfind(':');
  if (collector.empty() || colon == std::string::npos || files.ca.empty() || files.cert.empty() ||
      files.key.empty())
    return fail_usage("report: --collector HOST:PORT, --ca, --cert and --key are required");
  if (!has_range) return fail_usage("report: give --quarter (2022Q2) or --from and --to");
  target += "format=" + format;
  try {
    auto ctx = tls::make_client_tls(files, tls::Role::collector);
    const auto res =
        http::https_request_sync(ctx, collector.substr(0, colon), collector.substr(colon + 1),
                                 "GET", target, "", std::chrono::seconds(120));
    if (res.status != 200) {
      std::cerr << "teitenctl report: collector answered " << res.status << ": " << res.body
                << "\n";
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
      std::cerr << "teitenctl report: cannot write " << output << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl report: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace teiten::ctl

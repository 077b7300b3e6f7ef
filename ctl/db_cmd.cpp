// SPDX-License-Identifier: Apache-2.0
// teitenctl db copy: an embedded SQLite store into PostgreSQL, as it is.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "collector/store/sqlite_store.h"
#include "collector/store/store.h"
#include "ctl/commands.h"

namespace teiten::ctl {

int cmd_db(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "copy") return fail_usage("db: expected 'db copy'");
  std::string from, to;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return fail_usage(a + " needs a value");
    const std::string& v = args[++i];
    if (a == "--sqlite") {
      from = v;
    } else if (a == "--postgresql") {
      to = v;
    } else {
      return fail_usage("db copy: unknown option '" + a + "'");
    }
  }
  if (from.empty() || to.empty())
    return fail_usage("db copy: --sqlite FILE and --postgresql CONNINFO are required");
  try {
    const auto t0 = std::chrono::steady_clock::now();
    // Days are cut as the source cut them; the target is created (or migrated) in the
    // same time zone.
    const auto tz = collector::SqliteStore::time_zone_of(from);
    const std::string zone = tz.value_or("Asia/Tokyo");
    const auto source = collector::open_store({"sqlite", from, "", zone});
    const auto target = collector::open_store({"postgresql", "", to, zone});
    const auto n = collector::copy_store(*source, *target);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "copied %s to %s in %.1f s: %llu buckets (%llu detail rows), %llu hourly and %llu daily "
        "rollup rows, %llu sensor-days; days cut in %s\n",
        from.c_str(), target->describe().c_str(), s, static_cast<unsigned long long>(n.buckets),
        static_cast<unsigned long long>(n.detail_rows),
        static_cast<unsigned long long>(n.hourly_rows),
        static_cast<unsigned long long>(n.daily_rows),
        static_cast<unsigned long long>(n.sensor_days), zone.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl: db copy: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace teiten::ctl

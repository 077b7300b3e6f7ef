// SPDX-License-Identifier: Apache-2.0
#include "collector/report/format.h"

#include <cstdio>

namespace teiten::collector {
namespace report_format {

std::int64_t days_of(date::year_month_day ymd) {
  return date::sys_days{ymd}.time_since_epoch().count();
}

date::year_month_day ymd_of(std::int64_t day) {
  return date::year_month_day{date::sys_days{date::days{day}}};
}

std::string fingerprint_name(const std::string& fp) {
  if (fp == "mirai") return "Mirai-type";
  if (fp == "masscan") return "masscan-type";
  if (fp == "zmap") return "ZMap-type";
  return fp;
}

std::string fmt_avg(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string month_string(int y, unsigned m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u", y, m);
  return buf;
}

std::string range_title(const Report& r) {
  return day_string(r.request.day_from) + " to " + day_string(r.request.day_to) + " (" +
         r.time_zone + ")";
}

std::string avg_cell(const RegionMonth& m) {
  if (m.sensor_days <= 0) return "-";
  return fmt_avg(m.average()) + (m.complete() ? "" : "*");
}

std::string coverage(const RegionMonth& m) {
  return fmt_avg(m.sensor_days) + "/" + fmt_avg(m.expected_sensor_days);
}

std::string time_string(std::int64_t t) {
  const auto tp = date::sys_seconds{std::chrono::seconds{t}};
  return date::format("%Y-%m-%dT%H:%M:%SZ", tp);
}

bool any_incomplete(const Report& r) {
  for (const auto& m : r.months) {
    for (const RegionMonth* x :
         {&m.domestic, &m.overseas, &m.domestic_year_before, &m.overseas_year_before})
      if (x->sensor_days > 0 && !x->complete()) return true;
  }
  return false;
}

}  // namespace report_format

using namespace report_format;

std::string Destination::label() const {
  if (proto == "tcp" || proto == "udp") {
    std::string p = proto == "tcp" ? "TCP" : "UDP";
    return port < 0 ? p + " (no port)" : std::to_string(port) + "/" + p;
  }
  if (proto == "icmp") return "ICMP";
  if (proto == "icmpv6") return "ICMPv6";
  return "other";
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  // Hundredths of a percent, rounded half up, in integers: no binary-float surprises.
  __extension__ using u128 = unsigned __int128;
  const u128 bp = (static_cast<u128>(part) * 20000 + whole) / (2 * static_cast<u128>(whole));
  const auto v = static_cast<std::uint64_t>(bp);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%llu.%02llu%%", static_cast<unsigned long long>(v / 100),
                static_cast<unsigned long long>(v % 100));
  return buf;
}

std::string day_string(std::int64_t day) {
  const auto ymd = ymd_of(day);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}
}  // namespace teiten::collector

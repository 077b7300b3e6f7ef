// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collector/collector_config.h"
#include "collector/events/events.h"
#include "collector/report/destination.h"
#include "collector/store/store.h"

namespace teiten::collector {

/// What a quarterly report covers. Days are local calendar days of the collector's
/// reports.time_zone, as days since 1970-01-01; `day_to` is the last day included.
struct ReportRequest {
  std::int64_t day_from = 0;
  std::int64_t day_to = 0;
  std::string country = "JP";  ///< source country of Table 1 and Figures 1-2
  std::string rank = "mirai";  ///< "all", or the fingerprint Table 1 ranks by
  std::size_t top = 5;         ///< ports in Table 1, Figures 1-2 and the weekly graphs
  std::size_t sensor_top = 10;
  std::vector<std::string> sensors;  ///< only these sensors (empty: all)
  bool events = true;                ///< the notable changes too (events=no: without)
  std::size_t events_limit = 20;     ///< the highest-ranked ones
  /// Only notable changes found already (the dashboard, which anyone may reach: a page
  /// must not make the collector find a range's events; it asks the live thread to).
  bool events_cached_only = false;
};

/// Parses a report request from query parameters (from, to: YYYY-MM-DD, both included;
/// or quarter: 2022Q2; country, rank, top, sensor_top, sensors: id,id..., tz, events:
/// yes|no). Throws
/// std::invalid_argument with a message for the client.
ReportRequest parse_report_request(const std::vector<std::pair<std::string, std::string>>& params,
                                   const Store& storage);

struct PortRow {  ///< Table 1
  Destination dest;
  std::uint64_t all = 0, fingerprinted = 0;
  std::uint64_t hosts_all = 0, hosts_fingerprinted = 0;  ///< distinct sources (estimated)
};

struct DailyPoint {  ///< Figures 1 and 2: one day of one port
  std::int64_t day = 0;
  std::uint64_t all = 0, fingerprinted = 0;
};

struct RegionMonth {  ///< Figures 3 and 4
  std::uint64_t packets = 0;
  double sensor_days = 0;           ///< days the region's sensors were observed (covered time)
  double expected_sensor_days = 0;  ///< days its registered sensors should have been
  double average() const {
    return sensor_days > 0 ? static_cast<double>(packets) / sensor_days : 0.0;
  }
  bool complete() const { return sensor_days + 1e-9 >= expected_sensor_days; }
};

struct MonthRow {
  int year = 0;
  unsigned month = 0;
  RegionMonth domestic, overseas;                          ///< this month
  RegionMonth domestic_year_before, overseas_year_before;  ///< same month, a year earlier
};

struct SensorTop {  ///< per-sensor TOP10
  std::string sensor, label, region;
  std::uint64_t total = 0;
  std::vector<std::pair<Destination, std::uint64_t>> top;
};

struct WeekPoint {
  std::int64_t week_start = 0;  ///< local day of the week's Monday
  std::uint64_t all = 0, fingerprinted = 0;
};

struct SensorHealth {
  std::string sensor, label, region;
  std::optional<std::int64_t> last_end;  ///< end of the latest bucket received (UTC)
  double days_observed = 0;              ///< in the report's range
  std::uint64_t observed_packets = 0, lost_packets = 0;
};

struct Report {
  std::string time_zone;
  ReportRequest request;
  std::string fingerprint;  ///< the fingerprint compared with ALL ("mirai" when ranking by all)
  std::vector<PortRow> table;
  std::vector<std::vector<DailyPoint>> daily;  ///< per table row, every day of the range
  std::vector<MonthRow> months;
  std::vector<SensorTop> sensors;
  std::vector<Destination> weekly_ports;       ///< top ports over all sources
  std::vector<std::vector<WeekPoint>> weekly;  ///< per weekly_ports entry
  std::vector<SensorHealth> health;
  std::vector<events::Event> events;  ///< notable changes that began in the range, ranked
  std::string events_note;            ///< why there are none to show, when they were not looked for
};

/// Builds the seed's analyses from the store's daily rollups and coverage: Table 1 (the
/// country's TOP ports, with distinct sources), Figures 1-2 (their daily series), Figures
/// 3-4 (monthly averages per sensor-day by region, against a year earlier), per-sensor
/// TOP10, the weekly graphs and sensor health. Throws std::invalid_argument when the
/// request names a sensor the registry does not list.
/// The notable changes come from `events` when given (the collector's cache), else are
/// found now.
Report build_report(Store& storage, const CollectorConfig& config, const ReportRequest& r,
                    events::EventsCache* events = nullptr);

/// "94.34%": part / whole with two decimals, computed from the counts ("-" when whole is 0).
std::string percent(std::uint64_t part, std::uint64_t whole);
/// "2022-06-16" for a local day number.
std::string day_string(std::int64_t day);

std::string report_markdown(const Report& r);
std::string report_csv(const Report& r);
std::string report_json(const Report& r);
/// One self-contained page (inline SVG charts, no external resources). `dashboard` adds
/// the range form and the health panel the dashboard shows.
std::string report_html(const Report& r, bool dashboard = false);

}  // namespace teiten::collector

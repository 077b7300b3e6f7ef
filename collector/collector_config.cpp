// SPDX-License-Identifier: Apache-2.0
#include "collector/collector_config.h"
#include "collector/events/live.h"

#include <arpa/inet.h>

#include <date/tz.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>

#include "common/config/schema_loader.h"
#include "common/tls/pki.h"

namespace teiten::collector {
namespace {

using config::Field;
using config::FieldType;
using config::Record;
using config::Scalar;
using config::SubField;
using config::Value;

std::string check_address(const Value& v) {
  const auto& s = std::get<std::string>(v);
  in6_addr a6{};
  in_addr a4{};
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1)
    return {};
  return "'" + s + "' is not an IPv4 or IPv6 address";
}

std::string check_time_zone(const Value& v) {
  const auto& s = std::get<std::string>(v);
  try {
    (void)date::locate_zone(s);
    return {};
  } catch (const std::exception&) {
    return "'" + s + "' is not a time zone of the tz database (such as Asia/Tokyo or UTC)";
  }
}

std::string check_sensor_id(const Scalar& v) {
  const auto& s = std::get<std::string>(v);
  // The id a sensor's certificates carry (urn:teiten:sensor:<id>): the same rule.
  return tls::valid_role_id(s) ? "" : "'" + s + "' is not a sensor id (1-64 of A-Z a-z 0-9 . _ -)";
}

std::string check_registry(const Value& v) {
  std::set<std::string> ids;
  for (const Record& r : std::get<std::vector<Record>>(v)) {
    const auto id = r.find("id");
    if (id == r.end()) continue;
    const auto& s = std::get<std::string>(id->second);
    if (!ids.insert(s).second) return "sensor '" + s + "' is listed twice";
    const auto from = r.find("active_from");
    const auto to = r.find("active_to");
    if (from != r.end() && to != r.end() &&
        std::get<std::uint64_t>(to->second) <= std::get<std::uint64_t>(from->second)) {
      return "sensor '" + s + "': active_to is not after active_from";
    }
  }
  return {};
}

std::vector<Field<CollectorConfig>> base_schema() {
  return {
      {"collector",
       "listen",
       FieldType::string,
       "127.0.0.1",
       false,
       0,
       0,
       {},
       "Address to listen on.",
       [](CollectorConfig& c, const Value& v) { c.listen_address = std::get<std::string>(v); },
       check_address},
      {"collector",
       "port",
       FieldType::uint,
       "8443",
       false,
       0,
       65535,
       {},
       "TCP port of the HTTPS API (0: any free port, logged at start).",
       [](CollectorConfig& c, const Value& v) {
         c.port = static_cast<std::uint16_t>(std::get<std::uint64_t>(v));
       },
       {}},
      {"collector",
       "database",
       FieldType::string,
       "",
       false,
       0,
       0,
       {},
       "SQLite database file (created if absent), with storage.backend sqlite; relative to "
       "this file.",
       [](CollectorConfig& c, const Value& v) { c.store.path = std::get<std::string>(v); },
       {}},
      {"storage",
       "backend",
       FieldType::choice,
       "sqlite",
       false,
       0,
       0,
       {"sqlite", "postgresql"},
       "Where buckets are stored: sqlite (collector.database, one collector) or postgresql "
       "(storage.postgresql, any number of collectors on one database; docs/scale.md).",
       [](CollectorConfig& c, const Value& v) { c.store.backend = std::get<std::string>(v); },
       {}},
      {"storage",
       "postgresql",
       FieldType::string,
       "",
       false,
       0,
       0,
       {},
       "libpq connection string with storage.backend postgresql, e.g. \"host=/run/postgresql "
       "dbname=teiten user=teiten\" (a password belongs in ~/.pgpass, not here).",
       [](CollectorConfig& c, const Value& v) { c.store.conninfo = std::get<std::string>(v); },
       {}},
      {"storage",
       "report_postgresql",
       FieldType::string,
       "",
       false,
       0,
       0,
       {},
       "libpq connection string of a read replica of storage.postgresql (PostgreSQL streaming "
       "replication): reports, queries and dashboard pages read there, ingest stays on the "
       "primary. Empty: they read storage.postgresql.",
       [](CollectorConfig& c, const Value& v) {
         c.store.report_conninfo = std::get<std::string>(v);
       },
       {}},
      {"storage",
       "report_workers",
       FieldType::uint,
       "2",
       false,
       1,
       64,
       {},
       "Threads that run reports, queries and dashboard pages, each with a read-only "
       "connection: ingest never waits behind them.",
       [](CollectorConfig& c, const Value& v) { c.report_workers = std::get<std::uint64_t>(v); },
       {}},
      {"storage",
       "report_queue",
       FieldType::uint,
       "32",
       false,
       1,
       10000,
       {},
       "Reports and queries that may wait for a worker; more are answered 503 (retry).",
       [](CollectorConfig& c, const Value& v) { c.report_queue = std::get<std::uint64_t>(v); },
       {}},
      {"collector",
       "detail_retention",
       FieldType::duration,
       "400d",
       false,
       86400,
       100ULL * 365 * 86400,
       {},
       "How long per-bucket detail is kept (then queries read the hourly rollups).",
       [](CollectorConfig& c, const Value& v) {
         c.detail_retention_s = std::get<std::uint64_t>(v);
       },
       {}},
      {"collector",
       "hourly_retention",
       FieldType::duration,
       "1100d",
       false,
       86400,
       100ULL * 365 * 86400,
       {},
       "How long the hourly rollups are kept (at least detail_retention); daily rollups, which "
       "the reports read, are kept for ever.",
       [](CollectorConfig& c, const Value& v) {
         c.hourly_retention_s = std::get<std::uint64_t>(v);
       },
       {}},
      {"reports",
       "time_zone",
       FieldType::string,
       "Asia/Tokyo",
       false,
       0,
       0,
       {},
       "Time zone whose calendar days the reports and the dashboard cut (tz database name).",
       [](CollectorConfig& c, const Value& v) { c.store.time_zone = std::get<std::string>(v); },
       check_time_zone},
      {"dashboard",
       "enabled",
       FieldType::boolean,
       "true",
       false,
       0,
       0,
       {},
       "Serve the dashboard (HTTPS with the collector's certificate).",
       [](CollectorConfig& c, const Value& v) { c.dashboard_enabled = std::get<bool>(v); },
       {}},
      {"dashboard",
       "client_certificate",
       FieldType::choice,
       "required",
       false,
       0,
       0,
       {"required", "none"},
       "required: only browsers presenting an operator certificate of the CA see the dashboard "
       "(docs/security.md); none: anyone who reaches dashboard.listen does (a trusted network "
       "only; logged as a warning at start).",
       [](CollectorConfig& c, const Value& v) {
         c.dashboard_client_certificate = std::get<std::string>(v) == "required";
       },
       {}},
      {"dashboard",
       "max_connections",
       FieldType::uint,
       "16",
       false,
       1,
       10000,
       {},
       "Dashboard connections at once (its own limits: it cannot starve the API).",
       [](CollectorConfig& c, const Value& v) {
         c.dashboard_max_connections = std::get<std::uint64_t>(v);
       },
       {}},
      {"dashboard",
       "listen",
       FieldType::string,
       "127.0.0.1",
       false,
       0,
       0,
       {},
       "Address of the dashboard.",
       [](CollectorConfig& c, const Value& v) { c.dashboard_address = std::get<std::string>(v); },
       check_address},
      {"dashboard",
       "port",
       FieldType::uint,
       "8444",
       false,
       0,
       65535,
       {},
       "TCP port of the dashboard (0: any free port, logged at start).",
       [](CollectorConfig& c, const Value& v) {
         c.dashboard_port = static_cast<std::uint16_t>(std::get<std::uint64_t>(v));
       },
       {}},
      {"tls",
       "ca",
       FieldType::file_path,
       "",
       true,
       0,
       0,
       {},
       "CA certificate (PEM) that client certificates must chain to.",
       [](CollectorConfig& c, const Value& v) { c.tls_ca = std::get<std::string>(v); },
       {}},
      {"tls",
       "cert",
       FieldType::file_path,
       "",
       true,
       0,
       0,
       {},
       "The collector's certificate (PEM).",
       [](CollectorConfig& c, const Value& v) { c.tls_cert = std::get<std::string>(v); },
       {}},
      {"tls",
       "key",
       FieldType::file_path,
       "",
       true,
       0,
       0,
       {},
       "The collector's private key (PEM).",
       [](CollectorConfig& c, const Value& v) { c.tls_key = std::get<std::string>(v); },
       {}},
      {"limits",
       "max_body_bytes",
       FieldType::uint,
       "16777216",
       false,
       1024,
       1ULL << 30,
       {},
       "Largest request body accepted.",
       [](CollectorConfig& c, const Value& v) { c.max_body_bytes = std::get<std::uint64_t>(v); },
       {}},
      {"limits",
       "max_header_bytes",
       FieldType::uint,
       "8192",
       false,
       1024,
       1 << 20,
       {},
       "Largest request header accepted.",
       [](CollectorConfig& c, const Value& v) { c.max_header_bytes = std::get<std::uint64_t>(v); },
       {}},
      {"limits",
       "io_timeout",
       FieldType::duration,
       "15",
       false,
       1,
       3600,
       {},
       "Deadline for reading one whole request and for writing one response.",
       [](CollectorConfig& c, const Value& v) { c.io_timeout_s = std::get<std::uint64_t>(v); },
       {}},
      {"limits",
       "handshake_timeout",
       FieldType::duration,
       "5",
       false,
       1,
       300,
       {},
       "Deadline from accepting a connection to a finished TLS handshake.",
       [](CollectorConfig& c, const Value& v) {
         c.handshake_timeout_s = std::get<std::uint64_t>(v);
       },
       {}},
      {"limits",
       "max_connections_per_address",
       FieldType::uint,
       "32",
       false,
       1,
       100000,
       {},
       "Connections one peer address may hold open; more are closed at once (and counted).",
       [](CollectorConfig& c, const Value& v) {
         c.max_connections_per_address = std::get<std::uint64_t>(v);
       },
       {}},
      {"limits",
       "reserved_authenticated",
       FieldType::uint,
       "64",
       false,
       0,
       100000,
       {},
       "Of max_connections, slots only connections past their TLS handshake may hold; when the "
       "others are taken, a new connection ends the oldest one still in its handshake.",
       [](CollectorConfig& c, const Value& v) {
         c.reserved_authenticated = std::get<std::uint64_t>(v);
       },
       {}},
      {"limits",
       "max_clock_skew",
       FieldType::duration,
       "600",
       false,
       0,
       7 * 86400,
       {},
       "How far in the future (by the collector's clock) a bucket may start; later ones are "
       "refused (a sensor whose clock is wrong).",
       [](CollectorConfig& c, const Value& v) { c.max_clock_skew_s = std::get<std::uint64_t>(v); },
       {}},
      {"limits",
       "max_connections",
       FieldType::uint,
       "256",
       false,
       1,
       100000,
       {},
       "Connections served at once; more are closed at once (and counted).",
       [](CollectorConfig& c, const Value& v) { c.max_connections = std::get<std::uint64_t>(v); },
       {}},
      {"limits",
       "max_inflight_bytes",
       FieldType::uint,
       "268435456",
       false,
       1024,
       1ULL << 40,
       {},
       "Request bodies held in memory at once, over all connections; a request that would go "
       "beyond is answered 503 (retry later) before its body is read.",
       [](CollectorConfig& c, const Value& v) {
         c.max_inflight_bytes = std::get<std::uint64_t>(v);
       },
       {}},
      config::log_level_field(&CollectorConfig::log_level),
      {"sensors",
       "",
       FieldType::record_list,
       "",
       true,
       0,
       0,
       {},
       "The sensor registry: id, region (domestic/overseas), label, active_from, active_to "
       "(dates, read as 00:00 UTC; active_to is exclusive).",
       [](CollectorConfig& c, const Value& v) {
         c.sensors.clear();
         for (const Record& r : std::get<std::vector<Record>>(v)) {
           RegisteredSensor s;
           s.id = std::get<std::string>(r.at("id"));
           s.region = std::get<std::string>(r.at("region"));
           if (auto it = r.find("label"); it != r.end())
             s.label = std::get<std::string>(it->second);
           s.active_from = static_cast<std::int64_t>(std::get<std::uint64_t>(r.at("active_from")));
           if (auto it = r.find("active_to"); it != r.end()) {
             s.active_to = static_cast<std::int64_t>(std::get<std::uint64_t>(it->second));
           }
           c.sensors.push_back(std::move(s));
         }
       },
       check_registry,
       {
           {"id", FieldType::string, true, 0, 0, {}, check_sensor_id},
           {"region", FieldType::choice, true, 0, 0, {"domestic", "overseas"}, {}},
           {"label", FieldType::string, false, 0, 0, {}, {}},
           {"active_from", FieldType::date, true, 0, 0, {}, {}},
           {"active_to", FieldType::date, false, 0, 0, {}, {}},
       }},
  };
}

// events: the detector's parameters (docs/notable-changes.md), read by every request:
// a reload applies them.
Field<CollectorConfig> event_number(std::string_view key, std::string_view def, double lo,
                                    double hi, std::string_view description,
                                    double events::Settings::*member) {
  return {"events",
          key,
          FieldType::string,
          def,
          false,
          0,
          0,
          {},
          description,
          [member](CollectorConfig& c, const Value& v) {
            c.events.*member = std::stod(std::get<std::string>(v));
          },
          [lo, hi](const Value& v) -> std::string {
            const auto& s = std::get<std::string>(v);
            char* end = nullptr;
            const double d = std::strtod(s.c_str(), &end);
            if (s.empty() || end != s.c_str() + s.size() || !(d >= lo && d <= hi)) {
              char range[64];
              std::snprintf(range, sizeof range, "%g to %g", lo, hi);
              return "'" + s + "' is not a number from " + range;
            }
            return {};
          },
          {},
          config::Reload::live};
}

Field<CollectorConfig> event_days(std::string_view key, std::string_view def, std::uint64_t lo,
                                  std::uint64_t hi, std::string_view description,
                                  int events::Settings::*member) {
  return {"events",
          key,
          FieldType::uint,
          def,
          false,
          lo,
          hi,
          {},
          description,
          [member](CollectorConfig& c, const Value& v) {
            c.events.*member = static_cast<int>(std::get<std::uint64_t>(v));
          },
          {},
          {},
          config::Reload::live};
}

std::vector<Field<CollectorConfig>> schema() {
  using S = events::Settings;
  auto v = base_schema();
  v.push_back(event_days("baseline_days", "28", 14, 365,
                         "Days before a day its baseline is taken from.", &S::baseline_days));
  v.push_back(event_days("min_baseline_days", "10", 7, 365,
                         "Covered days a baseline needs (at most baseline_days) before a day is "
                         "judged.",
                         &S::min_baseline_days));
  v.push_back(event_days("shift_days", "7", 3, 60,
                         "Covered days a level or share shift must hold (its detection delay).",
                         &S::shift_days));
  v.push_back(event_number("spike_z", "5", 1, 100,
                           "A spike stands this many robust deviations above its baseline...",
                           &S::spike_z));
  v.push_back(
      event_number("spike_ratio", "2", 1.01, 1000, "... and this many times it.", &S::spike_ratio));
  v.push_back(event_number("shift_z", "4", 1, 100,
                           "A level shift moves the median this many deviations...", &S::shift_z));
  v.push_back(event_number("shift_ratio", "1.5", 1.01, 1000, "... and by this factor (up or down).",
                           &S::shift_ratio));
  v.push_back(event_number("min_packets", "20", 0, 1e12,
                           "Packets a day of a change must reach (where the counts allow).",
                           &S::min_packets));
  v.push_back(event_number("emergence_floor", "1", 0, 1e9,
                           "Emergence: packets per sensor-day before, at most.",
                           &S::emergence_floor));
  v.push_back(event_number("emergence_level", "20", 0, 1e12,
                           "Emergence: packets per sensor-day after, at least.",
                           &S::emergence_level));
  v.push_back(event_number("share_change", "0.15", 0.01, 1,
                           "A fingerprint shift moves its share of a destination by this much...",
                           &S::share_change));
  v.push_back(event_number("share_z", "5", 1, 100,
                           "... and this many deviations of the daily share.", &S::share_z));
  v.push_back(event_days("countries", "8", 0, 32,
                         "The leading source countries examined one by one besides the report's "
                         "(those with at least min_packets a day on average).",
                         &S::countries));
  v.push_back(event_number("coverage_min", "0.75", 0, 1,
                           "A day whose sensor-days are under this share of the usual is missing "
                           "(never a fall).",
                           &S::coverage_min));
  v.push_back({"events",
               "live",
               FieldType::boolean,
               "true",
               false,
               0,
               0,
               {},
               "Judge each new UTC hour of data for spikes (metrics, log, webhook).",
               [](CollectorConfig& c, const Value& x) { c.live_enabled = std::get<bool>(x); },
               {}});
  v.push_back(
      {"events",
       "live_period",
       FieldType::duration,
       "60",
       false,
       1,
       3600,
       {},
       "How often the live evaluation looks for a new whole hour.",
       [](CollectorConfig& c, const Value& x) { c.live_period_s = std::get<std::uint64_t>(x); },
       {}});
  v.push_back(
      {"events",
       "live_grace",
       FieldType::duration,
       "10m",
       false,
       0,
       86400,
       {},
       "How long after an hour ends it is judged (its buckets' time to arrive).",
       [](CollectorConfig& c, const Value& x) { c.live_grace_s = std::get<std::uint64_t>(x); },
       {},
       {},
       config::Reload::live});
  v.push_back({"events",
               "live_baseline_hours",
               FieldType::uint,
               "72",
               false,
               12,
               720,
               {},
               "Hours before an hour its baseline is taken from.",
               [](CollectorConfig& c, const Value& x) {
                 c.live_baseline_hours = std::get<std::uint64_t>(x);
               },
               {},
               {},
               config::Reload::live});
  v.push_back({"events",
               "webhook",
               FieldType::string,
               "",
               false,
               0,
               0,
               {},
               "Each live event is POSTed as JSON to this https:// URL (none: not posted).",
               [](CollectorConfig& c, const Value& x) { c.webhook = std::get<std::string>(x); },
               [](const Value& x) -> std::string {
                 const auto& url = std::get<std::string>(x);
                 return url.empty() || events::parse_webhook(url)
                            ? ""
                            : "'" + url + "' is not an https://HOST[:PORT][/PATH] URL";
               },
               {},
               config::Reload::live});
  v.push_back({"events",
               "webhook_ca",
               FieldType::file_path,
               "",
               false,
               0,
               0,
               {},
               "CA certificates the webhook's server must chain to (none: tls.ca).",
               [](CollectorConfig& c, const Value& x) { c.webhook_ca = std::get<std::string>(x); },
               {},
               {},
               config::Reload::live});
  return v;
}

const std::vector<Field<CollectorConfig>> kSchema = schema();

}  // namespace

void CollectorConfig::require_registered(const std::vector<std::string>& ids) const {
  for (const auto& id : ids)
    if (!find_sensor(id))
      throw std::invalid_argument("sensors: '" + id + "' is not in the collector's registry");
}

std::uint64_t CollectorConfig::regions_hash() const {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (const auto& s : sensors)
    for (const std::string* part : {&s.id, &s.region}) {
      for (char c : *part) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
      h = (h ^ 0xFF) * 1099511628211ULL;
    }
  return h;
}

const RegisteredSensor* CollectorConfig::find_sensor(const std::string& id) const {
  for (const auto& s : sensors) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

const std::vector<Field<CollectorConfig>>& collector_schema() {
  return kSchema;
}

std::variant<CollectorConfig, std::vector<config::ConfigError>> parse_collector_config(
    const std::string& path, const std::string& text) {
  CollectorConfig c;
  c.path = path;
  auto errors = config::load_yaml(path, text, kSchema, c);
  if (errors.empty() && c.max_inflight_bytes < c.max_body_bytes) {
    // Else a largest allowed body would be answered 503 for ever.
    errors.push_back(config::ConfigError{path, 1, 1, "limits",
                                         "max_inflight_bytes must be at least max_body_bytes"});
  }
  if (errors.empty() && c.reserved_authenticated >= c.max_connections) {
    // Else no connection could ever start a handshake.
    errors.push_back(config::ConfigError{path, 1, 1, "limits",
                                         "reserved_authenticated must be below max_connections"});
  }
  if (errors.empty() && c.hourly_retention_s < c.detail_retention_s) {
    errors.push_back(config::ConfigError{path, 1, 1, "collector.hourly_retention",
                                         "must be at least collector.detail_retention"});
  }
  if (errors.empty() && c.store.backend == "sqlite" && c.store.path.empty()) {
    errors.push_back(config::ConfigError{
        path, 1, 1, "collector.database",
        "required with storage.backend sqlite (the SQLite file, created if absent)"});
  }
  if (errors.empty() && c.store.backend == "postgresql" && c.store.conninfo.empty()) {
    errors.push_back(config::ConfigError{
        path, 1, 1, "storage.postgresql",
        "required with storage.backend postgresql (a libpq connection string)"});
  }
  if (errors.empty() && c.store.backend != "postgresql" && !c.store.report_conninfo.empty()) {
    errors.push_back(config::ConfigError{
        path, 1, 1, "storage.report_postgresql",
        "only with storage.backend postgresql (a read replica of storage.postgresql)"});
  }
  if (!errors.empty()) return errors;
  // The database path, like every path, is relative to the configuration file.
  std::string& db = c.store.path;
  if (!db.empty() && db.front() != '/') {
    const auto slash = path.rfind('/');
    if (slash != std::string::npos) db = path.substr(0, slash + 1) + db;
  }
  return c;
}

std::variant<CollectorConfig, std::vector<config::ConfigError>> load_collector_config(
    const std::string& path) {
  std::string text, error;
  if (!config::read_config_file(path, text, error)) {
    return std::vector<config::ConfigError>{config::ConfigError{path, 1, 1, "file", error}};
  }
  return parse_collector_config(path, text);
}

}  // namespace teiten::collector

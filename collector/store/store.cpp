// SPDX-License-Identifier: Apache-2.0
#include "collector/store/store.h"

#include <date/tz.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "collector/store/postgres_store.h"
#include "collector/store/rows.h"
#include "collector/store/sqlite_store.h"
#include "common/classify/key.h"

namespace teiten::collector {

namespace store_rows {

std::string malformed_json(const bucket::Loss& loss) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 1; i < loss.malformed.size(); ++i) {
    if (loss.malformed[i])
      j[std::string{to_string(static_cast<decode::DecodeStatus>(i))}] = loss.malformed[i];
  }
  return j.dump();
}

std::string provenance_json(const bucket::Provenance& p) {
  return nlohmann::json{{"software", p.software_version},
                        {"config_sha256", p.config_hash},
                        {"geoip_build_epoch", p.geoip_build_epoch},
                        {"clock_synced", p.clock_synced}}
      .dump();
}

}  // namespace store_rows

std::int64_t local_day_in(const date::time_zone* zone, std::int64_t ts) {
  const auto local = zone->to_local(date::sys_seconds{std::chrono::seconds{ts}});
  return date::floor<date::days>(local).time_since_epoch().count();
}

const date::time_zone* locate_time_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    throw std::runtime_error("unknown time zone '" + name +
                             "' (a tz database name such as Asia/Tokyo)");
  }
}

void check_dimensions(const Query& q) {
  for (const auto& d : q.group_by) {
    if (d != "sensor" && d != "proto" && d != "port" && d != "country" && d != "fingerprint" &&
        d != "kind")
      throw std::invalid_argument("cannot group by '" + d + "'");
  }
}

std::string_view to_string(Tier t) noexcept {
  switch (t) {
    case Tier::detail:
      return "detail";
    case Tier::hourly:
      return "hourly";
    case Tier::daily:
      return "daily";
  }
  return "detail";
}

namespace {

bool needs_kind(const Query& q) {
  return q.kind || std::find(q.group_by.begin(), q.group_by.end(), "kind") != q.group_by.end();
}

}  // namespace

DailySummer::DailySummer(const DailySumsQuery& q) : q_(q) {}

namespace {

std::uint32_t index_of(std::vector<std::string>& names, std::string_view name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<std::uint32_t>(it - names.begin());
  names.emplace_back(name);
  return static_cast<std::uint32_t>(names.size() - 1);
}

// A destination as the summers key it: its protocol's index in `protos` << 17 | port + 1
// (a port out of range is none).
std::uint64_t destination_key(std::vector<std::string>& protos, std::string_view proto,
                              std::int64_t port) {
  if (port < -1 || port > 65535) port = -1;
  return (std::uint64_t{index_of(protos, proto)} << 17) | static_cast<std::uint64_t>(port + 1);
}
std::string_view proto_of(const std::vector<std::string>& protos, std::uint64_t key) {
  return protos[(key >> 17) & 0x7FFF];
}
std::int64_t port_of(std::uint64_t key) {
  return static_cast<std::int64_t>(key & 0x1FFFF) - 1;
}

}  // namespace

void DailySummer::add(const DailyRow& r, Part part) {
  if (r.day < q_.day_from || r.day > q_.day_to) return;
  if (part != Part::day) {
    // Rows come grouped by sensor: its name is looked up when it changes.
    if (last_sensor_ == UINT32_MAX || sensors_[last_sensor_] != r.sensor) {
      last_sensor_ = index_of(sensors_, r.sensor);
      if (sensor_wanted_.size() < sensors_.size())
        sensor_wanted_.push_back(q_.sensors.empty() ||
                                 std::find(q_.sensors.begin(), q_.sensors.end(), r.sensor) !=
                                     q_.sensors.end());
    }
    if (!sensor_wanted_[last_sensor_]) return;
  }
  const std::uint64_t dest = destination_key(protos_, r.proto, r.port);
  if (part != Part::sensor) {
    Sum& d = by_day_[(dest << 32) | static_cast<std::uint64_t>(r.day - q_.day_from)];
    const bool fp = r.fingerprint == q_.fingerprint, country = r.country == q_.country;
    d.all += r.packets;
    if (fp) d.fp += r.packets;
    if (country) d.country_all += r.packets;
    if (fp && country) d.country_fp += r.packets;
  }
  if (part != Part::day) by_sensor_[(std::uint64_t{last_sensor_} << 32) | dest] += r.packets;
}

void check_breakdown(const DailyBreakdownQuery& q) {
  if (q.countries.size() > kMaxBreakdownCountries)
    throw std::invalid_argument("a daily breakdown takes at most " +
                                std::to_string(kMaxBreakdownCountries) + " countries");
}

BreakdownSummer::BreakdownSummer(const DailyBreakdownQuery& q) : q_(q) {
  check_breakdown(q);
  if (q.day_to - q.day_from >= (1 << 24))
    throw std::invalid_argument("a daily breakdown's range is too long");
}

void BreakdownSummer::add(const DailyRow& r) {
  if (r.day < q_.day_from || r.day > q_.day_to) return;
  if (!r.sensor.empty()) {
    // Whether the sensor is wanted is looked up when it differs from the last row's (a
    // sensor's rows mostly come together).
    if (last_sensor_.empty() || last_sensor_ != r.sensor) {
      last_sensor_ = r.sensor;
      last_wanted_ = q_.sensors.empty() ||
                     std::find(q_.sensors.begin(), q_.sensors.end(), r.sensor) != q_.sensors.end();
    }
    if (!last_wanted_) return;
  }
  const std::uint64_t base = (destination_key(protos_, r.proto, r.port) << 32) |
                             (static_cast<std::uint64_t>(r.day - q_.day_from) << 8);
  // mirai, masscan, zmap: 1 to 3 (none has no sum of its own).
  std::uint64_t fp = 0;
  for (std::uint64_t f = 1; f < static_cast<std::uint64_t>(classify::Fingerprint::count_); ++f)
    if (r.fingerprint == classify::to_string(static_cast<classify::Fingerprint>(f))) fp = f;
  std::uint64_t country = 0;
  for (std::size_t c = 0; c < q_.countries.size() && country == 0; ++c)
    if (r.country == q_.countries[c]) country = c + 1;
  sums_[base] += r.packets;
  if (fp != 0) sums_[base | fp] += r.packets;
  if (country != 0) {
    sums_[base | country << 2] += r.packets;
    if (fp != 0) sums_[base | country << 2 | fp] += r.packets;
  }
}

void BreakdownSummer::emit(const std::function<void(const DailyBreakdown&)>& out) const {
  for (const auto& [k, v] : sums_) {
    DailyBreakdown b;
    b.proto = proto_of(protos_, k >> 32);
    b.port = port_of(k >> 32);
    b.day = q_.day_from + static_cast<std::int64_t>((k >> 8) & 0xFFFFFF);
    const std::uint64_t country = (k >> 2) & 63, fp = k & 3;
    if (country != 0) b.country = q_.countries[country - 1];
    if (fp != 0) b.fingerprint = classify::to_string(static_cast<classify::Fingerprint>(fp));
    b.packets = v;
    out(b);
  }
}

DayRuns day_runs_of(const std::vector<std::pair<std::int64_t, bool>>& days, std::int64_t from,
                    std::int64_t to, bool summaries) {
  DayRuns runs;
  int last = -1;  // the kind of the days placed last: 1 summarized, 0 rollups
  const auto place = [&](std::int64_t a, std::int64_t b, bool summarized) {
    a = std::max(a, from);
    b = std::min(b, to);
    if (a > b) return;
    auto& v = summarized ? runs.summarized : runs.rollups;
    if (last == static_cast<int>(summarized))
      v.back().second = b;
    else
      v.emplace_back(a, b);
    last = summarized;
  };
  for (std::size_t i = 0; i < days.size(); ++i) {
    const auto [day, current] = days[i];
    const std::int64_t gap_from = i == 0 ? day - 1 : days[i - 1].first + 1;
    if (gap_from < day) place(gap_from, day - 1, false);
    place(day, day, summaries && current);
  }
  if (!days.empty()) place(days.back().first + 1, days.back().first + 1, false);
  return runs;
}

std::vector<std::int64_t> Store::summarized_days(std::int64_t day_from, std::int64_t day_to) {
  std::vector<std::int64_t> out;
  for (const auto& [day, current] : day_states(day_from, day_to))
    if (current) out.push_back(day);
  return out;
}

std::string day_runs_sql(const std::vector<std::pair<std::int64_t, std::int64_t>>& runs,
                         const std::string& column) {
  if (runs.empty()) return "FALSE";
  std::string s = "(";
  for (const auto& [a, b] : runs) {
    if (s.size() > 1) s += " OR ";
    s += column + " BETWEEN " + std::to_string(a) + " AND " + std::to_string(b);
  }
  return s + ")";
}

void DailySummer::emit(const std::function<void(const DailySums&)>& out) const {
  const auto dest = [&](DailySums& s, std::uint64_t code) {
    s.proto = proto_of(protos_, code);
    s.port = port_of(code);
  };
  for (const auto& [k, v] : by_day_) {
    DailySums s;
    dest(s, k >> 32);
    s.day = q_.day_from + static_cast<std::int64_t>(k & 0xFFFFFFFF);
    s.all = v.all;
    s.fingerprinted = v.fp;
    s.country_all = v.country_all;
    s.country_fingerprinted = v.country_fp;
    out(s);
  }
  for (const auto& [k, v] : by_sensor_) {
    DailySums s;
    dest(s, k & 0xFFFFFFFF);
    s.sensor = sensors_[k >> 32];
    s.all = v;
    out(s);
  }
}

Tier Store::tier(const Query& q) {
  const bool open_from = q.from <= 0, open_to = q.to == INT64_MAX;
  const auto on_day = [&](std::int64_t t) {
    // A local midnight: the local day changes at t.
    return local_day(t) != local_day(t - 1);
  };
  const bool days = (open_from || on_day(q.from)) && (open_to || on_day(q.to));
  const bool hours = (open_from || q.from % 3600 == 0) && (open_to || q.to % 3600 == 0);
  const std::int64_t hourly_from = hourly_pruned_before();
  const bool hourly_kept = hourly_from <= 0 || q.from >= hourly_from;
  const bool detail_kept = !detail_pruned(q.from, q.to, q.sensors);
  if (days && !needs_kind(q)) return Tier::daily;
  if (hours && hourly_kept) return Tier::hourly;
  if (detail_kept) return Tier::detail;
  // Detail pruned and the range between boundaries: the whole hours (or days) that start
  // in it.
  if (hourly_kept) return Tier::hourly;
  if (needs_kind(q))
    throw std::invalid_argument(
        "kind is kept in the hourly rollups, which no longer cover this range "
        "(collector.hourly_retention)");
  return Tier::daily;
}

std::string Store::daily_source(const Query& q, const std::string& from_param,
                                const std::string& to_param) {
  const std::string range = " r WHERE r.day >= " + from_param + " AND r.day < " + to_param;
  const auto uses = [&](const std::string& d) {
    return std::find(q.group_by.begin(), q.group_by.end(), d) != q.group_by.end();
  };
  const bool origin = q.country || q.fingerprint || uses("country") || uses("fingerprint");
  const bool sensors = !q.sensors.empty() || uses("sensor");
  const char* table = q.kind || uses("kind") ? nullptr
                      : !sensors             ? "day_totals"
                      : !origin              ? "day_sensor_totals"
                                             : nullptr;
  // Days a bucket can fall on (year 9999 at most): open bounds become integers of these.
  constexpr std::int64_t kDays = 10'000'000;
  const std::int64_t from = std::max(q.from, -kDays), last = std::min(q.to, kDays) - 1;
  if (!table || from > last) return "daily" + range;
  const DayRuns runs = day_runs_of(day_states(from, last), from, last);
  if (runs.summarized.empty()) return "daily" + range;
  const std::string cols =
      std::string{"day, "} +
      (table == std::string_view{"day_totals"} ? "proto, port, country, fingerprint"
                                               : "sensor, proto, port") +
      ", packets, bytes";
  // The runs lie inside the range; it stays (its parameters are bound) but is kept from
  // being pushed into the branches as their index range ("+": SQLite then scanned every
  // daily row from the open range's first day instead of the few rollup days).
  return "(SELECT " + cols + " FROM daily WHERE " + day_runs_sql(runs.rollups) +
         " UNION ALL SELECT " + cols + " FROM " + table + " WHERE " +
         day_runs_sql(runs.summarized) + ") r WHERE +r.day >= " + from_param + " AND +r.day < " +
         to_param;
}

std::vector<QueryRow> Store::query(const Query& q, Tier* used) {
  check_dimensions(q);
  const Tier t = tier(q);
  if (used) *used = t;
  if (t != Tier::daily) return query_tier(q, t);
  Query days = q;
  // Local days whose midnight falls in [from, to): the days that start in the range.
  const auto first_day = [&](std::int64_t ts) {
    const std::int64_t d = local_day(ts);
    return local_day(ts - 1) == d ? d + 1 : d;  // ts inside day d: from the next one
  };
  days.from = q.from <= 0 ? INT64_MIN : first_day(q.from);
  days.to = q.to == INT64_MAX ? INT64_MAX : first_day(q.to);
  return query_tier(days, Tier::daily);
}

Store::Store(const std::string& time_zone)
    : time_zone_(time_zone), zone_(locate_time_zone(time_zone)) {}

std::unique_ptr<Store> open_store(const StoreConfig& c, OpenMode mode) {
  if (c.backend == "sqlite") return std::make_unique<SqliteStore>(c.path, c.time_zone, mode);
  if (c.backend == "postgresql")
    return std::make_unique<PostgresStore>(c.conninfo, c.time_zone, mode);
  throw std::runtime_error("storage.backend: '" + c.backend + "' is not sqlite or postgresql");
}

namespace {

// Counts what passes on to the loader.
class CountingSink final : public StoreSink {
 public:
  CountingSink(StoreSink& to, CopyCounts& n) : to_(to), n_(n) {}
  void bucket(const BucketRecord& b) override {
    ++n_.buckets;
    n_.detail_rows += b.rows.size();
    to_.bucket(b);
  }
  void hourly(const RollupRecord& r) override {
    ++n_.hourly_rows;
    to_.hourly(r);
  }
  void daily(const RollupRecord& r) override {
    ++n_.daily_rows;
    to_.daily(r);
  }
  void sensor_day(const SensorDayRecord& d) override {
    ++n_.sensor_days;
    to_.sensor_day(d);
  }

 private:
  StoreSink& to_;
  CopyCounts& n_;
};

}  // namespace

CopyCounts copy_store(Store& from, Store& to) {
  if (from.time_zone() != to.time_zone())
    throw std::runtime_error("the source cuts days in " + from.time_zone() + ", the target in " +
                             to.time_zone());
  if (!to.empty())
    throw std::runtime_error(to.describe() +
                             " already holds buckets: db copy fills an empty database only "
                             "(create a new one, or drop this one's tables)");
  const auto loader = to.bulk_loader();
  CopyCounts n;
  CountingSink counting(*loader, n);
  std::int64_t hourly_pruned_from = 0;
  from.export_all(counting, hourly_pruned_from);
  loader->commit(hourly_pruned_from);
  return n;
}

std::string check_store(const StoreConfig& c) {
  (void)locate_time_zone(c.time_zone);
  if (c.backend == "postgresql") {
    std::string found = PostgresStore::check(c.conninfo);
    if (!c.report_conninfo.empty())
      found += "; reports read " + PostgresStore::check(c.report_conninfo);
    return found;
  }
  if (c.backend != "sqlite")
    throw std::runtime_error("storage.backend: '" + c.backend + "' is not sqlite or postgresql");
  const auto version = SqliteStore::schema_version_of(c.path);
  if (!version) return "database " + c.path + " does not exist yet (created at the first start)";
  if (*version > kSchemaVersion)
    throw std::runtime_error("database " + c.path + " has schema version " +
                             std::to_string(*version) + ", newer than this collector's " +
                             std::to_string(kSchemaVersion));
  return "database " + c.path + ", schema version " + std::to_string(*version) +
         (*version < kSchemaVersion
              ? " (migrated to " + std::to_string(kSchemaVersion) + " at the next start)"
              : "");
}

}  // namespace teiten::collector

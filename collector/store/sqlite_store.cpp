// SPDX-License-Identifier: Apache-2.0
#include "collector/store/sqlite_store.h"

#include <date/tz.h>

#include <unistd.h>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "collector/store/rows.h"
#include "collector/store/sqlite_stmt.h"
#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::collector {

using namespace store_rows;

namespace {
std::string bucket_time(std::int64_t t) {
  return bucket::format_rfc3339(t);
}
}  // namespace

namespace {

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS buckets (
  id INTEGER PRIMARY KEY,
  sensor TEXT NOT NULL,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  start INTEGER NOT NULL,
  width_s INTEGER NOT NULL,
  observed_packets INTEGER NOT NULL,
  observed_bytes INTEGER NOT NULL,
  not_for_sensor INTEGER NOT NULL,
  self_traffic INTEGER NOT NULL DEFAULT 0,
  late_packets INTEGER NOT NULL,
  ring_drops INTEGER NOT NULL,
  kernel_drops INTEGER NOT NULL,
  interface_drops INTEGER NOT NULL,
  spool_dropped INTEGER NOT NULL,
  malformed INTEGER NOT NULL,
  malformed_by_reason TEXT NOT NULL,
  overflow_packets INTEGER NOT NULL,
  overflow_bytes INTEGER NOT NULL,
  provenance TEXT NOT NULL,
  detail_pruned INTEGER NOT NULL DEFAULT 0,
  UNIQUE (sensor, boot_id, seq)
);
-- By time, holding the counters the accounting sums: it reads this index alone, not every
-- bucket's record (1.08 M buckets: 0.28 s instead of 0.80 s). It replaced buckets_by_time.
CREATE INDEX IF NOT EXISTS buckets_by_time_counts ON buckets (start, sensor, observed_packets,
  not_for_sensor, malformed, ring_drops, kernel_drops, interface_drops, overflow_packets,
  spool_dropped, self_traffic);
DROP INDEX IF EXISTS buckets_by_time;
CREATE TABLE IF NOT EXISTS bucket_rows (
  bucket_id INTEGER NOT NULL REFERENCES buckets (id),
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,          -- -1: no port
  country TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  kind TEXT NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  hosts BLOB                      -- unique-source sketch (HostSketch::encode), NULL: none
);
CREATE INDEX IF NOT EXISTS bucket_rows_by_bucket ON bucket_rows (bucket_id);
CREATE TABLE IF NOT EXISTS hourly (
  sensor TEXT NOT NULL,
  hour INTEGER NOT NULL,          -- start of the UTC hour, seconds since 1970
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  country TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  kind TEXT NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  hosts BLOB,
  PRIMARY KEY (sensor, hour, proto, port, country, fingerprint, kind)
) WITHOUT ROWID;
-- Rollups per day of the reports' time zone (meta 'time_zone'), kept for ever: the
-- quarterly analyses read these. A bucket counts on the local day its start falls on.
CREATE TABLE IF NOT EXISTS daily (
  day INTEGER NOT NULL,           -- local calendar day, days since 1970-01-01
  sensor TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  country TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  hosts BLOB,
  PRIMARY KEY (day, sensor, proto, port, country, fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS daily_by_port ON daily (country, proto, port, day);
-- What each sensor covered each local day: seconds of buckets received, and losses.
CREATE TABLE IF NOT EXISTS sensor_days (
  sensor TEXT NOT NULL,
  day INTEGER NOT NULL,
  covered_s INTEGER NOT NULL,
  buckets INTEGER NOT NULL,
  observed_packets INTEGER NOT NULL,
  lost_packets INTEGER NOT NULL,  -- ring + kernel drops + spool drops
  last_end INTEGER NOT NULL,      -- end of the latest bucket, seconds since 1970
  PRIMARY KEY (sensor, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Day summaries (docs/scale.md), made by the maintenance job: each local day's daily
-- rollups summed over the sensors, current while the day's bucket count (the sum of
-- sensor_days.buckets) is day_summaries.buckets.
CREATE TABLE IF NOT EXISTS day_summaries (
  day INTEGER PRIMARY KEY,
  buckets INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS day_totals (
  day INTEGER NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  country TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (day, proto, port, country, fingerprint)
) WITHOUT ROWID;
-- Their sketches merged, apart: a query of the totals reads narrow rows.
CREATE TABLE IF NOT EXISTS day_hosts (
  day INTEGER NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  country TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  hosts BLOB NOT NULL,
  PRIMARY KEY (day, proto, port, country, fingerprint)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS day_hosts_by_port ON day_hosts (country, proto, port, day);
CREATE TABLE IF NOT EXISTS day_sensor_totals (
  day INTEGER NOT NULL,
  sensor TEXT NOT NULL,
  proto TEXT NOT NULL,
  port INTEGER NOT NULL,
  packets INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  PRIMARY KEY (day, sensor, proto, port)
) WITHOUT ROWID;
)SQL";

// " AND <column> IN (?10,?11,...)" for the query's sensors (none: no condition); the
// sensors bind from parameter 10 on (bind_sensors).
std::string sensor_filter(const std::string& column, const std::vector<std::string>& sensors) {
  if (sensors.empty()) return {};
  std::string sql = " AND " + column + " IN (";
  for (std::size_t i = 0; i < sensors.size(); ++i) sql += (i ? ",?" : "?") + std::to_string(10 + i);
  return sql + ")";
}

void bind_sensors(Stmt& st, const std::vector<std::string>& sensors) {
  for (std::size_t i = 0; i < sensors.size(); ++i) st.bind(static_cast<int>(10 + i), sensors[i]);
}

std::optional<sketch::HostSketch> sketch_arg(sqlite3_context* ctx, sqlite3_value* v) {
  if (sqlite3_value_type(v) == SQLITE_NULL) return sketch::HostSketch{};
  const auto* p = static_cast<const char*>(sqlite3_value_blob(v));
  const int n = sqlite3_value_bytes(v);
  std::string why;
  auto s =
      sketch::HostSketch::decode(std::string_view{p ? p : "", static_cast<std::size_t>(n)}, &why);
  if (!s) sqlite3_result_error(ctx, ("stored host sketch: " + why).c_str(), -1);
  return s;
}

void result_sketch(sqlite3_context* ctx, const sketch::HostSketch& s) {
  if (s.empty()) {
    sqlite3_result_null(ctx);
    return;
  }
  const std::string e = s.encode();
  sqlite3_result_blob(ctx, e.data(), static_cast<int>(e.size()), SQLITE_TRANSIENT);
}

// teiten_hosts_union(a, b): the union of two encoded sketches (NULL: empty). No C++
// exception may cross SQLite's C frames: allocation failures become SQLITE_NOMEM.
void hosts_union(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  try {
    auto a = sketch_arg(ctx, argv[0]);
    if (!a) return;
    const auto b = sketch_arg(ctx, argv[1]);
    if (!b) return;
    a->merge(*b);
    result_sketch(ctx, *a);
  } catch (...) {
    sqlite3_result_error_nomem(ctx);
  }
}

// teiten_hosts_merge(x): aggregate union.
void hosts_merge_step(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  try {
    auto** acc = static_cast<sketch::HostSketch**>(sqlite3_aggregate_context(ctx, sizeof(void*)));
    if (!acc) return sqlite3_result_error_nomem(ctx);
    const auto s = sketch_arg(ctx, argv[0]);
    if (!s) return;
    if (!*acc) *acc = new sketch::HostSketch;
    (*acc)->merge(*s);
  } catch (...) {
    sqlite3_result_error_nomem(ctx);
  }
}

void hosts_merge_final(sqlite3_context* ctx) noexcept {
  auto** acc = static_cast<sketch::HostSketch**>(sqlite3_aggregate_context(ctx, 0));
  if (!acc || !*acc) return sqlite3_result_null(ctx);
  try {
    result_sketch(ctx, **acc);
  } catch (...) {
    sqlite3_result_error_nomem(ctx);
  }
  delete *acc;
  *acc = nullptr;
}

// teiten_local_day(ts): the local calendar day (days since 1970-01-01) of a UTC time.
void local_day_fn(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  const auto* zone = static_cast<const date::time_zone*>(sqlite3_user_data(ctx));
  sqlite3_result_int64(ctx, local_day_in(zone, sqlite3_value_int64(argv[0])));
}

}  // namespace

SqliteStore::SqliteStore(const std::string& path, const std::string& time_zone, OpenMode mode)
    : Store(time_zone), path_(path) {
  const int flags = mode != OpenMode::read_only
                        ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open database " + path + ": " + msg);
  }
  // A constructor that throws runs no destructor: the handle is closed here on any error
  // (a refused migration, a day cut that cannot be redone), or it leaks.
  try {
    open_as(mode);
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

void SqliteStore::open_as(OpenMode mode) {
  sqlite3_busy_timeout(db_, 5000);
  sqlite3_create_function_v2(db_, "teiten_hosts_union", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                             nullptr, hosts_union, nullptr, nullptr, nullptr);
  sqlite3_create_function_v2(db_, "teiten_hosts_merge", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                             nullptr, nullptr, hosts_merge_step, hosts_merge_final, nullptr);
  sqlite3_create_function_v2(db_, "teiten_local_day", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                             const_cast<date::time_zone*>(zone_), local_day_fn, nullptr, nullptr,
                             nullptr);
  if (mode == OpenMode::read_only) {
    // A report worker's connection: WAL lets it read while ingest writes; it never writes.
    const auto version = [&] {
      Stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'");
      return v.step(db_) == SQLITE_ROW ? std::stoi(v.text(0)) : 0;
    };
    int found = 0;
    try {
      found = version();
    } catch (const std::exception&) {
      found = 0;
    }
    if (found != kSchemaVersion) {
      throw std::runtime_error("database " + path_ + " has schema version " +
                               std::to_string(found) + ", this collector reads " +
                               std::to_string(kSchemaVersion) +
                               " (start teiten-collectord --migrate first)");
    }
    exec("PRAGMA query_only=1");
    return;
  }
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec("PRAGMA foreign_keys=ON");
  migrate();
  rebuild_days_if_needed();
}

std::optional<int> SqliteStore::schema_version_of(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
    throw std::runtime_error("cannot open database " + path + ": " + msg);
  }
  int version = 0;
  try {
    Stmt t(db, "SELECT count(*) FROM sqlite_master WHERE name = 'meta'");
    if (t.step(db) == SQLITE_ROW && t.i64(0) == 1) {
      Stmt v(db, "SELECT value FROM meta WHERE key = 'schema_version'");
      if (v.step(db) == SQLITE_ROW) version = std::stoi(v.text(0));
    }
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error("database " + path + ": " + e.what());
  }
  sqlite3_close(db);
  return version;
}

void SqliteStore::migrate() {
  exec(kSchema);
  // Version 1 (before unique-host sketches): add the columns.
  for (const char* table : {"bucket_rows", "hourly"}) {
    Stmt info(db_,
              std::string{"SELECT 1 FROM pragma_table_info('"} + table + "') WHERE name = 'hosts'");
    if (info.step(db_) != SQLITE_ROW)
      exec((std::string{"ALTER TABLE "} + table + " ADD COLUMN hosts BLOB").c_str());
  }
  Stmt v(db_, "SELECT value FROM meta WHERE key = 'schema_version'");
  if (v.step(db_) == SQLITE_ROW && std::stoi(v.text(0)) > kSchemaVersion)
    throw std::runtime_error("database " + path_ + " has schema version " + v.text(0) +
                             ", newer than this collector's " + std::to_string(kSchemaVersion));
  Stmt put(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)");
  put.bind(1, std::to_string(kSchemaVersion));
  put.step(db_);
}

std::optional<std::int64_t> SqliteStore::latest_day() {
  Stmt st(db_, "SELECT MAX(day) FROM sensor_days");
  if (st.step(db_) != SQLITE_ROW || sqlite3_column_type(st.s, 0) == SQLITE_NULL)
    return std::nullopt;
  return st.i64(0);
}

void SqliteStore::rebuild_days_if_needed() {
  Stmt get(db_, "SELECT value FROM meta WHERE key = 'time_zone'");
  const bool known = get.step(db_) == SQLITE_ROW;
  if (known && get.text(0) == time_zone_) return;
  // Days are cut again from the hourly rollups: not where those were pruned.
  if (known && hourly_pruned_before() > 0)
    throw std::runtime_error(
        "reports.time_zone is " + time_zone_ + " but " + path_ + " cuts days in " + get.text(0) +
        ", and its hourly rollups before " + bucket_time(hourly_pruned_before()) +
        " were pruned (collector.hourly_retention): those days cannot be cut again; keep " +
        get.text(0));
  // First start with this time zone (a new database, an older one, or a changed
  // reports.time_zone): cut the days again from the hourly rollups and bucket records.
  exec("BEGIN IMMEDIATE");
  try {
    exec("DELETE FROM daily");
    exec("DELETE FROM sensor_days");
    exec("DELETE FROM day_summaries");
    exec("DELETE FROM day_totals");
    exec("DELETE FROM day_hosts");
    exec("DELETE FROM day_sensor_totals");
    exec(
        "INSERT INTO daily (day, sensor, proto, port, country, fingerprint, packets, bytes, hosts) "
        "SELECT teiten_local_day(hour), sensor, proto, port, country, fingerprint, SUM(packets), "
        "SUM(bytes), teiten_hosts_merge(hosts) FROM hourly "
        "GROUP BY 1, sensor, proto, port, country, fingerprint");
    exec(
        "INSERT INTO sensor_days (sensor, day, covered_s, buckets, observed_packets, "
        "lost_packets, last_end) "
        "SELECT sensor, teiten_local_day(start), SUM(width_s), COUNT(*), SUM(observed_packets), "
        "SUM(ring_drops + kernel_drops + spool_dropped), MAX(start + width_s) FROM buckets "
        "GROUP BY sensor, 2");
    Stmt put(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('time_zone', ?1)");
    put.bind(1, time_zone_);
    put.step(db_);
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

SqliteStore::~SqliteStore() {
  sqlite3_close(db_);
}

void SqliteStore::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("database " + path_ + ": " + msg);
  }
}

std::vector<IngestResult> SqliteStore::ingest(const std::vector<bucket::SealedBucket>& batch) {
  std::vector<IngestResult> out;
  out.reserve(batch.size());
  exec("BEGIN IMMEDIATE");
  try {
    Stmt ins(
        db_,
        // Only the (sensor, boot_id, seq) uniqueness conflict means "already stored"; any
        // other constraint failure is an error (OR IGNORE would hide it as a duplicate).
        "INSERT INTO buckets (sensor, boot_id, seq, start, width_s, observed_packets, "
        "observed_bytes, not_for_sensor, late_packets, ring_drops, kernel_drops, interface_drops, "
        "malformed, malformed_by_reason, overflow_packets, overflow_bytes, provenance, "
        "spool_dropped, self_traffic) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (sensor, boot_id, seq) DO "
        "NOTHING");
    Stmt row(db_,
             "INSERT INTO bucket_rows (bucket_id, proto, port, country, fingerprint, kind, "
             "packets, bytes, hosts) "
             "VALUES (?,?,?,?,?,?,?,?,?)");
    Stmt hour(db_,
              "INSERT INTO hourly (sensor, hour, proto, port, country, fingerprint, kind, packets, "
              "bytes, hosts) "
              "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET packets = packets + "
              "excluded.packets, bytes = bytes + excluded.bytes, "
              "hosts = teiten_hosts_union(hosts, excluded.hosts)");
    Stmt day(db_,
             "INSERT INTO daily (day, sensor, proto, port, country, fingerprint, packets, bytes, "
             "hosts) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET packets = packets + "
             "excluded.packets, bytes = bytes + excluded.bytes, "
             "hosts = teiten_hosts_union(hosts, excluded.hosts)");
    Stmt cover(db_,
               "INSERT INTO sensor_days (sensor, day, covered_s, buckets, observed_packets, "
               "lost_packets, last_end) VALUES (?1,?2,?3,1,?4,?5,?6) ON CONFLICT DO UPDATE SET "
               "covered_s = covered_s + excluded.covered_s, buckets = buckets + 1, "
               "observed_packets = observed_packets + excluded.observed_packets, "
               "lost_packets = lost_packets + excluded.lost_packets, "
               "last_end = MAX(last_end, excluded.last_end)");
    for (const auto& b : batch) {
      ins.bind(1, b.sensor_id);
      ins.bind(2, b.boot_id);
      ins.bind(3, b.seq);
      ins.bind(4, b.start);
      ins.bind(5, std::int64_t{b.width_s});
      ins.bind(6, b.observed_packets());
      ins.bind(7, b.observed_bytes());
      ins.bind(8, b.not_for_sensor);
      ins.bind(9, b.late_packets);
      ins.bind(10, b.loss.ring_drops);
      ins.bind(11, b.loss.kernel_drops);
      ins.bind(12, b.loss.interface_drops);
      ins.bind(13, b.loss.malformed_total());
      ins.bind(14, malformed_json(b.loss));
      ins.bind(15, b.loss.overflow_packets);
      ins.bind(16, b.loss.overflow_bytes);
      ins.bind(17, provenance_json(b.provenance));
      ins.bind(18, b.loss.spool_dropped);
      ins.bind(19, b.self_traffic);
      ins.step(db_);
      ins.reset();
      if (sqlite3_changes(db_) == 0) {
        out.push_back(IngestResult::duplicate);
        continue;
      }
      const std::int64_t id = sqlite3_last_insert_rowid(db_);
      const std::int64_t hour_start = hour_of(b.start);
      const std::int64_t local = local_day(b.start);
      cover.bind(1, b.sensor_id);
      cover.bind(2, local);
      cover.bind(3, std::int64_t{b.width_s});
      cover.bind(4, b.observed_packets());
      cover.bind(5, lost_packets(b));
      cover.bind(6, b.start + std::int64_t{b.width_s});
      cover.step(db_);
      cover.reset();
      for (const auto& r : b.rows) {
        const std::string hosts = r.hosts.empty() ? std::string{} : r.hosts.encode();
        // The same key columns go to the detail row (from column 2) and the rollup (3).
        auto bind_key = [&](Stmt& st, int first) {
          st.bind(first, to_string(r.key.proto));
          st.bind(first + 1, r.key.has_port ? std::int64_t{r.key.port} : std::int64_t{-1});
          st.bind(first + 2, classify::country_to_string(r.key.country));
          st.bind(first + 3, to_string(r.key.fingerprint));
          st.bind(first + 4, to_string(r.key.kind));
          st.bind(first + 5, r.packets);
          st.bind(first + 6, r.bytes);
        };
        row.bind(1, id);
        bind_key(row, 2);
        row.bind_blob(9, hosts);
        row.step(db_);
        row.reset();
        hour.bind(1, b.sensor_id);
        hour.bind(2, hour_start);
        bind_key(hour, 3);
        hour.bind_blob(10, hosts);
        hour.step(db_);
        hour.reset();
        day.bind(1, local);
        day.bind(2, b.sensor_id);
        day.bind(3, to_string(r.key.proto));
        day.bind(4, r.key.has_port ? std::int64_t{r.key.port} : std::int64_t{-1});
        day.bind(5, classify::country_to_string(r.key.country));
        day.bind(6, to_string(r.key.fingerprint));
        day.bind(7, r.packets);
        day.bind(8, r.bytes);
        day.bind_blob(9, hosts);
        day.step(db_);
        day.reset();
      }
      out.push_back(IngestResult::stored);
    }
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return out;
}

bool SqliteStore::detail_pruned(std::int64_t from, std::int64_t to,
                                const std::vector<std::string>& sensors) {
  std::string sql =
      "SELECT EXISTS (SELECT 1 FROM buckets WHERE start >= ?1 AND start < ?2 AND detail_pruned = 1";
  sql += sensor_filter("sensor", sensors);
  sql += ")";
  Stmt st(db_, sql);
  st.bind(1, from);
  st.bind(2, to);
  bind_sensors(st, sensors);
  return st.step(db_) == SQLITE_ROW && sqlite3_column_int(st.s, 0) != 0;
}

std::int64_t SqliteStore::hourly_pruned_before() {
  Stmt st(db_, "SELECT value FROM meta WHERE key = 'hourly_pruned_before'");
  return st.step(db_) == SQLITE_ROW ? std::stoll(st.text(0)) : 0;
}

std::uint64_t SqliteStore::prune_hourly(std::int64_t cutoff) {
  exec("BEGIN IMMEDIATE");
  try {
    Stmt del(db_, "DELETE FROM hourly WHERE hour < ?1");
    del.bind(1, cutoff);
    del.step(db_);
    const auto n = static_cast<std::uint64_t>(sqlite3_changes(db_));
    Stmt mark(db_,
              "INSERT INTO meta (key, value) VALUES ('hourly_pruned_before', ?1) ON CONFLICT (key) "
              "DO UPDATE SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))");
    mark.bind(1, std::to_string(cutoff));
    mark.step(db_);
    exec("COMMIT");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<QueryRow> SqliteStore::query_tier(const Query& q, Tier tier) {
  const bool detail = tier == Tier::detail;
  const std::string sensor_col = detail ? "b.sensor" : "r.sensor";
  std::string select, group;
  for (const auto& d : q.group_by) {
    const std::string col = d == "sensor" ? sensor_col : "r." + d;
    select += col + ", ";
    group += (group.empty() ? "" : ", ") + col;
  }
  std::string sql =
      "SELECT " + select + "SUM(r.packets), SUM(r.bytes) FROM " +
      (tier == Tier::daily    ? daily_source(q, "?1", "?2")
       : tier == Tier::hourly ? std::string{"hourly r WHERE r.hour >= ?1 AND r.hour < ?2"}
                              : std::string{"bucket_rows r JOIN buckets b ON b.id = "
                                            "r.bucket_id WHERE b.start >= ?1 AND "
                                            "b.start < ?2"});
  sql += sensor_filter(sensor_col, q.sensors);
  if (q.proto) sql += " AND r.proto = ?3";
  if (q.port) sql += " AND r.port = ?4";
  if (q.country) sql += " AND r.country = ?5";
  if (q.fingerprint) sql += " AND r.fingerprint = ?6";
  if (q.kind) sql += " AND r.kind = ?7";
  if (!group.empty()) sql += " GROUP BY " + group;
  sql += " ORDER BY SUM(r.packets) DESC";
  if (!group.empty()) sql += ", " + group;
  Stmt st(db_, sql);
  st.bind(1, q.from);
  st.bind(2, q.to);
  if (q.proto) st.bind(3, *q.proto);
  if (q.port) st.bind(4, std::int64_t{*q.port});
  if (q.country) st.bind(5, *q.country);
  if (q.fingerprint) st.bind(6, *q.fingerprint);
  if (q.kind) st.bind(7, *q.kind);
  bind_sensors(st, q.sensors);
  std::vector<QueryRow> out;
  while (st.step(db_) == SQLITE_ROW) {
    QueryRow r;
    const int n = static_cast<int>(q.group_by.size());
    for (int i = 0; i < n; ++i) {
      const unsigned char* t = sqlite3_column_text(st.s, i);
      r.group.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    if (sqlite3_column_type(st.s, n) == SQLITE_NULL) continue;  // no rows matched
    r.packets = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, n));
    r.bytes = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, n + 1));
    out.push_back(std::move(r));
  }
  return out;
}

Accounting SqliteStore::accounting(const Query& q) {
  std::string sql =
      "SELECT COUNT(*), COALESCE(SUM(observed_packets), 0), COALESCE(SUM(not_for_sensor), 0), "
      "COALESCE(SUM(malformed), 0), COALESCE(SUM(ring_drops), 0), COALESCE(SUM(kernel_drops), 0), "
      "COALESCE(SUM(interface_drops), 0), COALESCE(SUM(overflow_packets), 0), "
      "COALESCE(SUM(spool_dropped), 0), COALESCE(SUM(self_traffic), 0) "
      "FROM buckets "
      "WHERE start >= ?1 AND start < ?2";
  sql += sensor_filter("sensor", q.sensors);
  Stmt st(db_, sql);
  st.bind(1, q.from);
  st.bind(2, q.to);
  bind_sensors(st, q.sensors);
  Accounting a;
  if (st.step(db_) == SQLITE_ROW) {
    auto col = [&](int i) { return static_cast<std::uint64_t>(sqlite3_column_int64(st.s, i)); };
    a.buckets = static_cast<std::uint64_t>(sqlite3_column_int64(st.s, 0));
    a.observed_packets = col(1);
    a.not_for_sensor = col(2);
    a.malformed = col(3);
    a.ring_drops = col(4);
    a.kernel_drops = col(5);
    a.interface_drops = col(6);
    a.overflow_packets = col(7);
    a.spool_dropped = col(8);
    a.self_traffic = col(9);
  }
  return a;
}

std::uint64_t SqliteStore::prune_detail(std::int64_t cutoff) {
  exec("BEGIN IMMEDIATE");
  try {
    Stmt del(db_,
             "DELETE FROM bucket_rows WHERE bucket_id IN "
             "(SELECT id FROM buckets WHERE start < ?1 AND detail_pruned = 0)");
    del.bind(1, cutoff);
    del.step(db_);
    Stmt mark(db_, "UPDATE buckets SET detail_pruned = 1 WHERE start < ?1 AND detail_pruned = 0");
    mark.bind(1, cutoff);
    mark.step(db_);
    const auto n = static_cast<std::uint64_t>(sqlite3_changes(db_));
    exec("COMMIT");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void SqliteStore::daily_sums(const DailySumsQuery& q,
                             const std::function<void(const DailySums&)>& out) {
  // Summed here: SQLite's GROUP BY (a sorter over millions of rows) is slower than this.
  DailySummer sum(q);
  const DayRuns runs =
      day_runs_of(day_states(q.day_from, q.day_to), q.day_from, q.day_to, q.sensors.empty());
  const auto each = [&](const std::string& sql, auto&& fn) {
    Stmt st(db_, sql);
    const auto text = [&](int col) {
      const unsigned char* t = sqlite3_column_text(st.s, col);
      return std::string_view{t ? reinterpret_cast<const char*>(t) : ""};
    };
    while (st.step(db_) == SQLITE_ROW) fn(st, text);
  };
  read_daily_rows(runs, [&](const DailyRow& r) {
    sum.add(r, r.sensor.empty() ? DailySummer::Part::day : DailySummer::Part::both);
  });
  if (!runs.summarized.empty()) {
    each("SELECT day, sensor, proto, port, packets FROM day_sensor_totals WHERE " +
             day_runs_sql(runs.summarized) + " ORDER BY sensor",
         [&](Stmt& st, auto& text) {
           sum.add(DailyRow{st.i64(0),
                            text(1),
                            text(2),
                            st.i64(3),
                            {},
                            {},
                            static_cast<std::uint64_t>(st.i64(4))},
                   DailySummer::Part::sensor);
         });
  }
  sum.emit(out);
}

void SqliteStore::read_daily_rows(const DayRuns& runs,
                                  const std::function<void(const DailyRow&)>& row) {
  const auto each = [&](const std::string& sql, bool with_sensor) {
    Stmt st(db_, sql);
    const auto text = [&](int col) {
      const unsigned char* t = sqlite3_column_text(st.s, col);
      return std::string_view{t ? reinterpret_cast<const char*>(t) : ""};
    };
    const int s = with_sensor ? 1 : 0;
    while (st.step(db_) == SQLITE_ROW)
      row(DailyRow{st.i64(0), with_sensor ? text(1) : std::string_view{}, text(1 + s),
                   st.i64(2 + s), text(3 + s), text(4 + s),
                   static_cast<std::uint64_t>(st.i64(5 + s))});
  };
  if (!runs.rollups.empty())
    each("SELECT day, sensor, proto, port, country, fingerprint, packets FROM daily WHERE " +
             day_runs_sql(runs.rollups),
         true);
  if (!runs.summarized.empty())
    each("SELECT day, proto, port, country, fingerprint, packets FROM day_totals WHERE " +
             day_runs_sql(runs.summarized),
         false);
}

void SqliteStore::daily_breakdown(const DailyBreakdownQuery& q,
                                  const std::function<void(const DailyBreakdown&)>& out) {
  BreakdownSummer sum(q);
  read_daily_rows(
      day_runs_of(day_states(q.day_from, q.day_to), q.day_from, q.day_to, q.sensors.empty()),
      [&](const DailyRow& r) { sum.add(r); });
  sum.emit(out);
}

void SqliteStore::scan_daily_hosts(std::int64_t day_from, std::int64_t day_to,
                                   const std::string& country, const std::string& proto,
                                   std::optional<std::int64_t> port,
                                   const std::vector<std::string>& sensors,
                                   const std::function<void(const DailyHosts&)>& row) {
  const DayRuns runs = day_runs_of(day_states(day_from, day_to), day_from, day_to, sensors.empty());
  const auto scan = [&](const char* table, const auto& days, bool by_sensor) {
    if (days.empty()) return;
    Stmt st(db_, std::string{"SELECT fingerprint, hosts FROM "} + table +
                     " WHERE country = ?1 AND proto = ?2" + (port ? " AND port = ?3" : "") +
                     " AND " + day_runs_sql(days) + " AND hosts IS NOT NULL" +
                     (by_sensor ? sensor_filter("sensor", sensors) : ""));
    st.bind(1, country);
    st.bind(2, proto);
    if (port) st.bind(3, *port);
    if (by_sensor) bind_sensors(st, sensors);
    while (st.step(db_) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st.s, 0);
      row(DailyHosts{t ? reinterpret_cast<const char*>(t) : "", st.blob(1)});
    }
  };
  scan("daily", runs.rollups, true);
  scan("day_hosts", runs.summarized, false);
}

std::vector<std::pair<std::int64_t, bool>> SqliteStore::day_states(std::int64_t day_from,
                                                                   std::int64_t day_to) {
  Stmt st(db_,
          "SELECT c.day, s.buckets IS c.b FROM (SELECT day, SUM(buckets) AS b FROM sensor_days "
          "WHERE day >= ?1 AND day <= ?2 GROUP BY day) c LEFT JOIN day_summaries s ON s.day = "
          "c.day ORDER BY c.day");
  st.bind(1, day_from);
  st.bind(2, day_to);
  std::vector<std::pair<std::int64_t, bool>> days;
  while (st.step(db_) == SQLITE_ROW) days.emplace_back(st.i64(0), st.i64(1) != 0);
  return days;
}

std::size_t SqliteStore::summarize_days(std::size_t max_days) {
  std::vector<std::int64_t> stale;
  {
    Stmt st(db_,
            "SELECT c.day FROM (SELECT day, SUM(buckets) AS b FROM sensor_days GROUP BY day) "
            "c LEFT JOIN day_summaries s ON s.day = c.day WHERE s.buckets IS NOT c.b "
            "ORDER BY c.day LIMIT ?1");
    st.bind(1, static_cast<std::int64_t>(max_days));
    while (st.step(db_) == SQLITE_ROW) stale.push_back(st.i64(0));
  }
  std::size_t done = 0;
  for (const std::int64_t day : stale) {
    // One write transaction per day: ingest waits for one day's summary at most.
    exec("BEGIN IMMEDIATE");
    try {
      std::int64_t buckets = 0;
      {
        Stmt n(db_, "SELECT COALESCE(SUM(buckets), 0) FROM sensor_days WHERE day = ?1");
        n.bind(1, day);
        if (n.step(db_) == SQLITE_ROW) buckets = n.i64(0);
      }
      for (const char* sql :
           {"DELETE FROM day_totals WHERE day = ?1", "DELETE FROM day_hosts WHERE day = ?1",
            "DELETE FROM day_sensor_totals WHERE day = ?1",
            "INSERT INTO day_totals (day, proto, port, country, fingerprint, packets, bytes) "
            "SELECT day, proto, port, country, fingerprint, SUM(packets), SUM(bytes) "
            "FROM daily WHERE day = ?1 GROUP BY day, proto, port, country, fingerprint",
            "INSERT INTO day_hosts (day, proto, port, country, fingerprint, hosts) "
            "SELECT day, proto, port, country, fingerprint, teiten_hosts_merge(hosts) "
            "FROM daily WHERE day = ?1 AND hosts IS NOT NULL "
            "GROUP BY day, proto, port, country, fingerprint",
            "INSERT INTO day_sensor_totals (day, sensor, proto, port, packets, bytes) "
            "SELECT day, sensor, proto, port, SUM(packets), SUM(bytes) FROM daily WHERE day = ?1 "
            "GROUP BY day, sensor, proto, port",
            "INSERT OR REPLACE INTO day_summaries (day, buckets) VALUES (?1, ?2)"}) {
        Stmt st(db_, sql);
        st.bind(1, day);
        if (std::string_view{sql}.find("?2") != std::string_view::npos) st.bind(2, buckets);
        st.step(db_);
      }
      exec("COMMIT");
    } catch (...) {
      exec("ROLLBACK");
      throw;
    }
    ++done;
  }
  return done;
}

std::vector<SensorDay> SqliteStore::sensor_days(std::int64_t day_from, std::int64_t day_to) {
  Stmt st(db_,
          "SELECT sensor, day, covered_s, observed_packets FROM sensor_days "
          "WHERE day >= ?1 AND day <= ?2");
  st.bind(1, day_from);
  st.bind(2, day_to);
  std::vector<SensorDay> out;
  while (st.step(db_) == SQLITE_ROW)
    out.push_back({st.text(0), st.i64(1), st.i64(2), static_cast<std::uint64_t>(st.i64(3))});
  return out;
}

std::vector<SensorTotals> SqliteStore::sensor_totals(std::int64_t day_from, std::int64_t day_to) {
  Stmt st(db_,
          "SELECT sensor, MAX(last_end), "
          "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN MIN(covered_s, 86400) ELSE 0 END), "
          "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN observed_packets ELSE 0 END), "
          "SUM(CASE WHEN day >= ?1 AND day <= ?2 THEN lost_packets ELSE 0 END) "
          "FROM sensor_days GROUP BY sensor ORDER BY sensor");
  st.bind(1, day_from);
  st.bind(2, day_to);
  std::vector<SensorTotals> out;
  while (st.step(db_) == SQLITE_ROW) {
    out.push_back({st.text(0), st.i64(1), st.i64(2), static_cast<std::uint64_t>(st.i64(3)),
                   static_cast<std::uint64_t>(st.i64(4))});
  }
  return out;
}

std::vector<std::pair<std::string, std::uint64_t>> SqliteStore::bytes_per_tier() {
  // The dbstat virtual table: pages of each table and index.
  Stmt st(db_, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name");
  std::map<std::string, std::uint64_t> tiers{
      {"buckets", 0}, {"detail", 0}, {"hourly", 0}, {"daily", 0}};
  while (st.step(db_) == SQLITE_ROW) {
    const std::string name = st.text(0);
    const auto bytes = static_cast<std::uint64_t>(st.i64(1));
    if (name.rfind("bucket_rows", 0) == 0) {
      tiers["detail"] += bytes;
    } else if (name.rfind("hourly", 0) == 0 || name.find("_hourly_") != std::string::npos) {
      tiers["hourly"] += bytes;
    } else if (name.rfind("daily", 0) == 0 || name.find("_daily_") != std::string::npos ||
               name.rfind("day_", 0) == 0 || name.find("_day_") != std::string::npos) {
      tiers["daily"] += bytes;
    } else {
      tiers["buckets"] += bytes;
    }
  }
  return {tiers.begin(), tiers.end()};
}

bool SqliteStore::empty() {
  Stmt st(db_, "SELECT NOT EXISTS (SELECT 1 FROM buckets)");
  return st.step(db_) == SQLITE_ROW && st.i64(0) != 0;
}

std::unique_ptr<StoreLoader> SqliteStore::bulk_loader() {
  throw std::runtime_error("db copy loads into PostgreSQL (a SQLite store is the source)");
}

std::optional<std::string> SqliteStore::time_zone_of(const std::string& path) {
  if (!schema_version_of(path)) throw std::runtime_error("no database " + path);
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::optional<std::string> tz;
  try {
    Stmt st(db, "SELECT value FROM meta WHERE key = 'time_zone'");
    if (st.step(db) == SQLITE_ROW) tz = st.text(0);
  } catch (const std::exception& e) {
    sqlite3_close(db);
    throw std::runtime_error("database " + path + ": " + e.what());
  }
  sqlite3_close(db);
  return tz;
}

void SqliteStore::export_all(StoreSink& sink, std::int64_t& hourly_pruned_from) {
  // One snapshot of everything, and no ingest meanwhile: a collector still running on
  // this file waits (its batches fail after its busy timeout and are sent again), so no
  // bucket is acknowledged that the copy does not hold.
  exec("BEGIN IMMEDIATE");
  try {
    hourly_pruned_from = hourly_pruned_before();
    Stmt b(db_,
           "SELECT id, sensor, boot_id, seq, start, width_s, observed_packets, observed_bytes, "
           "not_for_sensor, self_traffic, late_packets, ring_drops, kernel_drops, "
           "interface_drops, spool_dropped, malformed, overflow_packets, overflow_bytes, "
           "malformed_by_reason, provenance, detail_pruned FROM buckets ORDER BY id");
    Stmt r(db_,
           "SELECT bucket_id, proto, port, country, fingerprint, kind, packets, bytes, hosts FROM "
           "bucket_rows ORDER BY bucket_id");
    // Both in id order: one pass over each.
    bool row_ready = r.step(db_) == SQLITE_ROW;
    BucketRecord rec;
    while (b.step(db_) == SQLITE_ROW) {
      const std::int64_t id = b.i64(0);
      rec.sensor = b.text(1);
      rec.boot_id = b.text(2);
      std::int64_t* const ints[] = {&rec.seq,
                                    &rec.start,
                                    &rec.width_s,
                                    &rec.observed_packets,
                                    &rec.observed_bytes,
                                    &rec.not_for_sensor,
                                    &rec.self_traffic,
                                    &rec.late_packets,
                                    &rec.ring_drops,
                                    &rec.kernel_drops,
                                    &rec.interface_drops,
                                    &rec.spool_dropped,
                                    &rec.malformed,
                                    &rec.overflow_packets,
                                    &rec.overflow_bytes};
      for (int i = 0; i < 15; ++i) *ints[i] = b.i64(3 + i);
      rec.malformed_by_reason = b.text(18);
      rec.provenance = b.text(19);
      rec.detail_pruned = b.i64(20) != 0;
      rec.rows.clear();
      while (row_ready && r.i64(0) <= id) {
        if (r.i64(0) == id) {
          rec.rows.push_back({r.text(1), r.i64(2), r.text(3), r.text(4), r.text(5), r.i64(6),
                              r.i64(7), std::string{r.blob(8)}});
        }
        row_ready = r.step(db_) == SQLITE_ROW;
      }
      sink.bucket(rec);
    }
    Stmt h(db_,
           "SELECT hour, sensor, proto, port, country, fingerprint, kind, packets, bytes, hosts "
           "FROM hourly");
    while (h.step(db_) == SQLITE_ROW) {
      sink.hourly({h.i64(0), h.text(1), h.text(2), h.i64(3), h.text(4), h.text(5), h.text(6),
                   h.i64(7), h.i64(8), std::string{h.blob(9)}});
    }
    Stmt d(db_,
           "SELECT day, sensor, proto, port, country, fingerprint, packets, bytes, hosts FROM "
           "daily");
    while (d.step(db_) == SQLITE_ROW) {
      sink.daily({d.i64(0), d.text(1), d.text(2), d.i64(3), d.text(4), d.text(5), "", d.i64(6),
                  d.i64(7), std::string{d.blob(8)}});
    }
    Stmt c(db_,
           "SELECT sensor, day, covered_s, buckets, observed_packets, lost_packets, last_end FROM "
           "sensor_days");
    while (c.step(db_) == SQLITE_ROW)
      sink.sensor_day({c.text(0), c.i64(1), c.i64(2), c.i64(3), c.i64(4), c.i64(5), c.i64(6)});
    exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

}  // namespace teiten::collector

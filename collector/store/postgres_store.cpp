// SPDX-License-Identifier: Apache-2.0
#include "collector/store/postgres_store.h"

#include <date/date.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <stdexcept>
#include <tuple>

#include "collector/store/detail_block.h"
#include "collector/store/pg.h"
#include "collector/store/rows.h"
#include "common/bucket/bucket_json.h"
#include "common/sketch/host_sketch.h"

namespace teiten::collector {

using namespace store_rows;

namespace {

// Version 4 (version 2 was the first PostgreSQL schema; 3 added the day summaries; 4 keeps a
// bucket's detail as one row, bucket_detail, instead of a row per counter, bucket_rows).
// Text columns compare bytewise (COLLATE "C"), as SQLite does: results order the same on
// both. Per-bucket detail carries its bucket's start and sensor (no join to read it) and lives
// in monthly partitions, as do the hourly rollups: retention drops whole months. The daily
// rollups (what reports scan) are partitioned by month too, and keep their unique-source
// sketches in a table of their own: a quarter's scan reads narrow rows of three months. Buckets
// arrive about in time order, so a BRIN index finds a range of the detail for a fraction
// of a B-tree's cost at every insert.
constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS teiten_meta (key text COLLATE "C" PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sensor text COLLATE "C" NOT NULL,
  boot_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  start bigint NOT NULL,
  width_s bigint NOT NULL,
  observed_packets bigint NOT NULL,
  observed_bytes bigint NOT NULL,
  not_for_sensor bigint NOT NULL,
  self_traffic bigint NOT NULL,
  late_packets bigint NOT NULL,
  ring_drops bigint NOT NULL,
  kernel_drops bigint NOT NULL,
  interface_drops bigint NOT NULL,
  spool_dropped bigint NOT NULL,
  malformed bigint NOT NULL,
  malformed_by_reason text NOT NULL,
  overflow_packets bigint NOT NULL,
  overflow_bytes bigint NOT NULL,
  provenance text NOT NULL,
  detail_pruned boolean NOT NULL DEFAULT false,
  UNIQUE (sensor, boot_id, seq)
);
CREATE INDEX IF NOT EXISTS buckets_by_time ON buckets (start, sensor);
-- The per-bucket detail: a bucket's counter rows as one value (collector/store/detail_block.h).
CREATE TABLE IF NOT EXISTS bucket_detail (
  bucket_id bigint NOT NULL,
  start bigint NOT NULL,
  sensor text COLLATE "C" NOT NULL,
  rows bytea COMPRESSION lz4 NOT NULL
) PARTITION BY RANGE (start);
CREATE INDEX IF NOT EXISTS bucket_detail_by_start ON bucket_detail USING brin (start);
CREATE TABLE IF NOT EXISTS hourly (
  sensor text COLLATE "C" NOT NULL,
  hour bigint NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  country text COLLATE "C" NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  kind text COLLATE "C" NOT NULL,
  packets bigint NOT NULL,
  bytes bigint NOT NULL,
  hosts bytea,
  PRIMARY KEY (sensor, hour, proto, port, country, fingerprint, kind)
) PARTITION BY RANGE (hour);
CREATE TABLE IF NOT EXISTS daily (
  day bigint NOT NULL,
  sensor text COLLATE "C" NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  country text COLLATE "C" NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  packets bigint NOT NULL,
  bytes bigint NOT NULL,
  PRIMARY KEY (day, sensor, proto, port, country, fingerprint)
) PARTITION BY RANGE (day);
CREATE TABLE IF NOT EXISTS daily_hosts (
  day bigint NOT NULL,
  sensor text COLLATE "C" NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  country text COLLATE "C" NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  hosts bytea NOT NULL,
  PRIMARY KEY (day, sensor, proto, port, country, fingerprint)
) PARTITION BY RANGE (day);
CREATE INDEX IF NOT EXISTS daily_hosts_by_port ON daily_hosts (country, proto, port, day);
CREATE TABLE IF NOT EXISTS sensor_days (
  sensor text COLLATE "C" NOT NULL,
  day bigint NOT NULL,
  covered_s bigint NOT NULL,
  buckets bigint NOT NULL,
  observed_packets bigint NOT NULL,
  lost_packets bigint NOT NULL,
  last_end bigint NOT NULL,
  PRIMARY KEY (sensor, day)
);
-- Day summaries (docs/scale.md), made by the maintenance job: each local day's daily
-- rollups summed over the sensors, current while the day's bucket count (the sum of
-- sensor_days.buckets) is day_summaries.buckets.
CREATE TABLE IF NOT EXISTS day_summaries (
  day bigint PRIMARY KEY,
  buckets bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS day_totals (
  day bigint NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  country text COLLATE "C" NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  packets bigint NOT NULL,
  bytes bigint NOT NULL,
  PRIMARY KEY (day, proto, port, country, fingerprint)
);
-- Their sketches merged, apart: a query of the totals reads narrow rows.
CREATE TABLE IF NOT EXISTS day_hosts (
  day bigint NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  country text COLLATE "C" NOT NULL,
  fingerprint text COLLATE "C" NOT NULL,
  hosts bytea NOT NULL,
  PRIMARY KEY (day, proto, port, country, fingerprint)
);
CREATE INDEX IF NOT EXISTS day_hosts_by_port ON day_hosts (country, proto, port, day);
CREATE TABLE IF NOT EXISTS day_sensor_totals (
  day bigint NOT NULL,
  sensor text COLLATE "C" NOT NULL,
  proto text COLLATE "C" NOT NULL,
  port integer NOT NULL,
  packets bigint NOT NULL,
  bytes bigint NOT NULL,
  PRIMARY KEY (day, sensor, proto, port)
);
)SQL";

constexpr const char* kHourlyKey = "sensor, hour, proto, port, country, fingerprint, kind";
constexpr const char* kDailyKey = "day, sensor, proto, port, country, fingerprint";

std::string str(std::int64_t v) {
  return std::to_string(v);
}

// A text[] literal: {"a","b"} with quotes and backslashes escaped.
std::string text_array(const std::vector<std::string>& v) {
  std::string o = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    o += i ? ",\"" : "\"";
    for (const char ch : v[i]) {
      if (ch == '"' || ch == '\\') o += '\\';
      o += ch;
    }
    o += '"';
  }
  return o + "}";
}

// The sensors as a text[] parameter; none: NULL (every sensor).
std::optional<std::string> sensors_param(const std::vector<std::string>& sensors) {
  if (sensors.empty()) return std::nullopt;
  return text_array(sensors);
}

std::int64_t month_start(std::int64_t t) {
  const auto day = date::floor<date::days>(date::sys_seconds{std::chrono::seconds{t}});
  const date::year_month_day ymd{day};
  return date::sys_seconds{date::sys_days{ymd.year() / ymd.month() / 1}}.time_since_epoch().count();
}

std::int64_t next_month(std::int64_t month) {
  const date::year_month_day ymd{
      date::floor<date::days>(date::sys_seconds{std::chrono::seconds{month}})};
  const auto next = ymd.year() / ymd.month() / 1 + date::months{1};
  return date::sys_seconds{date::sys_days{next}}.time_since_epoch().count();
}

std::string month_suffix(std::int64_t month) {
  const date::year_month_day ymd{
      date::floor<date::days>(date::sys_seconds{std::chrono::seconds{month}})};
  char buf[16];
  std::snprintf(buf, sizeof buf, "p%04d%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()));
  return buf;
}

// A rollup delta of a batch: counts and the union of the sources.
struct Delta {
  std::uint64_t packets = 0, bytes = 0;
  sketch::HostSketch hosts;
};
using HourKey = std::tuple<std::string, std::int64_t, std::string, std::int64_t, std::string,
                           std::string, std::string>;
using DayKey =
    std::tuple<std::int64_t, std::string, std::string, std::int64_t, std::string, std::string>;
struct DayCover {
  std::int64_t covered_s = 0, buckets = 0, last_end = 0;
  std::uint64_t observed = 0, lost = 0;
};

void copy_sep(std::string& out) {
  out += '\t';
}

// A bucket record, for insert_buckets.
struct BucketFields {
  std::string_view sensor, boot_id;
  std::int64_t seq = 0, start = 0, width_s = 0, observed_packets = 0, observed_bytes = 0,
               not_for_sensor = 0, late_packets = 0, ring_drops = 0, kernel_drops = 0,
               interface_drops = 0, malformed = 0;
  std::string_view malformed_by_reason;
  std::int64_t overflow_packets = 0, overflow_bytes = 0;
  std::string_view provenance;
  std::int64_t spool_dropped = 0, self_traffic = 0;
};

// The columns of the buckets table a batch fills, in this order.
constexpr const char* kBucketCols =
    "sensor, boot_id, seq, start, width_s, observed_packets, observed_bytes, not_for_sensor, "
    "late_packets, ring_drops, kernel_drops, interface_drops, malformed, malformed_by_reason, "
    "overflow_packets, overflow_bytes, provenance, spool_dropped, self_traffic";

pg::Columns bucket_columns() {
  std::vector<std::string> types(19, "bigint");
  types[0] = types[1] = types[13] = types[16] = "text";
  return pg::Columns(std::move(types));
}

void add_bucket(pg::Columns& cols, const BucketFields& b) {
  cols.text(b.sensor);
  cols.text(b.boot_id);
  for (const std::int64_t v :
       {b.seq, b.start, b.width_s, b.observed_packets, b.observed_bytes, b.not_for_sensor,
        b.late_packets, b.ring_drops, b.kernel_drops, b.interface_drops, b.malformed})
    cols.integer(v);
  cols.text(b.malformed_by_reason);
  cols.integer(b.overflow_packets);
  cols.integer(b.overflow_bytes);
  cols.text(b.provenance);
  cols.integer(b.spool_dropped);
  cols.integer(b.self_traffic);
}

// One line of bucket_detail: a bucket's rows, as one block.
void copy_detail(std::string& out, std::int64_t id, std::int64_t start, std::string_view sensor,
                 const std::string& block) {
  pg::copy_int(out, id);
  copy_sep(out);
  pg::copy_int(out, start);
  copy_sep(out);
  pg::copy_text(out, sensor);
  copy_sep(out);
  pg::copy_bytea(out, block);
  out += '\n';
}

// Inserts the buckets (in their order, so that ids ascend as they came); the ids of those
// that were new, by (sensor, boot_id, seq). Only the uniqueness conflict means "already
// stored".
std::map<std::tuple<std::string, std::string, std::int64_t>, std::int64_t> insert_buckets(
    pg::Conn& c, const pg::Columns& cols) {
  const pg::Result ids =
      c.exec(std::string{"INSERT INTO buckets ("} + kBucketCols + ") SELECT " + kBucketCols +
                 " FROM " + cols.unnest() + " WITH ORDINALITY AS s(" + kBucketCols +
                 ", idx) ORDER BY idx ON CONFLICT (sensor, boot_id, seq) DO "
                 "NOTHING RETURNING id, sensor, boot_id, seq",
             cols.params());
  std::map<std::tuple<std::string, std::string, std::int64_t>, std::int64_t> out;
  for (int i = 0; i < ids.rows(); ++i)
    out[{std::string{ids.bytes(i, 1)}, std::string{ids.bytes(i, 2)}, ids.i64(i, 3)}] =
        ids.i64(i, 0);
  return out;
}

// What a rollup table holds: counts and sketches (hourly), counts (daily) or sketches
// (daily_hosts).
enum class Holds { both, counts, hosts };

// One rollup delta as a COPY line (key fields first, as the table orders them).
template <typename Key>
void copy_delta(std::string& out, const Key& key, const Delta& d, std::string& scratch,
                Holds holds = Holds::both) {
  std::apply(
      [&](const auto&... field) {
        (
            [&] {
              if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::string>) {
                pg::copy_text(out, field);
              } else {
                pg::copy_int(out, field);
              }
              copy_sep(out);
            }(),
            ...);
      },
      key);
  if (holds != Holds::hosts) {
    pg::copy_int(out, static_cast<std::int64_t>(d.packets));
    copy_sep(out);
    pg::copy_int(out, static_cast<std::int64_t>(d.bytes));
    if (holds == Holds::counts) {
      out += '\n';
      return;
    }
    copy_sep(out);
  }
  scratch = d.hosts.empty() ? std::string{} : d.hosts.encode();
  pg::copy_bytea(out, scratch);
  out += '\n';
}

// Reads the key of a rollup row returned by the upsert (columns in the key's order).
HourKey hour_key_of(const pg::Result& r, int i) {
  return {std::string{r.bytes(i, 0)}, r.i64(i, 1),
          std::string{r.bytes(i, 2)}, r.i64(i, 3),
          std::string{r.bytes(i, 4)}, std::string{r.bytes(i, 5)},
          std::string{r.bytes(i, 6)}};
}
DayKey day_key_of(const pg::Result& r, int i) {
  return {r.i64(i, 0), std::string{r.bytes(i, 1)}, std::string{r.bytes(i, 2)},
          r.i64(i, 3), std::string{r.bytes(i, 4)}, std::string{r.bytes(i, 5)}};
}

// One rollup delta as a row of Columns (key fields first, as the table orders them).
template <typename Key>
void add_delta(pg::Columns& cols, const Key& key, const Delta& d, std::string_view hosts,
               Holds holds) {
  std::apply(
      [&](const auto&... field) {
        (
            [&] {
              if constexpr (std::is_same_v<std::decay_t<decltype(field)>, std::string>) {
                cols.text(field);
              } else {
                cols.integer(field);
              }
            }(),
            ...);
      },
      key);
  if (holds != Holds::hosts) {
    cols.integer(static_cast<std::int64_t>(d.packets));
    cols.integer(static_cast<std::int64_t>(d.bytes));
  }
  if (holds != Holds::counts) cols.bytea(hosts);
}

// The Columns of a rollup table's rows (its key's types, then counts and/or sketch).
template <typename Key>
pg::Columns delta_columns(Holds holds) {
  std::vector<std::string> types;
  std::apply(
      [&](const auto&... field) {
        ((types.push_back(std::is_same_v<std::decay_t<decltype(field)>, std::string> ? "text"
                                                                                     : "bigint")),
         ...);
      },
      Key{});
  if (holds != Holds::hosts) types.insert(types.end(), {"bigint", "bigint"});
  if (holds != Holds::counts) types.push_back("bytea");
  return pg::Columns(std::move(types));
}

// Upserts the batch's rollup deltas into one table: counts add up in the statement; a
// sketch is merged here when the stored row already had one (the upsert locked that row,
// so nobody else changes it before this transaction ends).
template <typename Key>
void upsert_rollup(pg::Conn& c, const std::string& table, const std::string& key_cols,
                   const std::map<Key, Delta>& deltas, Key (*key_of)(const pg::Result&, int),
                   Holds holds = Holds::both) {
  if (deltas.empty()) return;
  pg::Columns cols = delta_columns<Key>(holds);
  std::string scratch;
  std::map<Key, std::string> mine;  // the sketch this batch brought, encoded
  for (const auto& [k, d] : deltas) {
    if (holds == Holds::hosts && d.hosts.empty()) continue;  // a row of sketches only
    scratch = holds == Holds::counts || d.hosts.empty() ? std::string{} : d.hosts.encode();
    add_delta(cols, k, d, scratch, holds);
    if (!scratch.empty()) mine.emplace(k, scratch);
  }
  if (!cols.rows()) return;
  const std::string all_cols = key_cols + (holds == Holds::hosts    ? ", hosts"
                                           : holds == Holds::counts ? ", packets, bytes"
                                                                    : ", packets, bytes, hosts");
  // Rows are taken in key order, so two collectors never lock the same rows in opposite
  // orders.
  const std::string counts = "packets = " + table +
                             ".packets + excluded.packets, bytes = " + table +
                             ".bytes + excluded.bytes";
  const std::string insert = "INSERT INTO " + table + " (" + all_cols + ") SELECT * FROM " +
                             cols.unnest() + " AS s(" + all_cols + ") ORDER BY " + key_cols +
                             " ON CONFLICT (" + key_cols + ") DO UPDATE SET ";
  if (holds == Holds::counts) {
    c.exec(insert + counts, cols.params());
    return;
  }
  const pg::Result r =
      c.exec(insert + (holds == Holds::both ? counts + ", " : std::string{}) + "hosts = COALESCE(" +
                 table + ".hosts, excluded.hosts) RETURNING " + key_cols + ", hosts",
             cols.params());
  const int host_col = static_cast<int>(std::tuple_size_v<Key>);
  pg::Columns merged = delta_columns<Key>(holds);
  for (int i = 0; i < r.rows(); ++i) {
    if (r.null(i, host_col)) continue;
    const Key k = key_of(r, i);
    const auto it = mine.find(k);
    if (it == mine.end() || r.bytes(i, host_col) == it->second) continue;
    std::string why;
    auto stored = sketch::HostSketch::decode(r.bytes(i, host_col), &why);
    if (!stored) throw std::runtime_error("stored host sketch in " + table + ": " + why);
    stored->merge(deltas.at(k).hosts);
    add_delta(merged, k, Delta{}, stored->encode(), holds);
  }
  if (!merged.rows()) return;
  std::string match;
  std::string_view rest = key_cols;
  while (!rest.empty()) {
    const auto comma = rest.find(", ");
    const std::string col{rest.substr(0, comma)};
    match += (match.empty() ? "" : " AND ") + ("t." + col + " = s." + col);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
  }
  c.exec("UPDATE " + table + " t SET hosts = s.hosts FROM " + merged.unnest() + " AS s(" +
             all_cols + ") WHERE " + match,
         merged.params());
}

}  // namespace

PostgresStore::PostgresStore(const std::string& conninfo, const std::string& time_zone,
                             OpenMode mode)
    : Store(time_zone), mode_(mode) {
  try {
    conn_ = std::make_unique<pg::Conn>(conninfo);
    if (mode != OpenMode::read_only) {
      migrate();
      rebuild_days_if_needed();
    } else {
      const pg::Result r =
          conn_->exec("SELECT value FROM teiten_meta WHERE key = 'schema_version'");
      const std::string found = r.rows() ? std::string{r.bytes(0, 0)} : "none";
      if (found != std::to_string(kSchemaVersion))
        throw std::runtime_error("schema version " + found + ", this collector reads " +
                                 std::to_string(kSchemaVersion) +
                                 " (start teiten-collectord --migrate first)");
    }
    connected();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string{"database "} +
                             (conn_ ? conn_->describe() : std::string{"postgresql"}) + ": " +
                             e.what());
  }
}

PostgresStore::~PostgresStore() = default;

std::string PostgresStore::describe() const {
  return conn_->describe();
}

void PostgresStore::connected() {
  // JIT compilation costs more than it saves on these scans (measured: a quarter's scan).
  conn_->run("SET jit = off");
  if (mode_ == OpenMode::read_only) {
    conn_->run("SET default_transaction_read_only = on");
    // Reports aggregate a quarter's daily rollups (2.5 M rows at 100 sensors): with the
    // default 4 MB the groups spill to disk in a sort (1.9 s), with more memory but default
    // costs the planner aggregates on one core (1.7 s); in memory and in parallel, 0.8 s
    // (EXPLAIN ANALYZE on bench/report_bench's store). Per report connection only.
    conn_->run("SET work_mem = '64MB'");
    conn_->run("SET parallel_setup_cost = 0");
    conn_->run("SET parallel_tuple_cost = 0");
  }
}

void PostgresStore::usable() {
  if (conn_->ok()) return;
  if (!conn_->reset())
    throw pg::Error("lost the connection to " + conn_->describe() + " and cannot reconnect", "");
  connected();
}

void PostgresStore::alive() {
  // libpq learns that a server restarted only when a statement fails: a report's first
  // statement must not be that one. One round trip on an idle connection.
  if (conn_->ok()) {
    try {
      conn_->run("SELECT 1");
      return;
    } catch (const pg::Error&) {
      if (conn_->ok()) throw;  // an answer, not a lost connection
    }
  }
  usable();
}

void PostgresStore::migrate() {
  conn_->run("BEGIN");
  try {
    // Collectors starting together: one migrates, the others wait and find it done.
    conn_->run("SELECT pg_advisory_xact_lock(7415001)");
    const pg::Result has = conn_->exec("SELECT to_regclass('teiten_meta') IS NOT NULL");
    int found = 0;
    if (has.i64(0, 0)) {
      const pg::Result v =
          conn_->exec("SELECT value FROM teiten_meta WHERE key = 'schema_version'");
      if (v.rows()) found = std::stoi(std::string{v.bytes(0, 0)});
      if (found > kSchemaVersion)
        throw std::runtime_error("schema version " + std::to_string(found) +
                                 ", newer than this collector's " + str(kSchemaVersion));
    }
    // A current schema is left alone: its DDL would lock tables every other collector
    // is writing.
    if (found != kSchemaVersion) conn_->run(kSchema);
    if (found > 0 && found < 4) convert_bucket_rows();
    conn_->exec(
        "INSERT INTO teiten_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT (key) "
        "DO UPDATE SET value = excluded.value",
        {str(kSchemaVersion)});
    conn_->run("COMMIT");
  } catch (...) {
    try {
      conn_->run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
  // This month and the next two exist before any bucket needs them.
  const std::int64_t now = std::time(nullptr);
  ensure_partitions(month_start(now), next_month(next_month(next_month(month_start(now)))));
}

void PostgresStore::convert_bucket_rows() {
  if (!conn_->exec("SELECT to_regclass('bucket_rows') IS NOT NULL").i64(0, 0)) return;
  for (const auto& [name, month] : partitions_of("bucket_rows")) {
    create_partitions(month);
    std::string data;
    detail_block::Writer block;
    std::int64_t id = -1, start = 0;
    std::string sensor;
    const auto flush_bucket = [&] {
      if (block.rows()) copy_detail(data, id, start, sensor, block.finish());
      if (data.size() > (32u << 20)) {
        conn_->copy_in("COPY bucket_detail FROM STDIN", data);
        data.clear();
      }
    };
    conn_->stream(
        "SELECT bucket_id, start, sensor, proto, port, country, fingerprint, kind, packets, "
        "bytes, hosts FROM " +
            name + " ORDER BY bucket_id",
        {}, [&](const pg::Result& r, int i) {
          if (r.i64(i, 0) != id) {
            flush_bucket();
            id = r.i64(i, 0);
            start = r.i64(i, 1);
            sensor.assign(r.bytes(i, 2));
          }
          block.add({r.bytes(i, 3), r.i64(i, 4), r.bytes(i, 5), r.bytes(i, 6), r.bytes(i, 7),
                     static_cast<std::uint64_t>(r.i64(i, 8)),
                     static_cast<std::uint64_t>(r.i64(i, 9)), r.bytes(i, 10)});
        });
    flush_bucket();
    if (!data.empty()) conn_->copy_in("COPY bucket_detail FROM STDIN", data);
  }
  conn_->run("DROP TABLE bucket_rows");
}

std::string PostgresStore::check(const std::string& conninfo) {
  pg::Conn c(conninfo);
  const pg::Result has = c.exec("SELECT to_regclass('teiten_meta') IS NOT NULL");
  if (!has.i64(0, 0))
    return "database " + c.describe() + ": no Teiten schema yet (created at the first start)";
  const pg::Result v = c.exec("SELECT value FROM teiten_meta WHERE key = 'schema_version'");
  const std::string version = v.rows() ? std::string{v.bytes(0, 0)} : "0";
  if (std::stoi(version) > kSchemaVersion)
    throw std::runtime_error("database " + c.describe() + " has schema version " + version +
                             ", newer than this collector's " + str(kSchemaVersion));
  return "database " + c.describe() + ", schema version " + version;
}

void PostgresStore::ensure_partitions(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> missing;
  for (std::int64_t m = month_start(from); m < to; m = next_month(m))
    if (!months_.count(m)) missing.push_back(m);
  if (missing.empty()) return;
  usable();
  conn_->run("BEGIN");
  try {
    conn_->run("SELECT pg_advisory_xact_lock(7415002)");
    // A partition's creation locks its parent: never queue long behind a reader (and
    // everyone's ingest behind that); a batch that fails so is answered 503 and retried.
    conn_->run("SET LOCAL lock_timeout = '5s'");
    for (const std::int64_t m : missing) create_partitions(m);
    conn_->run("COMMIT");
  } catch (...) {
    try {
      conn_->run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
  months_.insert(missing.begin(), missing.end());
}

void PostgresStore::create_partitions(std::int64_t m) {
  const std::string bounds = " FOR VALUES FROM (" + str(m) + ") TO (" + str(next_month(m)) + ")";
  for (const char* table : {"bucket_detail", "hourly"}) {
    conn_->run(std::string{"CREATE TABLE IF NOT EXISTS "} + table + "_" + month_suffix(m) +
               " PARTITION OF " + table + bounds);
  }
  // The daily tables: the days of the month (local days, numbered as UTC ones).
  const std::string days =
      " FOR VALUES FROM (" + str(m / 86400) + ") TO (" + str(next_month(m) / 86400) + ")";
  for (const char* table : {"daily", "daily_hosts"}) {
    conn_->run(std::string{"CREATE TABLE IF NOT EXISTS "} + table + "_" + month_suffix(m) +
               " PARTITION OF " + table + days);
  }
}

void PostgresStore::rebuild_days_if_needed() {
  const pg::Result tz = conn_->exec("SELECT value FROM teiten_meta WHERE key = 'time_zone'");
  if (tz.rows() && tz.bytes(0, 0) == time_zone_) return;
  if (tz.rows()) {
    const std::string stored{tz.bytes(0, 0)};
    // Several collectors share the days: one of them must not re-cut them at its start.
    if (mode_ != OpenMode::migrate)
      throw std::runtime_error("the database cuts days in " + stored + ", reports.time_zone is " +
                               time_zone_ + ": set " + stored +
                               ", or change it on every collector and run teiten-collectord "
                               "--migrate once");
    // Days are cut again from the hourly rollups: not where those were pruned.
    if (hourly_pruned_before() > 0)
      throw std::runtime_error("the hourly rollups before " +
                               bucket::format_rfc3339(hourly_pruned_before()) +
                               " were pruned (collector.hourly_retention): the days in " + stored +
                               " cannot be cut again; keep " + stored);
  }
  // First start with this time zone: cut the days again from the hourly rollups and the
  // bucket records (sketches merged here: PostgreSQL has no function for them).
  conn_->run("BEGIN");
  try {
    conn_->run("SELECT pg_advisory_xact_lock(7415003)");
    // No collector writes days meanwhile (their ingest waits for the commit).
    conn_->run("LOCK TABLE daily, daily_hosts, sensor_days IN EXCLUSIVE MODE");
    const pg::Result again = conn_->exec("SELECT value FROM teiten_meta WHERE key = 'time_zone'");
    if (!again.rows() || again.bytes(0, 0) != time_zone_) {
      conn_->run(
          "DELETE FROM daily; DELETE FROM daily_hosts; DELETE FROM sensor_days; "
          "DELETE FROM day_summaries; DELETE FROM day_totals; DELETE FROM day_hosts; "
          "DELETE FROM day_sensor_totals");
      // The daily partitions of every month the hourly rollups hold.
      const pg::Result range = conn_->exec("SELECT MIN(hour), MAX(hour) FROM hourly");
      if (!range.null(0, 0)) {
        for (std::int64_t m = month_start(range.i64(0, 0) - 86400); m <= range.i64(0, 1) + 86400;
             m = next_month(m))
          create_partitions(m);
      }
      std::map<DayKey, Delta> days;
      std::string data, hosts_data, scratch;
      auto flush = [&] {
        for (const auto& [k, d] : days) {
          copy_delta(data, k, d, scratch, Holds::counts);
          if (!d.hosts.empty()) copy_delta(hosts_data, k, d, scratch, Holds::hosts);
        }
        days.clear();
      };
      std::string sensor;
      conn_->stream(
          "SELECT " + std::string{kHourlyKey} +
              ", packets, bytes, hosts FROM hourly ORDER BY sensor",
          {}, [&](const pg::Result& r, int i) {
            if (r.bytes(i, 0) != sensor) {
              flush();
              sensor = std::string{r.bytes(i, 0)};
            }
            Delta& d = days[{local_day(r.i64(i, 1)), sensor, std::string{r.bytes(i, 2)},
                             r.i64(i, 3), std::string{r.bytes(i, 4)}, std::string{r.bytes(i, 5)}}];
            d.packets += static_cast<std::uint64_t>(r.i64(i, 7));
            d.bytes += static_cast<std::uint64_t>(r.i64(i, 8));
            if (!r.null(i, 9)) {
              std::string why;
              const auto s = sketch::HostSketch::decode(r.bytes(i, 9), &why);
              if (!s) throw std::runtime_error("stored host sketch in hourly: " + why);
              d.hosts.merge(*s);
            }
          });
      flush();
      if (!data.empty()) conn_->copy_in("COPY daily FROM STDIN", data);
      if (!hosts_data.empty()) conn_->copy_in("COPY daily_hosts FROM STDIN", hosts_data);
      std::map<std::pair<std::string, std::int64_t>, DayCover> cover;
      conn_->stream(
          "SELECT sensor, start, width_s, observed_packets, ring_drops + kernel_drops + "
          "spool_dropped FROM buckets",
          {}, [&](const pg::Result& r, int i) {
            const std::int64_t start = r.i64(i, 1), width = r.i64(i, 2);
            DayCover& c = cover[{std::string{r.bytes(i, 0)}, local_day(start)}];
            c.covered_s += width;
            c.buckets += 1;
            c.observed += static_cast<std::uint64_t>(r.i64(i, 3));
            c.lost += static_cast<std::uint64_t>(r.i64(i, 4));
            c.last_end = std::max(c.last_end, start + width);
          });
      data.clear();
      for (const auto& [k, c] : cover) {
        pg::copy_text(data, k.first);
        for (const std::int64_t v :
             {k.second, c.covered_s, c.buckets, static_cast<std::int64_t>(c.observed),
              static_cast<std::int64_t>(c.lost), c.last_end}) {
          data += '\t';
          pg::copy_int(data, v);
        }
        data += '\n';
      }
      if (!data.empty()) conn_->copy_in("COPY sensor_days FROM STDIN", data);
      conn_->exec(
          "INSERT INTO teiten_meta (key, value) VALUES ('time_zone', $1) ON CONFLICT (key) DO "
          "UPDATE SET value = excluded.value",
          {time_zone_});
    }
    conn_->run("COMMIT");
  } catch (...) {
    try {
      conn_->run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
}

std::vector<IngestResult> PostgresStore::ingest(const std::vector<bucket::SealedBucket>& batch) {
  if (batch.empty()) return {};
  if (mode_ == OpenMode::read_only) throw std::logic_error("ingest on a read-only store");
  // A deadlock or serialization failure (two collectors on the same rows) rolls back the
  // whole transaction: run it again, a few times.
  for (int attempt = 1;; ++attempt) {
    try {
      usable();
      return ingest_once(batch);
    } catch (const pg::Error& e) {
      // 23514: a month's partition another collector's retention dropped since this one
      // last looked; look again. A lost connection (the server restarted): connect again
      // and run the batch again (if its commit did reach the server, its buckets are
      // found stored and acknowledged as duplicates).
      if (e.sqlstate == "23514") months_.clear();
      const bool again = e.retryable() || e.sqlstate == "23514" || !conn_->ok();
      if (!again || attempt == 5) throw;
    }
  }
}

std::vector<IngestResult> PostgresStore::ingest_once(
    const std::vector<bucket::SealedBucket>& batch) {
  std::int64_t lo = batch[0].start, hi = batch[0].start;
  for (const auto& b : batch) {
    lo = std::min(lo, b.start);
    hi = std::max(hi, b.start);
  }
  // A bucket's local day may fall in the month before or after its UTC one.
  ensure_partitions(lo - 86400, hi + 86400 + 1);
  pg::Columns records = bucket_columns();
  for (const auto& b : batch) {
    const auto u = [](std::uint64_t v) { return static_cast<std::int64_t>(v); };
    add_bucket(
        records,
        BucketFields{b.sensor_id, b.boot_id, u(b.seq), b.start, std::int64_t{b.width_s},
                     u(b.observed_packets()), u(b.observed_bytes()), u(b.not_for_sensor),
                     u(b.late_packets), u(b.loss.ring_drops), u(b.loss.kernel_drops),
                     u(b.loss.interface_drops), u(b.loss.malformed_total()), malformed_json(b.loss),
                     u(b.loss.overflow_packets), u(b.loss.overflow_bytes),
                     provenance_json(b.provenance), u(b.loss.spool_dropped), u(b.self_traffic)});
  }
  pg::Conn& c = *conn_;
  c.run("BEGIN");
  try {
    auto new_ids = insert_buckets(c, records);
    std::vector<IngestResult> out;
    // The rollup deltas are summed under integer keys (the sensor's place in the batch,
    // the hour or day, the packed key; a row without a port packed with port 0, as it
    // is stored as -1 either way): a batch's 5,000 rows are looked up without comparing
    // strings. The strings are made once per distinct key, below.
    std::vector<std::string_view> sensors;
    using IntKey = std::tuple<std::size_t, std::int64_t, std::uint64_t>;
    std::map<IntKey, Delta> hours_by, days_by;
    std::map<std::pair<std::string, std::int64_t>, DayCover> cover;
    std::string rows, hosts, country;
    detail_block::Writer block;
    for (const auto& b : batch) {
      const auto it = new_ids.find({b.sensor_id, b.boot_id, static_cast<std::int64_t>(b.seq)});
      if (it == new_ids.end() || it->second < 0) {  // stored before, or twice in this batch
        out.push_back(IngestResult::duplicate);
        continue;
      }
      const std::int64_t id = it->second;
      it->second = -1;
      out.push_back(IngestResult::stored);
      const std::int64_t hour = hour_of(b.start), day = local_day(b.start);
      DayCover& cv = cover[{b.sensor_id, day}];
      cv.covered_s += b.width_s;
      cv.buckets += 1;
      cv.observed += b.observed_packets();
      cv.lost += lost_packets(b);
      cv.last_end = std::max(cv.last_end, b.start + std::int64_t{b.width_s});
      const std::size_t sensor = static_cast<std::size_t>(
          std::find(sensors.begin(), sensors.end(), b.sensor_id) - sensors.begin());
      if (sensor == sensors.size()) sensors.push_back(b.sensor_id);
      for (const auto& r : b.rows) {
        const std::int64_t port = r.key.has_port ? std::int64_t{r.key.port} : -1;
        country = classify::country_to_string(r.key.country);
        hosts = r.hosts.empty() ? std::string{} : r.hosts.encode();
        block.add({to_string(r.key.proto), port, country, to_string(r.key.fingerprint),
                   to_string(r.key.kind), r.packets, r.bytes, hosts});
        classify::Key k = r.key;
        if (!k.has_port) k.port = 0;
        const std::uint64_t hour_key = k.pack();
        k.kind = classify::Kind::other;  // the daily rollups have no kind
        for (Delta* d : {&hours_by[{sensor, hour, hour_key}], &days_by[{sensor, day, k.pack()}]}) {
          d->packets += r.packets;
          d->bytes += r.bytes;
          if (!r.hosts.empty()) d->hosts.merge(r.hosts);
        }
      }
      if (block.rows()) copy_detail(rows, id, b.start, b.sensor_id, block.finish());
    }
    std::map<HourKey, Delta> hours;
    for (auto& [ik, d] : hours_by) {
      const auto [sensor, hour, packed] = ik;
      const classify::Key k = classify::Key::unpack(packed);
      hours.emplace(
          HourKey{std::string{sensors[sensor]}, hour, std::string{to_string(k.proto)},
                  k.has_port ? std::int64_t{k.port} : -1, classify::country_to_string(k.country),
                  std::string{to_string(k.fingerprint)}, std::string{to_string(k.kind)}},
          std::move(d));
    }
    std::map<DayKey, Delta> days;
    for (auto& [ik, d] : days_by) {
      const auto [sensor, day, packed] = ik;
      const classify::Key k = classify::Key::unpack(packed);
      days.emplace(
          DayKey{day, std::string{sensors[sensor]}, std::string{to_string(k.proto)},
                 k.has_port ? std::int64_t{k.port} : -1, classify::country_to_string(k.country),
                 std::string{to_string(k.fingerprint)}},
          std::move(d));
    }
    if (!rows.empty()) c.copy_in("COPY bucket_detail FROM STDIN", rows);
    upsert_rollup(c, "hourly", kHourlyKey, hours, &hour_key_of);
    upsert_rollup(c, "daily", kDailyKey, days, &day_key_of, Holds::counts);
    upsert_rollup(c, "daily_hosts", kDailyKey, days, &day_key_of, Holds::hosts);
    if (!cover.empty()) {
      pg::Columns days_cols({"text", "bigint", "bigint", "bigint", "bigint", "bigint", "bigint"});
      for (const auto& [k, cv] : cover) {
        days_cols.text(k.first);
        for (const std::int64_t v :
             {k.second, cv.covered_s, cv.buckets, static_cast<std::int64_t>(cv.observed),
              static_cast<std::int64_t>(cv.lost), cv.last_end})
          days_cols.integer(v);
      }
      constexpr const char* kDayCols =
          "sensor, day, covered_s, buckets, observed_packets, lost_packets, last_end";
      c.exec(std::string{"INSERT INTO sensor_days ("} + kDayCols + ") SELECT * FROM " +
                 days_cols.unnest() + " AS s(" + kDayCols +
                 ") ORDER BY sensor, day "
                 "ON CONFLICT (sensor, day) DO UPDATE SET covered_s = sensor_days.covered_s + "
                 "excluded.covered_s, buckets = sensor_days.buckets + excluded.buckets, "
                 "observed_packets = sensor_days.observed_packets + excluded.observed_packets, "
                 "lost_packets = sensor_days.lost_packets + excluded.lost_packets, "
                 "last_end = GREATEST(sensor_days.last_end, excluded.last_end)",
             days_cols.params());
    }
    c.run("COMMIT");
    return out;
  } catch (...) {
    try {
      c.run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
}

namespace {

// Appends " AND <column> = ANY($n)" for the query's sensors, with the parameter.
void sensor_filter(std::string& sql, pg::Params& params, const std::string& column,
                   const std::vector<std::string>& sensors) {
  if (sensors.empty()) return;
  params.emplace_back(text_array(sensors));
  sql +=
      " AND " + column + " = ANY($" + str(static_cast<std::int64_t>(params.size())) + "::text[])";
}

}  // namespace

bool PostgresStore::detail_pruned(std::int64_t from, std::int64_t to,
                                  const std::vector<std::string>& sensors) {
  alive();
  pg::Params p{str(from), str(to)};
  std::string sql =
      "SELECT EXISTS (SELECT 1 FROM buckets WHERE start >= $1 AND start < $2 AND detail_pruned";
  sensor_filter(sql, p, "sensor", sensors);
  return conn_->exec(sql + ")", p).i64(0, 0) != 0;
}

std::int64_t PostgresStore::hourly_pruned_before() {
  alive();
  const pg::Result r =
      conn_->exec("SELECT value FROM teiten_meta WHERE key = 'hourly_pruned_before'");
  return r.rows() ? std::stoll(std::string{r.bytes(0, 0)}) : 0;
}

std::uint64_t PostgresStore::prune_hourly(std::int64_t cutoff) {
  usable();
  conn_->run("BEGIN");
  try {
    // Several collectors prune on the same schedule: one at a time, the others skip.
    if (!conn_->exec("SELECT pg_try_advisory_xact_lock(7415004)").i64(0, 0)) {
      conn_->run("ROLLBACK");
      return 0;
    }
    // Dropping a partition locks its parent: give up (until the next pass) rather than
    // queue behind a long report and hold up every collector's ingest behind it.
    conn_->run("SET LOCAL lock_timeout = '5s'");
    // Whole months before the cutoff go as partitions; the rest row by row.
    std::uint64_t n = 0;
    for (const auto& [name, start] : partitions_of("hourly")) {
      if (next_month(start) > cutoff) continue;
      n += static_cast<std::uint64_t>(conn_->exec("SELECT COUNT(*) FROM " + name).i64(0, 0));
      conn_->run("DROP TABLE " + name);
    }
    const pg::Result del = conn_->exec(
        "WITH d AS (DELETE FROM hourly WHERE hour < $1 RETURNING 1) SELECT COUNT(*) FROM d",
        {str(cutoff)});
    n += static_cast<std::uint64_t>(del.i64(0, 0));
    conn_->exec(
        "INSERT INTO teiten_meta (key, value) VALUES ('hourly_pruned_before', $1) ON CONFLICT "
        "(key) DO UPDATE SET value = GREATEST(teiten_meta.value::bigint, "
        "excluded.value::bigint)::text",
        {str(cutoff)});
    conn_->run("COMMIT");
    months_.clear();  // a late bucket re-creates a dropped month's partitions
    return n;
  } catch (...) {
    try {
      conn_->run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
}

namespace {

// A query of the per-bucket detail: the range's blocks are read in turn (a cursor, never
// the whole range at once) and their rows grouped here, ordered as the rollup queries'
// ORDER BY orders theirs: packets descending, then the group's values (ports as numbers,
// texts bytewise).
std::vector<QueryRow> query_detail(pg::Conn& conn, const Query& q) {
  pg::Params p{str(q.from), str(q.to)};
  std::string sql = "SELECT sensor, rows FROM bucket_detail WHERE start >= $1 AND start < $2";
  sensor_filter(sql, p, "sensor", q.sensors);
  enum class Dim { sensor, proto, port, country, fingerprint, kind };
  std::vector<Dim> dims;
  for (const auto& d : q.group_by) {
    dims.push_back(d == "sensor"        ? Dim::sensor
                   : d == "proto"       ? Dim::proto
                   : d == "port"        ? Dim::port
                   : d == "country"     ? Dim::country
                   : d == "fingerprint" ? Dim::fingerprint
                   : d == "kind"        ? Dim::kind
                                        : throw std::invalid_argument("unknown dimension " + d));
  }
  struct Sums {
    std::uint64_t packets = 0, bytes = 0;
  };
  std::map<std::vector<std::string>, Sums> groups;
  std::vector<std::string> key(dims.size());
  const auto is = [](const std::optional<std::string>& want, std::string_view v) {
    return !want || *want == v;
  };
  conn.stream(sql, p, [&](const pg::Result& r, int i) {
    const std::string_view sensor = r.bytes(i, 0);
    detail_block::read(r.bytes(i, 1), [&](const detail_block::Row& row) {
      if (!is(q.proto, row.proto) || (q.port && *q.port != row.port) ||
          !is(q.country, row.country) || !is(q.fingerprint, row.fingerprint) ||
          !is(q.kind, row.kind))
        return;
      for (std::size_t d = 0; d < dims.size(); ++d) {
        switch (dims[d]) {
          case Dim::sensor:
            key[d].assign(sensor);
            break;
          case Dim::proto:
            key[d].assign(row.proto);
            break;
          case Dim::port:
            key[d] = str(row.port);
            break;
          case Dim::country:
            key[d].assign(row.country);
            break;
          case Dim::fingerprint:
            key[d].assign(row.fingerprint);
            break;
          case Dim::kind:
            key[d].assign(row.kind);
            break;
        }
      }
      auto it = groups.find(key);
      if (it == groups.end()) it = groups.emplace(key, Sums{}).first;
      it->second.packets += row.packets;
      it->second.bytes += row.bytes;
    });
  });
  std::vector<QueryRow> out;
  out.reserve(groups.size());
  for (auto& [k, sums] : groups) out.push_back(QueryRow{k, sums.packets, sums.bytes});
  const auto port_less = [](const std::string& a, const std::string& b) {
    return std::stoll(a) < std::stoll(b);
  };
  std::sort(out.begin(), out.end(), [&](const QueryRow& a, const QueryRow& b) {
    if (a.packets != b.packets) return a.packets > b.packets;
    for (std::size_t d = 0; d < dims.size(); ++d) {
      if (a.group[d] == b.group[d]) continue;
      return dims[d] == Dim::port ? port_less(a.group[d], b.group[d]) : a.group[d] < b.group[d];
    }
    return false;
  });
  return out;
}

}  // namespace

std::vector<QueryRow> PostgresStore::query_tier(const Query& q, Tier tier) {
  alive();
  if (tier == Tier::detail) return query_detail(*conn_, q);
  std::string select, group;
  for (const auto& d : q.group_by) {
    select += "r." + d + ", ";
    group += (group.empty() ? "" : ", ") + ("r." + d);
  }
  pg::Params p{str(q.from), str(q.to)};
  std::string sql =
      "SELECT " + select + "SUM(r.packets)::bigint, SUM(r.bytes)::bigint FROM " +
      (tier == Tier::daily ? daily_source(q, "$1", "$2")
                           : std::string{"hourly r WHERE r.hour >= $1 AND r.hour < $2"});
  sensor_filter(sql, p, "r.sensor", q.sensors);
  const auto filter = [&](const char* col, const std::optional<std::string>& v) {
    if (!v) return;
    p.emplace_back(*v);
    sql += std::string{" AND r."} + col + " = $" + str(static_cast<std::int64_t>(p.size()));
  };
  filter("proto", q.proto);
  if (q.port) {
    p.emplace_back(str(*q.port));
    sql += " AND r.port = $" + str(static_cast<std::int64_t>(p.size())) + "::integer";
  }
  filter("country", q.country);
  filter("fingerprint", q.fingerprint);
  filter("kind", q.kind);
  if (!group.empty()) sql += " GROUP BY " + group;
  sql += " ORDER BY SUM(r.packets) DESC";
  if (!group.empty()) sql += ", " + group;
  std::vector<QueryRow> out;
  const int n = static_cast<int>(q.group_by.size());
  // One result, not a cursor: PostgreSQL plans no parallel aggregation for a cursor, and
  // the answer is a list of groups (the API returns it whole anyway).
  const pg::Result r = conn_->exec(sql, p);
  for (int i = 0; i < r.rows(); ++i) {
    if (r.null(i, n)) continue;  // no rows matched
    QueryRow row;
    for (int c = 0; c < n; ++c)
      row.group.push_back(q.group_by[static_cast<std::size_t>(c)] == "port"
                              ? str(r.i64(i, c))
                              : std::string{r.bytes(i, c)});
    row.packets = static_cast<std::uint64_t>(r.i64(i, n));
    row.bytes = static_cast<std::uint64_t>(r.i64(i, n + 1));
    out.push_back(std::move(row));
  }
  return out;
}

Accounting PostgresStore::accounting(const Query& q) {
  alive();
  pg::Params p{str(q.from), str(q.to)};
  std::string sql =
      "SELECT COUNT(*), COALESCE(SUM(observed_packets), 0)::bigint, "
      "COALESCE(SUM(not_for_sensor), 0)::bigint, COALESCE(SUM(malformed), 0)::bigint, "
      "COALESCE(SUM(ring_drops), 0)::bigint, COALESCE(SUM(kernel_drops), 0)::bigint, "
      "COALESCE(SUM(interface_drops), 0)::bigint, COALESCE(SUM(overflow_packets), 0)::bigint, "
      "COALESCE(SUM(spool_dropped), 0)::bigint, COALESCE(SUM(self_traffic), 0)::bigint "
      "FROM buckets WHERE start >= $1 AND start < $2";
  sensor_filter(sql, p, "sensor", q.sensors);
  const pg::Result r = conn_->exec(sql, p);
  const auto col = [&](int i) { return static_cast<std::uint64_t>(r.i64(0, i)); };
  Accounting a;
  a.buckets = col(0);
  a.observed_packets = col(1);
  a.not_for_sensor = col(2);
  a.malformed = col(3);
  a.ring_drops = col(4);
  a.kernel_drops = col(5);
  a.interface_drops = col(6);
  a.overflow_packets = col(7);
  a.spool_dropped = col(8);
  a.self_traffic = col(9);
  return a;
}

std::uint64_t PostgresStore::prune_detail(std::int64_t cutoff) {
  usable();
  conn_->run("BEGIN");
  try {
    // Several collectors prune on the same schedule: one at a time, the others skip.
    if (!conn_->exec("SELECT pg_try_advisory_xact_lock(7415004)").i64(0, 0)) {
      conn_->run("ROLLBACK");
      return 0;
    }
    // Dropping a partition locks its parent: give up (until the next pass) rather than
    // queue behind a long report and hold up every collector's ingest behind it.
    conn_->run("SET LOCAL lock_timeout = '5s'");
    const pg::Result marked = conn_->exec(
        "WITH m AS (UPDATE buckets SET detail_pruned = true WHERE start < $1 AND NOT "
        "detail_pruned RETURNING 1) SELECT COUNT(*) FROM m",
        {str(cutoff)});
    // Whole months before the cutoff go as partitions; the rest row by row.
    const pg::Result parts = conn_->exec(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'bucket_detail'::regclass");
    for (int i = 0; i < parts.rows(); ++i) {
      const std::string name{parts.bytes(i, 0)};
      int y = 0;
      unsigned m = 0;
      if (std::sscanf(name.c_str(), "bucket_detail_p%4d%2u", &y, &m) != 2) continue;
      const std::int64_t start =
          date::sys_seconds{date::sys_days{date::year{y} / date::month{m} / 1}}
              .time_since_epoch()
              .count();
      if (next_month(start) <= cutoff) {
        conn_->run("DROP TABLE " + name);
        months_.erase(start);
      }
    }
    conn_->exec("DELETE FROM bucket_detail WHERE start < $1", {str(cutoff)});
    // A late bucket committed while this ran (after the marking's snapshot) lost its
    // detail with the partition: mark it too.
    conn_->exec("UPDATE buckets SET detail_pruned = true WHERE start < $1 AND NOT detail_pruned",
                {str(cutoff)});
    conn_->run("COMMIT");
    return static_cast<std::uint64_t>(marked.i64(0, 0));
  } catch (...) {
    try {
      conn_->run("ROLLBACK");
    } catch (const std::exception&) {
    }
    throw;
  }
}

std::vector<std::pair<std::string, std::int64_t>> PostgresStore::partitions_of(
    const std::string& table) {
  const pg::Result parts = conn_->exec(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
      "WHERE i.inhparent = $1::regclass",
      {table});
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (int i = 0; i < parts.rows(); ++i) {
    const std::string name{parts.bytes(i, 0)};
    int y = 0;
    unsigned m = 0;
    if (std::sscanf(name.c_str(), (table + "_p%4d%2u").c_str(), &y, &m) != 2) continue;
    out.emplace_back(name, date::sys_seconds{date::sys_days{date::year{y} / date::month{m} / 1}}
                               .time_since_epoch()
                               .count());
  }
  return out;
}

void PostgresStore::daily_sums(const DailySumsQuery& q,
                               const std::function<void(const DailySums&)>& out) {
  alive();
  // Summed by the server (in parallel, partition-pruned to the range's months): a few
  // thousand sums cross the connection instead of the quarter's millions of rows. Days
  // with a current summary are read from it: a hundredth of the rows.
  const DayRuns runs =
      day_runs_of(day_states(q.day_from, q.day_to), q.day_from, q.day_to, q.sensors.empty());
  const std::optional<std::string> sensors = sensors_param(q.sensors);
  const auto rollups = [&](const std::string& columns, int list) {
    const std::string s = "$" + std::to_string(list) + "::text[]";
    return "SELECT " + columns + " FROM daily WHERE " + day_runs_sql(runs.rollups) + " AND (" + s +
           " IS NULL OR sensor = ANY(" + s + "))";
  };
  const pg::Result days = conn_->exec(
      "SELECT day, proto, port, SUM(packets)::bigint, "
      "COALESCE(SUM(packets) FILTER (WHERE fingerprint = $1), 0)::bigint, "
      "COALESCE(SUM(packets) FILTER (WHERE country = $2), 0)::bigint, "
      "COALESCE(SUM(packets) FILTER (WHERE country = $2 AND fingerprint = $1), 0)::bigint FROM (" +
          rollups("day, proto, port, country, fingerprint, packets", 3) +
          " UNION ALL SELECT day, proto, port, country, fingerprint, packets FROM day_totals "
          "WHERE " +
          day_runs_sql(runs.summarized) + ") x GROUP BY day, proto, port",
      {q.fingerprint, q.country, sensors});
  for (int i = 0; i < days.rows(); ++i) {
    out(DailySums{{},
                  days.i64(i, 0),
                  days.bytes(i, 1),
                  days.i64(i, 2),
                  static_cast<std::uint64_t>(days.i64(i, 3)),
                  static_cast<std::uint64_t>(days.i64(i, 4)),
                  static_cast<std::uint64_t>(days.i64(i, 5)),
                  static_cast<std::uint64_t>(days.i64(i, 6))});
  }
  const pg::Result per_sensor = conn_->exec(
      "SELECT sensor, proto, port, SUM(packets)::bigint FROM (" +
          rollups("sensor, proto, port, packets", 1) +
          " UNION ALL SELECT sensor, proto, port, packets FROM day_sensor_totals WHERE " +
          day_runs_sql(runs.summarized) + ") x GROUP BY sensor, proto, port",
      {sensors});
  for (int i = 0; i < per_sensor.rows(); ++i) {
    out(DailySums{per_sensor.bytes(i, 0), -1, per_sensor.bytes(i, 1), per_sensor.i64(i, 2),
                  static_cast<std::uint64_t>(per_sensor.i64(i, 3)), 0, 0, 0});
  }
}

void PostgresStore::daily_breakdown(const DailyBreakdownQuery& q,
                                    const std::function<void(const DailyBreakdown&)>& out) {
  alive();
  check_breakdown(q);
  // Summed by the server, as daily_sums: the four groupings of one pass (all, by
  // fingerprint, by country, by both); rows of other countries and unfingerprinted
  // packets only in the sums that do not name them.
  const DayRuns runs =
      day_runs_of(day_states(q.day_from, q.day_to), q.day_from, q.day_to, q.sensors.empty());
  const pg::Result r = conn_->exec(
      "SELECT day, proto, port, cc, fp, SUM(packets)::bigint FROM (SELECT day, proto, port, "
      "CASE WHEN country = ANY($1::text[]) THEN country END AS cc, "
      "CASE WHEN fingerprint IN ('mirai', 'masscan', 'zmap') THEN fingerprint END AS fp, "
      "packets FROM (SELECT day, proto, port, country, fingerprint, packets FROM daily WHERE " +
          day_runs_sql(runs.rollups) +
          " AND ($2::text[] IS NULL OR sensor = ANY($2::text[])) UNION ALL SELECT day, proto, "
          "port, country, fingerprint, packets FROM day_totals WHERE " +
          day_runs_sql(runs.summarized) +
          ") y) x GROUP BY GROUPING SETS ((day, proto, port), (day, proto, port, fp), "
          "(day, proto, port, cc), (day, proto, port, cc, fp)) "
          "HAVING NOT ((GROUPING(cc) = 0 AND cc IS NULL) OR (GROUPING(fp) = 0 AND fp IS NULL))",
      {text_array(q.countries), sensors_param(q.sensors)});
  for (int i = 0; i < r.rows(); ++i)
    out(DailyBreakdown{r.i64(i, 0), r.bytes(i, 1), r.i64(i, 2), r.bytes(i, 3), r.bytes(i, 4),
                       static_cast<std::uint64_t>(r.i64(i, 5))});
}

void PostgresStore::scan_daily_hosts(std::int64_t day_from, std::int64_t day_to,
                                     const std::string& country, const std::string& proto,
                                     std::optional<std::int64_t> port,
                                     const std::vector<std::string>& sensors,
                                     const std::function<void(const DailyHosts&)>& row) {
  alive();
  const DayRuns runs = day_runs_of(day_states(day_from, day_to), day_from, day_to, sensors.empty());
  pg::Params p{country, proto, sensors_param(sensors)};
  std::string by_port;
  if (port) {
    p.emplace_back(str(*port));
    by_port = " AND port = $4::integer";
  }
  conn_->stream(
      "SELECT fingerprint, hosts FROM daily_hosts WHERE country = $1 AND proto = $2 AND " +
          day_runs_sql(runs.rollups) + " AND ($3::text[] IS NULL OR sensor = ANY($3::text[]))" +
          by_port +
          " UNION ALL SELECT fingerprint, hosts FROM day_hosts WHERE country = $1 AND proto = $2 "
          "AND " +
          day_runs_sql(runs.summarized) + by_port,
      p, [&](const pg::Result& r, int i) {
        row(DailyHosts{r.bytes(i, 0), r.bytes(i, 1)});
      });
}

std::vector<std::pair<std::int64_t, bool>> PostgresStore::day_states(std::int64_t day_from,
                                                                     std::int64_t day_to) {
  alive();
  const pg::Result r = conn_->exec(
      "SELECT c.day, s.buckets IS NOT DISTINCT FROM c.b FROM (SELECT day, SUM(buckets)::bigint "
      "AS b FROM sensor_days WHERE day >= $1 AND day <= $2 GROUP BY day) c LEFT JOIN "
      "day_summaries s ON s.day = c.day ORDER BY c.day",
      {str(day_from), str(day_to)});
  std::vector<std::pair<std::int64_t, bool>> days;
  for (int i = 0; i < r.rows(); ++i) days.emplace_back(r.i64(i, 0), r.i64(i, 1) != 0);
  return days;
}

std::size_t PostgresStore::summarize_days(std::size_t max_days) {
  alive();
  const pg::Result stale = conn_->exec(
      "SELECT c.day FROM (SELECT day, SUM(buckets)::bigint AS b FROM sensor_days GROUP BY day) c "
      "LEFT JOIN day_summaries s ON s.day = c.day WHERE s.buckets IS DISTINCT FROM c.b "
      "ORDER BY c.day LIMIT $1",
      {str(static_cast<std::int64_t>(max_days))});
  std::size_t done = 0;
  for (int i = 0; i < stale.rows(); ++i) {
    const std::string day = str(stale.i64(i, 0));
    conn_->run("BEGIN");
    try {
      // One collector at a time: a day's summary rows are deleted and written again. Not
      // beside a re-cut of the days (its lock, shared): that drops the summaries.
      if (conn_->exec("SELECT pg_try_advisory_xact_lock(7415005)").i64(0, 0) == 0) {
        conn_->run("ROLLBACK");
        return done;
      }
      conn_->run("SELECT pg_advisory_xact_lock_shared(7415003)");
      // The count first: each statement after it sees at least the buckets it counts (a
      // bucket's rows and its count commit together). Should one see more, the day's
      // count is above the summary's at once, and the next pass makes it again.
      const std::int64_t buckets =
          conn_
              ->exec("SELECT COALESCE(SUM(buckets), 0)::bigint FROM sensor_days WHERE day = $1",
                     {day})
              .i64(0, 0);
      conn_->exec("DELETE FROM day_totals WHERE day = $1", {day});
      conn_->exec("DELETE FROM day_hosts WHERE day = $1", {day});
      conn_->exec("DELETE FROM day_sensor_totals WHERE day = $1", {day});
      conn_->exec(
          "INSERT INTO day_sensor_totals (day, sensor, proto, port, packets, bytes) SELECT day, "
          "sensor, proto, port, SUM(packets), SUM(bytes) FROM daily WHERE day = $1 "
          "GROUP BY day, sensor, proto, port",
          {day});
      // Per destination and origin, sketches merged here (PostgreSQL has no function for
      // them).
      struct Total {
        std::int64_t packets = 0, bytes = 0;
        sketch::HostSketch hosts;
      };
      std::map<std::tuple<std::string, std::int64_t, std::string, std::string>, Total> totals;
      const auto key = [](const pg::Result& r, int k) {
        return std::tuple{std::string{r.bytes(k, 0)}, r.i64(k, 1), std::string{r.bytes(k, 2)},
                          std::string{r.bytes(k, 3)}};
      };
      conn_->stream(
          "SELECT proto, port, country, fingerprint, SUM(packets)::bigint, SUM(bytes)::bigint "
          "FROM daily WHERE day = $1 GROUP BY proto, port, country, fingerprint",
          {day}, [&](const pg::Result& r, int k) {
            Total& t = totals[key(r, k)];
            t.packets = r.i64(k, 4);
            t.bytes = r.i64(k, 5);
          });
      conn_->stream(
          "SELECT proto, port, country, fingerprint, hosts FROM daily_hosts WHERE day = $1", {day},
          [&](const pg::Result& r, int k) {
            std::string why;
            const auto h = sketch::HostSketch::decode(r.bytes(k, 4), &why);
            if (!h) throw std::runtime_error("stored host sketch: " + why);
            totals[key(r, k)].hosts.merge(*h);
          });
      std::string data, hosts;
      for (const auto& [k, t] : totals) {
        std::string fields = day;
        copy_sep(fields);
        pg::copy_text(fields, std::get<0>(k));
        copy_sep(fields);
        pg::copy_int(fields, std::get<1>(k));
        copy_sep(fields);
        pg::copy_text(fields, std::get<2>(k));
        copy_sep(fields);
        pg::copy_text(fields, std::get<3>(k));
        copy_sep(fields);
        data += fields;
        pg::copy_int(data, t.packets);
        copy_sep(data);
        pg::copy_int(data, t.bytes);
        data += '\n';
        if (t.hosts.empty()) continue;
        hosts += fields;
        pg::copy_bytea(hosts, t.hosts.encode());
        hosts += '\n';
      }
      if (!data.empty())
        conn_->copy_in(
            "COPY day_totals (day, proto, port, country, fingerprint, packets, bytes) FROM STDIN",
            data);
      if (!hosts.empty())
        conn_->copy_in("COPY day_hosts (day, proto, port, country, fingerprint, hosts) FROM STDIN",
                       hosts);
      conn_->exec(
          "INSERT INTO day_summaries (day, buckets) VALUES ($1, $2) ON CONFLICT (day) DO UPDATE "
          "SET buckets = excluded.buckets",
          {day, str(buckets)});
      conn_->run("COMMIT");
    } catch (...) {
      try {
        conn_->run("ROLLBACK");
      } catch (...) {
      }
      throw;
    }
    ++done;
  }
  return done;
}

std::vector<SensorDay> PostgresStore::sensor_days(std::int64_t day_from, std::int64_t day_to) {
  alive();
  const pg::Result r = conn_->exec(
      "SELECT sensor, day, covered_s, observed_packets FROM sensor_days WHERE day >= $1 AND day "
      "<= $2",
      {str(day_from), str(day_to)});
  std::vector<SensorDay> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({std::string{r.bytes(i, 0)}, r.i64(i, 1), r.i64(i, 2),
                   static_cast<std::uint64_t>(r.i64(i, 3))});
  return out;
}

std::vector<SensorTotals> PostgresStore::sensor_totals(std::int64_t day_from, std::int64_t day_to) {
  alive();
  const pg::Result r = conn_->exec(
      "SELECT sensor, MAX(last_end), "
      "COALESCE(SUM(CASE WHEN day >= $1 AND day <= $2 THEN LEAST(covered_s, 86400) ELSE 0 END), "
      "0)::bigint, "
      "COALESCE(SUM(CASE WHEN day >= $1 AND day <= $2 THEN observed_packets ELSE 0 END), "
      "0)::bigint, "
      "COALESCE(SUM(CASE WHEN day >= $1 AND day <= $2 THEN lost_packets ELSE 0 END), 0)::bigint "
      "FROM sensor_days GROUP BY sensor ORDER BY sensor",
      {str(day_from), str(day_to)});
  std::vector<SensorTotals> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({std::string{r.bytes(i, 0)}, r.i64(i, 1), r.i64(i, 2),
                   static_cast<std::uint64_t>(r.i64(i, 3)),
                   static_cast<std::uint64_t>(r.i64(i, 4))});
  return out;
}

std::optional<std::int64_t> PostgresStore::latest_day() {
  alive();
  const pg::Result r = conn_->exec("SELECT MAX(day) FROM sensor_days");
  if (r.null(0, 0)) return std::nullopt;
  return r.i64(0, 0);
}

std::vector<std::pair<std::string, std::uint64_t>> PostgresStore::bytes_per_tier() {
  alive();
  // Partitioned tables: the sum over their partitions (indexes and TOAST included).
  const auto size = [&](const char* table) {
    return static_cast<std::uint64_t>(
        conn_
            ->exec("SELECT pg_total_relation_size($1::regclass) + COALESCE((SELECT "
                   "SUM(pg_total_relation_size(relid)) FROM pg_partition_tree($1::regclass) "
                   "WHERE relid <> $1::regclass), 0)::bigint",
                   {std::string{table}})
            .i64(0, 0));
  };
  return {{"buckets", size("buckets") + size("sensor_days")},
          {"daily", size("daily") + size("daily_hosts") + size("day_summaries") +
                        size("day_totals") + size("day_hosts") + size("day_sensor_totals")},
          {"detail", size("bucket_detail")},
          {"hourly", size("hourly")}};
}

void PostgresStore::export_all(StoreSink&, std::int64_t&) {
  throw std::runtime_error("db copy reads a SQLite store (PostgreSQL is the target)");
}

bool PostgresStore::empty() {
  alive();
  return conn_->exec("SELECT NOT EXISTS (SELECT 1 FROM buckets)").i64(0, 0) != 0;
}

// db copy's loader: one transaction over everything; buckets are inserted in chunks (their
// ids are new), the other tables by COPY as they are.
class PostgresLoader final : public StoreLoader {
 public:
  explicit PostgresLoader(PostgresStore& store) : s_(store), c_(*store.conn_) {
    s_.usable();
    c_.run("BEGIN");
    // Nobody else writes while the copy runs: a collector started too early waits.
    c_.run("LOCK TABLE buckets IN EXCLUSIVE MODE");
    if (!c_.exec("SELECT NOT EXISTS (SELECT 1 FROM buckets)").i64(0, 0)) {
      rollback();
      throw std::runtime_error(s_.describe() + " already holds buckets");
    }
  }
  ~PostgresLoader() override {
    if (!done_) rollback();
  }
  void bucket(const BucketRecord& b) override {
    month(b.start);
    add_bucket(records_,
               BucketFields{b.sensor, b.boot_id, b.seq, b.start, b.width_s, b.observed_packets,
                            b.observed_bytes, b.not_for_sensor, b.late_packets, b.ring_drops,
                            b.kernel_drops, b.interface_drops, b.malformed, b.malformed_by_reason,
                            b.overflow_packets, b.overflow_bytes, b.provenance, b.spool_dropped,
                            b.self_traffic});
    chunk_.push_back(b);
    if (chunk_.size() == 2000) flush_buckets();
  }
  void hourly(const RollupRecord& r) override {
    flush_buckets();
    month(r.time);
    rollup_line(hourly_, r, true);
    if (hourly_.size() > (32u << 20)) flush(hourly_, "hourly");
  }
  void daily(const RollupRecord& r) override {
    flush_buckets();
    month(r.time * 86400);
    rollup_line(daily_, r, false);
    if (!r.hosts.empty()) {
      // daily_hosts: the key, then the sketch.
      pg::copy_int(daily_hosts_, r.time);
      for (const std::string* t : {&r.sensor, &r.proto}) {
        copy_sep(daily_hosts_);
        pg::copy_text(daily_hosts_, *t);
      }
      copy_sep(daily_hosts_);
      pg::copy_int(daily_hosts_, r.port);
      for (const std::string* t : {&r.country, &r.fingerprint}) {
        copy_sep(daily_hosts_);
        pg::copy_text(daily_hosts_, *t);
      }
      copy_sep(daily_hosts_);
      pg::copy_bytea(daily_hosts_, r.hosts);
      daily_hosts_ += '\n';
    }
    if (daily_.size() > (32u << 20)) flush(daily_, "daily");
    if (daily_hosts_.size() > (32u << 20)) flush(daily_hosts_, "daily_hosts");
  }
  void sensor_day(const SensorDayRecord& d) override {
    pg::copy_text(days_, d.sensor);
    for (const std::int64_t v :
         {d.day, d.covered_s, d.buckets, d.observed_packets, d.lost_packets, d.last_end}) {
      days_ += '\t';
      pg::copy_int(days_, v);
    }
    days_ += '\n';
  }
  void commit(std::int64_t hourly_pruned_from) override {
    flush_buckets();
    flush(hourly_, "hourly");
    flush(daily_, "daily");
    flush(daily_hosts_, "daily_hosts");
    flush(days_, "sensor_days");
    if (hourly_pruned_from > 0) {
      c_.exec(
          "INSERT INTO teiten_meta (key, value) VALUES ('hourly_pruned_before', $1) ON CONFLICT "
          "(key) DO UPDATE SET value = excluded.value",
          {str(hourly_pruned_from)});
    }
    c_.run("COMMIT");
    done_ = true;
  }

 private:
  void rollback() {
    try {
      c_.run("ROLLBACK");
    } catch (const std::exception&) {
    }
    done_ = true;
  }
  void month(std::int64_t t) {
    const std::int64_t m = month_start(t);
    if (months_.insert(m).second) s_.create_partitions(m);
  }
  // A line of hourly (sensor, hour, ..., kind, ...) or daily (day, sensor, ..., no kind).
  static void rollup_line(std::string& out, const RollupRecord& r, bool hourly) {
    if (hourly) {
      pg::copy_text(out, r.sensor);
      copy_sep(out);
      pg::copy_int(out, r.time);
    } else {
      pg::copy_int(out, r.time);
      copy_sep(out);
      pg::copy_text(out, r.sensor);
    }
    copy_sep(out);
    pg::copy_text(out, r.proto);
    copy_sep(out);
    pg::copy_int(out, r.port);
    copy_sep(out);
    pg::copy_text(out, r.country);
    copy_sep(out);
    pg::copy_text(out, r.fingerprint);
    if (hourly) {
      copy_sep(out);
      pg::copy_text(out, r.kind);
    }
    copy_sep(out);
    pg::copy_int(out, r.packets);
    copy_sep(out);
    pg::copy_int(out, r.bytes);
    if (hourly) {  // (the daily sketches go to daily_hosts)
      copy_sep(out);
      pg::copy_bytea(out, r.hosts);
    }
    out += '\n';
  }
  void flush(std::string& data, const char* table) {
    if (data.empty()) return;
    c_.copy_in(std::string{"COPY "} + table + " FROM STDIN", data);
    data.clear();
  }
  void flush_buckets() {
    if (chunk_.empty()) return;
    auto ids = insert_buckets(c_, records_);
    std::string rows;
    std::vector<std::string> pruned;
    for (const auto& b : chunk_) {
      const auto it = ids.find({b.sensor, b.boot_id, b.seq});
      if (it == ids.end())
        throw std::runtime_error("bucket " + b.sensor + "/" + b.boot_id + "/" +
                                 std::to_string(b.seq) + " is in the source twice");
      if (b.detail_pruned) pruned.push_back(str(it->second));
      if (b.rows.empty()) continue;
      for (const auto& r : b.rows) {
        block_.add({r.proto, r.port, r.country, r.fingerprint, r.kind,
                    static_cast<std::uint64_t>(r.packets), static_cast<std::uint64_t>(r.bytes),
                    r.hosts});
      }
      copy_detail(rows, it->second, b.start, b.sensor, block_.finish());
    }
    if (!rows.empty()) c_.copy_in("COPY bucket_detail FROM STDIN", rows);
    if (!pruned.empty()) {
      std::string list;
      for (const auto& id : pruned) list += (list.empty() ? "{" : ",") + id;
      c_.exec("UPDATE buckets SET detail_pruned = true WHERE id = ANY($1::bigint[])", {list + "}"});
    }
    chunk_.clear();
    records_ = bucket_columns();
  }
  PostgresStore& s_;
  pg::Conn& c_;
  bool done_ = false;
  std::set<std::int64_t> months_;
  std::vector<BucketRecord> chunk_;
  detail_block::Writer block_;
  pg::Columns records_ = bucket_columns();
  std::string hourly_, daily_, daily_hosts_, days_;
};

std::unique_ptr<StoreLoader> PostgresStore::bulk_loader() {
  return std::make_unique<PostgresLoader>(*this);
}

}  // namespace teiten::collector

#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace date {
class time_zone;
}

namespace teiten::collector {

/// The local calendar day (days since 1970-01-01) of UTC time `ts` in `zone`.
std::int64_t local_day_in(const date::time_zone* zone, std::int64_t ts);

/// Outcome of ingesting one bucket.
enum class IngestResult { stored, duplicate };

/// Filters and grouping of a totals query. Empty filters match everything.
struct Query {
  std::vector<std::string> sensors;
  std::int64_t from = 0;        ///< bucket start >= from (seconds since 1970)
  std::int64_t to = INT64_MAX;  ///< bucket start < to
  std::optional<std::string> proto, country, fingerprint, kind;
  std::optional<int> port;  ///< -1: rows without a port
  /// Dimensions to group by, any of: sensor, proto, port, country, fingerprint, kind.
  std::vector<std::string> group_by;
};

/// One result row: the group's dimension values (in group_by order) and its totals.
struct QueryRow {
  std::vector<std::string> group;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

/// Bucket-level accounting over a range (rows excluded): for reconciliation.
struct Accounting {
  std::uint64_t buckets = 0;
  std::uint64_t observed_packets = 0;
  std::uint64_t not_for_sensor = 0;
  std::uint64_t self_traffic = 0;
  std::uint64_t malformed = 0;
  std::uint64_t ring_drops = 0;
  std::uint64_t kernel_drops = 0;
  std::uint64_t interface_drops = 0;
  std::uint64_t overflow_packets = 0;
  std::uint64_t spool_dropped = 0;
};

/// The collector's SQLite store (WAL mode, synchronous=FULL: an acknowledged batch is on
/// disk). Ingest is idempotent on (sensor, boot id, seq). Per-bucket detail (rows) is kept
/// for `detail_retention_s`; hourly rollups per (sensor, hour, key) are kept for ever.
/// One Storage per thread (a SQLite connection is not shared).
class Storage {
 public:
  /// Opens or creates the database; days of the daily rollups are cut in `time_zone` (a tz
  /// database name; a changed zone re-cuts the days, except with `check_only`, which only
  /// opens). Throws std::runtime_error naming the file or the zone.
  explicit Storage(const std::string& path, const std::string& time_zone = "Asia/Tokyo",
                   bool check_only = false);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// Stores a batch in one transaction: every bucket whole, or none of them (on error,
  /// which throws). Returns, per bucket, whether it was new or already stored.
  std::vector<IngestResult> ingest(const std::vector<bucket::SealedBucket>& batch);

  /// Whether part of `q`'s range has had its detail pruned, so query() answers from the
  /// hourly rollups.
  bool needs_rollups(const Query& q);

  /// Totals of the rows matching `q`, grouped, largest first: from per-bucket detail, or
  /// from the hourly rollups (whole UTC hours starting in [from, to)) when part of the
  /// range is older than the detail retention.
  std::vector<QueryRow> query(const Query& q);

  /// Bucket-level totals over the sensors and range of `q` (other filters ignored).
  Accounting accounting(const Query& q);

  /// Deletes per-bucket detail rows of buckets that started before `cutoff` (rollups stay).
  /// Returns the number of buckets pruned.
  std::uint64_t prune_detail(std::int64_t cutoff);

  /// The reports' time zone, and its local day of a UTC time.
  const std::string& time_zone() const noexcept { return time_zone_; }
  std::int64_t local_day(std::int64_t ts) const;

  /// The latest local day any bucket started on (none: no bucket yet).
  std::optional<std::int64_t> latest_day();

  /// The connection, for the report queries (collector/report.cpp); same thread only.
  sqlite3* handle() const noexcept { return db_; }

 private:
  void exec(const char* sql);
  void rebuild_days_if_needed();
  sqlite3* db_ = nullptr;
  std::string path_;
  std::string time_zone_;
  const date::time_zone* zone_ = nullptr;
};

}  // namespace teiten::collector

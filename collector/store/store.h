// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace date {
class time_zone;
}

namespace teiten::collector {

/// The local calendar day (days since 1970-01-01) of UTC time `ts` in `zone`.
std::int64_t local_day_in(const date::time_zone* zone, std::int64_t ts);
/// The tz database zone of that name. Throws std::runtime_error naming it when unknown.
const date::time_zone* locate_time_zone(const std::string& name);

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

/// Throws std::invalid_argument unless every group_by dimension is one a query knows.
void check_dimensions(const Query& q);

/// Where a query is answered from (docs/scale.md, "Tiers"): per-bucket detail, hourly
/// rollups per (sensor, UTC hour, key) or daily rollups per (local day, sensor, key
/// without kind). A coarser tier gives the same totals when the range falls on its
/// boundaries, and reads far fewer rows.
enum class Tier { detail, hourly, daily };
std::string_view to_string(Tier t) noexcept;

/// One result row: the group's dimension values (in group_by order) and its totals.
struct QueryRow {
  std::vector<std::string> group;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const QueryRow&, const QueryRow&) = default;
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
  friend bool operator==(const Accounting&, const Accounting&) = default;
};

/// One row of the daily rollups (a local day of the reports' time zone).
/// The views are valid during the callback only.
struct DailyRow {
  std::int64_t day = 0;
  std::string_view sensor, proto;
  std::int64_t port = -1;  ///< -1: no port
  std::string_view country, fingerprint;
  std::uint64_t packets = 0;
};

/// What a report sums from the daily rollups of local days [day_from, day_to].
struct DailySumsQuery {
  std::int64_t day_from = 0, day_to = 0;
  std::string country;               ///< the report's country of origin
  std::string fingerprint;           ///< the report's fingerprint
  std::vector<std::string> sensors;  ///< none: every sensor
};

/// The daily rollups summed by destination: per local day (`sensor` empty) with the
/// packets from the query's country and with its fingerprint apart, or per sensor over
/// the whole range (`day` -1; only `all` set). The views are valid during the callback.
struct DailySums {
  std::string_view sensor;
  std::int64_t day = -1;
  std::string_view proto;
  std::int64_t port = -1;  ///< -1: no port
  std::uint64_t all = 0, fingerprinted = 0, country_all = 0, country_fingerprinted = 0;
};

/// What notable changes sum from the daily rollups of local days [day_from, day_to]: per
/// day and destination, from all source countries and from each of `countries`, in all
/// and by fingerprint.
struct DailyBreakdownQuery {
  std::int64_t day_from = 0, day_to = 0;
  std::vector<std::string> countries;  ///< examined one by one besides all of them
  std::vector<std::string> sensors;    ///< none: every sensor
};
/// The most countries a daily breakdown takes.
inline constexpr std::size_t kMaxBreakdownCountries = 63;
/// Throws std::invalid_argument for more than kMaxBreakdownCountries countries.
void check_breakdown(const DailyBreakdownQuery& q);

/// One sum of daily_breakdown(): `country` empty is all source countries, `fingerprint`
/// empty all packets (else mirai, masscan or zmap; unfingerprinted packets have no sum of
/// their own). The views are valid during the callback only.
struct DailyBreakdown {
  std::int64_t day = 0;
  std::string_view proto;
  std::int64_t port = -1;  ///< -1: no port
  std::string_view country, fingerprint;
  std::uint64_t packets = 0;
};

/// Sums DailyRows as daily_breakdown() answers (SQLite: the rows are read and summed here).
class BreakdownSummer {
 public:
  explicit BreakdownSummer(const DailyBreakdownQuery& q);
  /// A daily rollup row (sensor set, checked against the query's sensors; rows of one
  /// sensor in a run check it once) or a day summary row (sensor empty, always taken).
  void add(const DailyRow& r);
  void emit(const std::function<void(const DailyBreakdown&)>& out) const;

 private:
  const DailyBreakdownQuery& q_;
  std::vector<std::string> protos_;
  std::string last_sensor_;
  bool last_wanted_ = false;
  // (proto << 17 | port + 1) << 32 | day offset << 8 | country index << 2 | fingerprint.
  std::unordered_map<std::uint64_t, std::uint64_t> sums_;
};

/// Sums DailyRows as daily_sums() answers, for a backend that reads the rows itself
/// (integer keys, nothing allocated per row: millions of rows for a network's quarter).
class DailySummer {
 public:
  explicit DailySummer(const DailySumsQuery& q);
  /// Which sums a row goes to: a daily rollup row to both; a day summary row (sensor
  /// empty) to the per-day sums, a per-sensor summary row (country and fingerprint
  /// empty) to the per-sensor sums.
  enum class Part { both, day, sensor };
  void add(const DailyRow& r, Part part = Part::both);
  void emit(const std::function<void(const DailySums&)>& out) const;

 private:
  struct Sum {
    std::uint64_t all = 0, fp = 0, country_all = 0, country_fp = 0;
  };
  const DailySumsQuery& q_;
  std::vector<std::string> protos_, sensors_;
  std::vector<bool> sensor_wanted_;
  std::uint32_t last_sensor_ = UINT32_MAX;
  // (proto << 17 | port + 1) << 32 | day offset, and sensor << 32 | proto << 17 | port + 1.
  std::unordered_map<std::uint64_t, Sum> by_day_;
  std::unordered_map<std::uint64_t, std::uint64_t> by_sensor_;
};

/// The unique-source sketch of one daily row, or of one day's summary row (encoded,
/// docs/bucket-format.md).
struct DailyHosts {
  std::string_view fingerprint, hosts;
};

/// The days of a range that hold data, split by where a report reads them: the day
/// summaries (days summarized and unchanged since) or the daily rollups (the others), as
/// runs of days (a run may span days without data, never a day of the other kind).
struct DayRuns {
  std::vector<std::pair<std::int64_t, std::int64_t>> summarized, rollups;
};
/// Runs over [from, to] of (day, summary current) pairs given in day order; `summaries`
/// false: every day goes to the rollups. Days without coverage between those days, and
/// the one next to each end, go to the rollups too: a re-cut in a zone with a
/// half-hour offset can leave rollup rows on a day without coverage.
DayRuns day_runs_of(const std::vector<std::pair<std::int64_t, bool>>& days, std::int64_t from,
                    std::int64_t to, bool summaries = true);
/// "(day BETWEEN a AND b OR ...)" over the runs, "FALSE" for none: integers the store
/// made, never input.
std::string day_runs_sql(const std::vector<std::pair<std::int64_t, std::int64_t>>& runs,
                         const std::string& column = "day");

/// What one sensor covered on one local day.
struct SensorDay {
  std::string sensor;
  std::int64_t day = 0;
  std::int64_t covered_s = 0;
  std::uint64_t observed_packets = 0;
};

/// A sensor's health over a range of local days.
struct SensorTotals {
  std::string sensor;
  std::int64_t last_end = 0;   ///< end of its latest bucket ever received (UTC)
  std::int64_t covered_s = 0;  ///< in the range, each day counted at most 86,400 s
  std::uint64_t observed_packets = 0, lost_packets = 0;
};

/// A stored bucket record with its detail rows, as `teitenctl db copy` moves it.
struct BucketRecord {
  std::string sensor, boot_id;
  std::int64_t seq = 0, start = 0, width_s = 0;
  std::int64_t observed_packets = 0, observed_bytes = 0, not_for_sensor = 0, self_traffic = 0,
               late_packets = 0, ring_drops = 0, kernel_drops = 0, interface_drops = 0,
               spool_dropped = 0, malformed = 0, overflow_packets = 0, overflow_bytes = 0;
  std::string malformed_by_reason, provenance;
  bool detail_pruned = false;
  struct Row {
    std::string proto;
    std::int64_t port = -1;
    std::string country, fingerprint, kind;
    std::int64_t packets = 0, bytes = 0;
    std::string hosts;  ///< encoded sketch, "" for none
  };
  std::vector<Row> rows;
};

/// A stored rollup row: `time` is the UTC hour (hourly) or the local day (daily, whose
/// rows have no kind).
struct RollupRecord {
  std::int64_t time = 0;
  std::string sensor, proto;
  std::int64_t port = -1;
  std::string country, fingerprint, kind;
  std::int64_t packets = 0, bytes = 0;
  std::string hosts;
};

/// A stored coverage row (sensor_days).
struct SensorDayRecord {
  std::string sensor;
  std::int64_t day = 0, covered_s = 0, buckets = 0, observed_packets = 0, lost_packets = 0,
               last_end = 0;
};

/// Receives a store's whole content (Store::export_all), table by table.
class StoreSink {
 public:
  virtual ~StoreSink() = default;
  virtual void bucket(const BucketRecord& b) = 0;
  virtual void hourly(const RollupRecord& r) = 0;
  virtual void daily(const RollupRecord& r) = 0;
  virtual void sensor_day(const SensorDayRecord& d) = 0;
};

/// Loads exported rows into an empty store in one transaction (db copy): commit() makes
/// them visible; destroyed before that, nothing was loaded.
class StoreLoader : public StoreSink {
 public:
  /// Commits; `hourly_pruned_from` carries the source's pruning mark.
  virtual void commit(std::int64_t hourly_pruned_from) = 0;
};

/// What a copy moved.
struct CopyCounts {
  std::uint64_t buckets = 0, detail_rows = 0, hourly_rows = 0, daily_rows = 0, sensor_days = 0;
};

/// Where the collector keeps its buckets (storage: in the configuration).
struct StoreConfig {
  std::string backend = "sqlite";  ///< "sqlite" or "postgresql"
  std::string path;                ///< sqlite: the database file
  std::string conninfo;            ///< postgresql: a libpq connection string
  std::string time_zone = "Asia/Tokyo";
  /// postgresql: where reports, queries and dashboard pages read (a streaming replica of
  /// `conninfo`'s database); empty: `conninfo`.
  std::string report_conninfo;
};

/// How a store is opened.
enum class OpenMode {
  read_write,  ///< creates or migrates the schema; SQLite re-cuts days after a time-zone change
  read_only,   ///< reads only (report workers); the schema must exist and be current
  migrate,     ///< read_write, and PostgreSQL too re-cuts days (teiten-collectord --migrate)
};

/// The collector's storage (docs/scale.md): ingest idempotent on (sensor, boot id, seq),
/// each bucket and its rollups in one transaction; per-bucket detail for the detail
/// retention, hourly rollups per (sensor, UTC hour, key) and daily rollups per (local day,
/// sensor, key) kept for ever. One Store per thread. Implementations: SQLite (one box)
/// and PostgreSQL (several collectors on one database). No SQL outside store/.
class Store {
 public:
  virtual ~Store() = default;

  /// "sqlite" or "postgresql".
  virtual std::string_view backend() const noexcept = 0;
  /// The database, for messages (file path, or host/port/dbname without password).
  virtual std::string describe() const = 0;

  /// Stores a batch in one transaction: every bucket whole, or none of them (on error,
  /// which throws). Returns, per bucket, whether it was new or already stored.
  virtual std::vector<IngestResult> ingest(const std::vector<bucket::SealedBucket>& batch) = 0;

  /// The tier query() answers `q` from: the coarsest that gives exact totals for the
  /// range (its bounds on the tier's boundaries, or open; daily has no kind) and still
  /// holds it. When none does because detail was pruned, hourly (whole UTC hours starting
  /// in [from, to)), else daily (whole local days). Throws std::invalid_argument when the
  /// query needs kind and only the daily tier still covers its range.
  Tier tier(const Query& q);
  /// Totals of the rows matching `q`, grouped, largest first (ties by group), from tier(q)
  /// (into `used`, when given).
  std::vector<QueryRow> query(const Query& q, Tier* used = nullptr);
  /// Bucket-level totals over the sensors and range of `q` (other filters ignored).
  virtual Accounting accounting(const Query& q) = 0;

  /// Deletes per-bucket detail rows of buckets that started before `cutoff` (rollups
  /// stay). Returns the number of buckets pruned.
  virtual std::uint64_t prune_detail(std::int64_t cutoff) = 0;
  /// Deletes the hourly rollups of hours before `cutoff` (daily rollups stay for ever).
  /// Returns the rows deleted.
  virtual std::uint64_t prune_hourly(std::int64_t cutoff) = 0;

  /// The daily rollups of q's local days summed by destination (DailySums), in no
  /// particular order.
  virtual void daily_sums(const DailySumsQuery& q,
                          const std::function<void(const DailySums&)>& out) = 0;
  /// The daily rollups of q's local days summed per day, destination, country of q's and
  /// fingerprint (DailyBreakdown), in no particular order. Throws std::invalid_argument
  /// as check_breakdown() does.
  virtual void daily_breakdown(const DailyBreakdownQuery& q,
                               const std::function<void(const DailyBreakdown&)>& out) = 0;
  /// The sketches of the daily rows of one destination from one country over local days
  /// [day_from, day_to] of the sensors (none: all); `port` -1 matches rows without a port,
  /// nullopt any port. Their union is what a caller merges: for summarized days (all
  /// sensors only) one sketch per fingerprint and day already merged over the sensors.
  virtual void scan_daily_hosts(std::int64_t day_from, std::int64_t day_to,
                                const std::string& country, const std::string& proto,
                                std::optional<std::int64_t> port,
                                const std::vector<std::string>& sensors,
                                const std::function<void(const DailyHosts&)>& row) = 0;
  /// Summarizes up to `max_days` local days whose daily rollups changed since they were
  /// last summarized, oldest first (docs/scale.md, "Day summaries"): a day's rollups
  /// summed over the sensors per (proto, port, country, fingerprint), sketches merged, and
  /// per (sensor, proto, port). A summary records the day's bucket count it was made from;
  /// reports over all sensors read it while that count is the day's, the rollups
  /// otherwise, so a late bucket is never missed. Each day in a transaction of its own;
  /// with PostgreSQL one collector summarizes at a time (0 when another is). Returns the
  /// days summarized.
  virtual std::size_t summarize_days(std::size_t max_days) = 0;
  /// The days of [day_from, day_to] that hold data, in order, each with whether its
  /// summary is current.
  virtual std::vector<std::pair<std::int64_t, bool>> day_states(std::int64_t day_from,
                                                                std::int64_t day_to) = 0;
  /// The days of [day_from, day_to] whose summary is current, in order.
  std::vector<std::int64_t> summarized_days(std::int64_t day_from, std::int64_t day_to);
  /// What each sensor covered on the local days [day_from, day_to].
  virtual std::vector<SensorDay> sensor_days(std::int64_t day_from, std::int64_t day_to) = 0;
  /// Each sensor that ever delivered: its latest bucket end, and its figures over
  /// [day_from, day_to].
  virtual std::vector<SensorTotals> sensor_totals(std::int64_t day_from, std::int64_t day_to) = 0;
  /// The latest local day any bucket started on (none: no bucket yet).
  virtual std::optional<std::int64_t> latest_day() = 0;

  /// Hands every stored row to `sink` as it is (bucket records with their detail, then
  /// hourly, daily and coverage rows), in one read transaction; and says which hours the
  /// hourly tier no longer holds (hourly_pruned_before). Throws std::runtime_error.
  virtual void export_all(StoreSink& sink, std::int64_t& hourly_pruned_from) = 0;
  /// Whether no bucket is stored yet.
  virtual bool empty() = 0;
  /// A loader for export_all's rows (the store must be empty, and stay so until commit).
  virtual std::unique_ptr<StoreLoader> bulk_loader() = 0;

  /// Bytes on disk per tier, indexes included: "buckets" (bucket records and coverage),
  /// "detail", "hourly", "daily".
  virtual std::vector<std::pair<std::string, std::uint64_t>> bytes_per_tier() = 0;

  /// The reports' time zone, and its local day of a UTC time.
  const std::string& time_zone() const noexcept { return time_zone_; }
  std::int64_t local_day(std::int64_t ts) const { return local_day_in(zone_, ts); }

 protected:
  explicit Store(const std::string& time_zone);
  /// Whether a bucket starting in [from, to) of the sensors (none: all) has had its
  /// detail pruned.
  virtual bool detail_pruned(std::int64_t from, std::int64_t to,
                             const std::vector<std::string>& sensors) = 0;
  /// Hours before this were pruned from the hourly rollups (0: none).
  virtual std::int64_t hourly_pruned_before() = 0;
  /// query() on one tier; for daily, `q.from` and `q.to` are local days (to exclusive).
  virtual std::vector<QueryRow> query_tier(const Query& q, Tier tier) = 0;
  /// What a daily-tier query reads, as "<source> r WHERE r.day >= <from_param> AND r.day <
  /// <to_param>": the daily rollups, and for the days summarized the summary table that
  /// holds q's dimensions (day_totals without sensors, day_sensor_totals without origin
  /// and fingerprint), when one does.
  std::string daily_source(const Query& q, const std::string& from_param,
                           const std::string& to_param);
  std::string time_zone_;
  const date::time_zone* zone_ = nullptr;
};

/// Opens the configured store. Throws std::runtime_error naming the database, or the
/// time zone, when it cannot.
std::unique_ptr<Store> open_store(const StoreConfig& config, OpenMode mode = OpenMode::read_write);

/// `teitenctl db copy`: everything in `from` into `to`, which must be empty, as it is
/// (detail, rollups, coverage, pruning marks; nothing recomputed), in one transaction of
/// `to`: all of it or nothing. Both must cut days in the same time zone. Throws
/// std::runtime_error saying what is wrong.
CopyCounts copy_store(Store& from, Store& to);

/// Checks that the configured store can be opened and says what it found ("schema version
/// 2", or that it will be created at the first start); creates and changes nothing (for
/// --check-config). Throws std::runtime_error saying what is wrong.
std::string check_store(const StoreConfig& config);

/// The schema version this build writes (both backends).
inline constexpr int kSchemaVersion = 4;

}  // namespace teiten::collector

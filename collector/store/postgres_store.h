// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <set>
#include <string>

#include "collector/store/store.h"

namespace teiten::collector {

namespace pg {
class Conn;
}

/// The store for a network of several collectors: one PostgreSQL database (Debian's
/// postgresql-15) shared by any number of teiten-collectord processes. Ingest is
/// idempotent through the unique (sensor, boot_id, seq) constraint, whichever collector a
/// bucket reaches; per-bucket detail and hourly rollups live in monthly partitions
/// (created ahead, dropped by retention); each batch is staged with COPY and rolled up in
/// set statements (docs/scale.md).
class PostgresStore final : public Store {
 public:
  /// Connects (read_write: creates or migrates the schema under an advisory lock, so
  /// collectors starting together migrate once). Throws std::runtime_error.
  PostgresStore(const std::string& conninfo, const std::string& time_zone, OpenMode mode);
  ~PostgresStore() override;

  std::string_view backend() const noexcept override { return "postgresql"; }
  std::string describe() const override;
  std::vector<IngestResult> ingest(const std::vector<bucket::SealedBucket>& batch) override;

  Accounting accounting(const Query& q) override;
  std::uint64_t prune_detail(std::int64_t cutoff) override;
  std::uint64_t prune_hourly(std::int64_t cutoff) override;
  void daily_sums(const DailySumsQuery& q,
                  const std::function<void(const DailySums&)>& out) override;
  void daily_breakdown(const DailyBreakdownQuery& q,
                       const std::function<void(const DailyBreakdown&)>& out) override;
  void scan_daily_hosts(std::int64_t day_from, std::int64_t day_to, const std::string& country,
                        const std::string& proto, std::optional<std::int64_t> port,
                        const std::vector<std::string>& sensors,
                        const std::function<void(const DailyHosts&)>& row) override;
  std::size_t summarize_days(std::size_t max_days) override;
  std::vector<std::pair<std::int64_t, bool>> day_states(std::int64_t day_from,
                                                        std::int64_t day_to) override;
  std::vector<SensorDay> sensor_days(std::int64_t day_from, std::int64_t day_to) override;
  std::vector<SensorTotals> sensor_totals(std::int64_t day_from, std::int64_t day_to) override;
  std::optional<std::int64_t> latest_day() override;
  std::vector<std::pair<std::string, std::uint64_t>> bytes_per_tier() override;
  /// Not supported: db copy reads SQLite stores (throws std::runtime_error).
  void export_all(StoreSink& sink, std::int64_t& hourly_pruned_from) override;
  bool empty() override;
  std::unique_ptr<StoreLoader> bulk_loader() override;

  /// Creates the monthly partitions for the UTC months of [from, to) that do not exist.
  void ensure_partitions(std::int64_t from, std::int64_t to);
  /// Connects and reads the schema version; changes nothing. Throws std::runtime_error.
  static std::string check(const std::string& conninfo);

 protected:
  bool detail_pruned(std::int64_t from, std::int64_t to,
                     const std::vector<std::string>& sensors) override;
  std::int64_t hourly_pruned_before() override;
  std::vector<QueryRow> query_tier(const Query& q, Tier tier) override;

 private:
  friend class PostgresLoader;
  /// Creates the month's partitions inside the transaction in progress.
  void create_partitions(std::int64_t month);
  /// The monthly partitions of `table`: name and first second of the month.
  std::vector<std::pair<std::string, std::int64_t>> partitions_of(const std::string& table);
  void connected();  ///< after every (re)connection: session settings, staging tables
  void usable();     ///< reconnects a connection libpq knows is lost
  void alive();      ///< before a read: finds out whether the connection is, and reconnects
  void migrate();
  /// Schema 3 to 4, inside migrate()'s transaction: every bucket's rows of bucket_rows
  /// become its one row of bucket_detail, and bucket_rows goes.
  void convert_bucket_rows();
  void rebuild_days_if_needed();
  std::vector<IngestResult> ingest_once(const std::vector<bucket::SealedBucket>& batch);
  std::unique_ptr<pg::Conn> conn_;
  OpenMode mode_;
  std::set<std::int64_t> months_;  ///< partitions known to exist (first second of the month)
};

}  // namespace teiten::collector

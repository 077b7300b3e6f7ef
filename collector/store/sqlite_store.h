// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sqlite3.h>

#include <string>

#include "collector/store/store.h"

namespace teiten::collector {

/// The embedded store: one SQLite file (WAL mode, synchronous=FULL: an acknowledged batch
/// is on disk), for a network that fits one collector.
class SqliteStore final : public Store {
 public:
  /// Opens (read_write: creates or migrates) the database. Throws std::runtime_error
  /// naming the file.
  SqliteStore(const std::string& path, const std::string& time_zone, OpenMode mode);
  ~SqliteStore() override;

  std::string_view backend() const noexcept override { return "sqlite"; }
  std::string describe() const override { return path_; }
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
  void export_all(StoreSink& sink, std::int64_t& hourly_pruned_from) override;
  bool empty() override;
  std::unique_ptr<StoreLoader> bulk_loader() override;
  /// The time zone a database file's days are cut in (nullopt: none recorded).
  static std::optional<std::string> time_zone_of(const std::string& path);

  /// The schema version recorded in a database file (0: none recorded, an older
  /// collector's); nullopt when the file does not exist. Opens it read-only.
  static std::optional<int> schema_version_of(const std::string& path);

 protected:
  bool detail_pruned(std::int64_t from, std::int64_t to,
                     const std::vector<std::string>& sensors) override;
  std::int64_t hourly_pruned_before() override;
  std::vector<QueryRow> query_tier(const Query& q, Tier tier) override;

 private:
  void open_as(OpenMode mode);  ///< the constructor's work once the file is open
  void exec(const char* sql);
  void migrate();
  void rebuild_days_if_needed();
  /// The daily rollup rows of runs.rollups (sensor set) and the day summary rows of
  /// runs.summarized (sensor empty), as they are read.
  void read_daily_rows(const DayRuns& runs, const std::function<void(const DailyRow&)>& row);
  sqlite3* db_ = nullptr;
  std::string path_;
};

}  // namespace teiten::collector

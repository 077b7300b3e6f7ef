// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <maxminddb.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/classify/key.h"

namespace teiten::classify {

/// An open MaxMind-format (MMDB) country database, read through libmaxminddb.
/// Understands both record layouts: GeoIP2/GeoLite2 (`country.iso_code`, falling back to
/// `registered_country.iso_code`) and ip-location-db (`country_code`).
/// Immutable once open: lookups may run on any thread. Owns the mapping.
class GeoIpDatabase {
 public:
  /// Opens `path`. On failure returns nullptr and sets `error` to a message naming the
  /// file and libmaxminddb's reason.
  static std::shared_ptr<const GeoIpDatabase> open(const std::string& path, std::string& error);

  ~GeoIpDatabase();
  GeoIpDatabase(const GeoIpDatabase&) = delete;
  GeoIpDatabase& operator=(const GeoIpDatabase&) = delete;

  /// Where an address leads in the search tree: its data record, if any.
  struct Location {
    MMDB_entry_s entry{};
    bool found = false;
    bool error = false;  ///< libmaxminddb reported a lookup error (corrupt tree)
    /// Leading address bits the answer holds for (found or not): every address sharing
    /// them gets the same answer. For IPv4 lookups, counted in IPv4 bits.
    unsigned prefix = 0;
  };

  /// Walks the search tree for an IPv4 address (host order) or an IPv6 address.
  Location locate_v4(std::uint32_t addr) const noexcept;
  Location locate_v6(const std::array<std::uint8_t, 16>& addr) const noexcept;

  /// Country of a located record (unknown if not found); sets `error` when the record
  /// cannot be decoded.
  CountryCode country_of(const Location& loc, bool& error) const noexcept;

  /// locate + country_of, for callers without a cache.
  CountryCode lookup_v4(std::uint32_t addr) const noexcept;
  CountryCode lookup_v6(const std::array<std::uint8_t, 16>& addr) const noexcept;

  /// metadata.build_epoch: when the database was built (seconds since 1970).
  std::uint64_t build_epoch() const noexcept { return mmdb_.metadata.build_epoch; }
  /// metadata.database_type, e.g. "GeoIP2-Country" or "geo-whois-asn-country".
  std::string database_type() const;
  const std::string& path() const noexcept { return path_; }

 private:
  GeoIpDatabase() = default;
  Location locate(const void* sockaddr_any) const noexcept;

  MMDB_s mmdb_{};
  std::string path_;
};

/// Per-thread memo in front of a GeoIpDatabase: a direct-mapped cache by address (scanners
/// repeat their sources) and one by data record (many networks share a record).
/// Fixed size, allocated once; lookups never allocate. Single thread.
class CountryCache {
 public:
  /// `entries` is rounded up to a power of two (IPv4 entries; IPv6 gets a quarter). Besides
  /// the per-address entries, a table of every IPv4 /16 remembers the answer for a /16 the
  /// database answers as one block (its prefix is 16 bits or shorter): scanners' one-off
  /// sources then need no lookup when a neighbour of theirs was looked up before.
  explicit CountryCache(std::size_t entries);

  /// Sets the database (nullptr: every country unknown) and clears the cache.
  void reset(std::shared_ptr<const GeoIpDatabase> db);

  CountryCode lookup_v4(std::uint32_t addr) noexcept;
  /// What lookup_v4(addr) reads first, for the caller to prefetch (a batch prefetches,
  /// then looks up).
  const void* probe_address_v4(std::uint32_t addr) const noexcept { return &blocks_[addr >> 16]; }
  CountryCode lookup_v6(const std::array<std::uint8_t, 16>& addr) noexcept;

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t errors = 0;  ///< lookups libmaxminddb failed (counted as unknown)
  };
  const Stats& stats() const noexcept { return stats_; }
  const GeoIpDatabase* database() const noexcept { return db_.get(); }

 private:
  CountryCode resolve(const GeoIpDatabase::Location& loc) noexcept;

  struct V4Entry {
    std::uint32_t addr;
    std::uint16_t country;
    bool valid;
  };
  struct V6Entry {
    std::array<std::uint8_t, 16> addr;
    std::uint16_t country;
    bool valid;
  };
  struct RecordEntry {
    std::uint32_t record;
    std::uint16_t country;
  };
  std::shared_ptr<const GeoIpDatabase> db_;
  std::vector<V4Entry> v4_;
  std::vector<V6Entry> v6_;
  std::vector<RecordEntry> records_;
  /// Per IPv4 /16: its country when the database answers the /16 as one block, or
  /// kBlockUnknown (not looked up yet) or kBlockMixed (parts answer differently).
  static constexpr CountryCode kBlockUnknown = 0xFFFF;
  static constexpr CountryCode kBlockMixed = 0xFFFE;
  std::vector<CountryCode> blocks_;
  Stats stats_;
};

}  // namespace teiten::classify

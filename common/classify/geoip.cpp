// SPDX-License-Identifier: Apache-2.0
#include "common/classify/geoip.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

namespace teiten::classify {
namespace {

CountryCode country_from_entry_data(const MMDB_entry_data_s& d) noexcept {
  if (!d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2) {
    return kUnknownCountry;
  }
  return make_country(d.utf8_string[0], d.utf8_string[1]);
}

std::size_t round_pow2(std::size_t n) {
  return std::bit_ceil(n < 16 ? std::size_t{16} : n);
}

// Fibonacci hashing spreads sequential scanner addresses over the table.
std::size_t slot_of(std::uint64_t v, std::size_t size) noexcept {
  return static_cast<std::size_t>((v * 0x9E3779B97F4A7C15ULL) >> 32) & (size - 1);
}

}  // namespace

std::shared_ptr<const GeoIpDatabase> GeoIpDatabase::open(const std::string& path,
                                                         std::string& error) {
  std::shared_ptr<GeoIpDatabase> db{new GeoIpDatabase()};
  errno = 0;
  const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &db->mmdb_);
  const int saved_errno = errno;
  if (status != MMDB_SUCCESS) {
    error = "cannot open GeoIP database " + path + ": " + MMDB_strerror(status);
    if ((status == MMDB_IO_ERROR || status == MMDB_FILE_OPEN_ERROR) && saved_errno != 0) {
      error += std::string{" ("} + std::strerror(saved_errno) + ")";
    }
    return nullptr;
  }
  db->path_ = path;
  return db;
}

GeoIpDatabase::~GeoIpDatabase() {
  if (!path_.empty()) MMDB_close(&mmdb_);
}

std::string GeoIpDatabase::database_type() const {
  return mmdb_.metadata.database_type ? mmdb_.metadata.database_type : "";
}

CountryCode GeoIpDatabase::country_of(const Location& loc, bool& error) const noexcept {
  if (!loc.found) return kUnknownCountry;
  MMDB_entry_s e = loc.entry;  // MMDB_get_value takes a non-const entry
  MMDB_entry_data_s d{};
  // GeoIP2/GeoLite2 first, then ip-location-db, then GeoIP2's registered country.
  static constexpr const char* kPaths[][3] = {
      {"country", "iso_code", nullptr},
      {"country_code", nullptr, nullptr},
      {"registered_country", "iso_code", nullptr},
  };
  for (const auto& path : kPaths) {
    const int rc = MMDB_aget_value(&e, &d, path);
    if (rc == MMDB_SUCCESS && d.has_data) return country_from_entry_data(d);
    if (rc != MMDB_SUCCESS && rc != MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) error = true;
  }
  return kUnknownCountry;
}

GeoIpDatabase::Location GeoIpDatabase::locate(const void* sockaddr_any) const noexcept {
  int mmdb_error = MMDB_SUCCESS;
  // libmaxminddb takes a non-const MMDB_s but only reads it.
  auto* m = const_cast<MMDB_s*>(&mmdb_);
  const MMDB_lookup_result_s r =
      MMDB_lookup_sockaddr(m, static_cast<const sockaddr*>(sockaddr_any), &mmdb_error);
  Location loc;
  loc.error = mmdb_error != MMDB_SUCCESS;
  loc.found = !loc.error && r.found_entry;
  if (loc.found) loc.entry = r.entry;
  loc.prefix = r.netmask;
  return loc;
}

GeoIpDatabase::Location GeoIpDatabase::locate_v4(std::uint32_t addr) const noexcept {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr);
  Location loc = locate(&sa);
  // In a database of IPv6 (IPv4 under ::/96) the netmask counts from the IPv6 root; the
  // lookup has found the IPv4 subtree's start by now.
  const unsigned start = mmdb_.ipv4_start_node.netmask;
  loc.prefix = loc.prefix > start ? loc.prefix - start : 0;
  return loc;
}

GeoIpDatabase::Location GeoIpDatabase::locate_v6(
    const std::array<std::uint8_t, 16>& addr) const noexcept {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  std::memcpy(&sa.sin6_addr, addr.data(), 16);
  return locate(&sa);
}

CountryCode GeoIpDatabase::lookup_v4(std::uint32_t addr) const noexcept {
  bool error = false;
  return country_of(locate_v4(addr), error);
}

CountryCode GeoIpDatabase::lookup_v6(const std::array<std::uint8_t, 16>& addr) const noexcept {
  bool error = false;
  return country_of(locate_v6(addr), error);
}

CountryCache::CountryCache(std::size_t entries)
    : v4_(round_pow2(entries)),
      v6_(round_pow2(entries / 4)),
      records_(round_pow2(entries / 16)),
      blocks_(std::size_t{1} << 16, kBlockUnknown) {}

void CountryCache::reset(std::shared_ptr<const GeoIpDatabase> db) {
  db_ = std::move(db);
  for (auto& e : v4_) e.valid = false;
  for (auto& e : v6_) e.valid = false;
  for (auto& e : records_) e.record = 0;
  std::fill(blocks_.begin(), blocks_.end(), kBlockUnknown);
}

CountryCode CountryCache::resolve(const GeoIpDatabase::Location& loc) noexcept {
  if (loc.error) ++stats_.errors;
  if (!loc.found) return kUnknownCountry;
  // Data records are shared by many networks: remember the country per record offset.
  // Offset 0 never holds a record (the data section starts after the tree), so it marks
  // an empty slot.
  RecordEntry& r = records_[slot_of(loc.entry.offset, records_.size())];
  if (r.record == loc.entry.offset && r.record != 0) return r.country;
  bool error = false;
  const CountryCode c = db_->country_of(loc, error);
  if (error) {
    ++stats_.errors;
    return c;
  }
  r = RecordEntry{loc.entry.offset, c};
  return c;
}

CountryCode CountryCache::lookup_v4(std::uint32_t addr) noexcept {
  CountryCode& block = blocks_[addr >> 16];
  if (block < kBlockMixed) {
    ++stats_.hits;
    return block;
  }
  V4Entry& e = v4_[slot_of(addr, v4_.size())];
  if (e.valid && e.addr == addr) {
    ++stats_.hits;
    return e.country;
  }
  ++stats_.misses;
  if (!db_) return kUnknownCountry;
  const std::uint64_t errors = stats_.errors;
  const GeoIpDatabase::Location loc = db_->locate_v4(addr);
  const CountryCode c = resolve(loc);
  if (stats_.errors == errors && block == kBlockUnknown) {
    block = loc.prefix <= 16 ? c : kBlockMixed;
  }
  e = V4Entry{addr, c, true};
  return c;
}

CountryCode CountryCache::lookup_v6(const std::array<std::uint8_t, 16>& addr) noexcept {
  std::uint64_t hi, lo;
  std::memcpy(&hi, addr.data(), 8);
  std::memcpy(&lo, addr.data() + 8, 8);
  V6Entry& e = v6_[slot_of(hi ^ (lo * 31), v6_.size())];
  if (e.valid && e.addr == addr) {
    ++stats_.hits;
    return e.country;
  }
  ++stats_.misses;
  const CountryCode c = db_ ? resolve(db_->locate_v6(addr)) : kUnknownCountry;
  e.addr = addr;
  e.country = c;
  e.valid = true;
  return c;
}

}  // namespace teiten::classify

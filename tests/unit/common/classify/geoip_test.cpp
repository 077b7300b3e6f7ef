// SPDX-License-Identifier: Apache-2.0
#include "common/classify/geoip.h"

#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/test_paths.h"

using namespace teiten::classify;
namespace fs = std::filesystem;

namespace {
std::uint32_t v4(const char* s) {
  in_addr a{};
  REQUIRE(inet_pton(AF_INET, s, &a) == 1);
  return ntohl(a.s_addr);
}
std::array<std::uint8_t, 16> v6(const char* s) {
  std::array<std::uint8_t, 16> a{};
  REQUIRE(inet_pton(AF_INET6, s, a.data()) == 1);
  return a;
}
std::string mmdb(const std::string& name) {
  return teiten::test::shared_testdata() + "/mmdb/" + name;
}
}  // namespace

TEST_CASE("GeoIP2 and GeoLite2 country databases give the known answers", "[classify][geoip]") {
  if (!fs::exists(teiten::test::shared_testdata())) {
    WARN("SKIPPED: ../shared/testdata is absent");
    return;
  }
  for (const char* name :
       {"test-data/GeoIP2-Country-Test.mmdb", "test-data/GeoLite2-Country-Test.mmdb"}) {
    std::string error;
    const auto db = GeoIpDatabase::open(mmdb(name), error);
    REQUIRE(db);
    INFO(name);
    CHECK(country_to_string(db->lookup_v4(v4("81.2.69.160"))) == "GB");
    CHECK(country_to_string(db->lookup_v4(v4("2.125.160.216"))) == "GB");
    CHECK(country_to_string(db->lookup_v4(v4("89.160.20.112"))) == "SE");
    CHECK(country_to_string(db->lookup_v4(v4("216.160.83.56"))) == "US");
    CHECK(country_to_string(db->lookup_v4(v4("67.43.156.1"))) == "BT");
    CHECK(country_to_string(db->lookup_v6(v6("2001:218::1"))) == "JP");
    CHECK(country_to_string(db->lookup_v6(v6("::ffff:81.2.69.160"))) == "GB");
    CHECK(country_to_string(db->lookup_v4(v4("1.1.1.1"))) == "--");
    CHECK(country_to_string(db->lookup_v4(v4("8.8.8.8"))) == "--");
  }
}

TEST_CASE("the country cache gives the database's answers and counts hits", "[classify][geoip]") {
  if (!fs::exists(teiten::test::shared_testdata())) {
    WARN("SKIPPED: ../shared/testdata is absent");
    return;
  }
  std::string error;
  const auto db = GeoIpDatabase::open(mmdb("test-data/GeoIP2-Country-Test.mmdb"), error);
  REQUIRE(db);
  CountryCache cache(16);
  cache.reset(db);
  for (int round = 0; round < 3; ++round) {
    CHECK(country_to_string(cache.lookup_v4(v4("81.2.69.160"))) == "GB");
    CHECK(country_to_string(cache.lookup_v4(v4("89.160.20.112"))) == "SE");
    CHECK(country_to_string(cache.lookup_v4(v4("1.1.1.1"))) == "--");
    CHECK(country_to_string(cache.lookup_v6(v6("2001:218::1"))) == "JP");
  }
  CHECK(cache.stats().misses == 4);
  CHECK(cache.stats().hits == 8);
  // Many addresses through a tiny cache: answers stay right under eviction.
  for (std::uint32_t i = 0; i < 1000; ++i) {
    CHECK(country_to_string(cache.lookup_v4(v4("81.2.69.160") + (i & 0x1F))) == "GB");
  }
  cache.reset(nullptr);
  CHECK(cache.lookup_v4(v4("81.2.69.160")) == kUnknownCountry);
}

TEST_CASE("the country cache's /16 blocks give the database's answers", "[classify][geoip]") {
  // A tiny per-address cache, so that nearly every repeat within a /16 the database answers
  // as one block comes from the block table; every answer equals the database's own.
  std::vector<std::string> paths;
  if (fs::exists(teiten::test::default_geoip_database()))
    paths.push_back(teiten::test::default_geoip_database());  // IPv4 and IPv6, merged blocks
  if (fs::exists(teiten::test::shared_testdata()))
    paths.push_back(mmdb("test-data/GeoIP2-Country-Test.mmdb"));  // IPv4 under ::/96
  if (paths.empty()) {
    WARN("SKIPPED: neither the default GeoIP database nor ../shared/testdata is present");
    return;
  }
  for (const auto& path : paths) {
    INFO(path);
    std::string error;
    const auto db = GeoIpDatabase::open(path, error);
    REQUIRE(db);
    CountryCache cache(16);
    cache.reset(db);
    std::uint32_t x = 12345;
    std::size_t wrong = 0, lookups = 0;
    for (int i = 0; i < 200000; ++i) {
      x = x * 1664525u + 1013904223u;
      // Half spread over 112.0.0.0/4 (4,096 /16s), half near addresses the test databases
      // know.
      const std::uint32_t a =
          (i & 1) ? (0x70000000u | (x >> 4)) : (v4("81.2.69.0") ^ (x & 0x0003FFFFu));
      ++lookups;
      if (cache.lookup_v4(a) != db->lookup_v4(a)) ++wrong;
    }
    CHECK(wrong == 0);
    CHECK(cache.stats().hits + cache.stats().misses == lookups);
    CHECK(cache.stats().hits > lookups / 4);  // the 16-entry cache alone would hit ~never
    // A reload forgets the blocks: the same answers again, from the database.
    cache.reset(db);
    const std::uint64_t misses = cache.stats().misses;
    CHECK(cache.lookup_v4(v4("81.2.69.160")) == db->lookup_v4(v4("81.2.69.160")));
    CHECK(cache.stats().misses == misses + 1);
  }
}

TEST_CASE("the country_code layout of ip-location-db is understood", "[classify][geoip]") {
  const std::string db_path = teiten::test::default_geoip_database();
  if (!fs::exists(db_path)) {
    WARN("SKIPPED: default GeoIP database not fetched (scripts/fetch-geoip.sh)");
    return;
  }
  std::string error;
  const auto db = GeoIpDatabase::open(db_path, error);
  REQUIRE(db);
  CHECK(country_to_string(db->lookup_v4(v4("126.1.2.3"))) == "JP");
  CHECK(country_to_string(db->lookup_v4(v4("223.64.1.1"))) == "CN");
  CHECK(country_to_string(db->lookup_v6(v6("2003::1"))) == "DE");
  CHECK(country_to_string(db->lookup_v4(v4("100.64.1.1"))) == "--");
  CHECK(db->build_epoch() > 1600000000u);
}

TEST_CASE("broken databases fail to open with a clear message or answer unknown",
          "[classify][geoip]") {
  if (!fs::exists(teiten::test::shared_testdata())) {
    WARN("SKIPPED: ../shared/testdata is absent");
    return;
  }
  std::size_t refused = 0, opened = 0;
  for (const auto& dir : {mmdb("bad-data"), mmdb("test-data")}) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.path().extension() != ".mmdb") continue;
      std::string error;
      const auto db = GeoIpDatabase::open(e.path().string(), error);
      INFO(e.path().string());
      if (!db) {
        ++refused;
        CHECK(error.find(e.path().string()) != std::string::npos);
        CHECK(error.find("cannot open GeoIP database") == 0);
        continue;
      }
      ++opened;
      // Whatever the database holds, lookups end, never crash, and say a country or "--".
      CountryCache cache(64);
      cache.reset(db);
      for (const char* a :
           {"81.2.69.160", "1.1.1.1", "216.160.83.56", "0.0.0.0", "255.255.255.255"}) {
        const auto c = cache.lookup_v4(v4(a));
        CHECK((c == kUnknownCountry || country_to_string(c).size() == 2));
      }
      (void)cache.lookup_v6(v6("2001:218::1"));
      (void)cache.lookup_v6(v6("ffff::1"));
    }
  }
  CHECK(refused > 0);
  CHECK(opened > 0);
  std::string error;
  CHECK_FALSE(GeoIpDatabase::open("/nonexistent/x.mmdb", error));
  CHECK(error ==
        "cannot open GeoIP database /nonexistent/x.mmdb: Error opening the specified "
        "MaxMind DB file (No such file or directory)");
}

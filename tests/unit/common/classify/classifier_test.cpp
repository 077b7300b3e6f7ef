// SPDX-License-Identifier: Apache-2.0
#include "common/classify/classifier.h"

#include <catch2/catch.hpp>
#include <filesystem>

#include "common/classify/address_set.h"
#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"
#include "tests/unit/test_paths.h"

using namespace teiten::classify;
using namespace teiten::decode;
using namespace teiten::test;

namespace {
DecodedPacket decode_raw(const Bytes& b) {
  DecodedPacket p;
  REQUIRE(decode_packet(LinkType::raw, b.data(), b.size(), b.size(), p) == DecodeStatus::ok);
  return p;
}
}  // namespace

TEST_CASE("address set matches addresses and prefixes", "[classify][address]") {
  AddressSet s;
  CHECK_FALSE(s.add("203.0.113.7").has_value());
  CHECK_FALSE(s.add("198.51.100.0/24").has_value());
  CHECK_FALSE(s.add("2001:db8::/32").has_value());
  CHECK(s.contains_v4(ip(203, 0, 113, 7)));
  CHECK_FALSE(s.contains_v4(ip(203, 0, 113, 8)));
  CHECK(s.contains_v4(ip(198, 51, 100, 200)));
  CHECK_FALSE(s.contains_v4(ip(198, 51, 101, 1)));
  std::array<std::uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
  a[15] = 9;
  CHECK(s.contains_v6(a));
  a[3] = 0xb9;
  CHECK_FALSE(s.contains_v6(a));
}

TEST_CASE("address set refuses what is not an address or prefix", "[classify][address]") {
  AddressSet s;
  CHECK(s.add("203.0.113.300") ==
        std::optional<std::string>{"'203.0.113.300' is not an IPv4 or IPv6 address or prefix"});
  CHECK(s.add("10.0.0.1/24") ==
        std::optional<std::string>{"'10.0.0.1/24' has host bits set beyond the prefix length"});
  CHECK(s.add("10.0.0.0/33") ==
        std::optional<std::string>{"'10.0.0.0/33': IPv4 prefix length above 32"});
  CHECK(s.add("10.0.0.0/") ==
        std::optional<std::string>{"'10.0.0.0/' has an invalid prefix length"});
  CHECK(s.add("::/129") == std::optional<std::string>{"'::/129': IPv6 prefix length above 128"});
  CHECK(s.empty());
}

TEST_CASE("classifier keys a packet for the sensor and skips others", "[classify]") {
  AddressSet own;
  REQUIRE_FALSE(own.add("203.0.113.7").has_value());
  Classifier c(own, nullptr, 256);
  Key k;
  const auto mirai = decode_raw(cat(
      {ipv4(ip(126, 1, 2, 3), ip(203, 0, 113, 7), 6, 40), tcp(1, 23, ip(203, 0, 113, 7), 0x02)}));
  REQUIRE(c.classify(mirai, k));
  CHECK(k.proto == Proto::tcp);
  CHECK(k.has_port);
  CHECK(k.port == 23);
  CHECK(k.country == kUnknownCountry);  // no database
  CHECK(k.fingerprint == Fingerprint::mirai);
  CHECK(k.kind == Kind::scan);

  const auto other =
      decode_raw(cat({ipv4(ip(126, 1, 2, 3), ip(203, 0, 113, 8), 6, 40), tcp(1, 23, 5, 0x02)}));
  CHECK_FALSE(c.classify(other, k));

  const auto echo = decode_raw(cat({ipv4(1, ip(203, 0, 113, 7), 1, 28), icmp(8, 0)}));
  REQUIRE(c.classify(echo, k));
  CHECK(k.proto == Proto::icmp);
  CHECK(k.port == 8);

  const auto frag = decode_raw(cat({ipv4(1, ip(203, 0, 113, 7), 17, 28, 1, 30), udp(1, 53, 8)}));
  REQUIRE(c.classify(frag, k));
  CHECK(k.proto == Proto::udp);
  CHECK_FALSE(k.has_port);
  CHECK(k.kind == Kind::other);

  const auto gre = decode_raw(ipv4(1, ip(203, 0, 113, 7), 47, 20));
  REQUIRE(c.classify(gre, k));
  CHECK(k.proto == Proto::other);
  CHECK_FALSE(k.has_port);
}

TEST_CASE("classifier looks up the source country", "[classify]") {
  if (!std::filesystem::exists(shared_testdata())) {
    WARN("SKIPPED: ../shared/testdata is absent");
    return;
  }
  std::string error;
  auto db =
      GeoIpDatabase::open(shared_testdata() + "/mmdb/test-data/GeoIP2-Country-Test.mmdb", error);
  REQUIRE(db);
  AddressSet own;
  REQUIRE_FALSE(own.add("0.0.0.0/0").has_value());
  Classifier c(own, db, 256);
  Key k;
  REQUIRE(c.classify(decode_raw(cat({ipv4(ip(89, 160, 20, 112), 1, 17, 28), udp(1, 53, 8)})), k));
  CHECK(country_to_string(k.country) == "SE");
}

TEST_CASE("key packing round-trips and orders by proto then port", "[classify][key]") {
  Key a{Proto::tcp, true, 23, make_country('J', 'P'), Fingerprint::mirai, Kind::scan};
  CHECK(Key::unpack(a.pack()) == a);
  Key b = a;
  b.port = 22;
  CHECK(b.pack() < a.pack());
  Key c{Proto::udp, false, 0, kUnknownCountry, Fingerprint::none, Kind::other};
  CHECK(Key::unpack(c.pack()) == c);
  CHECK(c.pack() != 0);
  CHECK(country_from_string("jp") == kUnknownCountry);
  CHECK(country_to_string(country_from_string("JP")) == "JP");
}

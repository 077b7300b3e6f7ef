// SPDX-License-Identifier: Apache-2.0
#include "common/decode/ipv6_ext.h"

#include <catch2/catch.hpp>

#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"

using namespace teiten::decode;
using namespace teiten::test;

namespace {
Bytes ext(std::uint8_t next, std::uint8_t len_units = 0) {
  Bytes b = {next, len_units};
  b.resize(static_cast<std::size_t>(len_units + 1) * 8, 0);
  return b;
}
Bytes frag_header(std::uint8_t next, std::uint16_t offset_units) {
  Bytes b = {next, 0};
  put16(b, static_cast<std::uint16_t>(offset_units << 3));
  put32(b, 0xABCD);
  return b;
}
DecodeStatus raw6(const Bytes& b, DecodedPacket& p, std::size_t caplen = SIZE_MAX) {
  return decode_frame(LinkType::ipv6, b, p, caplen);
}
}  // namespace

TEST_CASE("ipv6 decoder reads the fixed header", "[decode][ipv6]") {
  const Bytes b = cat({ipv6(6, 20, 1, 2), tcp(1, 443, 3, 0x02)});
  DecodedPacket p;
  REQUIRE(raw6(b, p) == DecodeStatus::ok);
  CHECK(p.ip_version == 6);
  CHECK(p.ip_proto == 6);
  CHECK(p.ip_length == 60);
  CHECK(p.dport == 443);
  CHECK(p.src6[15] == 1);
  CHECK(p.dst6[15] == 2);
}

TEST_CASE("ipv6 extension-header walk reaches the upper layer", "[decode][ipv6]") {
  const Bytes chain = cat({ext(43, 1), ext(60), frag_header(17, 0), udp(1, 5060, 8)});
  const Bytes b = cat({ipv6(0, static_cast<std::uint16_t>(chain.size())), chain});
  DecodedPacket p;
  REQUIRE(raw6(b, p) == DecodeStatus::ok);
  CHECK(p.ip_proto == 17);
  CHECK(p.dport == 5060);
  CHECK_FALSE(p.nonfirst_fragment);
}

TEST_CASE("ipv6 non-first fragment stops the walk", "[decode][ipv6]") {
  const Bytes chain = cat({frag_header(6, 10), Bytes(16, 0)});
  const Bytes b = cat({ipv6(44, static_cast<std::uint16_t>(chain.size())), chain});
  DecodedPacket p;
  REQUIRE(raw6(b, p) == DecodeStatus::ok);
  CHECK(p.nonfirst_fragment);
  CHECK(p.ip_proto == 6);
  CHECK_FALSE(p.has_transport);
}

TEST_CASE("ipv6 extension chain longer than the cap is refused", "[decode][ipv6]") {
  Bytes chain;
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) chain = cat({chain, ext(60)});
  Bytes ok_chain = cat({chain, udp(1, 2, 8)});
  // Exactly the cap: the last header points at UDP.
  ok_chain[static_cast<std::size_t>(kMaxIpv6ExtHeaders - 1) * 8] = 17;
  DecodedPacket p;
  const Bytes at_cap = cat({ipv6(60, static_cast<std::uint16_t>(ok_chain.size())), ok_chain});
  CHECK(raw6(at_cap, p) == DecodeStatus::ok);
  const Bytes over = cat({chain, ext(17), udp(1, 2, 8)});
  const Bytes b = cat({ipv6(60, static_cast<std::uint16_t>(over.size())), over});
  CHECK(raw6(b, p) == DecodeStatus::ipv6_ext_depth_exceeded);
}

TEST_CASE("ipv6 extension header beyond the capture is truncation", "[decode][ipv6]") {
  const Bytes chain = cat({ext(17, 3), udp(1, 2, 8)});
  const Bytes b = cat({ipv6(0, static_cast<std::uint16_t>(chain.size())), chain});
  DecodedPacket p;
  CHECK(raw6(b, p, 40 + 20) == DecodeStatus::ipv6_ext_truncated);
  CHECK(raw6(b, p, 41) == DecodeStatus::ipv6_ext_truncated);
}

TEST_CASE("ipv6 decoder checks version, header and payload length", "[decode][ipv6]") {
  DecodedPacket p;
  Bytes b = cat({ipv6(59, 0)});
  CHECK(raw6(b, p, 39) == DecodeStatus::ipv6_truncated);
  b[0] = 0x45;
  CHECK(raw6(b, p) == DecodeStatus::ipv6_bad_version);
  const Bytes too_long = cat({ipv6(17, 100), udp(1, 2, 8)});
  CHECK(raw6(too_long, p) == DecodeStatus::ipv6_bad_payload_length);
}

TEST_CASE("ipv6 no-next-header and unknown protocols are classified as other", "[decode][ipv6]") {
  const Bytes b = ipv6(59, 0);
  DecodedPacket p;
  REQUIRE(raw6(b, p) == DecodeStatus::ok);
  CHECK(p.ip_proto == 59);
  CHECK_FALSE(p.has_transport);
}

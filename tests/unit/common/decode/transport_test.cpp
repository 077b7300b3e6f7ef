// SPDX-License-Identifier: Apache-2.0
#include "common/decode/transport.h"

#include <catch2/catch.hpp>

#include "common/decode/bytes.h"
#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"

using namespace teiten::decode;
using namespace teiten::test;

namespace {
DecodeStatus raw(const Bytes& b, DecodedPacket& p, std::size_t caplen = SIZE_MAX) {
  return decode_frame(LinkType::raw, b, p, caplen);
}
}  // namespace

TEST_CASE("tcp decoder reads ports, sequence number and flags", "[decode][tcp]") {
  const Bytes b = cat({ipv4(1, 2, 6, 40), tcp(40000, 23, 0xC0000207, 0x12)});
  DecodedPacket p;
  REQUIRE(raw(b, p) == DecodeStatus::ok);
  CHECK(p.sport == 40000);
  CHECK(p.dport == 23);
  CHECK(p.tcp_seq == 0xC0000207);
  CHECK(p.tcp_flags == 0x12);
  CHECK(p.has_transport);
}

TEST_CASE("tcp decoder rejects a short header and a bad data offset", "[decode][tcp]") {
  DecodedPacket p;
  const Bytes b = cat({ipv4(1, 2, 6, 40), tcp(1, 23, 1, 2)});
  CHECK(raw(b, p, 39) == DecodeStatus::tcp_truncated);
  const Bytes low = cat({ipv4(1, 2, 6, 40), tcp(1, 23, 1, 2, 4)});
  CHECK(raw(low, p) == DecodeStatus::tcp_bad_data_offset);
  // Offset 6 words in a 20-byte segment points past the segment.
  Bytes high = cat({ipv4(1, 2, 6, 40), tcp(1, 23, 1, 2)});
  high[20 + 12] = 0x60;
  CHECK(raw(high, p) == DecodeStatus::tcp_bad_data_offset);
}

TEST_CASE("udp decoder checks the length field", "[decode][udp]") {
  DecodedPacket p;
  const Bytes ok = cat({ipv4(1, 2, 17, 28), udp(1, 5060, 8)});
  REQUIRE(raw(ok, p) == DecodeStatus::ok);
  CHECK(p.dport == 5060);
  const Bytes short_len = cat({ipv4(1, 2, 17, 28), udp(1, 5060, 7)});
  CHECK(raw(short_len, p) == DecodeStatus::udp_bad_length);
  const Bytes long_len = cat({ipv4(1, 2, 17, 28), udp(1, 5060, 9)});
  CHECK(raw(long_len, p) == DecodeStatus::udp_bad_length);
  CHECK(raw(ok, p, 27) == DecodeStatus::udp_truncated);
}

TEST_CASE("icmp and icmpv6 decoders read type and code", "[decode][icmp]") {
  DecodedPacket p;
  const Bytes echo = cat({ipv4(1, 2, 1, 28), icmp(8, 0)});
  REQUIRE(raw(echo, p) == DecodeStatus::ok);
  CHECK(p.icmp_type == 8);
  CHECK(raw(echo, p, 23) == DecodeStatus::icmp_truncated);
  const Bytes echo6 = cat({ipv6(58, 8), icmp(128, 0)});
  REQUIRE(raw(echo6, p) == DecodeStatus::ok);
  CHECK(p.icmp_type == 128);
  CHECK(raw(echo6, p, 43) == DecodeStatus::icmpv6_truncated);
}

TEST_CASE("ICMPv4 inside IPv6 is another protocol, not ICMP", "[decode][icmp]") {
  DecodedPacket p;
  const Bytes b = cat({ipv6(1, 8), icmp(8, 0)});
  REQUIRE(raw(b, p) == DecodeStatus::ok);
  CHECK_FALSE(p.has_transport);
}

TEST_CASE("big- and little-endian loads read the wire's byte order, not the host's",
          "[decode][bytes]") {
  const std::uint8_t wire[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  CHECK(teiten::decode::load_be16(wire) == 0x0102);
  CHECK(teiten::decode::load_be32(wire) == 0x01020304u);
  CHECK(teiten::decode::load_be64(wire) == 0x0102030405060708ull);
  CHECK(teiten::decode::load_le32(wire) == 0x04030201u);
}

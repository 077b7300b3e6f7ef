// SPDX-License-Identifier: Apache-2.0
#include "common/classify/fingerprint.h"

#include <catch2/catch.hpp>

#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"

using namespace teiten::classify;
using namespace teiten::decode;
using namespace teiten::test;

namespace {
constexpr std::uint32_t kDst = ip(203, 0, 113, 7);

DecodedPacket decode_raw(const Bytes& b) {
  DecodedPacket p;
  REQUIRE(decode_packet(LinkType::raw, b.data(), b.size(), b.size(), p) == DecodeStatus::ok);
  return p;
}
DecodedPacket syn(std::uint32_t seq, std::uint8_t flags = 0x02, std::uint16_t id = 1000,
                  std::uint16_t dport = 23, Bytes options = {}) {
  const auto len = static_cast<std::uint16_t>(40 + options.size());
  return decode_raw(
      cat({ipv4(ip(1, 2, 3, 4), kDst, 6, len, id, 0, options), tcp(4444, dport, seq, flags)}));
}
std::uint32_t bswap(std::uint32_t v) {
  return __builtin_bswap32(v);
}
}  // namespace

TEST_CASE("mirai: SYN whose sequence number is the destination address",
          "[classify][fingerprint]") {
  CHECK(fingerprint_of(syn(kDst)) == Fingerprint::mirai);
  CHECK(fingerprint_of(syn(kDst, 0x02, 1000, 2323)) == Fingerprint::mirai);
  // SYN with ECE/CWR (no ACK/RST/FIN) is still a SYN.
  CHECK(fingerprint_of(syn(kDst, 0xC2)) == Fingerprint::mirai);
}

TEST_CASE("mirai near misses are not mirai", "[classify][fingerprint]") {
  CHECK(fingerprint_of(syn(bswap(kDst))) != Fingerprint::mirai);  // byte-swapped
  CHECK(fingerprint_of(syn(kDst + 1)) != Fingerprint::mirai);     // seq == dst + 1
  CHECK(fingerprint_of(syn(kDst, 0x12)) != Fingerprint::mirai);   // SYN-ACK
  CHECK(fingerprint_of(syn(kDst, 0x06)) != Fingerprint::mirai);   // SYN+RST
  CHECK(fingerprint_of(syn(kDst, 0x03)) != Fingerprint::mirai);   // SYN+FIN
  CHECK(fingerprint_of(syn(kDst, 0x10)) != Fingerprint::mirai);   // ACK only
}

TEST_CASE("a Mirai SYN carrying IPv4 options is found behind the options",
          "[classify][fingerprint]") {
  // The fingerprint is defined on header fields (DESIGN.md): options move the TCP header,
  // and a decoder that assumed a 20-byte IP header would read the wrong sequence number.
  const Bytes opts = {0x01, 0x01, 0x01, 0x00};
  const DecodedPacket p = syn(kDst, 0x02, 1000, 23, opts);
  CHECK(p.tcp_seq == kDst);
  CHECK(fingerprint_of(p) == Fingerprint::mirai);
  // ... and with options whose bytes would spell the address at the fixed offset, a
  // different sequence number is not mistaken for Mirai.
  Bytes spell = {static_cast<std::uint8_t>(kDst >> 24), static_cast<std::uint8_t>(kDst >> 16),
                 static_cast<std::uint8_t>(kDst >> 8), static_cast<std::uint8_t>(kDst)};
  const DecodedPacket q = syn(12345, 0x02, 1000, 23, spell);
  CHECK(fingerprint_of(q) != Fingerprint::mirai);
}

TEST_CASE("masscan: IP ID is dst XOR dport XOR seq, low 16 bits", "[classify][fingerprint]") {
  const std::uint32_t seq = 0x11223344;
  const auto id = static_cast<std::uint16_t>((kDst ^ 445u ^ seq) & 0xFFFF);
  CHECK(fingerprint_of(syn(seq, 0x02, id, 445)) == Fingerprint::masscan);
  CHECK(fingerprint_of(syn(seq, 0x02, static_cast<std::uint16_t>(id ^ 1), 445)) ==
        Fingerprint::none);
  CHECK(fingerprint_of(syn(seq, 0x02, id, 446)) == Fingerprint::none);  // other port
  CHECK(fingerprint_of(syn(seq, 0x12, id, 445)) == Fingerprint::none);  // SYN-ACK
}

TEST_CASE("zmap: IP ID 54321", "[classify][fingerprint]") {
  CHECK(fingerprint_of(syn(777, 0x02, 54321)) == Fingerprint::zmap);
  CHECK(fingerprint_of(syn(777, 0x02, 54320)) == Fingerprint::none);
  const DecodedPacket u = decode_raw(cat({ipv4(1, kDst, 17, 28, 54321), udp(1, 53, 8)}));
  CHECK(fingerprint_of(u) == Fingerprint::zmap);
  const DecodedPacket e = decode_raw(cat({ipv4(1, kDst, 1, 28, 54321), icmp(8, 0)}));
  CHECK(fingerprint_of(e) == Fingerprint::zmap);
}

TEST_CASE("mirai takes precedence over zmap's IP ID", "[classify][fingerprint]") {
  CHECK(fingerprint_of(syn(kDst, 0x02, 54321)) == Fingerprint::mirai);
}

TEST_CASE("IPv6 packets carry no IPv4 fingerprint", "[classify][fingerprint]") {
  const DecodedPacket p = decode_raw(cat({ipv6(6, 20), tcp(1, 23, 0, 0x02)}));
  CHECK(fingerprint_of(p) == Fingerprint::none);
}

TEST_CASE("kind: scans, backscatter and other", "[classify][kind]") {
  CHECK(kind_of(syn(5)) == Kind::scan);
  CHECK(kind_of(syn(5, 0x12)) == Kind::backscatter);
  CHECK(kind_of(syn(5, 0x04)) == Kind::backscatter);
  CHECK(kind_of(syn(5, 0x14)) == Kind::backscatter);
  CHECK(kind_of(syn(5, 0x10)) == Kind::other);
  CHECK(kind_of(syn(5, 0x01)) == Kind::other);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 17, 28), udp(1, 53, 8)}))) == Kind::scan);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 1, 28), icmp(8, 0)}))) == Kind::scan);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 1, 28), icmp(0, 0)}))) == Kind::backscatter);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 1, 28), icmp(3, 1)}))) == Kind::backscatter);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 1, 28), icmp(11, 0)}))) == Kind::backscatter);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 1, 28), icmp(13, 0)}))) == Kind::other);
  CHECK(kind_of(decode_raw(cat({ipv6(58, 8), icmp(128, 0)}))) == Kind::scan);
  CHECK(kind_of(decode_raw(cat({ipv6(58, 8), icmp(129, 0)}))) == Kind::backscatter);
  CHECK(kind_of(decode_raw(cat({ipv6(58, 8), icmp(1, 4)}))) == Kind::backscatter);
  CHECK(kind_of(decode_raw(cat({ipv6(58, 8), icmp(135, 0)}))) == Kind::other);
  CHECK(kind_of(decode_raw(cat({ipv4(1, 2, 17, 28, 1, 50), udp(1, 53, 8)}))) == Kind::other);
}

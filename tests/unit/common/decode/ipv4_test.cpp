// SPDX-License-Identifier: Apache-2.0
#include "common/decode/ipv4.h"

#include <catch2/catch.hpp>

#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"

using namespace teiten::decode;
using namespace teiten::test;

namespace {
DecodeStatus raw4(const Bytes& b, DecodedPacket& p, std::size_t caplen = SIZE_MAX) {
  return decode_frame(LinkType::ipv4, b, p, caplen);
}
}  // namespace

TEST_CASE("ipv4 decoder reads addresses, ID, protocol and length", "[decode][ipv4]") {
  const Bytes b =
      cat({ipv4(ip(10, 1, 2, 3), ip(192, 0, 2, 7), 6, 40, 4242), tcp(5555, 23, 9, 0x02)});
  DecodedPacket p;
  REQUIRE(raw4(b, p) == DecodeStatus::ok);
  CHECK(p.src4 == ip(10, 1, 2, 3));
  CHECK(p.dst4 == ip(192, 0, 2, 7));
  CHECK(p.ip_id == 4242);
  CHECK(p.ip_proto == 6);
  CHECK(p.ip_length == 40);
  CHECK(p.dport == 23);
}

TEST_CASE("ipv4 decoder rejects IHL below 5", "[decode][ipv4]") {
  Bytes b = cat({ipv4(1, 2, 6, 40), tcp(1, 2, 3, 2)});
  b[0] = 0x44;
  DecodedPacket p;
  CHECK(raw4(b, p) == DecodeStatus::ipv4_bad_ihl);
}

TEST_CASE("ipv4 decoder skips options to find the transport header", "[decode][ipv4]") {
  const Bytes opts = {0x01, 0x01, 0x01, 0x00, 0x94, 0x04, 0x00, 0x00};  // NOPs, EOL, router alert
  const Bytes b = cat({ipv4(1, 2, 6, 48, 1, 0, opts), tcp(1, 8080, 3, 0x02)});
  DecodedPacket p;
  REQUIRE(raw4(b, p) == DecodeStatus::ok);
  CHECK(p.dport == 8080);
}

TEST_CASE("ipv4 decoder reports options cut by the capture as truncation", "[decode][ipv4]") {
  const Bytes opts(8, 1);
  const Bytes b = cat({ipv4(1, 2, 6, 48, 1, 0, opts), tcp(1, 2, 3, 2)});
  DecodedPacket p;
  CHECK(raw4(b, p, 24) == DecodeStatus::ipv4_truncated);
  CHECK(raw4(b, p, 19) == DecodeStatus::ipv4_truncated);
}

TEST_CASE("ipv4 decoder checks total length against header and frame", "[decode][ipv4]") {
  DecodedPacket p;
  const Bytes below = cat({ipv4(1, 2, 6, 16), tcp(1, 2, 3, 2)});
  CHECK(raw4(below, p) == DecodeStatus::ipv4_bad_total_length);
  const Bytes beyond = cat({ipv4(1, 2, 6, 41), tcp(1, 2, 3, 2)});
  CHECK(raw4(beyond, p) == DecodeStatus::ipv4_bad_total_length);
  const Bytes zero = cat({ipv4(1, 2, 6, 0), tcp(1, 2, 3, 2)});
  CHECK(raw4(zero, p) == DecodeStatus::ipv4_bad_total_length);
}

TEST_CASE("ipv4 decoder rejects a wrong version where IPv4 was announced", "[decode][ipv4]") {
  Bytes b = cat({ipv4(1, 2, 6, 40), tcp(1, 2, 3, 2)});
  b[0] = 0x65;
  DecodedPacket p;
  CHECK(raw4(b, p) == DecodeStatus::ipv4_bad_version);
}

TEST_CASE("ipv4 non-first fragments have no transport header", "[decode][ipv4]") {
  const Bytes b = cat({ipv4(1, 2, 17, 28, 7, 100), udp(1, 2, 8)});
  DecodedPacket p;
  REQUIRE(raw4(b, p) == DecodeStatus::ok);
  CHECK(p.nonfirst_fragment);
  CHECK_FALSE(p.has_transport);
  // A first fragment (MF set, offset 0) still carries the ports.
  const Bytes first = cat({ipv4(1, 2, 17, 28, 7, 0x2000), udp(1, 53, 8)});
  REQUIRE(raw4(first, p) == DecodeStatus::ok);
  CHECK_FALSE(p.nonfirst_fragment);
  CHECK(p.dport == 53);
}

TEST_CASE("ipv4 decoder never reads past the captured length", "[decode][ipv4]") {
  const Bytes b = cat({ethernet(0x0800), ipv4(1, 2, 6, 40), tcp(1, 23, 3, 2)});
  DecodedPacket p;
  for (std::size_t cap = 0; cap < b.size(); ++cap) {
    // Each prefix lives in its own exactly-sized buffer, so ASan sees any over-read.
    const Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(cap));
    const DecodeStatus s =
        decode_packet(LinkType::ethernet, prefix.data(), prefix.size(), b.size(), p);
    CHECK(s != DecodeStatus::ok);
  }
}

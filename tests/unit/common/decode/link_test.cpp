// SPDX-License-Identifier: Apache-2.0
#include "common/decode/link.h"

#include <pcap/dlt.h>

#include <catch2/catch.hpp>

#include "common/decode/decode.h"
#include "tests/unit/packet_builder.h"

using namespace teiten::decode;
using namespace teiten::test;

TEST_CASE("link types map from libpcap DLT values", "[decode][link]") {
  CHECK(link_type_from_dlt(DLT_EN10MB) == LinkType::ethernet);
  CHECK(link_type_from_dlt(DLT_LINUX_SLL) == LinkType::linux_sll);
  CHECK(link_type_from_dlt(DLT_LINUX_SLL2) == LinkType::linux_sll2);
  CHECK(link_type_from_dlt(DLT_RAW) == LinkType::raw);
  CHECK(link_type_from_dlt(DLT_IPV4) == LinkType::ipv4);
  CHECK(link_type_from_dlt(DLT_IPV6) == LinkType::ipv6);
  CHECK(link_type_from_dlt(DLT_NULL) == LinkType::null_bsd);
  CHECK(link_type_from_dlt(DLT_LOOP) == LinkType::loop);
  CHECK_FALSE(link_type_from_dlt(DLT_NFLOG).has_value());
  CHECK_FALSE(link_type_from_dlt(DLT_SLIP).has_value());
  CHECK_FALSE(link_type_from_dlt(DLT_PPP).has_value());
}

TEST_CASE("ethernet decoder follows 802.1Q and 802.1ad tags", "[decode][link]") {
  const Bytes plain = ethernet(0x0800);
  auto r = decode_link(LinkType::ethernet, plain.data(), plain.size());
  CHECK(r.status == DecodeStatus::ok);
  CHECK(r.offset == 14);
  CHECK(r.proto == NetworkProto::ipv4);

  const Bytes qinq = ethernet(0x86DD, {0x88A8, 0x8100});
  r = decode_link(LinkType::ethernet, qinq.data(), qinq.size());
  CHECK(r.status == DecodeStatus::ok);
  CHECK(r.offset == 22);
  CHECK(r.proto == NetworkProto::ipv6);
}

TEST_CASE("ethernet decoder caps the number of VLAN tags", "[decode][link]") {
  const Bytes three = ethernet(0x0800, {0x88A8, 0x8100, 0x8100});
  CHECK(decode_link(LinkType::ethernet, three.data(), three.size()).status == DecodeStatus::ok);
  const Bytes four = ethernet(0x0800, {0x88A8, 0x8100, 0x8100, 0x8100});
  CHECK(decode_link(LinkType::ethernet, four.data(), four.size()).status ==
        DecodeStatus::vlan_depth_exceeded);
}

TEST_CASE("ethernet decoder names ARP and truncation", "[decode][link]") {
  const Bytes arp = ethernet(0x0806);
  CHECK(decode_link(LinkType::ethernet, arp.data(), arp.size()).status ==
        DecodeStatus::link_unsupported_protocol);
  const Bytes tagged = ethernet(0x0800, {0x8100});
  // Cut inside the inner EtherType.
  CHECK(decode_link(LinkType::ethernet, tagged.data(), 17).status == DecodeStatus::link_truncated);
  CHECK(decode_link(LinkType::ethernet, tagged.data(), 0).status == DecodeStatus::link_truncated);
}

TEST_CASE("linux cooked v1 and v2 headers", "[decode][link]") {
  Bytes sll(14, 0);
  put16(sll, 0x0800);
  auto r = decode_link(LinkType::linux_sll, sll.data(), sll.size());
  CHECK(r.status == DecodeStatus::ok);
  CHECK(r.offset == 16);
  CHECK(decode_link(LinkType::linux_sll, sll.data(), 15).status == DecodeStatus::link_truncated);

  Bytes sll2;
  put16(sll2, 0x86DD);
  sll2.resize(20, 0);
  r = decode_link(LinkType::linux_sll2, sll2.data(), sll2.size());
  CHECK(r.status == DecodeStatus::ok);
  CHECK(r.offset == 20);
  CHECK(r.proto == NetworkProto::ipv6);
  sll2[0] = 0x08;
  sll2[1] = 0x06;
  CHECK(decode_link(LinkType::linux_sll2, sll2.data(), sll2.size()).status ==
        DecodeStatus::link_unsupported_protocol);
}

TEST_CASE("NULL reads the family in either byte order, LOOP in network order", "[decode][link]") {
  const Bytes le_inet = {2, 0, 0, 0};
  const Bytes be_inet6_bsd = {0, 0, 0, 24};
  const Bytes be_inet = {0, 0, 0, 2};
  CHECK(decode_link(LinkType::null_bsd, le_inet.data(), 4).proto == NetworkProto::ipv4);
  CHECK(decode_link(LinkType::null_bsd, be_inet6_bsd.data(), 4).proto == NetworkProto::ipv6);
  CHECK(decode_link(LinkType::loop, be_inet.data(), 4).proto == NetworkProto::ipv4);
  CHECK(decode_link(LinkType::loop, le_inet.data(), 4).status ==
        DecodeStatus::link_unsupported_protocol);
  CHECK(decode_link(LinkType::null_bsd, le_inet.data(), 3).status == DecodeStatus::link_truncated);
}

TEST_CASE("raw link picks IPv4 or IPv6 by the version nibble", "[decode][link]") {
  const Bytes v4 = cat({ipv4(ip(1, 2, 3, 4), ip(5, 6, 7, 8), 6, 40), tcp(1, 23, 0, 0x02)});
  DecodedPacket p;
  CHECK(decode_packet(LinkType::raw, v4.data(), v4.size(), v4.size(), p) == DecodeStatus::ok);
  CHECK(p.ip_version == 4);
  const Bytes v6 = cat({ipv6(6, 20), tcp(1, 22, 0, 0x02)});
  CHECK(decode_packet(LinkType::raw, v6.data(), v6.size(), v6.size(), p) == DecodeStatus::ok);
  CHECK(p.ip_version == 6);
  Bytes bad = v4;
  bad[0] = 0x55;
  CHECK(decode_packet(LinkType::raw, bad.data(), bad.size(), bad.size(), p) ==
        DecodeStatus::ip_unsupported_version);
  CHECK(decode_packet(LinkType::raw, bad.data(), 0, 0, p) == DecodeStatus::link_truncated);
}

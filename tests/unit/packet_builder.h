// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers that build packets as byte vectors for decoder and classifier tests.
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "common/decode/decode.h"

namespace teiten::test {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(Bytes& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v >> 16));
  put16(b, static_cast<std::uint16_t>(v));
}
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// Ethernet header with optional VLAN tags (each entry is a TPID).
inline Bytes ethernet(std::uint16_t ethertype, std::initializer_list<std::uint16_t> tags = {}) {
  Bytes b = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  for (const auto tpid : tags) {
    put16(b, tpid);
    put16(b, 100);
  }
  put16(b, ethertype);
  return b;
}

/// IPv4 header; `options` bytes (multiple of 4) follow the fixed part.
inline Bytes ipv4(std::uint32_t src, std::uint32_t dst, std::uint8_t proto, std::uint16_t total_len,
                  std::uint16_t id = 1, std::uint16_t frag = 0, Bytes options = {}) {
  Bytes b;
  b.push_back(static_cast<std::uint8_t>(0x40 | (5 + options.size() / 4)));
  b.push_back(0);
  put16(b, total_len);
  put16(b, id);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  put32(b, src);
  put32(b, dst);
  b.insert(b.end(), options.begin(), options.end());
  return b;
}

/// IPv6 fixed header (addresses: 16 bytes each, given by their last byte and a prefix byte).
inline Bytes ipv6(std::uint8_t next, std::uint16_t payload_len, std::uint8_t src_last = 1,
                  std::uint8_t dst_last = 2) {
  Bytes b;
  put32(b, 0x60000000);
  put16(b, payload_len);
  b.push_back(next);
  b.push_back(64);
  for (int i = 0; i < 2; ++i) {
    Bytes a(16, 0);
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[15] = i == 0 ? src_last : dst_last;
    b.insert(b.end(), a.begin(), a.end());
  }
  return b;
}

inline Bytes tcp(std::uint16_t sport, std::uint16_t dport, std::uint32_t seq, std::uint8_t flags,
                 std::uint8_t data_offset_words = 5) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put32(b, seq);
  put32(b, 0);
  b.push_back(static_cast<std::uint8_t>(data_offset_words << 4));
  b.push_back(flags);
  put16(b, 1024);
  put16(b, 0);
  put16(b, 0);
  for (int i = 5; i < data_offset_words; ++i) put32(b, 0x01010101);  // NOP options
  return b;
}

inline Bytes udp(std::uint16_t sport, std::uint16_t dport, std::uint16_t length) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, length);
  put16(b, 0);
  return b;
}

inline Bytes icmp(std::uint8_t type, std::uint8_t code) {
  Bytes b = {type, code, 0, 0};
  put32(b, 0x12345678);
  return b;
}

inline constexpr std::uint32_t ip(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  return (std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d;
}

/// Decodes `b` as one frame of `link` whose first `caplen` bytes were captured (all by
/// default); the wire length is the whole of `b`.
inline decode::DecodeStatus decode_frame(decode::LinkType link, const Bytes& b,
                                         decode::DecodedPacket& p, std::size_t caplen = SIZE_MAX) {
  return decode::decode_packet(link, b.data(), caplen == SIZE_MAX ? b.size() : caplen, b.size(), p);
}

}  // namespace teiten::test

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>

namespace teiten::decode {

/// IP protocol numbers the decoders know.
inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kIpProtoTcp = 6;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoIcmpv6 = 58;

/// TCP flag bits (RFC 9293 section 3.1).
inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpAck = 0x10;

/// The fields of one packet that classification needs, decoded from captured bytes.
/// Plain value type, filled by decode_packet(); addresses in network byte order as bytes,
/// IPv4 also as a host-order integer.
struct DecodedPacket {
  std::uint8_t ip_version = 0;          ///< 4 or 6
  std::uint8_t ip_proto = 0;            ///< upper-layer protocol after the IPv6 extension chain
  bool nonfirst_fragment = false;       ///< a fragment with offset > 0: no transport header
  bool has_transport = false;           ///< sport/dport/seq/flags or icmp type/code are valid
  std::uint16_t ip_id = 0;              ///< IPv4 identification (0 for IPv6)
  std::uint32_t ip_length = 0;          ///< IP packet length in bytes as the header states it
  std::uint32_t src4 = 0;               ///< IPv4 source, host order
  std::uint32_t dst4 = 0;               ///< IPv4 destination, host order
  std::array<std::uint8_t, 16> src6{};  ///< IPv6 source
  std::array<std::uint8_t, 16> dst6{};  ///< IPv6 destination
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::uint32_t tcp_seq = 0;
  std::uint8_t tcp_flags = 0;
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
};

}  // namespace teiten::decode

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/classify/key.h"
#include "common/decode/packet.h"

namespace teiten::classify {

/// IP ID that ZMap (before 4.1) puts in every probe.
inline constexpr std::uint16_t kZmapIpId = 54321;

/// Scanner fingerprint of a decoded packet, checked in this order:
/// - mirai: IPv4 TCP, SYN set, ACK/RST/FIN clear, sequence number == destination IPv4
///   address (Mirai's scanner writes the target into the sequence number). IPv4 options
///   do not matter: the test is on header fields, wherever the TCP header starts.
/// - masscan: TCP SYN (ACK/RST/FIN clear) whose IP ID equals the low 16 bits of
///   dst address XOR dst port XOR sequence number (masscan's SYN cookie).
/// - zmap: IPv4 with IP ID 54321 (ZMap before 4.1).
Fingerprint fingerprint_of(const decode::DecodedPacket& p) noexcept;

/// scan (TCP SYN without ACK, UDP, ICMP/ICMPv6 echo request), backscatter (TCP SYN-ACK or
/// RST, ICMP/ICMPv6 echo reply and error messages) or other.
Kind kind_of(const decode::DecodedPacket& p) noexcept;

/// Transport protocol of a decoded packet (ICMP only over IPv4, ICMPv6 only over IPv6).
Proto proto_of(const decode::DecodedPacket& p) noexcept;

}  // namespace teiten::classify

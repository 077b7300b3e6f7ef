// SPDX-License-Identifier: Apache-2.0
#include "common/classify/fingerprint.h"

namespace teiten::classify {
namespace {

using decode::DecodedPacket;

bool is_pure_syn(const DecodedPacket& p) noexcept {
  constexpr std::uint8_t mask =
      decode::kTcpSyn | decode::kTcpAck | decode::kTcpRst | decode::kTcpFin;
  return (p.tcp_flags & mask) == decode::kTcpSyn;
}

bool is_tcp_with_header(const DecodedPacket& p) noexcept {
  return p.ip_proto == decode::kIpProtoTcp && p.has_transport;
}

// ICMPv4 (RFC 792/1122) and ICMPv6 (RFC 4443) message types.
constexpr std::uint8_t kIcmpEchoReply = 0, kIcmpUnreach = 3, kIcmpSourceQuench = 4,
                       kIcmpRedirect = 5, kIcmpEcho = 8, kIcmpTimeExceeded = 11,
                       kIcmpParamProblem = 12;
constexpr std::uint8_t kIcmp6EchoRequest = 128, kIcmp6EchoReply = 129;

}  // namespace

Proto proto_of(const DecodedPacket& p) noexcept {
  switch (p.ip_proto) {
    case decode::kIpProtoTcp:
      return Proto::tcp;
    case decode::kIpProtoUdp:
      return Proto::udp;
    case decode::kIpProtoIcmp:
      return p.ip_version == 4 ? Proto::icmp : Proto::other;
    case decode::kIpProtoIcmpv6:
      return p.ip_version == 6 ? Proto::icmpv6 : Proto::other;
    default:
      return Proto::other;
  }
}

Fingerprint fingerprint_of(const DecodedPacket& p) noexcept {
  if (p.ip_version != 4) return Fingerprint::none;
  if (is_tcp_with_header(p) && is_pure_syn(p)) {
    if (p.tcp_seq == p.dst4) return Fingerprint::mirai;
    const std::uint32_t cookie = p.dst4 ^ p.dport ^ p.tcp_seq;
    if (p.ip_id == static_cast<std::uint16_t>(cookie & 0xFFFF)) return Fingerprint::masscan;
  }
  if (p.ip_id == kZmapIpId) return Fingerprint::zmap;
  return Fingerprint::none;
}

Kind kind_of(const DecodedPacket& p) noexcept {
  if (!p.has_transport) return Kind::other;
  switch (proto_of(p)) {
    case Proto::tcp: {
      const bool syn = (p.tcp_flags & decode::kTcpSyn) != 0;
      const bool ack = (p.tcp_flags & decode::kTcpAck) != 0;
      const bool rst = (p.tcp_flags & decode::kTcpRst) != 0;
      if (rst || (syn && ack)) return Kind::backscatter;
      if (syn) return Kind::scan;
      return Kind::other;
    }
    case Proto::udp:
      return Kind::scan;
    case Proto::icmp:
      switch (p.icmp_type) {
        case kIcmpEcho:
          return Kind::scan;
        case kIcmpEchoReply:
        case kIcmpUnreach:
        case kIcmpSourceQuench:
        case kIcmpRedirect:
        case kIcmpTimeExceeded:
        case kIcmpParamProblem:
          return Kind::backscatter;
        default:
          return Kind::other;
      }
    case Proto::icmpv6:
      if (p.icmp_type == kIcmp6EchoRequest) return Kind::scan;
      // Types 1-127 are error messages (RFC 4443 section 2.1).
      if (p.icmp_type == kIcmp6EchoReply || (p.icmp_type >= 1 && p.icmp_type <= 127)) {
        return Kind::backscatter;
      }
      return Kind::other;
    default:
      return Kind::other;
  }
}

}  // namespace teiten::classify

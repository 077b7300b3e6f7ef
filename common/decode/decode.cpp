// SPDX-License-Identifier: Apache-2.0
#include "common/decode/decode.h"

#include "common/decode/ipv4.h"
#include "common/decode/ipv6.h"
#include "common/decode/transport.h"

namespace teiten::decode {

DecodeStatus decode_packet(LinkType link, const std::uint8_t* data, std::size_t caplen,
                           std::size_t wire_len, DecodedPacket& out) noexcept {
  out = DecodedPacket{};
  if (wire_len < caplen) wire_len = caplen;  // a savefile may claim less than it holds
  const LinkResult lr = decode_link(link, data, caplen);
  if (lr.status != DecodeStatus::ok) return lr.status;

  const std::uint8_t* ip = data + lr.offset;
  const std::size_t ip_cap = caplen - lr.offset;
  const std::size_t ip_wire = wire_len - lr.offset;
  NetworkProto proto = lr.proto;
  if (proto == NetworkProto::by_version_nibble) {
    if (ip_cap < 1) return DecodeStatus::link_truncated;
    switch (ip[0] >> 4) {
      case 4:
        proto = NetworkProto::ipv4;
        break;
      case 6:
        proto = NetworkProto::ipv6;
        break;
      default:
        return DecodeStatus::ip_unsupported_version;
    }
  }

  TransportView l4;
  const bool v6 = proto == NetworkProto::ipv6;
  const DecodeStatus ip_status =
      v6 ? decode_ipv6(ip, ip_cap, ip_wire, out, l4) : decode_ipv4(ip, ip_cap, ip_wire, out, l4);
  if (ip_status != DecodeStatus::ok) return ip_status;
  if (out.nonfirst_fragment) return DecodeStatus::ok;

  switch (out.ip_proto) {
    case kIpProtoTcp:
      return decode_tcp(l4, out);
    case kIpProtoUdp:
      return decode_udp(l4, out);
    case kIpProtoIcmp:
      return v6 ? DecodeStatus::ok : decode_icmp(l4, false, out);
    case kIpProtoIcmpv6:
      return v6 ? decode_icmp(l4, true, out) : DecodeStatus::ok;
    default:
      return DecodeStatus::ok;  // another protocol: classified as `other`, no port
  }
}

}  // namespace teiten::decode

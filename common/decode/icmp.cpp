// SPDX-License-Identifier: Apache-2.0
#include "common/decode/transport.h"

namespace teiten::decode {

DecodeStatus decode_icmp(const TransportView& l4, bool v6, DecodedPacket& out) noexcept {
  // Type, code, checksum: the part common to every ICMP and ICMPv6 message.
  if (l4.caplen < 4) return v6 ? DecodeStatus::icmpv6_truncated : DecodeStatus::icmp_truncated;
  out.icmp_type = l4.data[0];
  out.icmp_code = l4.data[1];
  out.has_transport = true;
  return DecodeStatus::ok;
}

}  // namespace teiten::decode

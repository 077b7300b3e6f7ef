// SPDX-License-Identifier: Apache-2.0
#include "common/decode/bytes.h"
#include "common/decode/transport.h"

namespace teiten::decode {

DecodeStatus decode_udp(const TransportView& l4, DecodedPacket& out) noexcept {
  constexpr std::size_t kHeader = 8;
  if (l4.caplen < kHeader) return DecodeStatus::udp_truncated;
  const std::size_t length = load_be16(l4.data + 4);
  // Length 0 is legal only for IPv6 jumbograms (RFC 2675 section 4).
  if ((length < kHeader && !(length == 0 && out.ip_version == 6)) || length > l4.length) {
    return DecodeStatus::udp_bad_length;
  }
  out.sport = load_be16(l4.data);
  out.dport = load_be16(l4.data + 2);
  out.has_transport = true;
  return DecodeStatus::ok;
}

}  // namespace teiten::decode

// SPDX-License-Identifier: Apache-2.0
#include "common/decode/ipv6.h"

#include <algorithm>

#include "common/decode/bytes.h"
#include "common/decode/ipv6_ext.h"

namespace teiten::decode {

DecodeStatus decode_ipv6(const std::uint8_t* data, std::size_t caplen, std::size_t wire_len,
                         DecodedPacket& out, TransportView& l4) noexcept {
  constexpr std::size_t kHeader = 40;
  if (caplen < 1) return DecodeStatus::ipv6_truncated;
  if ((data[0] >> 4) != 6) return DecodeStatus::ipv6_bad_version;
  if (caplen < kHeader) return DecodeStatus::ipv6_truncated;

  std::size_t payload_len = load_be16(data + 4);
  if (payload_len == 0) {
    // Jumbogram (RFC 2675) or an empty packet: the frame is the only length there is.
    payload_len = wire_len >= kHeader ? wire_len - kHeader : 0;
  } else if (kHeader + payload_len > wire_len) {
    return DecodeStatus::ipv6_bad_payload_length;
  }
  const std::size_t packet_len = kHeader + payload_len;
  const std::size_t cap = std::min(caplen, packet_len);

  const Ipv6ExtResult ext = walk_ipv6_ext_headers(data + kHeader, cap - kHeader, data[6]);
  if (ext.status != DecodeStatus::ok) return ext.status;

  out.ip_version = 6;
  out.ip_proto = ext.upper_proto;
  out.nonfirst_fragment = ext.nonfirst_fragment;
  std::copy_n(data + 8, 16, out.src6.begin());
  std::copy_n(data + 24, 16, out.dst6.begin());
  out.ip_length = static_cast<std::uint32_t>(std::min<std::size_t>(packet_len, UINT32_MAX));

  const std::size_t upper = kHeader + ext.offset;
  l4.data = data + upper;
  l4.caplen = cap - upper;
  l4.length = packet_len >= upper ? packet_len - upper : 0;
  return DecodeStatus::ok;
}

}  // namespace teiten::decode

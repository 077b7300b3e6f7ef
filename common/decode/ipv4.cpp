// SPDX-License-Identifier: Apache-2.0
#include "common/decode/ipv4.h"

#include <algorithm>

#include "common/decode/bytes.h"

namespace teiten::decode {

DecodeStatus decode_ipv4(const std::uint8_t* data, std::size_t caplen, std::size_t wire_len,
                         DecodedPacket& out, TransportView& l4) noexcept {
  constexpr std::size_t kMinHeader = 20;
  if (caplen < 1) return DecodeStatus::ipv4_truncated;
  if ((data[0] >> 4) != 4) return DecodeStatus::ipv4_bad_version;
  const std::size_t header_len = static_cast<std::size_t>(data[0] & 0x0F) * 4;
  if (header_len < kMinHeader) return DecodeStatus::ipv4_bad_ihl;
  if (caplen < header_len) return DecodeStatus::ipv4_truncated;

  const std::size_t total_len = load_be16(data + 2);
  // A total length below the header cannot be; one beyond what the wire carried means the
  // header lies (TSO frames captured on the sending host carry 0 here: also refused,
  // since a darknet sensor only sees received frames).
  if (total_len < header_len || total_len > wire_len) return DecodeStatus::ipv4_bad_total_length;

  out.ip_version = 4;
  out.ip_id = load_be16(data + 4);
  const std::uint16_t frag = load_be16(data + 6);
  out.nonfirst_fragment = (frag & 0x1FFF) != 0;  // fragment offset in 8-byte units
  out.ip_proto = data[9];
  out.src4 = load_be32(data + 12);
  out.dst4 = load_be32(data + 16);
  out.ip_length = static_cast<std::uint32_t>(total_len);

  l4.data = data + header_len;
  l4.length = total_len - header_len;
  l4.caplen = std::min(caplen, total_len) - header_len;
  return DecodeStatus::ok;
}

}  // namespace teiten::decode

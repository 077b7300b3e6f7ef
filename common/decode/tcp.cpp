// SPDX-License-Identifier: Apache-2.0
#include "common/decode/bytes.h"
#include "common/decode/transport.h"

namespace teiten::decode {

DecodeStatus decode_tcp(const TransportView& l4, DecodedPacket& out) noexcept {
  constexpr std::size_t kHeader = 20;
  if (l4.caplen < kHeader) return DecodeStatus::tcp_truncated;
  const std::size_t data_offset = static_cast<std::size_t>(l4.data[12] >> 4) * 4;
  if (data_offset < kHeader || data_offset > l4.length) return DecodeStatus::tcp_bad_data_offset;
  out.sport = load_be16(l4.data);
  out.dport = load_be16(l4.data + 2);
  out.tcp_seq = load_be32(l4.data + 4);
  out.tcp_flags = l4.data[13];
  out.has_transport = true;
  return DecodeStatus::ok;
}

}  // namespace teiten::decode

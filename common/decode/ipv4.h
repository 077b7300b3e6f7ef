// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/decode/decode_status.h"
#include "common/decode/packet.h"

namespace teiten::decode {

/// The transport-layer bytes that follow an IP header: `caplen` of them are captured,
/// `length` is what the IP header says the payload is (caplen <= length unless the
/// capture was cut by the snap length).
struct TransportView {
  const std::uint8_t* data = nullptr;
  std::size_t caplen = 0;
  std::size_t length = 0;
};

/// Decodes an IPv4 header (RFC 791) from `caplen` captured bytes of a datagram whose
/// frame carried `wire_len` bytes from this header on. Fills addresses, protocol, ID,
/// length and fragment state of `out`, and `l4` with the payload when it holds a
/// transport header (offset 0). Never reads past `caplen`.
DecodeStatus decode_ipv4(const std::uint8_t* data, std::size_t caplen, std::size_t wire_len,
                         DecodedPacket& out, TransportView& l4) noexcept;

}  // namespace teiten::decode

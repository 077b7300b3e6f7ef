// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/decode/decode_status.h"
#include "common/decode/ipv4.h"
#include "common/decode/packet.h"

namespace teiten::decode {

/// Decodes an IPv6 header (RFC 8200) and walks its extension-header chain (see
/// ipv6_ext.h) from `caplen` captured bytes of a packet whose frame carried `wire_len`
/// bytes from this header on. Fills addresses, upper-layer protocol, length and fragment
/// state of `out`, and `l4` with the upper-layer bytes. Never reads past `caplen`.
DecodeStatus decode_ipv6(const std::uint8_t* data, std::size_t caplen, std::size_t wire_len,
                         DecodedPacket& out, TransportView& l4) noexcept;

}  // namespace teiten::decode

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/decode/decode_status.h"
#include "common/decode/link.h"
#include "common/decode/packet.h"

namespace teiten::decode {

/// Decodes one captured frame: link layer, IPv4/IPv6, then TCP/UDP/ICMP/ICMPv6 unless it
/// is a non-first fragment or another protocol. `caplen` bytes of `data` are readable;
/// `wire_len` is the frame's length on the wire (>= caplen). Returns `ok` with `out`
/// filled, or the reason the packet cannot be classified. noexcept, allocation-free,
/// never reads past `caplen`. Any thread.
DecodeStatus decode_packet(LinkType link, const std::uint8_t* data, std::size_t caplen,
                           std::size_t wire_len, DecodedPacket& out) noexcept;

}  // namespace teiten::decode

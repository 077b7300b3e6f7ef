// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/decode/decode_status.h"
#include "common/decode/ipv4.h"
#include "common/decode/packet.h"

namespace teiten::decode {

/// Decodes the fixed TCP header (RFC 9293 section 3.1): ports, sequence number, flags.
DecodeStatus decode_tcp(const TransportView& l4, DecodedPacket& out) noexcept;

/// Decodes the UDP header (RFC 768): ports, and checks its length field.
DecodeStatus decode_udp(const TransportView& l4, DecodedPacket& out) noexcept;

/// Decodes the ICMP (RFC 792) or ICMPv6 (RFC 4443) type and code.
DecodeStatus decode_icmp(const TransportView& l4, bool v6, DecodedPacket& out) noexcept;

}  // namespace teiten::decode

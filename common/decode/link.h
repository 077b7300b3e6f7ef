// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/decode/decode_status.h"

namespace teiten::decode {

/// Link layers the sensor decodes. Anything else is refused when a capture opens.
enum class LinkType : std::uint8_t {
  ethernet,    ///< DLT_EN10MB, with 802.1Q / 802.1ad (QinQ) tags
  linux_sll,   ///< DLT_LINUX_SLL (Linux cooked v1)
  linux_sll2,  ///< DLT_LINUX_SLL2 (Linux cooked v2)
  raw,         ///< DLT_RAW: IPv4 or IPv6 by the version nibble
  ipv4,        ///< DLT_IPV4
  ipv6,        ///< DLT_IPV6
  null_bsd,    ///< DLT_NULL: 4-byte address family in the capturing host's byte order
  loop,        ///< DLT_LOOP: 4-byte address family in network byte order
};

/// Maps a libpcap DLT_ value to a supported link type, or nullopt if unsupported.
std::optional<LinkType> link_type_from_dlt(int dlt) noexcept;

/// Name of a link type for messages.
std::string_view to_string(LinkType t) noexcept;

/// Network-layer protocol announced by the link layer.
enum class NetworkProto : std::uint8_t { ipv4, ipv6, by_version_nibble };

/// Where the network layer starts, and what the link layer says it is.
struct LinkResult {
  DecodeStatus status = DecodeStatus::ok;
  std::size_t offset = 0;
  NetworkProto proto = NetworkProto::by_version_nibble;
};

/// Maximum number of stacked VLAN tags accepted (QinQ needs 2).
inline constexpr int kMaxVlanTags = 3;

/// Decodes the link-layer header of `caplen` captured bytes. Never reads past `caplen`.
LinkResult decode_link(LinkType type, const std::uint8_t* data, std::size_t caplen) noexcept;

}  // namespace teiten::decode

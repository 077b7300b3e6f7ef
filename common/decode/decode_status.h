// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace teiten::decode {

/// Outcome of decoding one captured packet. Everything except `ok` is a named reason under
/// which the packet is counted instead of classified (malformed, truncated or unsupported).
/// The enumerators are stable: their names appear in sealed buckets and metrics.
enum class DecodeStatus : std::uint8_t {
  ok,
  link_truncated,             ///< shorter than the link-layer header
  link_unsupported_protocol,  ///< link header names a protocol other than IPv4/IPv6 (ARP, LLC, ...)
  vlan_depth_exceeded,        ///< more 802.1Q/802.1ad tags than the cap
  ip_unsupported_version,     ///< raw-IP link whose first nibble is neither 4 nor 6
  ipv4_truncated,             ///< fewer captured bytes than the IPv4 header (with options)
  ipv4_bad_version,           ///< version field is not 4 where IPv4 was announced
  ipv4_bad_ihl,               ///< IHL below 5
  ipv4_bad_total_length,      ///< total length below the header length or beyond the frame
  ipv6_truncated,             ///< fewer captured bytes than the fixed IPv6 header
  ipv6_bad_version,           ///< version field is not 6 where IPv6 was announced
  ipv6_bad_payload_length,    ///< payload length beyond the frame
  ipv6_ext_truncated,         ///< an extension header runs past the captured bytes
  ipv6_ext_depth_exceeded,    ///< more extension headers than the cap
  tcp_truncated,              ///< fewer captured bytes than the fixed TCP header
  tcp_bad_data_offset,        ///< data offset below 5 words or beyond the segment
  udp_truncated,              ///< fewer captured bytes than the UDP header
  udp_bad_length,             ///< UDP length below 8 or beyond the IP payload
  icmp_truncated,             ///< fewer captured bytes than the ICMP type/code/checksum
  icmpv6_truncated,           ///< fewer captured bytes than the ICMPv6 type/code/checksum
  count_
};

inline constexpr std::size_t kDecodeStatusCount = static_cast<std::size_t>(DecodeStatus::count_);

/// Stable snake_case name of a status (used in JSON and metric labels).
constexpr std::string_view to_string(DecodeStatus s) noexcept {
  constexpr std::array<std::string_view, kDecodeStatusCount> names = {
      "ok",
      "link_truncated",
      "link_unsupported_protocol",
      "vlan_depth_exceeded",
      "ip_unsupported_version",
      "ipv4_truncated",
      "ipv4_bad_version",
      "ipv4_bad_ihl",
      "ipv4_bad_total_length",
      "ipv6_truncated",
      "ipv6_bad_version",
      "ipv6_bad_payload_length",
      "ipv6_ext_truncated",
      "ipv6_ext_depth_exceeded",
      "tcp_truncated",
      "tcp_bad_data_offset",
      "udp_truncated",
      "udp_bad_length",
      "icmp_truncated",
      "icmpv6_truncated",
  };
  const auto i = static_cast<std::size_t>(s);
  return i < names.size() ? names[i] : std::string_view{"unknown"};
}

/// Per-reason counters, indexed by DecodeStatus. Single writer.
using DecodeCounters = std::array<std::uint64_t, kDecodeStatusCount>;

}  // namespace teiten::decode

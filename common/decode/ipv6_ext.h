// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/decode/decode_status.h"

namespace teiten::decode {

/// Maximum number of IPv6 extension headers walked before the packet is refused.
/// Legitimate packets carry two or three; long chains are an evasion technique.
inline constexpr int kMaxIpv6ExtHeaders = 8;

/// Result of walking an IPv6 extension-header chain.
struct Ipv6ExtResult {
  DecodeStatus status = DecodeStatus::ok;
  std::uint8_t upper_proto = 0;    ///< first non-extension Next Header value
  std::size_t offset = 0;          ///< where the upper-layer header starts (from `data`)
  bool nonfirst_fragment = false;  ///< a Fragment header with offset > 0 was met
};

/// Walks the extension headers that follow a fixed IPv6 header. `data` points at the
/// first extension header (40 bytes into the packet), `caplen` captured bytes remain,
/// `next` is the fixed header's Next Header. Stops at the first upper-layer protocol,
/// at No Next Header (59), at ESP (50, encrypted beyond), or at a non-first fragment.
Ipv6ExtResult walk_ipv6_ext_headers(const std::uint8_t* data, std::size_t caplen,
                                    std::uint8_t next) noexcept;

}  // namespace teiten::decode

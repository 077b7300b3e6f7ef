// SPDX-License-Identifier: Apache-2.0
#include "common/decode/ipv6_ext.h"

#include "common/decode/bytes.h"

namespace teiten::decode {
namespace {

constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kAuthHeader = 51;
constexpr std::uint8_t kDestOptions = 60;
constexpr std::uint8_t kMobility = 135;
constexpr std::uint8_t kHip = 139;
constexpr std::uint8_t kShim6 = 140;

}  // namespace

Ipv6ExtResult walk_ipv6_ext_headers(const std::uint8_t* data, std::size_t caplen,
                                    std::uint8_t next) noexcept {
  Ipv6ExtResult r;
  std::size_t off = 0;
  for (int depth = 0;; ++depth) {
    std::size_t len = 0;
    switch (next) {
      case kHopByHop:
      case kRouting:
      case kDestOptions:
      case kMobility:
      case kHip:
      case kShim6:
        // RFC 8200 section 4.3: Hdr Ext Len in 8-octet units, not counting the first 8.
        if (off + 2 > caplen) return {DecodeStatus::ipv6_ext_truncated, 0, 0, false};
        len = (static_cast<std::size_t>(data[off + 1]) + 1) * 8;
        break;
      case kAuthHeader:
        // RFC 4302 section 2.2: Payload Len in 4-octet units, minus 2.
        if (off + 2 > caplen) return {DecodeStatus::ipv6_ext_truncated, 0, 0, false};
        len = (static_cast<std::size_t>(data[off + 1]) + 2) * 4;
        break;
      case kFragment: {
        // RFC 8200 section 4.5: fixed 8 bytes; offset in the upper 13 bits of bytes 2-3.
        if (off + 8 > caplen) return {DecodeStatus::ipv6_ext_truncated, 0, 0, false};
        if ((load_be16(data + off + 2) & 0xFFF8) != 0) {
          r.upper_proto = data[off];
          r.offset = off + 8;
          r.nonfirst_fragment = true;
          return r;
        }
        len = 8;
        break;
      }
      default:
        r.upper_proto = next;
        r.offset = off;
        return r;
    }
    if (depth >= kMaxIpv6ExtHeaders) return {DecodeStatus::ipv6_ext_depth_exceeded, 0, 0, false};
    if (off + len > caplen) return {DecodeStatus::ipv6_ext_truncated, 0, 0, false};
    next = data[off];
    off += len;
  }
}

}  // namespace teiten::decode

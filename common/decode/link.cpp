// SPDX-License-Identifier: Apache-2.0
#include "common/decode/link.h"

#include <pcap/dlt.h>

#include "common/decode/bytes.h"

namespace teiten::decode {
namespace {

constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr std::uint16_t kEtherTypeVlan = 0x8100;      // 802.1Q
constexpr std::uint16_t kEtherTypeQinQ = 0x88A8;      // 802.1ad
constexpr std::uint16_t kEtherTypeQinQ9100 = 0x9100;  // pre-standard QinQ, still seen

// Follows an EtherType at data[off], skipping VLAN tags (4 bytes each: TCI then the
// inner EtherType). Used by Ethernet and by the Linux cooked headers, which carry the
// same protocol field.
LinkResult follow_ethertype(const std::uint8_t* data, std::size_t caplen,
                            std::size_t off) noexcept {
  for (int tags = 0;; ++tags) {
    if (off + 2 > caplen) return {DecodeStatus::link_truncated, 0, {}};
    const std::uint16_t type = load_be16(data + off);
    switch (type) {
      case kEtherTypeIpv4:
        return {DecodeStatus::ok, off + 2, NetworkProto::ipv4};
      case kEtherTypeIpv6:
        return {DecodeStatus::ok, off + 2, NetworkProto::ipv6};
      case kEtherTypeVlan:
      case kEtherTypeQinQ:
      case kEtherTypeQinQ9100:
        if (tags >= kMaxVlanTags) return {DecodeStatus::vlan_depth_exceeded, 0, {}};
        off += 4;  // skip this EtherType and the TCI; the next EtherType follows
        break;
      default:
        return {DecodeStatus::link_unsupported_protocol, 0, {}};
    }
  }
}

// Address families seen in DLT_NULL/DLT_LOOP headers: AF_INET is 2 everywhere; AF_INET6
// differs by the capturing OS (Linux 10, BSDs 24, FreeBSD 28, Darwin 30).
LinkResult from_family(std::uint32_t af) noexcept {
  switch (af) {
    case 2:
      return {DecodeStatus::ok, 4, NetworkProto::ipv4};
    case 10:
    case 24:
    case 28:
    case 30:
      return {DecodeStatus::ok, 4, NetworkProto::ipv6};
    default:
      return {DecodeStatus::link_unsupported_protocol, 0, {}};
  }
}

}  // namespace

std::optional<LinkType> link_type_from_dlt(int dlt) noexcept {
  switch (dlt) {
    case DLT_EN10MB:
      return LinkType::ethernet;
    case DLT_LINUX_SLL:
      return LinkType::linux_sll;
#ifdef DLT_LINUX_SLL2
    case DLT_LINUX_SLL2:
      return LinkType::linux_sll2;
#endif
    case DLT_RAW:  // libpcap maps LINKTYPE_RAW (101) in savefiles to DLT_RAW
      return LinkType::raw;
    case DLT_IPV4:
      return LinkType::ipv4;
    case DLT_IPV6:
      return LinkType::ipv6;
    case DLT_NULL:
      return LinkType::null_bsd;
    case DLT_LOOP:
      return LinkType::loop;
    default:
      return std::nullopt;
  }
}

std::string_view to_string(LinkType t) noexcept {
  switch (t) {
    case LinkType::ethernet:
      return "EN10MB";
    case LinkType::linux_sll:
      return "LINUX_SLL";
    case LinkType::linux_sll2:
      return "LINUX_SLL2";
    case LinkType::raw:
      return "RAW";
    case LinkType::ipv4:
      return "IPV4";
    case LinkType::ipv6:
      return "IPV6";
    case LinkType::null_bsd:
      return "NULL";
    case LinkType::loop:
      return "LOOP";
  }
  return "unknown";
}

LinkResult decode_link(LinkType type, const std::uint8_t* data, std::size_t caplen) noexcept {
  switch (type) {
    case LinkType::ethernet:
      // dst MAC (6), src MAC (6), EtherType.
      return follow_ethertype(data, caplen, 12);
    case LinkType::linux_sll:
      // packet type (2), ARPHRD (2), addr len (2), addr (8), protocol (2).
      if (caplen < 16) return {DecodeStatus::link_truncated, 0, {}};
      return follow_ethertype(data, caplen, 14);
    case LinkType::linux_sll2: {
      // protocol (2), reserved (2), ifindex (4), ARPHRD (2), pkttype (1), addr len (1),
      // addr (8): 20 bytes, the protocol first. The kernel strips VLAN tags for SLL2.
      if (caplen < 20) return {DecodeStatus::link_truncated, 0, {}};
      const std::uint16_t proto = load_be16(data);
      if (proto == kEtherTypeIpv4) return {DecodeStatus::ok, 20, NetworkProto::ipv4};
      if (proto == kEtherTypeIpv6) return {DecodeStatus::ok, 20, NetworkProto::ipv6};
      return {DecodeStatus::link_unsupported_protocol, 0, {}};
    }
    case LinkType::raw:
      return {DecodeStatus::ok, 0, NetworkProto::by_version_nibble};
    case LinkType::ipv4:
      return {DecodeStatus::ok, 0, NetworkProto::ipv4};
    case LinkType::ipv6:
      return {DecodeStatus::ok, 0, NetworkProto::ipv6};
    case LinkType::null_bsd: {
      if (caplen < 4) return {DecodeStatus::link_truncated, 0, {}};
      // Host byte order of the machine that captured: try both orders.
      const LinkResult le = from_family(load_le32(data));
      return le.status == DecodeStatus::ok ? le : from_family(load_be32(data));
    }
    case LinkType::loop:
      if (caplen < 4) return {DecodeStatus::link_truncated, 0, {}};
      return from_family(load_be32(data));
  }
  return {DecodeStatus::link_unsupported_protocol, 0, {}};
}

}  // namespace teiten::decode

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace teiten::collector {

/// A destination as the seed writes it: "23/TCP", "5060/UDP", "ICMP".
struct Destination {
  std::string proto;  ///< tcp, udp, icmp, icmpv6, other
  int port = -1;      ///< -1: no port (ICMP ranked as one entry, fragments)
  std::string label() const;
  friend auto operator<=>(const Destination&, const Destination&) = default;
};

/// A destination of a stored row as an integer (proto * 65537 + port + 1), ICMP and the
/// protocols without ports as one destination each: for sums over millions of rows.
inline std::uint32_t destination_code(std::string_view proto, std::int64_t port) {
  const std::uint32_t i = proto == "tcp"      ? 0
                          : proto == "udp"    ? 1
                          : proto == "icmp"   ? 2
                          : proto == "icmpv6" ? 3
                                              : 4;
  if (i >= 2 || port < -1 || port > 65535) port = -1;  // ICMP: every type as one entry
  return i * 65537 + static_cast<std::uint32_t>(port + 1);
}

/// The destination of a destination_code().
inline Destination destination_of(std::uint64_t code) {
  static constexpr const char* kProtos[] = {"tcp", "udp", "icmp", "icmpv6", "other"};
  return Destination{kProtos[code / 65537 < 5 ? code / 65537 : 4],
                     static_cast<int>(code % 65537) - 1};
}

}  // namespace teiten::collector

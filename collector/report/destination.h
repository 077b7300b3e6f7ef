// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <compare>
#include <string>

namespace teiten::collector {

/// A destination as the seed writes it: "23/TCP", "5060/UDP", "ICMP".
struct Destination {
  std::string proto;  ///< tcp, udp, icmp, icmpv6, other
  int port = -1;      ///< -1: no port (ICMP ranked as one entry, fragments)
  std::string label() const;
  friend auto operator<=>(const Destination&, const Destination&) = default;
};

}  // namespace teiten::collector

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::classify {

/// The sensor's own addresses: single IPv4/IPv6 addresses or CIDR prefixes (a darknet
/// often owns a whole prefix). Immutable after construction; any thread may read.
class AddressSet {
 public:
  /// Adds "192.0.2.10", "2001:db8::1", "198.51.100.0/24" or "2001:db8::/64". Returns an
  /// error message (without position) when the text is not an address or prefix.
  std::optional<std::string> add(std::string_view text);

  bool contains_v4(std::uint32_t addr) const noexcept {
    for (const auto& p : v4_) {
      if ((addr & p.mask) == p.net) return true;
    }
    return false;
  }
  bool contains_v6(const std::array<std::uint8_t, 16>& addr) const noexcept;
  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  std::size_t size() const noexcept { return v4_.size() + v6_.size(); }

 private:
  struct V4 {
    std::uint32_t net;
    std::uint32_t mask;
  };
  struct V6 {
    std::array<std::uint8_t, 16> net;
    unsigned prefix;
  };
  std::vector<V4> v4_;
  std::vector<V6> v6_;
};

}  // namespace teiten::classify

// SPDX-License-Identifier: Apache-2.0
#include "common/classify/address_set.h"

#include <arpa/inet.h>

#include <charconv>

namespace teiten::classify {

std::optional<std::string> AddressSet::add(std::string_view text) {
  std::string addr{text};
  std::optional<unsigned> prefix;
  if (const auto slash = text.find('/'); slash != std::string_view::npos) {
    addr = std::string{text.substr(0, slash)};
    const std::string_view len = text.substr(slash + 1);
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (ec != std::errc{} || end != len.data() + len.size() || len.empty()) {
      return "'" + std::string{text} + "' has an invalid prefix length";
    }
    prefix = v;
  }
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    const unsigned bits = prefix.value_or(32);
    if (bits > 32) return "'" + std::string{text} + "': IPv4 prefix length above 32";
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    const std::uint32_t host = ntohl(a4.s_addr);
    if ((host & ~mask) != 0) {
      return "'" + std::string{text} + "' has host bits set beyond the prefix length";
    }
    v4_.push_back({host & mask, mask});
    return std::nullopt;
  }
  if (inet_pton(AF_INET6, addr.c_str(), &a6) == 1) {
    const unsigned bits = prefix.value_or(128);
    if (bits > 128) return "'" + std::string{text} + "': IPv6 prefix length above 128";
    V6 v{};
    for (unsigned i = 0; i < 16; ++i) {
      const unsigned keep = bits >= (i + 1) * 8 ? 8 : (bits > i * 8 ? bits - i * 8 : 0);
      const auto m = static_cast<std::uint8_t>(keep == 0 ? 0 : 0xFF << (8 - keep));
      if ((a6.s6_addr[i] & ~m & 0xFF) != 0) {
        return "'" + std::string{text} + "' has host bits set beyond the prefix length";
      }
      v.net[i] = a6.s6_addr[i];
    }
    v.prefix = bits;
    v6_.push_back(v);
    return std::nullopt;
  }
  return "'" + std::string{text} + "' is not an IPv4 or IPv6 address or prefix";
}

bool AddressSet::contains_v6(const std::array<std::uint8_t, 16>& addr) const noexcept {
  for (const auto& p : v6_) {
    unsigned bits = p.prefix;
    bool match = true;
    for (unsigned i = 0; i < 16 && bits > 0 && match; ++i) {
      const unsigned keep = bits >= 8 ? 8 : bits;
      const auto m = static_cast<std::uint8_t>(0xFF << (8 - keep));
      match = ((addr[i] ^ p.net[i]) & m) == 0;
      bits -= keep;
    }
    if (match) return true;
  }
  return false;
}

}  // namespace teiten::classify

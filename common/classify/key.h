// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace teiten::classify {

/// Transport protocol of a counted packet.
enum class Proto : std::uint8_t { tcp, udp, icmp, icmpv6, other, count_ };

/// Scanner fingerprint of a packet (DESIGN.md "Classification").
enum class Fingerprint : std::uint8_t { none, mirai, masscan, zmap, count_ };

/// What the packet is: a probe, the backscatter of a spoofed attack, or neither.
enum class Kind : std::uint8_t { scan, backscatter, other, count_ };

constexpr std::string_view to_string(Proto p) noexcept {
  constexpr std::array<std::string_view, 5> n = {"tcp", "udp", "icmp", "icmpv6", "other"};
  return static_cast<std::size_t>(p) < n.size() ? n[static_cast<std::size_t>(p)] : "?";
}
constexpr std::string_view to_string(Fingerprint f) noexcept {
  constexpr std::array<std::string_view, 4> n = {"none", "mirai", "masscan", "zmap"};
  return static_cast<std::size_t>(f) < n.size() ? n[static_cast<std::size_t>(f)] : "?";
}
constexpr std::string_view to_string(Kind k) noexcept {
  constexpr std::array<std::string_view, 3> n = {"scan", "backscatter", "other"};
  return static_cast<std::size_t>(k) < n.size() ? n[static_cast<std::size_t>(k)] : "?";
}

/// ISO 3166 alpha-2 country packed in 16 bits (first letter high); 0 means unknown ("--").
using CountryCode = std::uint16_t;
inline constexpr CountryCode kUnknownCountry = 0;

/// Packs a two-letter code; returns kUnknownCountry unless both are ASCII letters A-Z.
constexpr CountryCode make_country(char a, char b) noexcept {
  if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z') return kUnknownCountry;
  return static_cast<CountryCode>((static_cast<unsigned>(a) << 8) | static_cast<unsigned>(b));
}
/// Parses "JP"; anything that is not two upper-case letters is unknown.
constexpr CountryCode country_from_string(std::string_view s) noexcept {
  return s.size() == 2 ? make_country(s[0], s[1]) : kUnknownCountry;
}
/// "JP", or "--" when unknown.
inline std::string country_to_string(CountryCode c) {
  if (c == kUnknownCountry) return "--";
  return std::string{static_cast<char>(c >> 8), static_cast<char>(c & 0xFF)};
}

/// The classification of one packet: the key its counters are kept under.
struct Key {
  Proto proto = Proto::other;
  bool has_port = false;   ///< false for non-first fragments and protocols without ports
  std::uint16_t port = 0;  ///< destination port (TCP/UDP) or ICMP/ICMPv6 type
  CountryCode country = kUnknownCountry;
  Fingerprint fingerprint = Fingerprint::none;
  Kind kind = Kind::other;

  /// A 64-bit encoding, never 0, whose order is (proto, port, country, fingerprint, kind):
  /// counters hash it and sealed buckets sort rows by it.
  constexpr std::uint64_t pack() const noexcept {
    return (std::uint64_t{1} << 63) | (std::uint64_t(proto) << 40) |
           (std::uint64_t(has_port) << 39) | (std::uint64_t(port) << 23) |
           (std::uint64_t(country) << 7) | (std::uint64_t(fingerprint) << 3) | std::uint64_t(kind);
  }
  static constexpr Key unpack(std::uint64_t v) noexcept {
    Key k;
    k.proto = static_cast<Proto>((v >> 40) & 0x7);
    k.has_port = ((v >> 39) & 1) != 0;
    k.port = static_cast<std::uint16_t>((v >> 23) & 0xFFFF);
    k.country = static_cast<CountryCode>((v >> 7) & 0xFFFF);
    k.fingerprint = static_cast<Fingerprint>((v >> 3) & 0xF);
    k.kind = static_cast<Kind>(v & 0x7);
    return k;
  }
  friend constexpr bool operator==(const Key&, const Key&) = default;
};

}  // namespace teiten::classify

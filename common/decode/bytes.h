// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace teiten::decode {

// The loads below are written for either byte order; a mixed-endian host is refused.
static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "Teiten's packet decoders support little- and big-endian hosts only");

/// Big-endian loads from packet bytes. Callers check the length first; memcpy avoids
/// unaligned access and strict-aliasing problems (never reinterpret_cast packet bytes).
inline std::uint16_t load_be16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

inline std::uint32_t load_be32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) return v;
  return __builtin_bswap32(v);
}

inline std::uint64_t load_be64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) return v;
  return __builtin_bswap64(v);
}

inline std::uint32_t load_le32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) return __builtin_bswap32(v);
  return v;
}

}  // namespace teiten::decode

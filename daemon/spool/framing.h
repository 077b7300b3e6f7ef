// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

// Byte-level helpers of the spool's files (record log, state file): little-endian fields,
// CRC-32, whole-file reads and folder fsyncs.
namespace teiten::sensor::spool_io {

std::uint32_t crc32(std::string_view s);

inline void put_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
inline std::uint64_t get_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

/// The file's bytes ("" if it cannot be read).
std::string read_all(const std::string& path);
/// Makes the folder's entries (a created, renamed or removed file) durable.
void fsync_dir(const std::string& dir);

}  // namespace teiten::sensor::spool_io

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/decode/packet.h"

namespace teiten::sketch {

/// 64-bit hash of a source address (the value a HostSketch counts). IPv4 and IPv6
/// addresses never share a hash by construction of the input.
std::uint64_t hash_ipv4(std::uint32_t addr) noexcept;
std::uint64_t hash_ipv6(const std::array<std::uint8_t, 16>& addr) noexcept;
/// The hash of a decoded packet's source address.
inline std::uint64_t hash_source(const decode::DecodedPacket& p) noexcept {
  return p.ip_version == 4 ? hash_ipv4(p.src4) : hash_ipv6(p.src6);
}

/// Sorts source hashes in place; fast when they are almost in order (an insertion sort,
/// which gives up for std::sort past a budget of moves, so never quadratic).
void sort_hashes(std::span<std::uint64_t> hashes) noexcept;

/// A mergeable estimate of how many distinct sources were seen: a HyperLogLog sketch
/// (precision 14: 16,384 registers, standard error 0.81%) that starts sparse, as the
/// exact set of the sources' 64-bit hashes (kept sorted), while at most kSparseMax were seen. The
/// estimate is exact in sparse mode (up to hash collisions, negligible below 10^9) and
/// uses Ertl's improved estimator (no bias tables) in dense mode.
///
/// Serialised form (`encode`, docs/bucket-format.md): byte 1 (format version), then
///   byte 0 (sparse), varint n, n varint gaps between the sorted hashes, or
///   byte 1 (dense), 16,384 register bytes each at most 51.
/// `decode` checks every byte of it: the form is read from buckets on the wire.
class HostSketch {
 public:
  static constexpr int kPrecision = 14;
  static constexpr std::size_t kRegisters = std::size_t{1} << kPrecision;
  static constexpr std::uint8_t kMaxRegister = 64 - kPrecision + 1;
  /// Distinct hashes kept exactly before the sketch turns dense.
  static constexpr std::size_t kSparseMax = 1536;
  /// Bytes a dense sketch holds (the sensor's memory budget counts these).
  static constexpr std::size_t kDenseBytes = kRegisters;

  HostSketch() = default;

  /// Adds one source hash. Returns the growth of memory() it caused (0 almost always).
  std::size_t add(std::uint64_t hash);
  /// Adds many: sorts (sort_hashes; not at all when dense) and deduplicates `hashes` in
  /// place first (the caller's scratch), then add_sorted. Returns the growth of memory(), at most
  /// kDenseBytes.
  std::size_t add_many(std::span<std::uint64_t> hashes);
  /// Adds hashes given sorted and distinct, merged in one pass. Returns the growth of
  /// memory(), at most kDenseBytes (0 if it shrank).
  std::size_t add_sorted(std::span<const std::uint64_t> hashes);
  /// Whether add(hash) would need more memory (a new hash at the sparse table's limit).
  bool add_needs_memory(std::uint64_t hash) const noexcept;
  /// Adds every source of `other`.
  void merge(const HostSketch& other);

  /// Distinct sources, estimated (exact while sparse).
  double estimate() const;
  /// estimate() rounded to the nearest integer.
  std::uint64_t count() const;

  bool empty() const noexcept { return dense_.empty() && sparse_.empty(); }
  bool dense() const noexcept { return !dense_.empty(); }
  /// Heap bytes this sketch holds.
  std::size_t memory() const noexcept { return dense_.size() + sparse_.capacity() * 8; }

  std::string encode() const;
  /// Parses an encoded sketch; nullopt with `error` set when any byte is out of place.
  static std::optional<HostSketch> decode(std::string_view bytes, std::string* error);

  /// Base64 of encode(), and its inverse (for JSON).
  std::string to_base64() const;
  /// Appends to_base64() to `out` (no intermediate strings: buckets carry millions).
  void append_base64(std::string& out) const;
  /// At least to_base64().size() (to reserve a line's bytes at once).
  std::size_t base64_size_bound() const noexcept {
    const std::size_t raw = dense() ? 2 + kRegisters : 2 + 10 * (sparse_.size() + 1);
    return 4 * ((raw + 2) / 3);
  }
  static std::optional<HostSketch> from_base64(std::string_view text, std::string* error);

  friend bool operator==(const HostSketch& a, const HostSketch& b);

 private:
  /// Longest encode(): version, mode, and either the registers or a count and kSparseMax
  /// gaps of at most 10 varint bytes each.
  static constexpr std::size_t kMaxEncoded =
      2 + (kRegisters > 10 * (kSparseMax + 1) ? kRegisters : 10 * (kSparseMax + 1));
  /// Writes encode() to `out` (kMaxEncoded bytes); returns its length.
  std::size_t encode_to(std::uint8_t* out) const noexcept;
  bool contains_sparse(std::uint64_t hash) const noexcept;
  void to_dense();
  void set_register(std::uint64_t hash) noexcept;

  // Sparse: the distinct hashes, sorted; capacity never above kSparseMax, so a sparse
  // sketch always holds less memory than a dense one.
  std::vector<std::uint64_t> sparse_;
  std::vector<std::uint8_t> dense_;  // kRegisters bytes once dense
};

}  // namespace teiten::sketch

// SPDX-License-Identifier: Apache-2.0
#include "common/sketch/host_sketch.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>

namespace teiten::sketch {
namespace {

// MurmurHash3's 64-bit finalizer: a bijection, so distinct inputs never collide.
constexpr std::uint64_t fmix64(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kSparse = 0;
constexpr std::uint8_t kDense = 1;

std::uint8_t* put_varint(std::uint8_t* out, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *out++ = static_cast<std::uint8_t>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<std::uint8_t>(v);
  return out;
}

bool get_varint(std::string_view in, std::size_t& pos, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    const auto b = static_cast<std::uint8_t>(in[pos++]);
    if (shift == 63 && b > 1) return false;  // beyond 64 bits
    v |= std::uint64_t{b & 0x7Fu} << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017).
double sigma(double x) {
  if (x == 1.0) return std::numeric_limits<double>::infinity();
  double y = 1.0, z = x, z_old = 0.0;
  do {
    x *= x;
    z_old = z;
    z += x * y;
    y += y;
  } while (z != z_old);
  return z;
}

double tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x, z_old = 0.0;
  do {
    x = std::sqrt(x);
    z_old = z;
    y *= 0.5;
    z -= (1.0 - x) * (1.0 - x) * y;
  } while (z != z_old);
  return z / 3.0;
}

}  // namespace

std::uint64_t hash_ipv4(std::uint32_t addr) noexcept {
  return fmix64((std::uint64_t{addr} << 8) | 4);
}

std::uint64_t hash_ipv6(const std::array<std::uint8_t, 16>& addr) noexcept {
  std::uint64_t hi = 0, lo = 0;
  for (int i = 0; i < 8; ++i) hi = (hi << 8) | addr[static_cast<std::size_t>(i)];
  for (int i = 8; i < 16; ++i) lo = (lo << 8) | addr[static_cast<std::size_t>(i)];
  return fmix64(hi ^ fmix64(lo ^ 0x6666666666666666ULL));
}

void sort_hashes(std::span<std::uint64_t> hashes) noexcept {
  // The insertion sort has a budget of moves: hashes chosen to be far out of order (the
  // hash has no secret: a scanner can pick its sources) would make it quadratic; past the
  // budget the rest is sorted outright.
  std::size_t moves = 0;
  const std::size_t budget = 8 * hashes.size() + 64;
  for (std::size_t i = 1; i < hashes.size(); ++i) {
    const std::uint64_t v = hashes[i];
    if (v >= hashes[i - 1]) continue;
    std::size_t j = i;
    do {
      hashes[j] = hashes[j - 1];
      --j;
      ++moves;
    } while (j > 0 && hashes[j - 1] > v);
    hashes[j] = v;
    if (moves > budget) {
      std::sort(hashes.begin(), hashes.end());
      return;
    }
  }
}

void HostSketch::set_register(std::uint64_t hash) noexcept {
  const std::size_t idx = static_cast<std::size_t>(hash >> (64 - kPrecision));
  const std::uint64_t rest = (hash << kPrecision) | (std::uint64_t{1} << (kPrecision - 1));
  const auto rho = static_cast<std::uint8_t>(std::countl_zero(rest) + 1);
  if (dense_[idx] < rho) dense_[idx] = rho;
}

bool HostSketch::contains_sparse(std::uint64_t hash) const noexcept {
  return std::binary_search(sparse_.begin(), sparse_.end(), hash);
}

bool HostSketch::add_needs_memory(std::uint64_t hash) const noexcept {
  if (dense() || contains_sparse(hash)) return false;
  return sparse_.size() == sparse_.capacity() || sparse_.size() == kSparseMax;
}

std::size_t HostSketch::add(std::uint64_t hash) {
  if (dense()) {
    set_register(hash);
    return 0;
  }
  const auto it = std::lower_bound(sparse_.begin(), sparse_.end(), hash);
  if (it != sparse_.end() && *it == hash) return 0;
  const std::size_t before = memory();
  if (sparse_.size() == kSparseMax) {
    to_dense();
    set_register(hash);
    return memory() - before;
  }
  if (sparse_.size() == sparse_.capacity()) {
    // Grow by doubling, but never past kSparseMax (set before the insert moves things).
    const auto at = it - sparse_.begin();
    sparse_.reserve(std::min(kSparseMax, std::max<std::size_t>(4, sparse_.size() * 2)));
    sparse_.insert(sparse_.begin() + at, hash);
  } else {
    sparse_.insert(it, hash);
  }
  return memory() - before;
}

std::size_t HostSketch::add_many(std::span<std::uint64_t> hashes) {
  if (dense()) {
    for (const std::uint64_t h : hashes) set_register(h);
    return 0;
  }
  sort_hashes(hashes);
  const auto end = std::unique(hashes.begin(), hashes.end());
  return add_sorted(hashes.first(static_cast<std::size_t>(end - hashes.begin())));
}

std::size_t HostSketch::add_sorted(std::span<const std::uint64_t> hashes) {
  if (dense()) {
    for (const std::uint64_t h : hashes) set_register(h);
    return 0;
  }
  if (hashes.empty()) return 0;
  const std::size_t before = memory();
  if (sparse_.empty()) {
    sparse_.assign(hashes.begin(), hashes.end());
  } else {
    // Merged in place from the back (no allocation when the capacity suffices); a hash
    // in both is taken once, which leaves a gap behind the merged part, closed at the end.
    const std::size_t old = sparse_.size();
    if (sparse_.capacity() < old + hashes.size()) sparse_.reserve(old + hashes.size());
    sparse_.resize(old + hashes.size());
    std::uint64_t* a = sparse_.data();
    std::size_t i = old, j = hashes.size(), w = old + hashes.size();
    while (j > 0) {
      if (i > 0 && a[i - 1] >= hashes[j - 1]) {
        if (a[i - 1] == hashes[j - 1]) --j;
        a[--w] = a[--i];
      } else {
        a[--w] = hashes[--j];
      }
    }
    // a[0, i) are in place; the merged tail is a[w, old + n).
    if (w > i) {
      std::memmove(a + i, a + w, (old + hashes.size() - w) * sizeof *a);
      sparse_.resize(i + old + hashes.size() - w);
    }
  }
  if (sparse_.size() > kSparseMax) {
    to_dense();
  } else if (sparse_.capacity() > kSparseMax) {
    sparse_.shrink_to_fit();
  }
  return memory() > before ? memory() - before : 0;
}

void HostSketch::to_dense() {
  dense_.assign(kRegisters, 0);
  for (const std::uint64_t h : sparse_) set_register(h);
  sparse_.clear();
  sparse_.shrink_to_fit();
}

void HostSketch::merge(const HostSketch& other) {
  if (&other == this) return;  // a union with itself (add_sorted would read what it moves)
  if (other.dense()) {
    if (!dense()) to_dense();
    for (std::size_t i = 0; i < kRegisters; ++i) dense_[i] = std::max(dense_[i], other.dense_[i]);
    return;
  }
  add_sorted(other.sparse_);
}

double HostSketch::estimate() const {
  if (!dense()) return static_cast<double>(sparse_.size());
  constexpr int q = 64 - kPrecision;
  std::array<double, q + 2> c{};
  for (const std::uint8_t r : dense_) c[r] += 1.0;
  constexpr double m = static_cast<double>(kRegisters);
  double z = m * tau(1.0 - c[q + 1] / m);
  for (int k = q; k >= 1; --k) z = 0.5 * (z + c[static_cast<std::size_t>(k)]);
  z += m * sigma(c[0] / m);
  if (std::isinf(z)) return 0.0;
  return (0.5 / std::log(2.0)) * m * m / z;
}

std::uint64_t HostSketch::count() const {
  return static_cast<std::uint64_t>(std::llround(estimate()));
}

std::size_t HostSketch::encode_to(std::uint8_t* out) const noexcept {
  std::uint8_t* p = out;
  *p++ = kVersion;
  if (dense()) {
    *p++ = kDense;
    std::memcpy(p, dense_.data(), dense_.size());
    return 2 + dense_.size();
  }
  *p++ = kSparse;
  p = put_varint(p, sparse_.size());
  std::uint64_t prev = 0;
  for (const std::uint64_t h : sparse_) {
    p = put_varint(p, h - prev);
    prev = h;
  }
  return static_cast<std::size_t>(p - out);
}

std::string HostSketch::encode() const {
  std::array<std::uint8_t, kMaxEncoded> raw;
  return std::string(reinterpret_cast<const char*>(raw.data()), encode_to(raw.data()));
}

std::optional<HostSketch> HostSketch::decode(std::string_view in, std::string* error) {
  const auto fail = [&](const char* why) -> std::optional<HostSketch> {
    if (error) *error = why;
    return std::nullopt;
  };
  if (in.size() < 2) return fail("sketch shorter than its header");
  if (static_cast<std::uint8_t>(in[0]) != kVersion) return fail("unknown sketch version");
  HostSketch s;
  if (static_cast<std::uint8_t>(in[1]) == kDense) {
    if (in.size() != 2 + kRegisters) return fail("dense sketch of the wrong length");
    s.dense_.assign(in.begin() + 2, in.end());
    for (const std::uint8_t r : s.dense_)
      if (r > kMaxRegister) return fail("sketch register out of range");
    return s;
  }
  if (static_cast<std::uint8_t>(in[1]) != kSparse) return fail("unknown sketch mode");
  std::size_t pos = 2;
  std::uint64_t n = 0;
  if (!get_varint(in, pos, n)) return fail("truncated sketch");
  if (n > kSparseMax) return fail("sparse sketch with too many entries");
  std::uint64_t prev = 0;
  s.sparse_.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t gap = 0;
    if (!get_varint(in, pos, gap)) return fail("truncated sketch");
    if ((i > 0 && gap == 0) || gap > std::numeric_limits<std::uint64_t>::max() - prev)
      return fail("sparse sketch entries not strictly increasing");
    prev += gap;
    s.sparse_.push_back(prev);
  }
  if (pos != in.size()) return fail("trailing bytes after sketch");
  return s;
}

std::string HostSketch::to_base64() const {
  std::string out;
  append_base64(out);
  return out;
}

void HostSketch::append_base64(std::string& out) const {
  std::array<std::uint8_t, kMaxEncoded> raw;
  const std::size_t len = encode_to(raw.data());
  const std::size_t at = out.size();
  out.resize(at + 4 * ((len + 2) / 3));
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at), raw.data(),
                                static_cast<int>(len));
  out.resize(at + static_cast<std::size_t>(n));
}

std::optional<HostSketch> HostSketch::from_base64(std::string_view text, std::string* error) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > 4 * (kRegisters + 8) / 3 + 4) {
    if (error) *error = "sketch is not base64 of a plausible length";
    return std::nullopt;
  }
  std::string raw(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(raw.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    if (error) *error = "sketch is not valid base64";
    return std::nullopt;
  }
  std::size_t len = static_cast<std::size_t>(n);
  if (text.back() == '=') --len;  // EVP_DecodeBlock counts padding as zero bytes
  if (text[text.size() - 2] == '=') --len;
  raw.resize(len);
  return decode(raw, error);
}

bool operator==(const HostSketch& a, const HostSketch& b) {
  if (a.dense() != b.dense()) return false;
  if (a.dense()) return a.dense_ == b.dense_;
  return a.sparse_ == b.sparse_;
}

}  // namespace teiten::sketch

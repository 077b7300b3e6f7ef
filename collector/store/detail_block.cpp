// SPDX-License-Identifier: Apache-2.0
#include "collector/store/detail_block.h"

#include <stdexcept>

namespace teiten::collector::detail_block {
namespace {

constexpr unsigned char kFormat = 1;

void put(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

std::uint64_t zigzag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}

std::int64_t unzigzag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}

// Reads forward through a block, every step checked against its end.
class Cursor {
 public:
  explicit Cursor(std::string_view b) : b_(b) {}
  std::uint64_t varint(const char* what) {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      const unsigned char b = byte(what);
      if (shift == 63 && b > 1) fail(what, "an integer over 64 bits");
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    fail(what, "an integer over 64 bits");
  }
  unsigned char byte(const char* what) {
    if (at_ == b_.size()) fail(what, "cut short");
    return static_cast<unsigned char>(b_[at_++]);
  }
  std::string_view bytes(const char* what) {
    const std::uint64_t n = varint(what);
    if (n > b_.size() - at_) fail(what, "a length past the end");
    const std::string_view s = b_.substr(at_, n);
    at_ += n;
    return s;
  }
  std::size_t left() const { return b_.size() - at_; }
  [[noreturn]] void fail(const char* what, const char* why) const {
    throw std::runtime_error(std::string{"detail block: "} + what + ": " + why + " (byte " +
                             std::to_string(at_) + " of " + std::to_string(b_.size()) + ")");
  }

 private:
  std::string_view b_;
  std::size_t at_ = 0;
};

}  // namespace

std::uint64_t Writer::text(std::string_view s) {
  if (const auto it = index_.find(s); it != index_.end()) return it->second;
  index_.emplace(std::string{s}, texts_.size());
  texts_.emplace_back(s);
  return texts_.size() - 1;
}

void Writer::add(const Row& r) {
  put(body_, text(r.proto));
  put(body_, zigzag(r.port));
  put(body_, text(r.country));
  put(body_, text(r.fingerprint));
  put(body_, text(r.kind));
  put(body_, r.packets);
  put(body_, r.bytes);
  put(body_, r.hosts.size());
  body_ += r.hosts;
  ++rows_;
}

std::string Writer::finish() {
  std::string out;
  out.reserve(body_.size() + 16 + texts_.size() * 8);
  out += static_cast<char>(kFormat);
  put(out, texts_.size());
  for (const auto& t : texts_) {
    put(out, t.size());
    out += t;
  }
  put(out, rows_);
  out += body_;
  index_.clear();
  texts_.clear();
  body_.clear();
  rows_ = 0;
  return out;
}

void read(std::string_view block, const std::function<void(const Row&)>& row) {
  Cursor c(block);
  if (c.byte("format") != kFormat) c.fail("format", "unknown");
  const std::uint64_t n_texts = c.varint("string count");
  if (n_texts > c.left()) c.fail("string count", "more strings than bytes");
  std::vector<std::string_view> texts;
  texts.reserve(n_texts);
  for (std::uint64_t i = 0; i < n_texts; ++i) texts.push_back(c.bytes("string"));
  const std::uint64_t n_rows = c.varint("row count");
  // A row takes 8 bytes at least.
  if (n_rows > c.left() / 8) c.fail("row count", "more rows than bytes");
  const auto text = [&](const char* what) {
    const std::uint64_t i = c.varint(what);
    if (i >= texts.size()) c.fail(what, "a string index out of range");
    return texts[i];
  };
  for (std::uint64_t i = 0; i < n_rows; ++i) {
    Row r;
    r.proto = text("proto");
    r.port = unzigzag(c.varint("port"));
    r.country = text("country");
    r.fingerprint = text("fingerprint");
    r.kind = text("kind");
    r.packets = c.varint("packets");
    r.bytes = c.varint("bytes");
    r.hosts = c.bytes("hosts");
    row(r);
  }
  if (c.left()) c.fail("end", "bytes after the last row");
}

}  // namespace teiten::collector::detail_block

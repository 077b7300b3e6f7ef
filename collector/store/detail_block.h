// SPDX-License-Identifier: Apache-2.0
#pragma once
// A bucket's counter rows as one value (PostgreSQL's bucket_detail.rows): one row per bucket
// instead of one per counter row, so that a batch of 100 buckets of 50 rows is 100 tuples
// for the server to insert, not 5,000 (docs/scale.md, "The per-bucket detail").
//
// Layout (every integer an unsigned LEB128 varint; the port zigzag-coded, -1 being "no
// port"):
//   byte 0: format, 1
//   n_strings, then each: length, bytes (the block's distinct texts)
//   n_rows, then each: proto, port, country, fingerprint, kind (the four texts as indexes
//   into the strings), packets, bytes, hosts length, hosts (an encoded host sketch; 0: none)
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace teiten::collector::detail_block {

/// One counter row; the views are valid during the call that hands them over.
struct Row {
  std::string_view proto;
  std::int64_t port = -1;  ///< -1: no port
  std::string_view country, fingerprint, kind;
  std::uint64_t packets = 0, bytes = 0;
  std::string_view hosts;  ///< an encoded sketch, or empty
};

/// Builds one block. Strings and sketches are copied when added.
class Writer {
 public:
  void add(const Row& r);
  std::size_t rows() const { return rows_; }
  /// The block; the writer is empty again afterwards.
  std::string finish();

 private:
  std::uint64_t text(std::string_view s);
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::uint64_t, Hash, std::equal_to<>> index_;
  std::vector<std::string> texts_;
  std::string body_;
  std::size_t rows_ = 0;
};

/// Hands every row of `block` to `row`, in the order they were added. Throws
/// std::runtime_error naming what is wrong when the block is not one Writer made (cut
/// short, an index or length out of range, an unknown format); nothing is read past its end.
void read(std::string_view block, const std::function<void(const Row&)>& row);

}  // namespace teiten::collector::detail_block

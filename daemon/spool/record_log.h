// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::sensor {

/// The spool's record log: append-only segment files (`seg-<20-digit number>.log`, in
/// write order) of framed records. A record is a 4-byte magic, the payload's length (u32
/// LE), its CRC-32 (u32 LE) and the payload: the magic lets a reader resynchronise after a
/// torn write, the CRC catches bit rot and half-written payloads. Appends are written at
/// once and fdatasync'd (group commit); a failed one leaves no half record behind. What the
/// payloads mean is the spool's business. Not thread-safe: the spool calls it under its
/// lock.
class RecordLog {
 public:
  static constexpr std::size_t kHeader = 12;
  static constexpr std::uint32_t kMaxRecord = 64u << 20;

  RecordLog(std::string dir, std::uint64_t segment_bytes)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes) {}

  const std::string& dir() const noexcept { return dir_; }
  std::uint64_t segment_bytes() const noexcept { return segment_bytes_; }

  /// The segment files' names in write order. Throws std::runtime_error if the folder
  /// cannot be read. Numbers from now on are above every listed one.
  std::vector<std::string> list();
  /// The path of segment `number`, and the number of a segment's path or name.
  std::string path_of(std::uint64_t number) const;
  static std::uint64_t number_of(const std::string& segment);
  /// New segments get numbers of at least `n`.
  void number_from(std::uint64_t n) noexcept {
    if (n > counter_) counter_ = n;
  }

  /// Reads a segment's records in order: `on_record(magic, payload, payload's offset)`
  /// for each whose frame and CRC are sound, for one of `magics`. Returns how many were
  /// torn or garbled (skipped, with a resynchronisation at the next magic).
  std::uint64_t scan(const std::string& path, std::span<const char* const> magics,
                     const std::function<void(const char* magic, std::string_view payload,
                                              std::size_t at)>& on_record) const;

  /// Appends `payloads` as records of `magic` to the current segment (a new one when it is
  /// full), with one write and one fdatasync. Returns where each payload starts, or
  /// nullopt (nothing written: the disk is full...).
  std::optional<std::vector<std::uint64_t>> append(const char* magic,
                                                   std::span<const std::string> payloads);
  /// The segment appends go to ("" before the first), and its size.
  const std::string& current() const noexcept { return current_; }
  std::uint64_t current_size() const noexcept { return current_size_; }
  /// The next append starts a new segment.
  void close_current() noexcept { current_.clear(); }

  /// `length` bytes at `offset` of `segment`, or nullopt if they cannot be read.
  std::optional<std::string> read(const std::string& segment, std::uint64_t offset,
                                  std::uint32_t length) const;
  /// Deletes a segment (durably). The current one too: the next append starts another.
  void remove(const std::string& segment);
  /// Deletes every segment file whose path `keep` does not return true for.
  void remove_unless(const std::function<bool(const std::string& path)>& keep);

 private:
  std::string dir_;
  std::uint64_t segment_bytes_;
  std::uint64_t counter_ = 0;
  std::string current_;
  std::uint64_t current_size_ = 0;
};

}  // namespace teiten::sensor

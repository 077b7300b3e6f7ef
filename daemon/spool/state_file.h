// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

namespace teiten::sensor {

/// What the spool keeps beside its records (docs/spool.md).
struct SpoolState {
  std::uint64_t next_seq = 0;
  std::uint64_t resume_token = 0;
  std::uint64_t acked_below = 0;       ///< every bucket with a lower seq was acknowledged
  std::uint64_t sent_below = 0;        ///< no bucket with this seq or above was handed out
  std::uint64_t unreported_drops = 0;  ///< packets of dropped buckets not yet charged
  std::uint64_t dropping = 0;          ///< 1 + number of the segment being dropped; 0: none
};

/// The spool's state file: two slots, written alternately in place (a torn write spoils
/// at most the slot being written; the other still holds the previous state), so that
/// updating it never needs free space: delivery must go on when the disk is full. A slot
/// is "TSS1", generation, the six values of SpoolState (u64 LE each), CRC-32 of all that
/// (u32 LE). Not thread-safe: the spool calls it under its lock.
class StateFile {
 public:
  /// Opens `dir`/state, creating it; `loaded()` is what it held (all zero when new).
  /// Throws std::runtime_error when it cannot be created or written.
  explicit StateFile(const std::string& dir);
  ~StateFile();
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  const SpoolState& loaded() const noexcept { return loaded_; }
  /// Writes `s` to the next slot; `sync`: and waits until it is on the disk.
  bool write(const SpoolState& s, bool sync);
  /// Whether the last write is known to be on the disk.
  bool synced() const noexcept { return synced_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::uint64_t generation_ = 0;
  SpoolState loaded_;
  bool synced_ = true;
};

}  // namespace teiten::sensor

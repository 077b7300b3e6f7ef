// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"
#include "daemon/spool/bound_policy.h"
#include "daemon/spool/record_log.h"
#include "daemon/spool/state_file.h"

namespace teiten::sensor {

/// Counters of the spool (read under its lock).
struct SpoolStats {
  std::uint64_t appended = 0;
  std::uint64_t acked = 0;
  std::uint64_t corrupt_records = 0;  ///< CRC or framing errors skipped at start
  std::uint64_t merged_buckets = 0;   ///< buckets merged into coarser ones at the byte bound
  std::uint64_t merges = 0;           ///< coarser buckets those merges wrote
  std::uint64_t dropped_buckets = 0;  ///< oldest buckets dropped at the byte bound
  std::uint64_t dropped_packets = 0;  ///< packets those buckets accounted for
  std::uint64_t write_errors = 0;     ///< appends that failed (disk full, I/O error)
  std::uint64_t bytes = 0;            ///< bytes of unacknowledged records on disk
  std::uint64_t pending = 0;          ///< unacknowledged buckets
};

/// The sensor's durable queue of sealed buckets (docs/spool.md). Append-only segment
/// files of CRC-framed records, fsync'd before append() returns; bounded in bytes: at the
/// bound the oldest buckets are merged into coarser ones (counts preserved), and when that
/// saves too little the oldest are dropped and their packets charged to the next appended
/// bucket's loss.spool_dropped. Buckets that may already be at the collector (handed out
/// by peek() and not acknowledged) are never merged or dropped. A bucket leaves only when
/// the collector acknowledged it. Thread-safe: the classifier thread appends, the I/O
/// thread reads and acknowledges.
class Spool {
 public:
  /// Opens (creating) the spool in `dir`, reading what a previous run left: corrupt or
  /// truncated records are skipped and counted. Throws std::runtime_error if `dir` cannot
  /// be used at all.
  Spool(std::string dir, std::uint64_t max_bytes, std::uint64_t segment_bytes = 1 << 20);
  ~Spool();
  Spool(const Spool&) = delete;
  /// The bound given at construction (spool.max_bytes).
  std::uint64_t max_bytes() const noexcept { return bound_.max_bytes(); }
  Spool& operator=(const Spool&) = delete;

  /// Appends a bucket durably, with the caller's resume token (e.g. how many packets of a
  /// replayed capture are in sealed buckets now), and then records next_seq = b.seq + 1 and
  /// the token in the spool's state file. Packets of buckets dropped at the bound and not
  /// yet reported are added to the stored copy's loss.spool_dropped. Returns false
  /// (counted in write_errors) if it could not be written, e.g. the disk is full; the
  /// caller keeps the bucket and retries.
  bool append(const bucket::SealedBucket& b, std::uint64_t resume_token = 0);

  /// A bucket to append, with its resume token.
  struct Appending {
    const bucket::SealedBucket& bucket;
    std::uint64_t resume_token = 0;
  };
  /// Appends buckets in order as append() does each, with group commit: those that fit
  /// the bound and the current segment together are written at once and share one
  /// fdatasync and one state update. Returns how many, from the front, are spooled now
  /// (all of them, unless a write failed: the caller retries the rest).
  std::size_t append_group(std::span<const Appending> group);

  /// What the last successful append recorded, surviving restarts and kills: the next
  /// sequence number and the resume token (0 and 0 for a new spool).
  std::uint64_t next_seq();
  std::uint64_t resume_token();

  /// A spooled bucket as stored: its id and its JSON line (docs/bucket-format.md).
  struct Stored {
    std::string boot_id;
    std::uint64_t seq = 0;
    std::string line;
  };
  /// Up to `max` unacknowledged buckets, oldest first, to be sent, as their stored lines
  /// (checked against the CRC the index keeps, never parsed). From now on they count as
  /// possibly delivered (recorded durably before they are returned): they are kept as
  /// they are until acknowledged. Empty if that record cannot be written. A line that no
  /// longer reads back as written is dropped and counted (corrupt_records, its packets
  /// as dropped).
  std::vector<Stored> peek_lines(std::size_t max);
  /// peek_lines() parsed into buckets.
  std::vector<bucket::SealedBucket> peek(std::size_t max);

  /// Removes the acknowledged buckets (by boot id and seq) and deletes segment files that
  /// hold nothing unacknowledged any more.
  void ack(const std::vector<std::pair<std::string, std::uint64_t>>& ids);

  /// Packets of dropped buckets not yet charged to an appended bucket.
  std::uint64_t unreported_dropped_packets();

  SpoolStats stats();

 private:
  // Only an index is held in memory; payloads are read back from disk when sent.
  struct Entry {
    std::string boot_id;
    std::uint64_t seq;
    /// Sequence numbers a merged bucket stands for (ranges, inclusive); empty: just seq.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covers;
    std::uint64_t packets;  ///< accounted packets
    std::uint64_t carried;  ///< its loss.spool_dropped, passed on if it is dropped too
    std::string segment;
    std::uint64_t offset;  ///< of the bucket's JSON in the segment
    std::uint32_t length;  ///< of the JSON
    std::uint64_t bytes;   ///< disk bytes it stands for
    std::uint32_t crc;     ///< CRC-32 of the JSON
  };
  void load_segment(const std::string& path, std::vector<Entry>& out);
  /// Writes the state file's next slot; `sync`: and waits until it is on the disk.
  bool write_state_locked(bool sync = true);
  std::optional<std::string> read_line_locked(const Entry& e);
  std::optional<bucket::SealedBucket> read_locked(const Entry& e);
  bool merge_segment_locked(const std::string& segment);
  bool drop_segment_locked(const std::string& segment);
  void insert_sorted_locked(Entry e);
  void delete_done_segments_locked();

  std::mutex mu_;
  std::string dir_;
  BoundPolicy bound_;
  RecordLog log_;
  std::unique_ptr<StateFile> state_file_;
  std::deque<Entry> entries_;  ///< sorted by seq
  // What the state file holds (SpoolState), as of the last write unless state_dirty_.
  std::uint64_t unreported_drops_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t resume_token_ = 0;
  std::uint64_t acked_below_ = 0;  ///< every bucket with a lower seq was acknowledged
  std::uint64_t sent_below_ = 0;   ///< no bucket with this seq or above was handed out
  std::uint64_t dropping_ = 0;     ///< 1 + number of the segment being dropped; 0: none
  bool state_dirty_ = false;       ///< the state file is behind the values above
  SpoolStats stats_;
};

}  // namespace teiten::sensor

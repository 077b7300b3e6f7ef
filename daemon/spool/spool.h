#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::sensor {

/// Counters of the spool (read under its lock).
struct SpoolStats {
  std::uint64_t appended = 0;
  std::uint64_t acked = 0;
  std::uint64_t corrupt_records = 0;  ///< CRC or framing errors skipped at start
  std::uint64_t dropped_buckets = 0;  ///< oldest buckets dropped at the byte bound
  std::uint64_t dropped_packets = 0;  ///< packets those buckets accounted for
  std::uint64_t write_errors = 0;     ///< appends that failed (disk full, I/O error)
  std::uint64_t bytes = 0;            ///< bytes of unacknowledged records on disk
  std::uint64_t pending = 0;          ///< unacknowledged buckets
};

/// The sensor's durable queue of sealed buckets (docs/spool.md). Append-only segment
/// files of CRC-framed records, fsync'd before append() returns; bounded in bytes (the
/// oldest buckets are dropped, and counted, when a new one would not fit); a bucket leaves
/// only when the collector acknowledged it. Thread-safe: the classifier thread appends,
/// the I/O thread reads and acknowledges.
class Spool {
 public:
  /// Opens (creating) the spool in `dir`, reading what a previous run left: corrupt or
  /// truncated records are skipped and counted. Throws std::runtime_error if `dir` cannot
  /// be used at all.
  Spool(std::string dir, std::uint64_t max_bytes, std::uint64_t segment_bytes = 1 << 20);

  /// Appends a bucket durably, with the caller's resume token (e.g. how many packets of a
  /// replayed capture are in sealed buckets now), and then records next_seq = b.seq + 1 and
  /// the token in the spool's state file. Returns false (counted in write_errors) if it
  /// could not be written, e.g. the disk is full; the caller keeps the bucket and retries.
  bool append(const bucket::SealedBucket& b, std::uint64_t resume_token = 0);

  /// What the last successful append recorded, surviving restarts and kills: the next
  /// sequence number and the resume token (0 and 0 for a new spool).
  std::uint64_t next_seq();
  std::uint64_t resume_token();

  /// Up to `max` unacknowledged buckets, oldest first.
  std::vector<bucket::SealedBucket> peek(std::size_t max);

  /// Removes the acknowledged buckets (by boot id and seq) and deletes segment files that
  /// hold nothing unacknowledged any more.
  void ack(const std::vector<std::pair<std::string, std::uint64_t>>& ids);

  /// Packets of buckets dropped at the bound since the last call (charged by the caller to
  /// a bucket that will reach the collector).
  std::uint64_t take_dropped_packets();

  /// Highest sequence number in the spool, if any (for resuming the sequence).
  std::optional<std::uint64_t> max_seq();

  SpoolStats stats();

 private:
  // Only an index is held in memory; payloads are read back from disk when sent.
  struct Entry {
    std::string boot_id;
    std::uint64_t seq;
    std::uint64_t packets;  ///< accounted packets, for drop accounting
    std::string segment;
    std::uint64_t offset;  ///< of the payload in the segment
    std::uint32_t length;  ///< of the payload
  };
  void load_segment(const std::string& path);
  bool write_record(const std::string& payload);
  bool write_state_locked();
  void drop_oldest_locked();
  void delete_done_segments_locked();

  std::mutex mu_;
  std::string dir_;
  std::uint64_t max_bytes_;
  std::uint64_t segment_bytes_;
  std::deque<Entry> entries_;
  std::string current_segment_;
  std::uint64_t current_size_ = 0;
  std::uint64_t segment_counter_ = 0;
  std::uint64_t undelivered_drops_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t resume_token_ = 0;
  std::uint64_t acked_below_ = 0;  ///< every bucket with a lower seq was acknowledged
  bool state_dirty_ = false;       ///< the state file is behind the values above
  SpoolStats stats_;
};

}  // namespace teiten::sensor

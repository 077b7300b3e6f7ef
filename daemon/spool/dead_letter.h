// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::sensor {

/// One bucket the collector refused, as kept in the dead-letter area.
struct DeadLetter {
  std::string boot_id;
  std::uint64_t seq = 0;
  std::int64_t start = 0;
  std::uint64_t packets = 0;  ///< accounted packets of the bucket
  std::string reason;         ///< the collector's reason ("outside_active_period", ...)
  std::string message;        ///< the collector's words
  std::int64_t refused_at = 0;
  bool queued = false;      ///< marked to be sent again
  std::uint64_t bytes = 0;  ///< of its file
};

/// A dead letter as the control API and teitenctl show it (docs/control-api.md).
std::string to_json(const DeadLetter& d);

/// Counters of the dead-letter area (read under its lock).
struct DeadLetterStats {
  std::uint64_t held = 0;             ///< buckets kept now (queued ones included)
  std::uint64_t held_packets = 0;     ///< their packets
  std::uint64_t bytes = 0;            ///< their files' bytes
  std::uint64_t queued = 0;           ///< of those, marked to be sent again
  std::uint64_t refused_total = 0;    ///< buckets set aside since start
  std::uint64_t resent_total = 0;     ///< sent again and acknowledged since start
  std::uint64_t dropped_buckets = 0;  ///< oldest removed at the byte bound since start
  std::uint64_t dropped_packets = 0;  ///< their packets
};

/// The sensor's dead-letter area (docs/spool.md): buckets the collector refused with a
/// verdict of their own (outside the registry period, dated in the future, ...), each in
/// a file `<boot_id>-<seq>.json` of `dir`, written and fsync'd before the spool lets the
/// bucket go. Bounded in bytes: at the bound the oldest are removed and counted. An
/// operator marks them to be sent again (`teitenctl dead-letter resend`) once the cause
/// is fixed; the uploader then sends them after the spool. The folder is read once, at
/// opening: teitenctl works on a stopped sensor's folder, a running sensor's through
/// its control server. Thread-safe.
class DeadLetterStore {
 public:
  /// Opens (creating) `dir`. Throws std::runtime_error if it cannot be used.
  DeadLetterStore(std::string dir, std::uint64_t max_bytes);

  /// Keeps `b` with the collector's reason, durably. False if it could not be written
  /// (the caller keeps the bucket in the spool and tries again later).
  bool put(const bucket::SealedBucket& b, const std::string& reason, const std::string& message);

  /// Every bucket held, oldest refusal first.
  std::vector<DeadLetter> list();

  /// Marks every held bucket to be sent again; returns how many were marked.
  std::size_t queue_all();

  /// Up to `max` buckets marked to be sent again (unreadable files are skipped, counted
  /// and left in place for an operator to look at).
  std::vector<bucket::SealedBucket> queued(std::size_t max);

  /// A queued bucket was acknowledged (stored or already stored): removes it.
  void delivered(const std::string& boot_id, std::uint64_t seq);

  DeadLetterStats stats();

 private:
  std::string path_of(const std::string& boot_id, std::uint64_t seq, bool queued) const;
  void enforce_bound_locked();
  void count_locked();

  std::mutex mu_;
  std::string dir_;
  std::uint64_t max_bytes_;
  std::vector<DeadLetter> index_;  ///< oldest refusal first
  DeadLetterStats stats_;
};

}  // namespace teiten::sensor

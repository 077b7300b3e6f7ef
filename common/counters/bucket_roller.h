// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/bucket/sealed_bucket.h"
#include "common/classify/key.h"
#include "common/counters/key_table.h"
#include "common/decode/decode_status.h"
#include "common/sketch/host_sketch.h"

namespace teiten::counters {

/// Settings of the rolling buckets.
struct RollerOptions {
  std::string sensor_id;
  std::string boot_id;
  std::uint64_t first_seq = 0;
  std::uint32_t width_s = 60;         ///< divides 86400, so buckets align to UTC days
  std::size_t max_keys = 10000;       ///< distinct keys per bucket before overflow
  std::uint32_t max_gap_fill = 1440;  ///< most empty buckets sealed for one silent gap
  /// Heap bytes the open bucket's unique-source sketches may hold; a (row, source) pair
  /// that would need more is not recorded (counted in the bucket's hosts_unrecorded).
  std::size_t max_sketch_bytes = std::size_t{8} << 20;
  /// Seal on a thread of the roller's own: the counting thread hands a finished bucket's
  /// state over and goes on (the sink is then called on that thread, in order).
  bool seal_thread = false;
  bucket::Provenance provenance;
  /// When set (a stopping replay), the rest of a silent gap is left unfilled: the sensor
  /// stops within moments instead of sealing months of empty buckets first.
  const std::atomic<bool>* stop_filling = nullptr;
};

/// Counts classified packets into UTC-aligned buckets keyed by capture time and seals each
/// bucket when time passes its end. The open bucket's counters live in a preallocated
/// KeyTable: counting never allocates. Sealing calls the sink with an immutable bucket.
/// Empty buckets between two packets are sealed too (they prove the sensor was alive), at
/// most max_gap_fill per gap. A packet older than the open bucket is counted in the open
/// bucket and in its late_packets. Counting: one thread (the classifier thread). With
/// seal_thread, the sketch work (folding the sources into sketches, as each full list of
/// pending sources is handed over) and sealing (building the rows, the sink) run on the
/// roller's own thread, in order, with one spare state and kSparePending spare lists: the
/// classifier waits when that thread is a whole bucket behind, or when it has all the
/// spare lists queued behind a slow sink; a sink's exception comes back from the next
/// seal or flush. A snapshot without sketches reports no hosts_unrecorded.
class BucketRoller {
 public:
  using Sink = std::function<void(bucket::SealedBucket&&)>;
  /// A sink that also gets the tag (set_tag) in force when the bucket was sealed.
  using TaggedSink = std::function<void(bucket::SealedBucket&&, std::uint64_t tag)>;
  BucketRoller(RollerOptions options, Sink sink);
  BucketRoller(RollerOptions options, TaggedSink sink);
  ~BucketRoller();
  BucketRoller(const BucketRoller&) = delete;
  BucketRoller& operator=(const BucketRoller&) = delete;

  /// One observed packet with its key, IP length and source (sketch::hash_ipv4/6).
  void add(std::int64_t ts, const classify::Key& key, std::uint32_t bytes,
           std::uint64_t source_hash) {
    advance(ts);
    const std::uint32_t ordinal = open_.table.add(key.pack(), bytes);
    if (ordinal == KeyTable::kFull) {
      ++loss_.overflow_packets;
      loss_.overflow_bytes += bytes;
      return;
    }
    // Sources wait in a preallocated list, folded into the rows' sketches row by row when
    // it fills and at sealing: the packet path touches no sketch.
    open_.pending.push_back(Pending{source_hash, ordinal});
    if (open_.pending.size() == open_.pending.capacity()) fold_pending();
  }
  /// Where add(..., key, ...) reads first, for the caller to prefetch (a batch prefetches,
  /// then adds).
  const void* probe_address(const classify::Key& key) const noexcept {
    return open_.table.probe_address(key.pack());
  }
  void add_not_for_sensor(std::int64_t ts) {
    advance(ts);
    ++not_for_sensor_;
  }
  /// The sensor's own traffic (uploads, pulls, name lookups): counted, never observed.
  void add_self(std::int64_t ts) {
    advance(ts);
    ++self_traffic_;
  }
  void add_malformed(std::int64_t ts, decode::DecodeStatus reason) {
    advance(ts);
    ++loss_.malformed[static_cast<std::size_t>(reason)];
  }
  /// Losses before the classifier, charged to the bucket open at `ts`.
  void add_ring_drops(std::int64_t ts, std::uint64_t n) {
    advance(ts, n);
    loss_.ring_drops += n;
  }
  void add_capture_drops(std::int64_t ts, std::uint64_t kernel, std::uint64_t interface) {
    advance(ts, kernel);  // interface drops are reported beside, never late packets
    loss_.kernel_drops += kernel;
    loss_.interface_drops += interface;
  }

  /// Seals every bucket that ends at or before `now` (a timer tick in live mode).
  /// Opens the bucket containing `now` if none is open.
  void tick(std::int64_t now) { advance(now, 0); }

  /// Seals the open bucket, if any (end of a replay, SIGTERM), and waits until every
  /// sealed bucket has gone to the sink.
  void flush();

  /// Called after a bucket went to the sink when no other sealed bucket is waiting to (on
  /// the thread that called the sink, before flush() returns): a sink that gathers
  /// buckets writes them here, together (group commit). Set before the first packet.
  void on_idle(std::function<void()> f);

  /// The tag passed to a TaggedSink with the buckets sealed from now on.
  void set_tag(std::uint64_t tag) noexcept { tag_ = tag; }

  /// A new GeoIP database is in use from now on (reload): said in later buckets' provenance.
  void set_geoip_build_epoch(std::uint64_t epoch) { options_.provenance.geoip_build_epoch = epoch; }

  /// The open bucket as it would be sealed now (its counts so far), if one is open;
  /// without `sketches`, its rows carry no unique-source sketch (cheap: no copy).
  std::optional<bucket::SealedBucket> snapshot(bool sketches = true);

  /// The sealing thread (RollerOptions::seal_thread), for its owner to place; null if none.
  std::thread* seal_thread() noexcept { return sealer_.joinable() ? &sealer_ : nullptr; }

  /// Sequence number the next sealed bucket gets.
  std::uint64_t next_seq() const noexcept { return seq_; }
  bool has_open_bucket() const noexcept { return is_open_; }
  std::int64_t open_start() const noexcept { return start_; }
  /// Aligns a timestamp down to its bucket start (floor, also for negative times).
  std::int64_t align(std::int64_t ts) const noexcept;

  /// Provenance for buckets sealed from now on (e.g. after a GeoIP reload).
  void set_provenance(bucket::Provenance p) { options_.provenance = std::move(p); }

 private:
  struct Pending {
    std::uint64_t hash;
    std::uint32_t ordinal;
  };
  /// A bucket's unique-source sketches, on the heap so that the sealing thread can fold
  /// into them while the counting thread goes on with the bucket's table.
  struct SketchState {
    explicit SketchState(std::size_t max_keys) : sketches(max_keys) {}
    std::vector<sketch::HostSketch> sketches;  ///< by the key's ordinal in the table
    std::size_t bytes = 0;                     ///< heap bytes the sketches hold
    std::uint64_t unrecorded = 0;              ///< sources not recorded (budget)
  };
  /// What a bucket counts into per key: handed to the sealing thread whole.
  struct KeyState {
    explicit KeyState(std::size_t max_keys);
    KeyTable table;
    std::unique_ptr<SketchState> sketches;
    std::vector<Pending> pending;  ///< capacity kPendingMax, reserved
  };
  /// Bits of a source hash the fold's first counting sort orders by.
  static constexpr unsigned kTopBits = 11;
  /// Scratch of a fold (one per thread that folds). The two lists (kPendingMax entries)
  /// are left uninitialised: untouched until a fold uses them, they take no memory.
  struct FoldScratch {
    explicit FoldScratch(std::size_t max_keys);
    std::unique_ptr<Pending[]> by_top;        ///< the pending sources ordered by kTopBits
    std::unique_ptr<std::uint64_t[]> hashes;  ///< then grouped by row
    std::array<std::uint32_t, (std::size_t{1} << kTopBits) + 1> top{};  ///< counting sort
    std::vector<std::uint32_t> start;  ///< per ordinal (counting sort), max_keys + 1
  };
  /// The rest of a bucket, small and copied at sealing.
  struct Header {
    std::uint64_t seq = 0;
    std::int64_t start = 0;
    std::uint64_t not_for_sensor = 0, self_traffic = 0, late = 0;
    bucket::Loss loss;
    bucket::Provenance provenance;
    std::uint64_t tag = 0;
  };
  /// Work for the sealing thread, done in order: a full list of pending sources to fold
  /// into an open bucket's sketches (`fold_into`), or a bucket to seal (`keys`).
  struct Job {
    bool empty = false;  ///< an empty bucket: only its header
    std::optional<KeyState> keys;
    Header header;
    std::vector<Pending> pending;
    SketchState* fold_into = nullptr;
    std::size_t rows = 0;  ///< ordinals in use when the pending list was handed over
  };
  static constexpr std::size_t kPendingMax = std::size_t{1} << 17;
  /// Full lists the counting thread can hand over before it waits for the sealing thread
  /// (which may be busy with a slow sink): 4 x 2 MiB, 650,000 sources ahead.
  static constexpr std::size_t kSparePending = 4;

  /// Moves the open bucket to the one holding `now`; `packets` is how many packets the
  /// caller is about to charge, counted as late if `now` is before the open bucket.
  void advance(std::int64_t now, std::uint64_t packets = 1) {
    if (is_open_ && now >= start_ && now < start_ + width_) return;  // the common case
    advance_slow(now, packets);
  }
  void advance_slow(std::int64_t now, std::uint64_t packets);
  void seal_open();
  Header header() const;
  /// Adds the pending (row, source) pairs, all of ordinals below `rows`, to the rows'
  /// sketches, grouped by row; empties `pending`.
  void fold(std::vector<Pending>& pending, std::size_t rows, SketchState& sketches,
            FoldScratch& scratch) const;
  void fold(KeyState& k, FoldScratch& scratch) const {
    fold(k.pending, k.table.size(), *k.sketches, scratch);
  }
  /// The open bucket's pending list is full: folds it here, or hands it to the sealing
  /// thread and goes on with an empty one.
  void fold_pending();
  /// Waits until the sealing thread has done every job (lock held).
  void wait_idle(std::unique_lock<std::mutex>& lock);
  /// What build() does with the rows' sketches.
  enum class Sketches { move, copy, none };
  /// The bucket of `k` and `h`.
  bucket::SealedBucket build(KeyState& k, const Header& h, Sketches sketches) const;
  /// A bucket without rows (everything but them from `h`).
  bucket::SealedBucket build_empty(const Header& h) const;
  /// Empty buckets queued for the sealing thread at most (they hold no spare state).
  static constexpr std::size_t kMaxQueuedJobs = 4096;
  void seal_loop();
  void rethrow_seal_error();

  RollerOptions options_;
  TaggedSink sink_;
  std::function<void()> on_idle_;   ///< set under mu_
  bool sealed_since_idle_ = false;  ///< sealing thread only
  std::int64_t width_;
  KeyState open_;
  FoldScratch scratch_;
  bool is_open_ = false;
  std::int64_t start_ = 0;
  std::uint64_t seq_;
  std::uint64_t not_for_sensor_ = 0;
  std::uint64_t self_traffic_ = 0;
  std::uint64_t late_ = 0;
  bucket::Loss loss_;
  std::uint64_t tag_ = 0;

  // The sealing thread (seal_thread): jobs in order, one spare KeyState, spare pending lists.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<KeyState> spare_;
  std::vector<std::vector<Pending>> spare_pending_;
  bool sealing_ = false;  ///< a job is being sealed
  bool stopping_ = false;
  std::exception_ptr seal_error_;
  std::thread sealer_;
};

}  // namespace teiten::counters

// SPDX-License-Identifier: Apache-2.0
#include "common/counters/bucket_roller.h"

#include <algorithm>
#include <span>
#include <stdexcept>
#include <utility>

namespace teiten::counters {

BucketRoller::KeyState::KeyState(std::size_t max_keys)
    : table(max_keys), sketches(std::make_unique<SketchState>(max_keys)) {
  pending.reserve(kPendingMax);
}

BucketRoller::FoldScratch::FoldScratch(std::size_t max_keys)
    : by_top(std::make_unique_for_overwrite<Pending[]>(kPendingMax)),
      hashes(std::make_unique_for_overwrite<std::uint64_t[]>(kPendingMax)),
      start(max_keys + 1) {}

BucketRoller::BucketRoller(RollerOptions options, Sink sink)
    : BucketRoller(std::move(options),
                   TaggedSink{[s = std::move(sink)](bucket::SealedBucket&& b, std::uint64_t) {
                     s(std::move(b));
                   }}) {}

BucketRoller::BucketRoller(RollerOptions options, TaggedSink sink)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      width_(options_.width_s),
      open_(options_.max_keys),
      scratch_(options_.max_keys),
      seq_(options_.first_seq) {
  if (options_.width_s == 0 || 86400 % options_.width_s != 0) {
    throw std::invalid_argument("bucket width must divide 86400 seconds");
  }
  if (options_.seal_thread) {
    spare_.emplace_back(options_.max_keys);
    for (std::size_t i = 0; i < kSparePending; ++i)
      spare_pending_.emplace_back().reserve(kPendingMax);
    sealer_ = std::thread([this] { seal_loop(); });
  }
}

BucketRoller::~BucketRoller() {
  if (!sealer_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  sealer_.join();
}

void BucketRoller::fold(std::vector<Pending>& pending, std::size_t rows, SketchState& k,
                        FoldScratch& scratch) const {
  // Two stable counting sorts, by the hash's top bits and then by row (ordinals are below
  // max_keys), leave each row's sources ordered by their top bits, so that
  // sketch::sort_hashes (an insertion sort first) finds them almost in order. Each row's
  // sources go into its sketch at once (HostSketch::add_many: merged in one pass while
  // the sketch is sparse). A comparison sort of each row's run was a third of the
  // sealing thread's time.
  auto& top = scratch.top;
  const auto top_of = [](std::uint64_t h) {
    return static_cast<std::size_t>(h >> (64 - kTopBits));
  };
  std::fill(top.begin(), top.end(), 0);
  std::fill(scratch.start.begin(), scratch.start.begin() + static_cast<std::ptrdiff_t>(rows) + 1,
            0);
  for (const Pending& p : pending) {
    ++top[top_of(p.hash) + 1];
    ++scratch.start[p.ordinal + 1];
  }
  for (std::size_t i = 1; i < top.size(); ++i) top[i] += top[i - 1];
  for (std::size_t i = 1; i <= rows; ++i) scratch.start[i] += scratch.start[i - 1];
  for (const Pending& p : pending) scratch.by_top[top[top_of(p.hash)]++] = p;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const Pending& p = scratch.by_top[i];
    scratch.hashes[scratch.start[p.ordinal]++] = p.hash;
  }
  pending.clear();
  // start[o] is now where row o's sources end, and so where row o + 1's begin.
  std::uint32_t begin = 0;
  for (std::size_t o = 0; o < rows; ++o) {
    const std::uint32_t end = scratch.start[o];
    if (end == begin) continue;
    std::span<std::uint64_t> run{scratch.hashes.get() + begin, end - begin};
    begin = end;
    sketch::HostSketch& s = k.sketches[o];
    if (k.bytes + sketch::HostSketch::kDenseBytes <= options_.max_sketch_bytes) {
      k.bytes += s.add_many(run);  // grows by kDenseBytes at most
      continue;
    }
    // Near the budget: only sources that need no more memory are recorded; the others'
    // packets are counted (hosts_unrecorded counts packets, like every loss counter).
    // A dense sketch takes its sources in any order (and never needs more memory).
    if (!s.dense()) sketch::sort_hashes(run);
    for (std::size_t i = 0; i < run.size();) {
      std::size_t j = i + 1;
      while (j < run.size() && run[j] == run[i]) ++j;
      if (s.add_needs_memory(run[i])) {
        k.unrecorded += j - i;
      } else {
        s.add(run[i]);
      }
      i = j;
    }
  }
}

void BucketRoller::fold_pending() {
  if (!sealer_.joinable()) {
    fold(open_, scratch_);
    return;
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !spare_pending_.empty() || seal_error_; });
    if (seal_error_) {
      open_.pending.clear();  // the error comes back from the next seal or flush
      return;
    }
    Job job;
    job.pending = std::move(open_.pending);
    job.fold_into = open_.sketches.get();
    job.rows = open_.table.size();
    jobs_.push_back(std::move(job));
    open_.pending = std::move(spare_pending_.back());
    spare_pending_.pop_back();
  }
  cv_.notify_all();
}

void BucketRoller::wait_idle(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return (jobs_.empty() && !sealing_) || seal_error_; });
}

std::int64_t BucketRoller::align(std::int64_t ts) const noexcept {
  std::int64_t q = ts / width_;
  if (ts % width_ != 0 && ts < 0) --q;
  return q * width_;
}

void BucketRoller::advance_slow(std::int64_t now, std::uint64_t packets) {
  const std::int64_t target = align(now);
  if (!is_open_) {
    is_open_ = true;
    start_ = target;
    return;
  }
  if (target < start_) {
    // Capture time went backwards (a clock step, reordered packets): keep counting in the
    // open bucket and say so. The caller's counter follows this call.
    late_ += packets;
    return;
  }
  seal_open();
  // Empty buckets prove coverage; a gap longer than max_gap_fill is left visible as a gap.
  const std::int64_t missing = (target - start_) / width_ - 1;
  if (missing > 0 && missing <= options_.max_gap_fill) {
    for (std::int64_t i = 0; i < missing; ++i) {
      if (options_.stop_filling && options_.stop_filling->load(std::memory_order_relaxed)) break;
      start_ += width_;
      seal_open();
    }
  }
  is_open_ = true;
  start_ = target;
}

void BucketRoller::flush() {
  if (is_open_) {
    seal_open();
    is_open_ = false;
  }
  if (!sealer_.joinable()) return;
  std::unique_lock lock(mu_);
  wait_idle(lock);
  lock.unlock();
  rethrow_seal_error();
}

BucketRoller::Header BucketRoller::header() const {
  return Header{seq_,  start_, not_for_sensor_,     self_traffic_,
                late_, loss_,  options_.provenance, tag_};
}

void BucketRoller::seal_open() {
  const Header h = header();
  ++seq_;
  not_for_sensor_ = 0;
  self_traffic_ = 0;
  late_ = 0;
  loss_ = bucket::Loss{};
  // An empty bucket (a quiet minute, a silent gap) needs no fold and no state handed over:
  // months of them are sealed without clearing a key table each.
  const bool empty = open_.table.size() == 0;
  if (!sealer_.joinable()) {
    if (empty) {
      sink_(build_empty(h), h.tag);
    } else {
      fold(open_, scratch_);
      bucket::SealedBucket b = build(open_, h, Sketches::move);
      open_.table.clear();
      open_.sketches->bytes = 0;
      open_.sketches->unrecorded = 0;
      sink_(std::move(b), h.tag);
    }
    if (on_idle_) on_idle_();
    return;
  }
  {
    std::unique_lock lock(mu_);
    // An empty bucket takes no spare state, only a place in the bounded queue.
    cv_.wait(lock, [&] {
      return (empty ? jobs_.size() < kMaxQueuedJobs : !spare_.empty()) || seal_error_;
    });
    if (!seal_error_) {
      Job job;
      job.empty = empty;
      job.header = h;
      if (!empty) {
        job.keys.emplace(std::move(open_));
        open_ = std::move(spare_.back());
        spare_.pop_back();
      }
      jobs_.push_back(std::move(job));
    }
  }
  cv_.notify_all();
  rethrow_seal_error();
}

void BucketRoller::rethrow_seal_error() {
  std::exception_ptr e;
  {
    std::lock_guard lock(mu_);
    e = seal_error_;
  }
  if (e) std::rethrow_exception(e);
}

void BucketRoller::seal_loop() {
  FoldScratch scratch(options_.max_keys);
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return !jobs_.empty() || stopping_; });
    if (jobs_.empty()) return;  // stopping, and every job done
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    sealing_ = true;
    const bool failed = seal_error_ != nullptr;
    lock.unlock();
    if (!failed) {
      try {
        if (job.empty) {
          sink_(build_empty(job.header), job.header.tag);
        } else if (job.keys) {
          fold(*job.keys, scratch);
          sink_(build(*job.keys, job.header, Sketches::move), job.header.tag);
        } else {
          fold(job.pending, job.rows, *job.fold_into, scratch);
        }
      } catch (...) {
        lock.lock();
        seal_error_ = std::current_exception();
        lock.unlock();
      }
    }
    if (job.keys) {
      KeyState& k = *job.keys;
      // Only the rows' ordinals can hold a sketch (a failed build leaves some): resetting
      // all max_keys slots per bucket made a sparse capture's sealing O(max_keys) each.
      const std::size_t rows = std::min(k.table.size(), k.sketches->sketches.size());
      for (std::size_t i = 0; i < rows; ++i) k.sketches->sketches[i] = sketch::HostSketch{};
      k.table.clear();
      k.pending.clear();
      k.sketches->bytes = 0;
      k.sketches->unrecorded = 0;
    }
    job.pending.clear();
    lock.lock();
    if (job.keys) {
      spare_.push_back(std::move(*job.keys));
    } else if (!job.empty) {
      spare_pending_.push_back(std::move(job.pending));
    }
    // A bucket went to the sink since the last idle call, and no other is queued to
    // (folds may be): the sink may write what it gathered.
    if (job.empty || job.keys) sealed_since_idle_ = true;
    if (sealed_since_idle_ && on_idle_ && !seal_error_ &&
        std::none_of(jobs_.begin(), jobs_.end(), [](const Job& j) { return j.empty || j.keys; })) {
      sealed_since_idle_ = false;
      lock.unlock();
      try {
        on_idle_();
      } catch (...) {
        lock.lock();
        seal_error_ = std::current_exception();
        lock.unlock();
      }
      lock.lock();
    }
    sealing_ = false;
    cv_.notify_all();
  }
}

void BucketRoller::on_idle(std::function<void()> f) {
  std::lock_guard lock(mu_);
  on_idle_ = std::move(f);
}

std::optional<bucket::SealedBucket> BucketRoller::snapshot(bool sketches) {
  if (!is_open_) return std::nullopt;
  if (!sketches) return build(open_, header(), Sketches::none);
  if (sealer_.joinable()) {  // the sealing thread may be folding into the open bucket
    std::unique_lock lock(mu_);
    wait_idle(lock);
  }
  fold(open_, scratch_);
  return build(open_, header(), Sketches::copy);
}

bucket::SealedBucket BucketRoller::build_empty(const Header& h) const {
  bucket::SealedBucket b;
  b.sensor_id = options_.sensor_id;
  b.boot_id = options_.boot_id;
  b.seq = h.seq;
  b.start = h.start;
  b.width_s = options_.width_s;
  b.not_for_sensor = h.not_for_sensor;
  b.self_traffic = h.self_traffic;
  b.late_packets = h.late;
  b.loss = h.loss;
  b.provenance = h.provenance;
  return b;
}

bucket::SealedBucket BucketRoller::build(KeyState& k, const Header& h, Sketches sketches) const {
  bucket::SealedBucket b = build_empty(h);
  // Rows in key order: the keys sorted first (small), then each row built once in place.
  struct Entry {
    std::uint64_t key;
    const CounterValue* value;
    std::uint32_t ordinal;
  };
  std::vector<Entry> order;
  order.reserve(k.table.size());
  k.table.for_each([&](std::uint64_t key, const CounterValue& v) {
    order.push_back(Entry{key, &v, static_cast<std::uint32_t>(order.size())});
  });
  std::sort(order.begin(), order.end(),
            [](const Entry& x, const Entry& y) { return x.key < y.key; });
  b.rows.reserve(order.size());
  for (const Entry& e : order) {
    sketch::HostSketch& s = k.sketches->sketches[e.ordinal];
    b.rows.push_back(
        bucket::Row{classify::Key::unpack(e.key), e.value->packets, e.value->bytes, {}});
    if (sketches == Sketches::move) b.rows.back().hosts = std::exchange(s, sketch::HostSketch{});
    if (sketches == Sketches::copy) b.rows.back().hosts = s;
  }
  // Without sketches (a snapshot), the sketch state is not read: the sealing thread may be
  // folding into it.
  b.hosts_unrecorded = sketches == Sketches::none ? 0 : k.sketches->unrecorded;
  return b;
}

}  // namespace teiten::counters

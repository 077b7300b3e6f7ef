#include "common/counters/bucket_roller.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace teiten::counters {

BucketRoller::KeyState::KeyState(std::size_t max_keys) : table(max_keys), sketches(max_keys) {
  pending.reserve(kPendingMax);
}

BucketRoller::FoldScratch::FoldScratch(std::size_t max_keys)
    : sorted(kPendingMax), start(max_keys + 1) {}

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

void BucketRoller::fold(KeyState& k, FoldScratch& scratch) const {
  // Counting sort by row (ordinals are below max_keys), then each row's sources in turn:
  // one row's table stays in cache while its sources go in.
  std::fill(scratch.start.begin(), scratch.start.end(), 0);
  for (const Pending& p : k.pending) ++scratch.start[p.ordinal + 1];
  for (std::size_t i = 1; i < scratch.start.size(); ++i) scratch.start[i] += scratch.start[i - 1];
  for (const Pending& p : k.pending) scratch.sorted[scratch.start[p.ordinal]++] = p;
  const std::size_t n = k.pending.size();
  k.pending.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const Pending& p = scratch.sorted[i];
    sketch::HostSketch& s = k.sketches[p.ordinal];
    if (k.sketch_bytes + sketch::HostSketch::kDenseBytes > options_.max_sketch_bytes &&
        s.add_needs_memory(p.hash)) {
      ++k.hosts_unrecorded;
      continue;
    }
    k.sketch_bytes += s.add(p.hash);
  }
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
  cv_.wait(lock, [&] { return (jobs_.empty() && !sealing_) || seal_error_; });
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
  if (!sealer_.joinable()) {
    fold(open_, scratch_);
    bucket::SealedBucket b = build(open_, h, Sketches::move);
    open_.table.clear();
    open_.sketch_bytes = 0;
    open_.hosts_unrecorded = 0;
    sink_(std::move(b), h.tag);
    return;
  }
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !spare_.empty() || seal_error_; });
    if (!seal_error_) {
      jobs_.push_back(Job{std::move(open_), h});
      open_ = std::move(spare_.back());
      spare_.pop_back();
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
    if (jobs_.empty()) return;  // stopping, and every job sealed
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    sealing_ = true;
    const bool failed = seal_error_ != nullptr;
    lock.unlock();
    if (!failed) {
      try {
        fold(job.keys, scratch);
        sink_(build(job.keys, job.header, Sketches::move), job.header.tag);
      } catch (...) {
        lock.lock();
        seal_error_ = std::current_exception();
        lock.unlock();
      }
    }
    job.keys.table.clear();
    job.keys.pending.clear();
    job.keys.sketch_bytes = 0;
    job.keys.hosts_unrecorded = 0;
    for (auto& s : job.keys.sketches) s = sketch::HostSketch{};  // failed builds leave some
    lock.lock();
    spare_.push_back(std::move(job.keys));
    sealing_ = false;
    cv_.notify_all();
  }
}

std::optional<bucket::SealedBucket> BucketRoller::snapshot(bool sketches) {
  if (!is_open_) return std::nullopt;
  if (!sketches) return build(open_, header(), Sketches::none);
  fold(open_, scratch_);
  return build(open_, header(), Sketches::copy);
}

bucket::SealedBucket BucketRoller::build(KeyState& k, const Header& h, Sketches sketches) const {
  bucket::SealedBucket b;
  b.sensor_id = options_.sensor_id;
  b.boot_id = options_.boot_id;
  b.seq = h.seq;
  b.start = h.start;
  b.width_s = options_.width_s;
  b.rows.reserve(k.table.size());
  std::size_t ordinal = 0;
  k.table.for_each([&](std::uint64_t key, const CounterValue& v) {
    sketch::HostSketch& s = k.sketches[ordinal++];
    b.rows.push_back(bucket::Row{classify::Key::unpack(key), v.packets, v.bytes, {}});
    if (sketches == Sketches::move) b.rows.back().hosts = std::exchange(s, sketch::HostSketch{});
    if (sketches == Sketches::copy) b.rows.back().hosts = s;
  });
  std::sort(b.rows.begin(), b.rows.end(),
            [](const bucket::Row& x, const bucket::Row& y) { return x.key.pack() < y.key.pack(); });
  b.not_for_sensor = h.not_for_sensor;
  b.self_traffic = h.self_traffic;
  b.late_packets = h.late;
  b.hosts_unrecorded = k.hosts_unrecorded;
  b.loss = h.loss;
  b.provenance = h.provenance;
  return b;
}

}  // namespace teiten::counters

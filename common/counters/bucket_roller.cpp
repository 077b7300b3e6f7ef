#include "common/counters/bucket_roller.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace teiten::counters {

BucketRoller::BucketRoller(RollerOptions options, Sink sink)
    : options_(std::move(options)),
      sink_(std::move(sink)),
      width_(options_.width_s),
      table_(options_.max_keys),
      sketches_(options_.max_keys),
      pending_start_(options_.max_keys + 1),
      seq_(options_.first_seq) {
  if (options_.width_s == 0 || 86400 % options_.width_s != 0) {
    throw std::invalid_argument("bucket width must divide 86400 seconds");
  }
  pending_.reserve(kPendingMax);
  pending_sorted_.resize(kPendingMax);
}

void BucketRoller::fold_pending() {
  // Counting sort by row (ordinals are below max_keys), then each row's sources in turn:
  // one row's table stays in cache while its sources go in.
  std::fill(pending_start_.begin(), pending_start_.end(), 0);
  for (const Pending& p : pending_) ++pending_start_[p.ordinal + 1];
  for (std::size_t i = 1; i < pending_start_.size(); ++i)
    pending_start_[i] += pending_start_[i - 1];
  for (const Pending& p : pending_) pending_sorted_[pending_start_[p.ordinal]++] = p;
  const std::size_t n = pending_.size();
  pending_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    const Pending& p = pending_sorted_[i];
    sketch::HostSketch& s = sketches_[p.ordinal];
    if (sketch_bytes_ + sketch::HostSketch::kDenseBytes > options_.max_sketch_bytes &&
        s.add_needs_memory(p.hash)) {
      ++hosts_unrecorded_;
      continue;
    }
    sketch_bytes_ += s.add(p.hash);
  }
}

std::int64_t BucketRoller::align(std::int64_t ts) const noexcept {
  std::int64_t q = ts / width_;
  if (ts % width_ != 0 && ts < 0) --q;
  return q * width_;
}

void BucketRoller::advance_slow(std::int64_t now, std::uint64_t packets) {
  const std::int64_t target = align(now);
  if (!open_) {
    open_ = true;
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
  open_ = true;
  start_ = target;
}

void BucketRoller::flush() {
  if (!open_) return;
  seal_open();
  open_ = false;
}

void BucketRoller::seal_open() {
  fold_pending();
  bucket::SealedBucket b = build_open(true);
  ++seq_;
  std::fill(seen_.begin(), seen_.end(), 0);
  table_.clear();
  sketch_bytes_ = 0;
  hosts_unrecorded_ = 0;
  not_for_sensor_ = 0;
  self_traffic_ = 0;
  late_ = 0;
  loss_ = bucket::Loss{};
  sink_(std::move(b));
}

std::optional<bucket::SealedBucket> BucketRoller::snapshot() {
  if (!open_) return std::nullopt;
  fold_pending();
  return build_open(false);
}

bucket::SealedBucket BucketRoller::build_open(bool take) {
  bucket::SealedBucket b;
  b.sensor_id = options_.sensor_id;
  b.boot_id = options_.boot_id;
  b.seq = seq_;
  b.start = start_;
  b.width_s = options_.width_s;
  b.rows.reserve(table_.size());
  std::size_t ordinal = 0;
  table_.for_each([&](std::uint64_t key, const CounterValue& v) {
    sketch::HostSketch& s = sketches_[ordinal++];
    b.rows.push_back(bucket::Row{classify::Key::unpack(key), v.packets, v.bytes,
                                 take ? std::exchange(s, sketch::HostSketch{}) : s});
  });
  std::sort(b.rows.begin(), b.rows.end(),
            [](const bucket::Row& x, const bucket::Row& y) { return x.key.pack() < y.key.pack(); });
  b.not_for_sensor = not_for_sensor_;
  b.self_traffic = self_traffic_;
  b.late_packets = late_;
  b.hosts_unrecorded = hosts_unrecorded_;
  b.loss = loss_;
  b.provenance = options_.provenance;
  return b;
}

}  // namespace teiten::counters

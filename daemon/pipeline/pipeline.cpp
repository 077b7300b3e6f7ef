// SPDX-License-Identifier: Apache-2.0
#include "daemon/pipeline/pipeline.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdio_ext.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/decode/decode.h"
#include "common/log/log.h"
#include "common/version.h"
#include "daemon/pipeline/cpu_placement.h"

namespace teiten::sensor {
namespace {

// Back-off for a side that finds the ring empty (classifier) or full (replay in wait
// mode): spin briefly, then yield, then sleep, so an idle pipeline costs no CPU.
class Backoff {
 public:
  void pause() noexcept {
    // Each step costs a little CPU per wake-up; a quiet live capture (1,000 packets/s)
    // would otherwise spend most of its time spinning and waking between packets.
    if (n_ < 64) {
      __builtin_ia32_pause_compat();
    } else if (n_ < 72) {
      std::this_thread::yield();
    } else if (n_ < 96) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    } else if (n_ < 128) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    } else {
      // Idle: a burst then waits at most a millisecond in the ring (ring_slots packets).
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (n_ < 128) ++n_;
  }
  void reset() noexcept { n_ = 0; }

 private:
  static void __builtin_ia32_pause_compat() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  unsigned n_ = 0;
};

// memcpy of a short, variable length: fixed-size moves that may overlap. (g++ inlines a
// memcpy of at most kDataBytes bytes as `rep movsq`, slow to start for packets of a few
// dozen bytes.)
void copy_packet(std::uint8_t* to, const std::uint8_t* from, std::size_t n) noexcept {
  if (n >= 32) {
    for (std::size_t i = 0; i + 32 <= n; i += 32) std::memcpy(to + i, from + i, 32);
    std::memcpy(to + n - 32, from + n - 32, 32);
  } else if (n >= 16) {
    std::memcpy(to, from, 16);
    std::memcpy(to + n - 16, from + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(to, from, 8);
    std::memcpy(to + n - 8, from + n - 8, 8);
  } else {
    for (std::size_t i = 0; i < n; ++i) to[i] = from[i];
  }
}

#if defined(__x86_64__)
// Whether the CPU has PREFETCHW (CPUID 8000_0001h, ECX bit 8: AMD's 3DNowPrefetch, Intel's
// PRFCHW since Broadwell).
bool cpu_has_prefetchw() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(0x80000001u, &a, &b, &c, &d) != 0 && (c & (1u << 8)) != 0;
}
const bool kHasPrefetchW = cpu_has_prefetchw();
#endif

// Asks for a cache line this thread will write soon, owned (the classifier's core last read
// a ring slot's lines): one transfer instead of a shared copy now and ownership at the
// write. g++ makes __builtin_prefetch(p, 1) a plain read prefetch on x86-64 unless built
// for a CPU with PREFETCHW, so where the CPU has it, it is asked for by name.
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__)
  if (kHasPrefetchW) {
    asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
    return;
  }
#endif
  __builtin_prefetch(p, 1);
}

void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  // Single writer: a relaxed load+store is enough and cheaper than fetch_add.
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace

Pipeline::Pipeline(const config::SensorConfig& config,
                   std::shared_ptr<const classify::GeoIpDatabase> db, PipelineOptions options,
                   BucketSink sink, std::function<void()> idle)
    : config_(config),
      options_(std::move(options)),
      ring_(config.ring_slots),
      classifier_(config.address_set, db, config.geoip_cache_entries),
      self_(config.address_set, options_.control_ports),
      roller_(
          counters::RollerOptions{
              config.sensor_id, options_.boot_id, options_.first_seq, config.bucket_width_s,
              config.bucket_max_keys, config.bucket_max_gap_fill, config.bucket_max_sketch_bytes,
              /*seal_thread=*/true,
              bucket::Provenance{std::string{"teiten "} + kVersion, config.sha256,
                                 db ? db->build_epoch() : 0, false},
              &stop_},
          counters::BucketRoller::TaggedSink{
              [this, sink = std::move(sink)](bucket::SealedBucket&& b, std::uint64_t index) {
                bump(stats_.buckets_sealed);
                // Tagged with the slot being processed when it was sealed: that slot
                // belongs to a later bucket (or is the end marker), so every packet
                // before it is in a sealed bucket now.
                sink(std::move(b), index);
              }}) {
  if (idle) roller_.on_idle(std::move(idle));
}

Pipeline::~Pipeline() = default;

std::vector<int> Pipeline::place_threads() {
  if (!config_.cpu_affinity) return {};
  const std::vector<int> allowed = allowed_cpus();
  const CpuPlan plan = plan_cpus(allowed);
  if (plan.capture.empty()) return {};  // one CPU: nothing to place
  caller_cpus_ = allowed;
  auto logger = log::get("capture");
  std::string error = bind_thread(pthread_self(), plan.capture);
  if (std::thread* sealer = roller_.seal_thread(); error.empty() && sealer)
    error = bind_thread(sealer->native_handle(), plan.sealing);
  if (!error.empty()) {
    logger->warn("threads left to the scheduler (capture.cpu_affinity): {}", error);
    restore_cpus();
    return {};
  }
  logger->info("threads on CPUs: capture {}, classifier {}, sealing {}",
               describe_cpus(plan.capture), describe_cpus(plan.classifier),
               describe_cpus(plan.sealing));
  return plan.classifier;
}

void Pipeline::bind_classifier(const std::vector<int>& cpus) {
  if (cpus.empty()) return;
  const std::string error = bind_thread(pthread_self(), cpus);
  if (!error.empty())
    log::get("capture")->warn("classifier thread left to the scheduler: {}", error);
}

void Pipeline::restore_cpus() {
  if (!caller_cpus_.empty()) bind_thread(pthread_self(), caller_cpus_);
  caller_cpus_.clear();
}

void Pipeline::run_threads(const std::function<void()>& capture) {
  const std::vector<int> classifier_cpus = place_threads();
  struct Restore {
    Pipeline* p;
    ~Restore() { p->restore_cpus(); }
  } restore{this};  // also when starting the thread throws
  std::thread classifier([this, classifier_cpus] {
    bind_classifier(classifier_cpus);
    classifier_loop();
  });
  capture();
  classifier.join();
}

namespace {
// Wakes a capture thread blocked reading a pipe (see Pipeline::capture_interruptible_).
// SIGURG is ignored by default, so a stray one harms nothing.
constexpr int kWakeSignal = SIGURG;
void on_wake(int) {}
}  // namespace

void Pipeline::wake_capture() noexcept {
  if (capture_interruptible_.load(std::memory_order_acquire) &&
      !capture_done_.load(std::memory_order_acquire)) {
    pthread_kill(capture_thread_, kWakeSignal);  // async-signal-safe
  }
}

std::string Pipeline::run(PacketSource& source) {
  link_ = source.link();
  // A read that can block while its writer is quiet (a pipe, a FIFO): a stop must be able
  // to end it.
  if (source.blocking()) {
    struct sigaction sa {};
    sa.sa_handler = on_wake;  // no SA_RESTART: the read returns EINTR
    sigemptyset(&sa.sa_mask);
    ::sigaction(kWakeSignal, &sa, nullptr);
    capture_thread_ = pthread_self();
    capture_interruptible_.store(true, std::memory_order_release);
    if (stop_.load(std::memory_order_relaxed)) wake_capture();
  }
  run_threads([&] { capture_loop(source); });
  if (!capture_error_.empty()) return capture_error_;
  return classifier_error_;
}

void Pipeline::capture_loop(PacketSource& source) {
  using clock = std::chrono::steady_clock;
  const bool live = source.live();
  auto next_second = clock::now() + std::chrono::seconds(1);
  auto realtime = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const PacketHandlers handlers{&Pipeline::on_packet, &Pipeline::on_learn,
                                reinterpret_cast<u_char*>(this), &stop_};
  if (live) {
    stats_.capture_active.store(source.is_open(), std::memory_order_relaxed);
    if (source.is_open()) bump(stats_.capture_opens);
  }
  bool end = false;
  while (!end && !stop_.load(std::memory_order_relaxed)) {
    bump(stats_.capture_beats);
    switch (source.read(handlers)) {
      case SourceRead::packets:
        break;
      case SourceRead::end:
        end = true;
        break;
      case SourceRead::failed:
        capture_error_ = source.error();
        end = true;
        break;
      case SourceRead::lost:
        // Down or gone: what the kernel counted so far is charged now.
        push_drops(realtime(), source.take_drops());
        bump(stats_.capture_errors);
        stats_.capture_active.store(false, std::memory_order_relaxed);
        break;
      case SourceRead::opened:
        bump(stats_.capture_opens);
        stats_.capture_active.store(true, std::memory_order_relaxed);
        break;
    }
    if (live && clock::now() >= next_second) {
      next_second += std::chrono::seconds(1);
      if (next_second < clock::now()) next_second = clock::now() + std::chrono::seconds(1);
      // One second of grace for packets still in the kernel's buffer (drops too: a drop
      // slot stamped later would close the bucket early).
      const std::int64_t now = realtime() - 1;
      push_drops(now, source.take_drops());
      push_control(SlotType::tick, now);
    }
  }
  capture_done_.store(true, std::memory_order_release);
  // A file ends at its last packet's time, a live capture now.
  const std::int64_t ts = live ? realtime() : last_ts_;
  if (live) push_drops(ts, source.take_drops());
  push_control(SlotType::eof, ts);
}

void Pipeline::push_drops(std::int64_t ts, const CaptureDrops& d) noexcept {
  if (d.kernel == 0 && d.interface == 0) return;
  bump(stats_.kernel_drops, d.kernel);
  bump(stats_.interface_drops, d.interface);
  PacketSlot* slot = claim_waiting();
  if (!slot) return;
  slot->type = SlotType::drops;
  slot->ts_sec = ts;
  slot->wire_len = 0;
  slot->caplen = 0;
  std::memcpy(slot->data, &d.kernel, 8);
  std::memcpy(slot->data + 8, &d.interface, 8);
  slot->drops_before = pending_drops_;
  slot->index = read_index_;
  pending_drops_ = 0;
  ring_.commit();
}

void Pipeline::on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  reinterpret_cast<Pipeline*>(user)->push_packet<SlotType::packet>(h, bytes);
}

PacketSlot* Pipeline::claim_waiting() noexcept {
  Backoff backoff;
  for (;;) {
    if (PacketSlot* s = ring_.try_claim()) return s;
    if (classifier_done_.load(std::memory_order_acquire)) return nullptr;
    backoff.pause();
  }
}

void Pipeline::on_learn(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
  reinterpret_cast<Pipeline*>(user)->push_packet<SlotType::learn>(h, bytes);
}

template <SlotType type>
void Pipeline::push_packet(const pcap_pkthdr* h, const u_char* bytes) noexcept {
  const std::uint64_t index = read_index_++;
  PacketSlot* slot = nullptr;
  if constexpr (type == SlotType::packet) {
    // The common case inline; a full ring out of line.
    bump(stats_.captured);
    // Ask now for the first two lines (the header and a packet's first 96 bytes) of a slot
    // a few packets ahead, so that their fetch overlaps with this packet's copy instead of
    // stalling the one that fills it.
    if (const PacketSlot* ahead = ring_.claim_address_ahead(kClaimAhead)) {
      prefetch_for_write(ahead);
      prefetch_for_write(reinterpret_cast<const char*>(ahead) + 64);
    }
    slot = ring_.try_claim();
    if (!slot) [[unlikely]] {
      slot = claim_full(h);
      if (!slot) return;
    }
  } else {
    // Already in sealed buckets: waits for its slot, and nullptr means the classifier
    // stopped.
    slot = claim_waiting();
    if (!slot) return;
  }
  slot->type = type;
  slot->ts_sec = h->ts.tv_sec;
  slot->wire_len = h->len;
  const std::size_t n = std::min<std::size_t>(h->caplen, PacketSlot::kDataBytes);
  slot->caplen = static_cast<std::uint16_t>(n);
  copy_packet(slot->data, bytes, n);
  slot->drops_before = pending_drops_;
  slot->index = index;
  pending_drops_ = 0;
  last_ts_ = h->ts.tv_sec;
  ring_.commit();
}

PacketSlot* Pipeline::claim_full(const pcap_pkthdr* h) noexcept {
  if (options_.ring_full == config::RingFullPolicy::drop) {
    ++pending_drops_;
    bump(stats_.ring_drops);
    last_ts_ = h->ts.tv_sec;
    return nullptr;
  }
  bump(stats_.ring_waits);
  // A file can wait: sleep until the classifier has drained half the ring, rather than
  // spin beside it for each slot (on a small box that spin takes the core the sealing
  // thread needs), then fill the half in one burst.
  while (ring_.size_approx() > ring_.capacity() / 2 &&
         !classifier_done_.load(std::memory_order_acquire)) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  PacketSlot* slot = claim_waiting();
  if (!slot) {  // the classifier stopped: nothing will drain the ring
    ++pending_drops_;
    bump(stats_.ring_drops);
  }
  return slot;
}

void Pipeline::push_control(SlotType type, std::int64_t ts) noexcept {
  PacketSlot* slot = claim_waiting();
  if (!slot) return;
  slot->type = type;
  slot->ts_sec = ts;
  slot->wire_len = 0;
  slot->caplen = 0;
  slot->drops_before = pending_drops_;
  slot->index = read_index_;
  pending_drops_ = 0;
  ring_.commit();
}

void Pipeline::classifier_loop() noexcept {
  Backoff backoff;
  std::uint64_t idle_wakes = 0;
  for (;;) {
    bump(stats_.classifier_beats);
    while (stalled_.load(std::memory_order_relaxed))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const std::size_t n = ring_.readable(kBatch);
    if (n == 0) {
      // Stopping, and the capture thread may have entered its read just after the wake-up
      // signal: send it again while waiting for its end marker.
      if (stop_.load(std::memory_order_relaxed) &&
          capture_interruptible_.load(std::memory_order_relaxed) && ++idle_wakes % 64 == 0) {
        wake_capture();
      }
      backoff.pause();
      continue;
    }
    backoff.reset();
    // A run of packets goes through as a batch; any other slot alone, in order.
    std::size_t m = 0;
    while (m < n && ring_.peek_at(m)->type == SlotType::packet) ++m;
    const bool eof = m == 0 && ring_.peek_at(0)->type == SlotType::eof;
    try {
      if (m > 0) {
        process_batch(m);
      } else {
        m = 1;  // released below, also when process() throws
        process(*ring_.peek_at(0));
      }
    } catch (const std::exception& e) {
      // Only the sink can throw (writing a sealed bucket): without it nothing can be
      // delivered, so stop the pipeline rather than count into the void.
      classifier_error_ = std::string{"sealing a bucket failed: "} + e.what();
      stop_.store(true, std::memory_order_relaxed);
      ring_.release(m);
      break;
    }
    ring_.release(m);
    if (eof) break;
  }
  classifier_done_.store(true, std::memory_order_release);
}

void Pipeline::process_batch(std::size_t n) {
  // Three passes over up to kBatch packets, so that the cache misses of different packets
  // overlap instead of following one another: (1) decode, and prefetch what classifying
  // reads (the GeoIP block of the source); (2) self-traffic check and classification, in
  // order, and prefetch the key's table slot; (3) count, in order. A full batch means
  // more are waiting: the slots of the next one are prefetched as this one starts.
  for (std::size_t i = 0; n == kBatch && i < kBatch; ++i) {
    const auto* ahead = static_cast<const char*>(ring_.address_ahead(n + i));
    __builtin_prefetch(ahead);
    __builtin_prefetch(ahead + 64);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const PacketSlot& slot = *ring_.peek_at(i);
    Staged& s = staged_[i];
    s.status = decode::decode_packet(link_, slot.data, slot.caplen, slot.wire_len, s.packet);
    if (s.status == decode::DecodeStatus::ok) {
      if (const void* a = classifier_.probe_address(s.packet)) __builtin_prefetch(a);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    Staged& s = staged_[i];
    if (s.status != decode::DecodeStatus::ok) {
      s.outcome = Outcome::malformed;
    } else if (self_.is_self(s.packet, ring_.peek_at(i)->ts_sec)) {
      s.outcome = Outcome::self;
    } else if (!classifier_.classify(s.packet, s.key)) {
      s.outcome = Outcome::not_for_sensor;
    } else {
      s.outcome = Outcome::observed;
      __builtin_prefetch(roller_.probe_address(s.key));
    }
  }
  // The statistics count each packet as pass 3 reaches it, as one at a time did, and are
  // published once per batch, also when the sink throws part-way.
  struct Tally {
    PipelineStats& st;
    std::array<std::uint64_t, 4> by{};  // by Outcome
    ~Tally() {
      bump(st.classified, by[0] + by[1] + by[2] + by[3]);
      bump(st.malformed, by[0]);
      bump(st.self_traffic, by[1]);
      bump(st.not_for_sensor, by[2]);
      bump(st.observed, by[3]);
    }
  } tally{stats_};
  static_assert(static_cast<int>(Outcome::malformed) == 0 && static_cast<int>(Outcome::self) == 1 &&
                static_cast<int>(Outcome::not_for_sensor) == 2 &&
                static_cast<int>(Outcome::observed) == 3);
  for (std::size_t i = 0; i < n; ++i) {
    const PacketSlot& slot = *ring_.peek_at(i);
    const Staged& s = staged_[i];
    ++tally.by[static_cast<std::size_t>(s.outcome)];
    roller_.set_tag(slot.index);
    if (slot.drops_before) roller_.add_ring_drops(slot.ts_sec, slot.drops_before);
    switch (s.outcome) {
      case Outcome::malformed:
        ++malformed_[static_cast<std::size_t>(s.status)];
        roller_.add_malformed(slot.ts_sec, s.status);
        break;
      case Outcome::self:
        roller_.add_self(slot.ts_sec);
        break;
      case Outcome::not_for_sensor:
        roller_.add_not_for_sensor(slot.ts_sec);
        break;
      case Outcome::observed:
        roller_.add(slot.ts_sec, s.key, s.packet.ip_length, sketch::hash_source(s.packet));
        break;
    }
  }
}

void Pipeline::process(const PacketSlot& slot) {
  // Packets go through process_batch (classifier_loop never passes one here); were one
  // passed, it would be the oldest unread slot, which is what process_batch(1) reads.
  if (slot.type == SlotType::packet) return process_batch(1);
  roller_.set_tag(slot.index);
  if (slot.drops_before) roller_.add_ring_drops(slot.ts_sec, slot.drops_before);
  switch (slot.type) {
    case SlotType::eof:
      roller_.flush();
      stats_.geoip_errors.store(classifier_.geoip_stats().errors, std::memory_order_relaxed);
      return;
    case SlotType::tick: {
      if (geoip_pending_.load(std::memory_order_acquire)) {
        std::lock_guard lock(geoip_mu_);
        geoip_pending_.store(false, std::memory_order_relaxed);
        roller_.set_geoip_build_epoch(pending_geoip_ ? pending_geoip_->build_epoch() : 0);
        classifier_.set_database(std::move(pending_geoip_));
      }
      roller_.tick(slot.ts_sec);
      // Every second: the counts, without copying the sketches (pulls show no hosts for
      // the open bucket; sealed buckets carry them).
      auto snapshot = roller_.snapshot(false);
      std::lock_guard lock(open_mu_);
      open_snapshot_ = std::move(snapshot);
      return;
    }
    case SlotType::drops: {
      std::uint64_t kernel = 0, interface = 0;
      std::memcpy(&kernel, slot.data, 8);
      std::memcpy(&interface, slot.data + 8, 8);
      roller_.add_capture_drops(slot.ts_sec, kernel, interface);
      return;
    }
    case SlotType::learn: {
      decode::DecodedPacket p;
      if (decode::decode_packet(link_, slot.data, slot.caplen, slot.wire_len, p) ==
          decode::DecodeStatus::ok)
        self_.is_self(p, slot.ts_sec);
      return;
    }
    case SlotType::packet:
      return;  // above
  }
}

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"
#include "common/classify/classifier.h"
#include "common/classify/self_traffic.h"
#include "common/counters/bucket_roller.h"
#include "common/decode/decode_status.h"
#include "common/decode/link.h"
#include "common/ring/spsc_ring.h"
#include "daemon/capture/packet_source.h"
#include "daemon/config/sensor_config.h"
#include "daemon/pipeline/packet_slot.h"

namespace teiten::sensor {

/// Process-lifetime counters of the pipeline. Each field has one writer thread; any
/// thread may read them (relaxed atomics) for status and metrics.
struct PipelineStats {
  // Written by the capture thread (cache lines of its own: the classifier thread writes
  // its counters for every packet too, and a shared line would bounce between the cores).
  alignas(64) std::atomic<std::uint64_t> captured{0};  ///< packets libpcap handed over
  std::atomic<std::uint64_t> ring_drops{0};            ///< dropped because the ring was full
  std::atomic<std::uint64_t> ring_waits{0};            ///< times replay waited for a ring slot
  std::atomic<std::uint64_t> kernel_drops{0};
  std::atomic<std::uint64_t> interface_drops{0};
  std::atomic<std::uint64_t> capture_errors{0};  ///< live: interface went down or vanished
  std::atomic<std::uint64_t> capture_opens{0};   ///< live: successful (re)opens
  std::atomic<std::uint64_t> capture_beats{0};   ///< heartbeat for the systemd watchdog
  std::atomic<bool> capture_active{false};       ///< live: the capture is open now
  // Written by the classifier thread.
  alignas(64) std::atomic<std::uint64_t> classified{0};  ///< packets the classifier processed
  std::atomic<std::uint64_t> observed{0};                ///< addressed to the sensor, counted
  std::atomic<std::uint64_t> not_for_sensor{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> buckets_sealed{0};
  std::atomic<std::uint64_t> geoip_errors{0};
  std::atomic<std::uint64_t> self_traffic{0};
  std::atomic<std::uint64_t> classifier_beats{0};  ///< heartbeat for the systemd watchdog
};

/// Options of one pipeline run beyond the configuration file.
struct PipelineOptions {
  std::string boot_id;
  std::uint64_t first_seq = 0;
  config::RingFullPolicy ring_full = config::RingFullPolicy::drop;
  std::vector<std::uint16_t> control_ports;  ///< inbound TCP to these is self traffic
};

/// Receives each sealed bucket on the classifier thread, with the number of capture
/// packets (from the start of the capture) that are now in sealed buckets.
using BucketSink = std::function<void(bucket::SealedBucket&&, std::uint64_t packets_done)>;

/// The sensor's packet path: a capture thread reads a packet source (live or a file) into a
/// lock-free SPSC ring of preallocated slots; a classifier thread decodes, classifies and
/// counts into rolling buckets, and hands every sealed bucket to the sink (on the
/// classifier thread). Offline replay and live capture run this same object and loop.
class Pipeline {
 public:
  /// `idle`, if given, runs on the sink's thread after a sealed bucket when no other is
  /// waiting for the sink (BucketRoller::on_idle): a sink that gathers buckets writes them
  /// there, together.
  Pipeline(const config::SensorConfig& config, std::shared_ptr<const classify::GeoIpDatabase> db,
           PipelineOptions options, BucketSink sink, std::function<void()> idle = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Reads `source` through both threads until its end or request_stop(), then seals the
  /// open bucket. Blocks until done. A live source gets a tick each second that closes
  /// quiet buckets and charges its drop counters (and keeps reading while its interface is
  /// away). Returns "" or a message naming what failed.
  std::string run(PacketSource& source);

  /// Replaces the GeoIP database (reload; any thread). The classifier thread takes it at
  /// its next tick, between two packets: none is lost or counted twice.
  void replace_geoip(std::shared_ptr<const classify::GeoIpDatabase> db) {
    std::lock_guard lock(geoip_mu_);
    pending_geoip_ = std::move(db);
    geoip_pending_.store(true, std::memory_order_release);
  }

  /// Test hook (TEITEN_TEST_HOOKS): the classifier thread stops making progress while set.
  void stall_classifier(bool on) noexcept { stalled_.store(on, std::memory_order_relaxed); }

  /// Asks a running pipeline to stop (any thread, async-signal-safe). A replay reading a
  /// pipe or FIFO whose writer went quiet is woken from its blocked read.
  void request_stop() noexcept {
    stop_.store(true, std::memory_order_relaxed);
    wake_capture();
  }

  const PipelineStats& stats() const noexcept { return stats_; }

  /// The open bucket as of the last tick (live capture: at most a second old). Any thread.
  std::optional<bucket::SealedBucket> open_bucket() const {
    std::lock_guard lock(open_mu_);
    return open_snapshot_;
  }
  /// Malformed packets by reason so far (valid after run() returns).
  const decode::DecodeCounters& malformed_by_reason() const noexcept { return malformed_; }
  /// Charges packets that the spool dropped to the open bucket (classifier thread only,
  /// e.g. from within the sink).

  const classify::CountryCache::Stats& geoip_stats() const noexcept {
    return classifier_.geoip_stats();
  }

 private:
  /// Places the threads, runs the classifier thread beside `capture` (on this thread)
  /// until both end, and gives this thread its CPUs back.
  void run_threads(const std::function<void()>& capture);
  void capture_loop(PacketSource& source);
  void push_drops(std::int64_t ts, const CaptureDrops& d) noexcept;
  static void on_packet(u_char* user, const pcap_pkthdr* h, const u_char* bytes);
  static void on_learn(u_char* user, const pcap_pkthdr* h, const u_char* bytes);
  /// A packet (`type` packet) or a resumed replay's packet to learn from (`type` learn).
  template <SlotType type>
  void push_packet(const pcap_pkthdr* h, const u_char* bytes) noexcept;
  /// push_packet's slot when the ring is full: by the ring-full policy, dropped (nullptr,
  /// counted) or waited for (nullptr: the classifier stopped).
  [[gnu::noinline]] PacketSlot* claim_full(const pcap_pkthdr* h) noexcept;
  void push_control(SlotType type, std::int64_t ts) noexcept;
  PacketSlot* claim_waiting() noexcept;
  /// capture.cpu_affinity: binds the calling (capture) thread and the sealing thread as
  /// plan_cpus says and returns the classifier's CPUs; restore_cpus() undoes the first.
  std::vector<int> place_threads();
  void restore_cpus();
  /// On the classifier thread: binds it to `cpus` (place_threads' answer; empty: none).
  static void bind_classifier(const std::vector<int>& cpus);
  void classifier_loop() noexcept;
  /// One slot of any type.
  void process(const PacketSlot& slot);
  /// The `n` oldest unread slots, all packets (n <= kBatch).
  void process_batch(std::size_t n);

  static constexpr std::size_t kBatch = 16;
  static constexpr std::size_t kClaimAhead = 8;
  enum class Outcome : std::uint8_t { malformed, self, not_for_sensor, observed };
  /// A packet between the passes of process_batch.
  struct Staged {
    decode::DecodedPacket packet;
    decode::DecodeStatus status = decode::DecodeStatus::ok;
    Outcome outcome = Outcome::observed;
    classify::Key key;
  };

  config::SensorConfig config_;
  PipelineOptions options_;
  decode::LinkType link_ = decode::LinkType::ethernet;
  ring::SpscRing<PacketSlot> ring_;
  classify::Classifier classifier_;
  classify::SelfTraffic self_;
  counters::BucketRoller roller_;
  PipelineStats stats_;
  decode::DecodeCounters malformed_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> classifier_done_{false};
  /// A replay from a pipe or FIFO: the capture thread may sit in read(2) for ever; a
  /// signal without SA_RESTART (kWakeSignal) ends that read once stop_ is set.
  std::atomic<bool> capture_interruptible_{false};
  std::atomic<bool> capture_done_{false};
  pthread_t capture_thread_{};
  void wake_capture() noexcept;
  std::atomic<bool> stalled_{false};
  std::mutex geoip_mu_;
  std::shared_ptr<const classify::GeoIpDatabase> pending_geoip_;
  std::atomic<bool> geoip_pending_{false};
  mutable std::mutex open_mu_;
  std::optional<bucket::SealedBucket> open_snapshot_;
  std::string capture_error_;
  std::string classifier_error_;
  std::vector<int> caller_cpus_;  ///< the capture thread's CPUs before place_threads()
  // Capture-thread state, written for every packet, and classifier-thread state, written
  // for every batch: each on cache lines of its own, so that no line is written by both.
  alignas(64) std::uint64_t pending_drops_ = 0;
  std::int64_t last_ts_ = 0;
  std::uint64_t read_index_ = 0;  // packets read from the capture, skipped ones included
  alignas(64) std::array<Staged, kBatch> staged_{};
};

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#include "daemon/service/sensor_service.h"

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <openssl/rand.h>
#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "common/bucket/bucket_json.h"
#include "common/log/log.h"
#include "common/tls/pki.h"
#include "daemon/capture/live_capture.h"
#include "daemon/capture/privileges.h"
#include "daemon/capture/savefile.h"
#include "daemon/control/control_server.h"
#include "daemon/control/recent_buckets.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/spool/dead_letter.h"
#include "daemon/spool/spool.h"
#include "daemon/spool/spool_writer.h"
#include "daemon/upload/uploader.h"

namespace teiten::sensor {
namespace {

std::string random_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw std::runtime_error("RAND_bytes failed");
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return out;
}

// Where sealed buckets go as JSON lines: stdout for "-", else `path` opened with `mode`.
// Closing it closes the file, never stdout. Null (errno set) if it cannot be opened.
using Output = std::unique_ptr<FILE, int (*)(FILE*)>;
Output open_output(const std::string& path, const char* mode) {
  if (path == "-") return Output(stdout, [](FILE* f) { return std::fflush(f); });
  return Output(std::fopen(path.c_str(), mode), [](FILE* f) { return std::fclose(f); });
}

// One sealed bucket as a line; `flush`: at once (live: a line per bucket as it seals).
// Throws when the write fails: the pipeline then stops rather than count into the void.
void write_bucket_line(FILE* out, const bucket::SealedBucket& b, bool flush) {
  std::string line = bucket::to_json_line(b);
  line += '\n';  // in place: a bucket with sketches is megabytes
  if (std::fwrite(line.data(), 1, line.size(), out) != line.size() ||
      (flush && std::fflush(out) != 0))
    throw std::runtime_error(std::string{"write failed: "} + std::strerror(errno));
}

UploadOptions upload_options(const config::SensorConfig& cfg) {
  UploadOptions o;
  o.collectors = parse_endpoints(cfg.upload_collector);
  o.random_failover = cfg.upload_failover == "random";
  o.tls = {cfg.upload_ca, cfg.upload_cert, cfg.upload_key};
  o.batch = cfg.upload_batch;
  o.deadline = std::chrono::seconds(cfg.upload_timeout_s);
  return o;
}

std::int64_t certificate_expiry(const std::string& path) {
  if (path.empty()) return 0;
  try {
    auto cert = tls::read_certificate(path);
    return tls::not_after(cert.get()).value_or(0);
  } catch (const std::exception&) {
    return 0;
  }
}

// Feeds systemd: WATCHDOG=1 only while both pipeline threads make progress, and a STATUS=
// line a person can read. On the I/O thread.
class ServiceNotifier {
 public:
  ServiceNotifier(boost::asio::io_context& io, const SensorSources& sources, std::string interface)
      : timer_(io),
        pipeline_(*sources.pipeline),
        sources_(sources),
        interface_(std::move(interface)) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) period_ = std::chrono::microseconds(usec / 2);
  }
  void start() { arm(); }
  std::string status() const {
    const auto r = read_counters(sources_);
    std::string s =
        (value_of(r, "capture_active") ? "capturing on " : "waiting for ") + interface_ + ": " +
        std::to_string(value_of(r, "packets_captured_total")) + " packets, " +
        std::to_string(value_of(r, "buckets_sealed_total")) + " buckets, " +
        std::to_string(value_of(r, "ring_drops_total") + value_of(r, "kernel_drops_total")) +
        " dropped";
    if (sources_.spool)
      s += ", " + std::to_string(value_of(r, "spool_pending_buckets")) + " awaiting delivery";
    if (sources_.uploader) {
      const auto last = static_cast<std::int64_t>(value_of(r, "upload_last_success_seconds"));
      s += last ? ", last upload " + bucket::format_rfc3339(last) : ", nothing delivered yet";
    }
    return s;
  }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      const auto& st = pipeline_.stats();
      const std::uint64_t c = st.capture_beats.load(), k = st.classifier_beats.load();
      const bool progress = c != last_capture_ && k != last_classifier_;
      last_capture_ = c;
      last_classifier_ = k;
      const std::string line = (progress ? "WATCHDOG=1\nSTATUS=" : "STATUS=") + status();
      sd_notify(0, line.c_str());
      if (!progress) log::get("sensord")->warn("pipeline stalled: no watchdog ping");
      arm();
    });
  }
  boost::asio::steady_timer timer_;
  const Pipeline& pipeline_;
  const SensorSources& sources_;
  std::string interface_;
  std::chrono::microseconds period_{std::chrono::seconds(5)};
  std::uint64_t last_capture_ = ~0ULL, last_classifier_ = ~0ULL;
};

// -1: go on; otherwise the exit status.
constexpr int kGoOn = -1;

}  // namespace

struct SensorService::Impl {
  // What the service does with its packets and buckets.
  enum class Mode {
    replay,   ///< a capture file to JSON lines
    deliver,  ///< a capture file to the collector, resumable (--upload)
    live,     ///< an interface until stopped; to the collector if one is set, else lines
  };

  Impl(config::SensorConfig c, std::shared_ptr<const classify::GeoIpDatabase> d, ServiceArgs a)
      : running(std::move(c)),
        db(std::move(d)),
        args(std::move(a)),
        mode(args.read.empty() ? Mode::live
             : args.upload     ? Mode::deliver
                               : Mode::replay),
        logger(log::get("sensord")) {}

  int run();
  int open_source();
  int open_sink();
  int check_replay_id();
  void make_pipeline();
  int start_control();
  void arm_signals();
  void reload();
  void on_stop(int sig);
  int finish(const std::string& failure);

  // What SIGHUP may change while running (I/O thread once started): the control server
  // reads it in place, the pipeline has its own copy.
  config::SensorConfig running;
  std::shared_ptr<const classify::GeoIpDatabase> db;
  ServiceArgs args;
  Mode mode;
  std::shared_ptr<spdlog::logger> logger;

  // The packet source.
  std::unique_ptr<Savefile> savefile;
  std::unique_ptr<LiveCapture> capture;
  PacketSource* source = nullptr;
  // The bucket sink: lines to `out`, or the spool (with its writer) and the uploader.
  Output out{nullptr, nullptr};
  std::unique_ptr<Spool> spool;
  std::unique_ptr<DeadLetterStore> dead;
  PipelineOptions options;
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
      boost::asio::make_work_guard(io)};
  std::unique_ptr<Uploader> uploader;
  std::atomic<bool> stopping{false};
  std::unique_ptr<SpoolWriter> writer;
  // Kept for pulls only when there is a control server to pull from.
  std::unique_ptr<RecentBuckets> recent;
  std::unique_ptr<Pipeline> pipeline;
  SensorSources sources;
  std::unique_ptr<ControlServer> control;
  std::unique_ptr<ServiceNotifier> notifier;
  // Made by arm_signals(), once the source is open: Asio's handlers interrupt a blocked
  // system call (no SA_RESTART), and opening a FIFO blocks until a writer comes.
  std::optional<boost::asio::signal_set> stop_signals, hup, hooks;
  std::function<void()> arm_hup, arm_hooks;
};

SensorService::SensorService(config::SensorConfig config,
                             std::shared_ptr<const classify::GeoIpDatabase> db, ServiceArgs args)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(db), std::move(args))) {}

SensorService::~SensorService() = default;

int SensorService::run() {
  return impl_->run();
}

int SensorService::Impl::run() {
  if (const int rc = open_source(); rc != kGoOn) return rc;
  if (const int rc = open_sink(); rc != kGoOn) return rc;
  // The signals this service handles reach the I/O thread only: a pipeline thread blocked
  // in a read of a pipe or FIFO would otherwise take one and see its read fail with EINTR
  // (the pipeline ends that read itself at a stop, with a signal of its own). Threads
  // started from here on (the pipeline's) inherit the mask; the I/O thread lifts it.
  sigset_t handled, previous;
  sigemptyset(&handled);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&handled, sig);
  pthread_sigmask(SIG_BLOCK, &handled, &previous);
  struct RestoreMask {
    sigset_t mask;
    ~RestoreMask() { pthread_sigmask(SIG_SETMASK, &mask, nullptr); }
  } restore_mask{previous};
  make_pipeline();
  if (const int rc = start_control(); rc != kGoOn) return rc;
  arm_signals();
  if (mode == Mode::live) {
    notifier = std::make_unique<ServiceNotifier>(io, sources, running.capture_interface);
    notifier->start();
  }
  if (uploader) uploader->start();
  // Said before the I/O thread starts: from then on a reload may replace `running`.
  switch (mode) {
    case Mode::replay:
      logger->info("replay start file={} link={} sensor={}", args.read,
                   decode::to_string(source->link()), running.sensor_id);
      break;
    case Mode::deliver: {
      const auto st = spool->stats();
      logger->info(
          "upload replay start file={} boot_id={} first_seq={} resume_at_packet={} spooled={} "
          "corrupt_records={}",
          args.read, options.boot_id, options.first_seq, spool->resume_token(), st.pending,
          st.corrupt_records);
      break;
    }
    case Mode::live:
      logger->info("capture active interface={} link={} filter=\"{}\" boot_id={} first_seq={} {}",
                   running.capture_interface, decode::to_string(capture->link()),
                   capture->options().filter, options.boot_id, options.first_seq,
                   describe_privileges());
      sd_notify(0, ("READY=1\nSTATUS=" + notifier->status()).c_str());
      break;
  }

  std::thread io_thread([this, previous] {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    io.run();
  });

  const std::string failure = pipeline->run(*source);
  if (mode == Mode::deliver) {
    // The last group; after a failure the sealing thread may still be busy, and the
    // resume token replays what was not spooled.
    if (failure.empty()) writer->flush();
    // Deliver what is spooled (and dead letters queued to be sent again), unless told to
    // stop (it stays for the next start). A refused bucket leaves the spool for the
    // dead-letter area: it never keeps this loop waiting.
    while (!stopping.load() && (spool->stats().pending > 0 || dead->stats().queued > 0))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (uploader) uploader->stop();
  work.reset();
  io.stop();
  io_thread.join();
  return finish(failure);
}

int SensorService::Impl::open_source() {
  std::string error;
  if (mode != Mode::live) {
    savefile = open_savefile(args.read, error);
    if (!savefile) {
      logger->error("{}", error);
      return kExitUsage;
    }
    savefile->pace(args.replay_rate);
    source = savefile.get();
    return kGoOn;
  }
  const auto& cfg = running;
  if (cfg.capture_interface.empty()) {
    std::cerr << args.config_path
              << ": capture.interface: not set; set it for live capture, or give --read "
                 "CAPTURE to replay a file\n";
    return kExitUsage;
  }
  LiveOptions lo;
  lo.interface = cfg.capture_interface;
  lo.snaplen = static_cast<std::uint32_t>(cfg.capture_snaplen);
  lo.buffer_bytes = cfg.capture_buffer_bytes;
  lo.timeout_ms = static_cast<std::uint32_t>(cfg.capture_timeout_ms);
  lo.immediate = cfg.capture_immediate;
  lo.promiscuous = cfg.capture_promiscuous;
  lo.filter = bpf_filter_for(cfg.addresses, cfg.capture_filter);
  capture = std::make_unique<LiveCapture>(lo);
  if (error = capture->open(); !error.empty()) {
    logger->error("cannot start capture: {}", error);
    return kExitRuntime;
  }
  source = capture.get();
  // The capture is open: from here on nothing needs root.
  if (!cfg.service_user.empty()) {
    if (error = drop_privileges(cfg.service_user, {cfg.state_dir}); !error.empty()) {
      logger->error("cannot drop privileges: {}", error);
      return kExitRuntime;
    }
  }
  return kGoOn;
}

// The spool's resume token counts packets of this capture already in sealed buckets; it
// only means something for the same capture.
int SensorService::Impl::check_replay_id() {
  std::error_code ec;
  const std::string replay_id = std::filesystem::absolute(args.read, ec).string() + " " +
                                std::to_string(std::filesystem::file_size(args.read, ec));
  const std::string id_path = running.state_dir + "/replay";
  std::string previous;
  {
    std::ifstream in(id_path);
    std::getline(in, previous);
  }
  if (!previous.empty() && previous != replay_id) {
    std::cerr << "teiten-sensord: " << running.state_dir
              << " holds the progress of another capture (" << previous
              << "); use another state.dir\n";
    return kExitUsage;
  }
  if (previous.empty()) {
    std::ofstream(id_path + ".tmp") << replay_id << "\n";
    std::filesystem::rename(id_path + ".tmp", id_path, ec);
  }
  return kGoOn;
}

int SensorService::Impl::open_sink() {
  const auto& cfg = running;
  const bool deliver = mode == Mode::live ? !cfg.upload_collector.empty() : mode == Mode::deliver;
  if (mode == Mode::deliver && cfg.upload_collector.empty()) {
    std::cerr << args.config_path
              << ": upload.collector: --upload needs a collector to deliver to\n";
    return kExitUsage;
  }
  if (deliver) {
    try {
      spool = std::make_unique<Spool>(cfg.state_dir + "/spool", cfg.spool_max_bytes);
      dead = std::make_unique<DeadLetterStore>(cfg.state_dir + "/dead-letter",
                                               cfg.dead_letter_max_bytes);
    } catch (const std::exception& e) {
      logger->error("{}", e.what());
      return kExitRuntime;
    }
  } else {
    // A replay writes its output afresh; a live capture appends to what earlier runs wrote.
    out = open_output(args.output, mode == Mode::live ? "a" : "w");
    if (!out) {
      logger->error("open output failed path={}: {}", args.output, std::strerror(errno));
      return kExitRuntime;
    }
  }
  if (mode == Mode::deliver) {
    if (const int rc = check_replay_id(); rc != kGoOn) return rc;
    savefile->resume_after(spool->resume_token());
  }
  // Replay buckets are reproducible (the given boot id); delivered ones must never share
  // one with an earlier run's.
  options.boot_id = mode == Mode::replay ? args.boot_id : random_uuid();
  options.first_seq = spool ? spool->next_seq() : 0;
  options.ring_full = mode == Mode::replay ? cfg.replay_ring_full
                      : mode == Mode::live ? config::RingFullPolicy::drop
                                           : config::RingFullPolicy::wait;
  if (spool) uploader = std::make_unique<Uploader>(io, *spool, *dead, upload_options(cfg));
  if (spool) {
    // Buckets sealed together are spooled together (group commit); once one was not
    // spooled at stop, nothing more is: a later bucket's resume token would skip its
    // packets for good, and the next start replays them. A replay as fast as it goes
    // spools in groups of 256 at least (fewer fdatasyncs; a kill loses nothing the resume
    // token does not replay); a paced one and a live capture as buckets come.
    const bool replay = mode == Mode::deliver;
    writer = std::make_unique<SpoolWriter>(
        *spool, stopping, [this] { uploader->notify(); },
        [this, replay](const bucket::SealedBucket& b) {
          if (replay) {
            logger->error(
                "bucket seq={} start={} not spooled at stop: its {} packets are replayed at "
                "the next start",
                b.seq, b.start, b.accounted_packets());
          } else {
            logger->error("bucket seq={} start={} not spooled at stop: {} packets lost", b.seq,
                          b.start, b.accounted_packets());
          }
        },
        1024, replay && !args.replay_rate ? 256 : 1);
  }
  return kGoOn;
}

void SensorService::Impl::make_pipeline() {
  const auto& cfg = running;
  const bool control_on = mode == Mode::live && !cfg.control_cert.empty();
  // Connections to the control server cross the captured interface only if it listens on
  // one of the sensor's addresses (or on all); on loopback, a packet to that port from
  // outside is a scan like any other.
  if (control_on) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(cfg.control_address, ec);
    const bool captured = !ec && (a.is_unspecified() ||
                                  (a.is_v4() ? cfg.address_set.contains_v4(a.to_v4().to_uint())
                                             : cfg.address_set.contains_v6(a.to_v6().to_bytes())));
    if (captured) options.control_ports = {cfg.control_port};
    recent = std::make_unique<RecentBuckets>(cfg.control_recent_max_bytes);
  }
  const bool flush_lines = mode == Mode::live;
  pipeline = std::make_unique<Pipeline>(
      cfg, db, options,
      [this, flush_lines](bucket::SealedBucket&& b, std::uint64_t packets_done) {
        if (recent) recent->add(b);
        if (!writer) return write_bucket_line(out.get(), b, flush_lines);
        writer->add(std::move(b), mode == Mode::deliver ? packets_done : 0);
      },
      [this] {
        if (writer) writer->idle();
      });
}

int SensorService::Impl::start_control() {
  sources.pipeline = pipeline.get();
  sources.spool = spool.get();
  sources.uploader = uploader.get();
  sources.dead = dead.get();
  sources.recent = recent.get();
  sources.boot_id = options.boot_id;
  sources.started = std::time(nullptr);
  sources.certificate_expiry = certificate_expiry(running.upload_cert);
  sources.geoip_build = db ? static_cast<std::int64_t>(db->build_epoch()) : 0;
  if (!recent) return kGoOn;  // the control server is on exactly when buckets are kept
  try {
    control = std::make_unique<ControlServer>(io, running, sources);
    control->start();
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    return kExitRuntime;
  }
  logger->info("control server listening address={} port={} allowed={}", running.control_address,
               control->port(), fmt::join(running.control_allowed, ","));
  return kGoOn;
}

void SensorService::Impl::on_stop(int sig) {
  logger->info("signal {}: sealing the open bucket and stopping", sig);
  if (mode == Mode::live) sd_notify(0, "STOPPING=1");
  stopping = true;
  pipeline->request_stop();
}

void SensorService::Impl::arm_signals() {
  stop_signals.emplace(io, SIGINT, SIGTERM);
  hup.emplace(io, SIGHUP);
  hooks.emplace(io);
  stop_signals->async_wait([this](boost::system::error_code e, int sig) {
    if (!e) on_stop(sig);
  });
  // SIGHUP: the configuration again (reload()).
  arm_hup = [this] {
    hup->async_wait([this](boost::system::error_code e, int) {
      if (e) return;
      reload();
      arm_hup();
    });
  };
  arm_hup();
  // Test hook: SIGUSR1 stalls the classifier thread, SIGUSR2 lets it go (watchdog tests).
  if (const char* h = std::getenv("TEITEN_TEST_HOOKS"); h && std::string{h} == "1") {
    hooks->add(SIGUSR1);
    hooks->add(SIGUSR2);
    arm_hooks = [this] {
      hooks->async_wait([this](boost::system::error_code e, int sig) {
        if (e) return;
        logger->warn("test hook: classifier {}", sig == SIGUSR1 ? "stalled" : "released");
        pipeline->stall_classifier(sig == SIGUSR1);
        arm_hooks();
      });
    };
    arm_hooks();
  }
}

// SIGHUP (I/O thread). The file is read and checked as at start; one that does not load,
// or a GeoIP database or control certificate that does not, is refused and the running
// configuration stays. Otherwise it is swapped in whole, with the keys that need a restart
// kept at their running values (config::reload_sensor_config).
void SensorService::Impl::reload() {
  const std::string& path = args.config_path;
  auto loaded = config::load_sensor_config(path);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    config::log_refused_reload(*errors, path, "sensord");
    return;
  }
  config::Reloaded next =
      config::reload_sensor_config(running, std::move(std::get<config::SensorConfig>(loaded)));
  if (mode != Mode::live && next.config.geoip_database != running.geoip_database) {
    // A replay takes a new database only at a tick, which a capture file has none of (and
    // its buckets stay reproducible): the next start uses it.
    next.config.geoip_database = running.geoip_database;
    next.config.values["geoip.database"] = running.values.at("geoip.database");
    next.deferred.push_back("geoip.database");
  }
  // A replay keeps its database (above); a live capture opens the file again, which may
  // have been replaced in place.
  std::shared_ptr<const classify::GeoIpDatabase> next_db = mode == Mode::live ? nullptr : db;
  if (mode == Mode::live && !next.config.geoip_database.empty()) {
    std::string error;
    next_db = classify::GeoIpDatabase::open(next.config.geoip_database, error);
    if (!next_db) {
      logger->error(
          "reload refused: geoip.database: {}; the running configuration and "
          "database stay",
          error);
      return;
    }
  }
  config::SensorConfig previous = std::exchange(running, std::move(next.config));
  if (control) {
    try {
      control->reload_tls();
    } catch (const std::exception& e) {
      running = std::move(previous);
      logger->error("reload refused: {}; the running configuration stays", e.what());
      return;
    }
  }
  if (!next.deferred.empty()) {
    logger->warn("reload: {} changed: that takes effect at the next start",
                 fmt::join(next.deferred, ", "));
  }
  db = next_db;
  log::set_level(running.log_level);
  pipeline->replace_geoip(db);
  sources.geoip_build = db ? static_cast<std::int64_t>(db->build_epoch()) : 0;
  if (uploader) uploader->update(upload_options(running));
  sources.certificate_expiry = certificate_expiry(running.upload_cert);
  logger->info("reloaded {}: log level {}, GeoIP {}, upload {}", path, running.log_level,
               db ? db->database_type() + " built " +
                        bucket::format_rfc3339(static_cast<std::int64_t>(db->build_epoch()))
                  : std::string{"none"},
               running.upload_collector.empty() ? std::string{"off"} : running.upload_collector);
}

// The closing log line (the registry's counters, daemon/service/counters.cpp), then the
// exit status.
int SensorService::Impl::finish(const std::string& failure) {
  const std::string fields = log_fields(read_counters(sources));
  switch (mode) {
    case Mode::replay:
      if (std::fflush(out.get()) != 0 || std::ferror(out.get())) {
        logger->error("write output failed path={}: {}", args.output, std::strerror(errno));
        return kExitRuntime;
      }
      // The GeoIP cache is the classifier thread's: read once it has ended.
      logger->info("replay done {} geoip_cache_hits={} geoip_cache_misses={}", fields,
                   pipeline->geoip_stats().hits, pipeline->geoip_stats().misses);
      break;
    case Mode::deliver: {
      logger->info("upload replay done {}", fields);
      const auto dl = dead->stats();
      if (dl.held > 0) {
        logger->warn(
            "{} buckets ({} packets) the collector refused are kept in {}/dead-letter: fix the "
            "cause (teitenctl dead-letter list), then teitenctl dead-letter resend",
            dl.held, dl.held_packets, running.state_dir);
      }
      break;
    }
    case Mode::live:
      logger->info("capture done {}", fields);
      break;
  }
  if (!failure.empty()) {
    logger->error("{} failed: {}", mode == Mode::live ? "capture" : "replay", failure);
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace teiten::sensor

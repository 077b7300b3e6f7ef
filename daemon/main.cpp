// SPDX-License-Identifier: Apache-2.0
// teiten-sensord: the Teiten sensor daemon. Captures live on an interface (or replays a
// capture file) through the sensor pipeline; delivers sealed buckets to the collector or
// writes them as JSON lines.
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <openssl/rand.h>
#include <pcap/pcap.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/bucket/bucket_json.h"
#include "common/classify/geoip.h"
#include "common/config/sensor_config.h"
#include "common/log/log.h"
#include "common/tls/pki.h"
#include "common/version.h"
#include "daemon/capture/live_capture.h"
#include "daemon/capture/privileges.h"
#include "daemon/capture/savefile.h"
#include "daemon/control/control_server.h"
#include "daemon/control/recent_buckets.h"
#include "daemon/pipeline/pipeline.h"
#include "daemon/spool/spool.h"
#include "daemon/spool/spool_writer.h"
#include "daemon/upload/uploader.h"

namespace {

using namespace teiten;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;  // also: configuration errors

constexpr const char* kUsage =
    R"(Usage: teiten-sensord --config FILE [--output OUT.jsonl]
       teiten-sensord --config FILE --read CAPTURE [--output OUT.jsonl]
       teiten-sensord --config FILE --check-config
       teiten-sensord --print-example-config

Teiten sensor daemon: counts the unsolicited packets that reach this sensor's addresses
into UTC-aligned buckets (proto, port, source country, scanner fingerprint, kind).

Options:
  -c, --config FILE         sensor configuration (YAML), e.g. /etc/teiten/sensor.yaml
                            Without --read: live capture on capture.interface until
                            SIGTERM; buckets go to upload.collector if set (spooled in
                            state.dir), else to --output (docs/live-capture.md)
  -r, --read CAPTURE        replay a capture file (pcap or pcapng) through the pipeline
  -o, --output FILE         where sealed buckets go, one JSON object a line ("-": stdout,
                            the default). Schema: docs/bucket-format.md
      --boot-id ID          boot id written into the buckets (replay default: all zeros,
                            so the same input always yields the same output)
      --upload              deliver the sealed buckets to upload.collector instead of
                            writing them: each is spooled durably (state.dir), sent over
                            mutual TLS and removed when acknowledged; the replay resumes
                            where a killed or stopped run left off; exits when all is
                            delivered (docs/spool.md)
      --replay-rate PPS     pace the replay at PPS packets per second (default: as fast
                            as the pipeline goes)
      --check-config        validate the configuration (and GeoIP database), then exit
      --print-example-config
                            print a commented configuration with every default, then exit
      --log-level LEVEL     override log.level (trace, debug, info, warn, error, off)
  -h, --help                this text
  -V, --version             print the version

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
)";

struct Args {
  std::string config;
  std::string read;
  std::string output = "-";
  std::string boot_id = "00000000-0000-0000-0000-000000000000";
  std::string log_level;
  bool check_config = false;
  bool print_example = false;
  bool upload = false;
  std::uint64_t replay_rate = 0;
};

sensor::Pipeline* g_pipeline = nullptr;

void on_signal(int) {
  if (g_pipeline) g_pipeline->request_stop();
}

int parse_args(int argc, char** argv, Args& a) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& s = args[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= args.size()) {
        std::cerr << "teiten-sensord: " << s << " needs a value\n";
        return false;
      }
      out = args[++i];
      return true;
    };
    if (s == "-h" || s == "--help") {
      std::cout << kUsage;
      return kExitOk + 100;
    } else if (s == "-V" || s == "--version") {
      std::cout << "teiten-sensord " << kVersion << "\n";
      return kExitOk + 100;
    } else if (s == "-c" || s == "--config") {
      if (!value(a.config)) return kExitUsage;
    } else if (s == "-r" || s == "--read") {
      if (!value(a.read)) return kExitUsage;
    } else if (s == "-o" || s == "--output") {
      if (!value(a.output)) return kExitUsage;
    } else if (s == "--boot-id") {
      if (!value(a.boot_id)) return kExitUsage;
    } else if (s == "--log-level") {
      if (!value(a.log_level)) return kExitUsage;
    } else if (s == "--upload") {
      a.upload = true;
    } else if (s == "--replay-rate") {
      std::string v;
      if (!value(v)) return kExitUsage;
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9 ||
          std::stoull(v) == 0) {
        std::cerr << "teiten-sensord: --replay-rate: '" << v
                  << "' is not a positive number of packets per second\n";
        return kExitUsage;
      }
      a.replay_rate = std::stoull(v);
    } else if (s == "--check-config") {
      a.check_config = true;
    } else if (s == "--print-example-config") {
      a.print_example = true;
    } else {
      std::cerr << "teiten-sensord: unknown argument '" << s << "' (see --help)\n";
      return kExitUsage;
    }
  }
  return -1;
}

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

sensor::UploadOptions upload_options(const config::SensorConfig& cfg) {
  sensor::UploadOptions o;
  o.collectors = sensor::parse_endpoints(cfg.upload_collector);
  o.random_failover = cfg.upload_failover == "random";
  o.tls = {cfg.upload_ca, cfg.upload_cert, cfg.upload_key};
  o.batch = cfg.upload_batch;
  o.deadline = std::chrono::seconds(cfg.upload_timeout_s);
  return o;
}

// Replays a capture and delivers every sealed bucket to the collector (docs/spool.md).
int run_upload(const config::SensorConfig& cfg, std::shared_ptr<const classify::GeoIpDatabase> db,
               const Args& args, std::unique_ptr<sensor::Savefile> savefile) {
  auto logger = log::get("sensord");
  if (cfg.upload_collector.empty()) {
    std::cerr << args.config << ": upload.collector: --upload needs a collector to deliver to\n";
    return kExitUsage;
  }
  const sensor::UploadOptions up_opts = upload_options(cfg);

  std::unique_ptr<sensor::Spool> spool;
  std::unique_ptr<sensor::DeadLetterStore> dead;
  try {
    spool = std::make_unique<sensor::Spool>(cfg.state_dir + "/spool", cfg.spool_max_bytes);
    dead = std::make_unique<sensor::DeadLetterStore>(cfg.state_dir + "/dead-letter",
                                                     cfg.dead_letter_max_bytes);
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    return kExitRuntime;
  }
  // The spool's resume token counts packets of this capture already in sealed buckets;
  // it only means something for the same capture.
  std::error_code ec;
  const std::string replay_id = std::filesystem::absolute(args.read, ec).string() + " " +
                                std::to_string(std::filesystem::file_size(args.read, ec));
  const std::string id_path = cfg.state_dir + "/replay";
  std::string previous;
  {
    std::ifstream in(id_path);
    std::getline(in, previous);
  }
  if (!previous.empty() && previous != replay_id) {
    std::cerr << "teiten-sensord: " << cfg.state_dir << " holds the progress of another capture ("
              << previous << "); use another state.dir\n";
    return kExitUsage;
  }
  if (previous.empty()) {
    std::ofstream(id_path + ".tmp") << replay_id << "\n";
    std::filesystem::rename(id_path + ".tmp", id_path, ec);
  }
  const auto spool_stats = spool->stats();
  sensor::PipelineOptions opts;
  opts.boot_id = random_uuid();
  opts.first_seq = spool->next_seq();
  savefile->resume_after(spool->resume_token());
  opts.ring_full = config::RingFullPolicy::wait;
  logger->info(
      "upload replay start file={} boot_id={} first_seq={} resume_at_packet={} spooled={} "
      "corrupt_records={}",
      args.read, opts.boot_id, opts.first_seq, spool->resume_token(), spool_stats.pending,
      spool_stats.corrupt_records);

  boost::asio::io_context io(1);
  auto work = boost::asio::make_work_guard(io);
  sensor::Uploader uploader(io, *spool, *dead, up_opts);
  std::atomic<bool> stopping{false};
  // Buckets sealed together are spooled together (group commit); once one was not
  // spooled at stop, nothing more is: a later bucket's resume token would skip its
  // packets for good, and the next start replays them.
  // A replay as fast as it goes spools in groups of 256 at least (fewer fdatasyncs; a
  // kill loses nothing the resume token does not replay); a paced one as buckets come.
  sensor::SpoolWriter writer(
      *spool, stopping, [&] { uploader.notify(); },
      [&](const bucket::SealedBucket& b) {
        logger->error(
            "bucket seq={} start={} not spooled at stop: its {} packets are replayed at the "
            "next start",
            b.seq, b.start, b.accounted_packets());
      },
      1024, args.replay_rate ? 1 : 256);
  sensor::Pipeline pipeline(
      cfg, db, opts,
      [&](bucket::SealedBucket&& b, std::uint64_t packets_done) {
        writer.add(std::move(b), packets_done);
      },
      [&] { writer.idle(); });
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    logger->info("signal {}: sealing the open bucket and stopping", sig);
    stopping = true;
    pipeline.request_stop();
  });
  // Certificates and key are read again for every connection; SIGHUP only says so (the
  // full reload of configuration and GeoIP database comes with the service issue).
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](boost::system::error_code e, int) {
      if (e) return;
      logger->info("SIGHUP: client certificate and key will be read again at the next connection");
      arm_hup();
    });
  };
  arm_hup();
  uploader.start();
  std::thread io_thread([&] { io.run(); });

  const std::string failure = pipeline.run(*savefile);
  // The last group; after a failure the sealing thread may still be busy, and the
  // resume token replays what was not spooled.
  if (failure.empty()) writer.flush();
  // Deliver what is spooled (and dead letters queued to be sent again), unless told to
  // stop (it stays for the next start). A refused bucket leaves the spool for the
  // dead-letter area: it never keeps this loop waiting.
  while (!stopping.load() && (spool->stats().pending > 0 || dead->stats().queued > 0))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  uploader.stop();
  work.reset();
  io.stop();
  io_thread.join();
  const auto st = spool->stats();
  const auto dl = dead->stats();
  logger->info(
      "upload replay done packets={} buckets={} delivered={} refused={} dead_letter_held={} "
      "dead_letter_packets={} dead_letter_dropped={} pending={} spool_dropped_packets={} "
      "spool_write_errors={}",
      pipeline.stats().captured.load(), pipeline.stats().buckets_sealed.load(),
      uploader.stats().buckets_acked.load(), uploader.stats().buckets_refused.load(), dl.held,
      dl.held_packets, dl.dropped_buckets, st.pending, st.dropped_packets, st.write_errors);
  if (dl.held > 0) {
    logger->warn(
        "{} buckets ({} packets) the collector refused are kept in {}/dead-letter: fix the "
        "cause (teitenctl dead-letter list), then teitenctl dead-letter resend",
        dl.held, dl.held_packets, cfg.state_dir);
  }
  if (!failure.empty()) {
    logger->error("replay failed: {}", failure);
    return kExitRuntime;
  }
  return kExitOk;
}

// Feeds systemd: WATCHDOG=1 only while both pipeline threads make progress, and a STATUS=
// line a person can read. On the I/O thread.
class ServiceNotifier {
 public:
  ServiceNotifier(boost::asio::io_context& io, const sensor::Pipeline& pipeline,
                  std::string interface, sensor::Spool* spool, sensor::Uploader* uploader)
      : timer_(io),
        pipeline_(pipeline),
        interface_(std::move(interface)),
        spool_(spool),
        uploader_(uploader) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) period_ = std::chrono::microseconds(usec / 2);
  }
  void start() { arm(); }
  std::string status() const {
    const auto& st = pipeline_.stats();
    std::string s = (st.capture_active.load() ? "capturing on " : "waiting for ") + interface_ +
                    ": " + std::to_string(st.captured.load()) + " packets, " +
                    std::to_string(st.buckets_sealed.load()) + " buckets, " +
                    std::to_string(st.ring_drops.load() + st.kernel_drops.load()) + " dropped";
    if (spool_) s += ", " + std::to_string(spool_->stats().pending) + " awaiting delivery";
    if (uploader_) {
      const auto last = uploader_->stats().last_success.load();
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
  const sensor::Pipeline& pipeline_;
  std::string interface_;
  sensor::Spool* spool_;
  sensor::Uploader* uploader_;
  std::chrono::microseconds period_{std::chrono::seconds(5)};
  std::uint64_t last_capture_ = ~0ULL, last_classifier_ = ~0ULL;
};

std::int64_t certificate_expiry(const std::string& path) {
  if (path.empty()) return 0;
  try {
    auto cert = tls::read_certificate(path);
    return tls::not_after(cert.get()).value_or(0);
  } catch (const std::exception&) {
    return 0;
  }
}

// SIGHUP (I/O thread). Settings that shape the capture or the buckets need a restart: said
// in the log, not applied.
void reload(const std::string& path, config::SensorConfig& running, sensor::Pipeline& pipeline,
            sensor::Uploader* uploader, sensor::ControlServer* control,
            sensor::ControlSources& sources) {
  auto logger = log::get("sensord");
  auto loaded = config::load_sensor_config(path);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) logger->error("reload: {}", e.format());
    logger->error(
        "reload refused: {} configuration error(s) in {}; the running configuration "
        "stays",
        errors->size(), path);
    return;
  }
  auto& next = std::get<config::SensorConfig>(loaded);
  std::shared_ptr<const classify::GeoIpDatabase> db;
  if (!next.geoip_database.empty()) {
    std::string error;
    db = classify::GeoIpDatabase::open(next.geoip_database, error);
    if (!db) {
      logger->error(
          "reload refused: geoip.database: {}; the running configuration and "
          "database stay",
          error);
      return;
    }
  }
  if (control && next.control_cert.empty()) {
    logger->error(
        "reload refused: control.cert removed; the control server needs a restart "
        "to stop");
    return;
  }
  if (control) {
    const auto keep = running;
    running.control_ca = next.control_ca;
    running.control_cert = next.control_cert;
    running.control_key = next.control_key;
    try {
      control->reload_tls();
    } catch (const std::exception& e) {
      running = keep;
      logger->error("reload refused: {}; the running configuration stays", e.what());
      return;
    }
  }
  const bool restart = next.sensor_id != running.sensor_id || next.addresses != running.addresses ||
                       next.bucket_width_s != running.bucket_width_s ||
                       next.capture_interface != running.capture_interface ||
                       next.capture_filter != running.capture_filter ||
                       next.state_dir != running.state_dir ||
                       next.control_port != running.control_port ||
                       next.control_address != running.control_address ||
                       next.upload_collector.empty() != running.upload_collector.empty();
  if (restart) {
    logger->warn(
        "reload: sensor, addresses, buckets, capture, state, control.listen or "
        "enabling/disabling upload changed: those take effect at the next start");
  }
  log::set_level(next.log_level);
  pipeline.replace_geoip(db);
  sources.geoip_build = db ? static_cast<std::int64_t>(db->build_epoch()) : 0;
  if (uploader && !next.upload_collector.empty()) uploader->update(upload_options(next));
  sources.certificate_expiry = certificate_expiry(next.upload_cert);
  running.log_level = next.log_level;
  running.geoip_database = next.geoip_database;
  running.upload_collector = next.upload_collector;
  running.upload_failover = next.upload_failover;
  running.upload_ca = next.upload_ca;
  running.upload_cert = next.upload_cert;
  running.upload_key = next.upload_key;
  running.upload_batch = next.upload_batch;
  running.upload_timeout_s = next.upload_timeout_s;
  running.control_allowed = next.control_allowed;
  logger->info("reloaded {}: log level {}, GeoIP {}, upload {}", path, next.log_level,
               db ? db->database_type() + " built " +
                        bucket::format_rfc3339(static_cast<std::int64_t>(db->build_epoch()))
                  : std::string{"none"},
               next.upload_collector.empty() ? std::string{"off"} : next.upload_collector);
}

// Live capture on capture.interface until SIGTERM/SIGINT (docs/live-capture.md).
int run_live(const config::SensorConfig& cfg, std::shared_ptr<const classify::GeoIpDatabase> db,
             const Args& args) {
  auto logger = log::get("sensord");
  if (cfg.capture_interface.empty()) {
    std::cerr << args.config
              << ": capture.interface: not set; set it for live capture, or give --read "
                 "CAPTURE to replay a file\n";
    return kExitUsage;
  }
  sensor::LiveOptions lo;
  lo.interface = cfg.capture_interface;
  lo.snaplen = static_cast<std::uint32_t>(cfg.capture_snaplen);
  lo.buffer_bytes = cfg.capture_buffer_bytes;
  lo.timeout_ms = static_cast<std::uint32_t>(cfg.capture_timeout_ms);
  lo.immediate = cfg.capture_immediate;
  lo.promiscuous = cfg.capture_promiscuous;
  lo.filter = sensor::bpf_filter_for(cfg.addresses, cfg.capture_filter);
  sensor::LiveCapture capture(lo);
  if (const std::string error = capture.open(); !error.empty()) {
    logger->error("cannot start capture: {}", error);
    return kExitRuntime;
  }
  // The capture is open: from here on nothing needs root.
  if (!cfg.service_user.empty()) {
    if (const std::string error = sensor::drop_privileges(cfg.service_user, {cfg.state_dir});
        !error.empty()) {
      logger->error("cannot drop privileges: {}", error);
      return kExitRuntime;
    }
  }
  std::unique_ptr<sensor::Spool> spool;
  std::unique_ptr<sensor::DeadLetterStore> dead;
  if (!cfg.upload_collector.empty()) {
    try {
      spool = std::make_unique<sensor::Spool>(cfg.state_dir + "/spool", cfg.spool_max_bytes);
      dead = std::make_unique<sensor::DeadLetterStore>(cfg.state_dir + "/dead-letter",
                                                       cfg.dead_letter_max_bytes);
    } catch (const std::exception& e) {
      logger->error("{}", e.what());
      return kExitRuntime;
    }
  }
  Output out(nullptr, nullptr);
  if (!spool) {
    out = open_output(args.output, "a");
    if (!out) {
      logger->error("open output failed path={}: {}", args.output, std::strerror(errno));
      return kExitRuntime;
    }
  }
  sensor::PipelineOptions opts;
  opts.boot_id = random_uuid();
  opts.first_seq = spool ? spool->next_seq() : 0;
  opts.ring_full = config::RingFullPolicy::drop;
  const bool control = !cfg.control_cert.empty();
  // Connections to the control server cross the captured interface only if it listens on
  // one of the sensor's addresses (or on all); on loopback, a packet to that port from
  // outside is a scan like any other.
  if (control) {
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(cfg.control_address, ec);
    const bool captured = !ec && (a.is_unspecified() ||
                                  (a.is_v4() ? cfg.address_set.contains_v4(a.to_v4().to_uint())
                                             : cfg.address_set.contains_v6(a.to_v6().to_bytes())));
    if (captured) opts.control_ports = {cfg.control_port};
  }
  // What SIGHUP may change while running; the rest needs a restart.
  config::SensorConfig running = cfg;
  // Kept for pulls only when there is a control server to pull from.
  sensor::RecentBuckets recent(cfg.control_recent_max_bytes);

  boost::asio::io_context io(1);
  auto work = boost::asio::make_work_guard(io);
  std::unique_ptr<sensor::Uploader> uploader;
  if (spool) uploader = std::make_unique<sensor::Uploader>(io, *spool, *dead, upload_options(cfg));
  std::atomic<bool> stopping{false};
  std::unique_ptr<sensor::SpoolWriter> writer;
  if (spool)
    writer = std::make_unique<sensor::SpoolWriter>(
        *spool, stopping, [&] { uploader->notify(); },
        [&](const bucket::SealedBucket& b) {
          logger->error("bucket seq={} start={} not spooled at stop: {} packets lost", b.seq,
                        b.start, b.accounted_packets());
        });
  sensor::Pipeline pipeline(
      cfg, db, opts,
      [&](bucket::SealedBucket&& b, std::uint64_t) {
        if (control) recent.add(b);
        if (!writer) return write_bucket_line(out.get(), b, true);
        writer->add(std::move(b));
      },
      [&] {
        if (writer) writer->idle();
      });
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (e) return;
    logger->info("signal {}: sealing the open bucket and stopping", sig);
    sd_notify(0, "STOPPING=1");
    stopping = true;
    pipeline.request_stop();
  });
  // Test hook: SIGUSR1 stalls the classifier thread, SIGUSR2 lets it go (watchdog tests).
  boost::asio::signal_set hooks(io);
  std::function<void()> arm_hooks;
  if (const char* h = std::getenv("TEITEN_TEST_HOOKS"); h && std::string{h} == "1") {
    hooks.add(SIGUSR1);
    hooks.add(SIGUSR2);
    arm_hooks = [&] {
      hooks.async_wait([&](boost::system::error_code e, int sig) {
        if (e) return;
        logger->warn("test hook: classifier {}", sig == SIGUSR1 ? "stalled" : "released");
        pipeline.stall_classifier(sig == SIGUSR1);
        arm_hooks();
      });
    };
    arm_hooks();
  }
  sensor::ControlSources sources;
  sources.pipeline = &pipeline;
  sources.spool = spool.get();
  sources.uploader = uploader.get();
  sources.dead = dead.get();
  sources.recent = &recent;
  sources.boot_id = opts.boot_id;
  sources.started = std::time(nullptr);
  sources.certificate_expiry = certificate_expiry(cfg.upload_cert);
  sources.geoip_build = db ? static_cast<std::int64_t>(db->build_epoch()) : 0;
  std::unique_ptr<sensor::ControlServer> control_server;
  if (control) {
    try {
      control_server = std::make_unique<sensor::ControlServer>(io, running, sources);
      control_server->start();
    } catch (const std::exception& e) {
      logger->error("{}", e.what());
      return kExitRuntime;
    }
    logger->info("control server listening address={} port={} allowed={}", cfg.control_address,
                 control_server->port(), fmt::join(cfg.control_allowed, ","));
  }
  // SIGHUP: certificates, GeoIP database, log level, upload settings, allowed clients. A
  // configuration or database that does not load is refused; the running one stays.
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](boost::system::error_code e, int) {
      if (e) return;
      reload(args.config, running, pipeline, uploader.get(), control_server.get(), sources);
      arm_hup();
    });
  };
  arm_hup();
  ServiceNotifier notifier(io, pipeline, cfg.capture_interface, spool.get(), uploader.get());
  notifier.start();
  if (uploader) uploader->start();
  std::thread io_thread([&] { io.run(); });
  logger->info("capture active interface={} link={} filter=\"{}\" boot_id={} first_seq={} {}",
               cfg.capture_interface, decode::to_string(capture.link()), lo.filter, opts.boot_id,
               opts.first_seq, sensor::describe_privileges());
  sd_notify(0, ("READY=1\nSTATUS=" + notifier.status()).c_str());

  const std::string failure = pipeline.run(capture);
  if (uploader) uploader->stop();
  work.reset();
  io.stop();
  io_thread.join();
  const auto& st = pipeline.stats();
  logger->info(
      "capture done packets={} observed={} self={} not_for_sensor={} malformed={} ring_drops={} "
      "kernel_drops={} interface_drops={} buckets={}",
      st.captured.load(), st.observed.load(), st.self_traffic.load(), st.not_for_sensor.load(),
      st.malformed.load(), st.ring_drops.load(), st.kernel_drops.load(), st.interface_drops.load(),
      st.buckets_sealed.load());
  if (uploader) {
    const auto dl = dead->stats();
    logger->info(
        "upload done delivered={} refused={} dead_letter_held={} dead_letter_packets={} "
        "dead_letter_dropped={}",
        uploader->stats().buckets_acked.load(), uploader->stats().buckets_refused.load(), dl.held,
        dl.held_packets, dl.dropped_buckets);
  }
  if (!failure.empty()) {
    logger->error("capture failed: {}", failure);
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (const int rc = parse_args(argc, argv, args); rc >= 0) return rc >= 100 ? rc - 100 : rc;
  if (args.print_example) {
    std::cout << config::sensor_config_example();
    return kExitOk;
  }
  if (args.config.empty()) {
    std::cerr << "teiten-sensord: --config FILE is required (see --help)\n";
    return kExitUsage;
  }

  auto loaded = config::load_sensor_config(args.config);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) std::cerr << e.format() << "\n";
    std::cerr << "teiten-sensord: " << errors->size() << " configuration error"
              << (errors->size() == 1 ? "" : "s") << " in " << args.config << "\n";
    return kExitUsage;
  }
  const auto& cfg = std::get<config::SensorConfig>(loaded);
  const std::string level = args.log_level.empty() ? cfg.log_level : args.log_level;
  if (!log::setup(level)) {
    std::cerr << "teiten-sensord: --log-level: '" << level << "' is not a log level\n";
    return kExitUsage;
  }
  auto logger = log::get("sensord");

  std::shared_ptr<const classify::GeoIpDatabase> db;
  if (!cfg.geoip_database.empty()) {
    std::string error;
    db = classify::GeoIpDatabase::open(cfg.geoip_database, error);
    if (!db) {
      std::cerr << args.config << ": geoip.database: " << error << "\n";
      return kExitUsage;
    }
  }
  if (args.check_config) {
    std::cout << args.config << ": configuration OK (sensor " << cfg.sensor_id << ", "
              << cfg.address_set.size() << " address" << (cfg.address_set.size() == 1 ? "" : "es")
              << (db ? ", GeoIP " + db->database_type() : ", no GeoIP database") << ")\n";
    return kExitOk;
  }
  if (args.read.empty()) return run_live(cfg, db, args);

  std::string error;
  std::unique_ptr<sensor::Savefile> savefile = sensor::open_savefile(args.read, error);
  if (!savefile) {
    logger->error("{}", error);
    return kExitUsage;
  }
  savefile->pace(args.replay_rate);

  const Output out = open_output(args.output, "w");
  if (!out) {
    logger->error("open output failed path={}: {}", args.output, std::strerror(errno));
    return kExitRuntime;
  }

  sensor::PipelineOptions opts;
  opts.boot_id = args.boot_id;
  opts.ring_full = cfg.replay_ring_full;
  if (args.upload) return run_upload(cfg, db, args, std::move(savefile));
  sensor::Pipeline pipeline(cfg, db, opts, [&out](bucket::SealedBucket&& b, std::uint64_t) {
    write_bucket_line(out.get(), b, false);
  });
  g_pipeline = &pipeline;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  logger->info("replay start file={} link={} sensor={}", args.read,
               decode::to_string(savefile->link()), cfg.sensor_id);
  const std::string failure = pipeline.run(*savefile);
  g_pipeline = nullptr;
  if (std::fflush(out.get()) != 0 || std::ferror(out.get())) {
    logger->error("write output failed path={}: {}", args.output, std::strerror(errno));
    return kExitRuntime;
  }
  const auto& st = pipeline.stats();
  logger->info(
      "replay done packets={} observed={} not_for_sensor={} malformed={} ring_drops={} "
      "ring_waits={} buckets={} geoip_cache_hits={} geoip_cache_misses={}",
      st.captured.load(), st.observed.load(), st.not_for_sensor.load(), st.malformed.load(),
      st.ring_drops.load(), st.ring_waits.load(), st.buckets_sealed.load(),
      pipeline.geoip_stats().hits, pipeline.geoip_stats().misses);
  if (!failure.empty()) {
    logger->error("replay failed: {}", failure);
    return kExitRuntime;
  }
  return kExitOk;
}

// teiten-sensord: the Teiten sensor daemon. This version replays capture files through
// the sensor pipeline and writes the sealed buckets as JSON lines.
#include <pcap/pcap.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/bucket/bucket_json.h"
#include "common/classify/geoip.h"
#include "common/config/sensor_config.h"
#include "common/log/log.h"
#include "common/version.h"
#include "daemon/pipeline/pipeline.h"

namespace {

using namespace teiten;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;  // also: configuration errors

constexpr const char* kUsage =
    R"(Usage: teiten-sensord --config FILE --read CAPTURE [--output OUT.jsonl]
       teiten-sensord --config FILE --check-config
       teiten-sensord --print-example-config

Teiten sensor daemon: counts the unsolicited packets that reach this sensor's addresses
into UTC-aligned buckets (proto, port, source country, scanner fingerprint, kind).

Options:
  -c, --config FILE         sensor configuration (YAML), e.g. /etc/teiten/sensor.yaml
  -r, --read CAPTURE        replay a capture file (pcap or pcapng) through the pipeline
  -o, --output FILE         where sealed buckets go, one JSON object a line ("-": stdout,
                            the default). Schema: docs/bucket-format.md
      --boot-id ID          boot id written into the buckets (replay default: all zeros,
                            so the same input always yields the same output)
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
  if (args.read.empty()) {
    std::cerr << "teiten-sensord: --read CAPTURE is required: this version replays capture "
                 "files; live capture is not available yet\n";
    return kExitUsage;
  }

  decode::LinkType link{};
  std::string error;
  pcap_t* handle = sensor::open_savefile(args.read, link, error);
  if (!handle) {
    logger->error("{}", error);
    return kExitUsage;
  }
  std::unique_ptr<pcap_t, decltype(&pcap_close)> handle_guard(handle, &pcap_close);

  FILE* out = stdout;
  std::unique_ptr<FILE, int (*)(FILE*)> out_guard(nullptr, &std::fclose);
  if (args.output != "-") {
    out = std::fopen(args.output.c_str(), "w");
    if (!out) {
      logger->error("open output failed path={}: {}", args.output, std::strerror(errno));
      return kExitRuntime;
    }
    out_guard.reset(out);
  }

  sensor::PipelineOptions opts;
  opts.boot_id = args.boot_id;
  opts.ring_full = cfg.replay_ring_full;
  sensor::Pipeline pipeline(cfg, db, opts, [out](bucket::SealedBucket&& b) {
    const std::string line = bucket::to_json_line(b) + "\n";
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
      throw std::runtime_error(std::string{"write failed: "} + std::strerror(errno));
    }
  });
  g_pipeline = &pipeline;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  logger->info("replay start file={} link={} sensor={}", args.read, decode::to_string(link),
               cfg.sensor_id);
  const std::string failure = pipeline.run(handle, link);
  g_pipeline = nullptr;
  if (std::fflush(out) != 0 || std::ferror(out)) {
    logger->error("write output failed path={}: {}", args.output, std::strerror(errno));
    return kExitRuntime;
  }
  const auto& st = pipeline.stats();
  logger->info(
      "replay done packets={} observed={} not_for_sensor={} malformed={} ring_drops={} "
      "buckets={} geoip_cache_hits={} geoip_cache_misses={}",
      st.captured.load(), st.observed.load(), st.not_for_sensor.load(), st.malformed.load(),
      st.ring_drops.load(), st.buckets_sealed.load(), pipeline.geoip_stats().hits,
      pipeline.geoip_stats().misses);
  if (!failure.empty()) {
    logger->error("replay failed: {}", failure);
    return kExitRuntime;
  }
  return kExitOk;
}

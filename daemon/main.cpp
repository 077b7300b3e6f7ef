// SPDX-License-Identifier: Apache-2.0
// teiten-sensord: the Teiten sensor daemon's command line. Captures live on an interface
// (or replays a capture file) through the sensor service (daemon/service/); delivers sealed
// buckets to the collector or writes them as JSON lines.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/classify/geoip.h"
#include "common/log/log.h"
#include "common/version.h"
#include "daemon/config/sensor_config.h"
#include "daemon/service/sensor_service.h"

namespace {

using namespace teiten;

using sensor::kExitOk;
using sensor::kExitRuntime;
using sensor::kExitUsage;

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
  sensor::ServiceArgs service;  ///< what the service takes from the command line
  std::string log_level;
  bool check_config = false;
  bool print_example = false;
};

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
      if (!value(a.service.config_path)) return kExitUsage;
    } else if (s == "-r" || s == "--read") {
      if (!value(a.service.read)) return kExitUsage;
    } else if (s == "-o" || s == "--output") {
      if (!value(a.service.output)) return kExitUsage;
    } else if (s == "--boot-id") {
      if (!value(a.service.boot_id)) return kExitUsage;
    } else if (s == "--log-level") {
      if (!value(a.log_level)) return kExitUsage;
    } else if (s == "--upload") {
      a.service.upload = true;
    } else if (s == "--replay-rate") {
      std::string v;
      if (!value(v)) return kExitUsage;
      if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos || v.size() > 9 ||
          std::stoull(v) == 0) {
        std::cerr << "teiten-sensord: --replay-rate: '" << v
                  << "' is not a positive number of packets per second\n";
        return kExitUsage;
      }
      a.service.replay_rate = std::stoull(v);
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
  if (args.service.config_path.empty()) {
    std::cerr << "teiten-sensord: --config FILE is required (see --help)\n";
    return kExitUsage;
  }

  auto loaded = config::load_sensor_config(args.service.config_path);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) std::cerr << e.format() << "\n";
    std::cerr << "teiten-sensord: " << errors->size() << " configuration error"
              << (errors->size() == 1 ? "" : "s") << " in " << args.service.config_path << "\n";
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
      std::cerr << args.service.config_path << ": geoip.database: " << error << "\n";
      return kExitUsage;
    }
  }
  if (args.check_config) {
    std::cout << args.service.config_path << ": configuration OK (sensor " << cfg.sensor_id << ", "
              << cfg.address_set.size() << " address" << (cfg.address_set.size() == 1 ? "" : "es")
              << (db ? ", GeoIP " + db->database_type() : ", no GeoIP database") << ")\n";
    return kExitOk;
  }
  return sensor::SensorService(cfg, std::move(db), std::move(args.service)).run();
}

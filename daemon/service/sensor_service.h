// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/classify/geoip.h"
#include "daemon/config/sensor_config.h"

namespace teiten::sensor {

/// Exit statuses of teiten-sensord.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;
inline constexpr int kExitUsage = 2;  ///< also: configuration errors

/// What the command line asks of the service beyond its configuration file.
struct ServiceArgs {
  std::string config_path;   ///< read again at a reload (SIGHUP)
  std::string read;          ///< a capture file to replay ("-": stdin); "" = live capture
  std::string output = "-";  ///< where buckets go as JSON lines when not delivered
  /// Written into a replay's buckets (a live capture and a delivered replay draw one).
  std::string boot_id = "00000000-0000-0000-0000-000000000000";
  bool upload = false;            ///< replay: deliver to upload.collector
  std::uint64_t replay_rate = 0;  ///< replay: packets per second, 0 = as fast as it goes
};

/// The sensor as one service: composes a packet source (a live interface or a capture
/// file), a bucket sink (JSON lines, or the spool and its uploader) and, live, the
/// optional control server. It owns the process's one signal handler (SIGINT and SIGTERM
/// stop, SIGHUP reloads), the systemd notifier (live: READY, STATUS, WATCHDOG) and the
/// reload, which reads the configuration again and swaps it whole: what the schema marks
/// Reload::live takes effect, the rest waits for the next start (and is logged).
class SensorService {
 public:
  SensorService(config::SensorConfig config, std::shared_ptr<const classify::GeoIpDatabase> db,
                ServiceArgs args);
  ~SensorService();
  SensorService(const SensorService&) = delete;
  SensorService& operator=(const SensorService&) = delete;

  /// Runs until the capture file ends (and, delivering, all is acknowledged) or a stop
  /// signal. Returns the exit status.
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace teiten::sensor

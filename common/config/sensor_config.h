// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "common/classify/address_set.h"
#include "common/config/schema.h"

namespace teiten::config {

/// What the capture thread does when the ring to the classifier is full.
enum class RingFullPolicy { wait, drop };

/// The sensor daemon's configuration, validated. Plain value type.
struct SensorConfig {
  std::string path;    ///< file it was read from
  std::string sha256;  ///< of the file's bytes (provenance of every bucket)

  std::string sensor_id;
  std::vector<std::string> addresses;  ///< as written
  classify::AddressSet address_set;    ///< parsed

  std::string geoip_database;  ///< "" : no database, every country unknown
  std::uint64_t geoip_cache_entries = 65536;

  std::uint32_t bucket_width_s = 60;
  std::uint64_t bucket_max_keys = 10000;
  std::uint32_t bucket_max_gap_fill = 1440;
  std::size_t bucket_max_sketch_bytes = std::size_t{8} << 20;

  std::string capture_interface;  ///< live capture; "" = none (replay only)
  std::uint64_t capture_snaplen = 256;
  std::uint64_t capture_buffer_bytes = 8ULL << 20;
  std::uint64_t capture_timeout_ms = 50;
  bool capture_immediate = false;
  bool capture_promiscuous = false;
  std::string capture_filter;  ///< operator's BPF, ANDed with the generated one

  std::string service_user;  ///< "" = keep the user it was started as

  std::string control_address = "127.0.0.1";  ///< control server (pull, status, metrics)
  std::uint16_t control_port = 9443;
  std::string control_ca, control_cert, control_key;     ///< cert "" = no control server
  std::vector<std::string> control_allowed;              ///< client identities (commonName)
  std::uint64_t control_recent_max_bytes = 16ULL << 20;  ///< control.recent_max_bytes

  std::uint64_t ring_slots = 32768;
  RingFullPolicy replay_ring_full = RingFullPolicy::wait;
  bool cpu_affinity = true;  ///< capture.cpu_affinity: auto (true) or off

  std::string log_level = "info";

  std::string state_dir = "/var/lib/teiten/sensor";
  std::uint64_t spool_max_bytes = 64ULL << 20;
  std::uint64_t dead_letter_max_bytes = 16ULL << 20;

  /// "host:port[,host:port...]": the collectors, tried as upload_failover says; "" = no
  /// delivery.
  std::string upload_collector;
  std::string upload_failover = "order";  ///< "order" or "random"
  std::string upload_ca, upload_cert, upload_key;
  std::uint64_t upload_batch = 100;
  std::uint64_t upload_timeout_s = 15;
};

/// The schema of sensor.yaml: one table drives parsing, checks and the example file.
const std::vector<Field<SensorConfig>>& sensor_schema();

/// Reads and validates a sensor configuration file. On success returns the config; on
/// failure every problem found, in file order where possible.
std::variant<SensorConfig, std::vector<ConfigError>> load_sensor_config(const std::string& path);

/// The same from text already read (tests, fuzzing); `path` is used in messages.
std::variant<SensorConfig, std::vector<ConfigError>> parse_sensor_config(const std::string& path,
                                                                         const std::string& text);

/// A commented example sensor.yaml generated from the schema, with every default.
std::string sensor_config_example();

}  // namespace teiten::config

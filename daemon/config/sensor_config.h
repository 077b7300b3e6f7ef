// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/classify/address_set.h"
#include "common/config/schema.h"

namespace teiten::config {

/// What the capture thread does when the ring to the classifier is full.
enum class RingFullPolicy { wait, drop };

/// The sensor daemon's configuration, validated. Plain value type. Every setting and its
/// default is declared once, in the schema (sensor_config.cpp): a SensorConfig comes from
/// load_sensor_config() or parse_sensor_config(), never from its members' initializers.
struct SensorConfig {
  std::string path;    ///< file it was read from
  std::string sha256;  ///< of the file's bytes (provenance of every bucket)

  std::string sensor_id;
  std::vector<std::string> addresses;  ///< as written
  classify::AddressSet address_set;    ///< parsed

  std::string geoip_database;  ///< "" : no database, every country unknown
  std::uint64_t geoip_cache_entries{};

  std::uint32_t bucket_width_s{};
  std::uint64_t bucket_max_keys{};
  std::uint32_t bucket_max_gap_fill{};
  std::size_t bucket_max_sketch_bytes{};

  std::string capture_interface;  ///< live capture; "" = none (replay only)
  std::uint64_t capture_snaplen{};
  std::uint64_t capture_buffer_bytes{};
  std::uint64_t capture_timeout_ms{};
  bool capture_immediate{};
  bool capture_promiscuous{};
  std::string capture_filter;  ///< operator's BPF, ANDed with the generated one

  std::string service_user;  ///< "" = keep the user it was started as

  std::string control_address;  ///< control server (pull, status, metrics)
  std::uint16_t control_port{};
  std::string control_ca, control_cert, control_key;  ///< cert "" = no control server
  std::vector<std::string> control_allowed;           ///< client identities (commonName)
  std::uint64_t control_recent_max_bytes{};           ///< control.recent_max_bytes

  std::uint64_t ring_slots{};
  RingFullPolicy replay_ring_full{};
  bool cpu_affinity{};  ///< capture.cpu_affinity: auto (true) or off

  std::string log_level;

  std::string state_dir;
  std::uint64_t spool_max_bytes{};
  std::uint64_t dead_letter_max_bytes{};

  /// "host:port[,host:port...]": the collectors, tried as upload_failover says; "" = no
  /// delivery.
  std::string upload_collector;
  std::string upload_failover;  ///< "order" or "random"
  std::string upload_ca, upload_cert, upload_key;
  std::uint64_t upload_batch{};
  std::uint64_t upload_timeout_s{};

  /// Every key's value as loaded ("section.key"): a reload compares them (Field::reload).
  std::map<std::string, Value> values;
};

/// The schema of sensor.yaml: one table drives parsing, checks and the example file.
const std::vector<Field<SensorConfig>>& sensor_schema();

/// Reads and validates a sensor configuration file. On success returns the config; on
/// failure every problem found, in file order where possible.
std::variant<SensorConfig, std::vector<ConfigError>> load_sensor_config(const std::string& path);

/// The same from text already read (tests, fuzzing); `path` is used in messages.
std::variant<SensorConfig, std::vector<ConfigError>> parse_sensor_config(const std::string& path,
                                                                         const std::string& text);

/// A configuration read again at a reload: `config` runs from now on. Keys whose schema
/// says Reload::restart, and that changed, keep their running values in it and are named
/// in `deferred` (they take effect at the next start); so do the upload (control) keys
/// when the reload would turn delivery (the control server) on or off.
struct Reloaded {
  SensorConfig config;
  std::vector<std::string> deferred;  ///< "section.key", in schema order
};
Reloaded reload_sensor_config(const SensorConfig& running, SensorConfig next);

/// A commented example sensor.yaml generated from the schema, with every default.
std::string sensor_config_example();

}  // namespace teiten::config

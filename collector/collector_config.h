// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "collector/events/detector.h"
#include "collector/store/store.h"
#include "common/config/schema.h"

namespace teiten::collector {

/// One sensor of the registry.
struct RegisteredSensor {
  std::string id;      ///< the id of its certificate's role URI (urn:teiten:sensor:<id>)
  std::string region;  ///< "domestic" or "overseas"
  std::string label;
  std::int64_t active_from = 0;           ///< 00:00 UTC of the date given, seconds since 1970
  std::optional<std::int64_t> active_to;  ///< 00:00 UTC, exclusive; none: still active
};

/// teiten-collectord's configuration, validated.
struct CollectorConfig {
  std::string path;
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 8443;
  /// storage.backend, the SQLite file (collector.database) or the PostgreSQL connection
  /// string (storage.postgresql), and reports.time_zone.
  StoreConfig store;
  std::uint64_t detail_retention_s = 400ULL * 86400;
  std::uint64_t hourly_retention_s = 1100ULL * 86400;
  std::uint64_t report_workers = 2;  ///< storage.report_workers
  std::uint64_t report_queue = 32;   ///< storage.report_queue
  bool dashboard_enabled = true;
  std::string dashboard_address = "127.0.0.1";
  std::uint16_t dashboard_port = 8444;
  bool dashboard_client_certificate = true;  ///< operator certificates only (else: anyone)
  std::uint64_t dashboard_max_connections = 16;
  std::string tls_ca, tls_cert, tls_key;
  std::uint64_t max_body_bytes = 16ULL << 20;
  std::uint64_t max_header_bytes = 8192;
  std::uint64_t io_timeout_s = 15;
  std::uint64_t max_connections = 256;
  std::uint64_t max_inflight_bytes = 256ULL << 20;
  std::uint64_t handshake_timeout_s = 5;
  std::uint64_t max_connections_per_address = 32;
  std::uint64_t reserved_authenticated = 64;
  std::uint64_t max_clock_skew_s = 600;
  std::vector<RegisteredSensor> sensors;
  std::string log_level = "info";
  events::Settings events;                 ///< events: the notable-changes detector
  bool live_enabled = true;                ///< events.live
  std::uint64_t live_period_s = 60;        ///< events.live_period
  std::uint64_t live_grace_s = 600;        ///< events.live_grace
  std::uint64_t live_baseline_hours = 72;  ///< events.live_baseline_hours
  std::string webhook;                     ///< events.webhook: https://host:port/path
  std::string webhook_ca;                  ///< events.webhook_ca ("" : tls.ca)

  const RegisteredSensor* find_sensor(const std::string& id) const;
  /// Throws std::invalid_argument naming the first of `ids` the registry does not list
  /// (a report's or an events request's sensors=).
  void require_registered(const std::vector<std::string>& ids) const;
  /// A hash of the registry's ids and regions: what regional sums were made with.
  std::uint64_t regions_hash() const;
};

const std::vector<config::Field<CollectorConfig>>& collector_schema();

std::variant<CollectorConfig, std::vector<config::ConfigError>> load_collector_config(
    const std::string& path);
std::variant<CollectorConfig, std::vector<config::ConfigError>> parse_collector_config(
    const std::string& path, const std::string& text);

}  // namespace teiten::collector

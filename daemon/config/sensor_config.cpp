// SPDX-License-Identifier: Apache-2.0
#include "daemon/config/sensor_config.h"

#include <openssl/evp.h>

#include <algorithm>
#include <sstream>

#include "common/config/schema_loader.h"
#include "common/tls/pki.h"

namespace teiten::config {
namespace {

using F = Field<SensorConfig>;

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 0xF];
  }
  return out;
}

std::string check_sensor_id(const Value& v) {
  const auto& s = std::get<std::string>(v);
  // The id is written into the sensor's certificates (urn:teiten:sensor:<id>): one rule.
  return tls::valid_role_id(s) ? "" : "'" + s + "' is not a sensor id (1-64 of A-Z a-z 0-9 . _ -)";
}

std::string check_addresses(const Value& v) {
  classify::AddressSet set;
  for (const auto& a : std::get<std::vector<std::string>>(v)) {
    if (auto err = set.add(a)) return *err;
  }
  return {};
}

std::string check_width(const Value& v) {
  const auto w = std::get<std::uint64_t>(v);
  return 86400 % w == 0 ? "" : std::to_string(w) + " seconds does not divide a day (86400 s)";
}

const std::vector<F> kSchema = {
    {"sensor",
     "id",
     FieldType::string,
     "",
     true,
     0,
     0,
     {},
     "This sensor's identity; must match its client certificate later.",
     [](SensorConfig& c, const Value& v) { c.sensor_id = std::get<std::string>(v); },
     check_sensor_id},
    {"sensor",
     "addresses",
     FieldType::string_list,
     "",
     true,
     1,
     0,
     {},
     "The sensor's own IPv4/IPv6 addresses or prefixes; only packets to these count.",
     [](SensorConfig& c, const Value& v) {
       c.addresses = std::get<std::vector<std::string>>(v);
       c.address_set = {};
       for (const auto& a : c.addresses) (void)c.address_set.add(a);
     },
     check_addresses},
    {"geoip",
     "database",
     FieldType::file_path,
     "/usr/share/teiten/geoip/geo-whois-asn-country.mmdb",
     false,
     0,
     0,
     {},
     "MMDB country database (GeoIP2/GeoLite2 or ip-location-db layout); \"\" for none.",
     [](SensorConfig& c, const Value& v) { c.geoip_database = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"geoip",
     "cache_entries",
     FieldType::uint,
     "65536",
     false,
     16,
     1 << 24,
     {},
     "Source addresses whose country is remembered (scanners repeat their sources).",
     [](SensorConfig& c, const Value& v) { c.geoip_cache_entries = std::get<std::uint64_t>(v); },
     {}},
    {"buckets",
     "width",
     FieldType::duration,
     "60",
     false,
     1,
     86400,
     {},
     "Bucket width; must divide a day so buckets align to UTC.",
     [](SensorConfig& c, const Value& v) {
       c.bucket_width_s = static_cast<std::uint32_t>(std::get<std::uint64_t>(v));
     },
     check_width},
    {"buckets",
     "max_keys",
     FieldType::uint,
     "10000",
     false,
     16,
     1000000,
     {},
     "Distinct (proto, port, country, fingerprint, kind) rows per bucket before overflow.",
     [](SensorConfig& c, const Value& v) { c.bucket_max_keys = std::get<std::uint64_t>(v); },
     {}},
    {"buckets",
     "max_gap_fill",
     FieldType::uint,
     "1440",
     false,
     0,
     100000,
     {},
     "Most empty buckets sealed for one silent gap in capture time.",
     [](SensorConfig& c, const Value& v) {
       c.bucket_max_gap_fill = static_cast<std::uint32_t>(std::get<std::uint64_t>(v));
     },
     {}},
    {"buckets",
     "max_sketch_bytes",
     FieldType::uint,
     "8388608",
     false,
     1 << 20,
     32ULL << 20,
     {},
     "Memory for the open bucket's unique-source sketches; sources beyond it are counted "
     "in hosts_unrecorded. A bucket's JSON grows by up to 1.4 times this: keep it below "
     "the collector's limits.max_body_bytes.",
     [](SensorConfig& c, const Value& v) {
       c.bucket_max_sketch_bytes = static_cast<std::size_t>(std::get<std::uint64_t>(v));
     },
     {}},
    {"capture",
     "interface",
     FieldType::string,
     "",
     false,
     0,
     0,
     {},
     "Network interface to capture on (live mode, when no --read is given).",
     [](SensorConfig& c, const Value& v) { c.capture_interface = std::get<std::string>(v); },
     {}},
    {"capture",
     "snaplen",
     FieldType::uint,
     "256",
     false,
     96,
     65535,
     {},
     "Bytes captured of each packet (the classifier reads at most the first 224).",
     [](SensorConfig& c, const Value& v) { c.capture_snaplen = std::get<std::uint64_t>(v); },
     {}},
    {"capture",
     "buffer_bytes",
     FieldType::uint,
     "8388608",
     false,
     65536,
     1ULL << 31,
     {},
     "Kernel capture buffer; packets beyond it are dropped and counted (loss.kernel_drops).",
     [](SensorConfig& c, const Value& v) { c.capture_buffer_bytes = std::get<std::uint64_t>(v); },
     {}},
    {"capture",
     "timeout_ms",
     FieldType::uint,
     "50",
     false,
     1,
     1000,
     {},
     "Longest time the kernel holds captured packets before handing them over.",
     [](SensorConfig& c, const Value& v) { c.capture_timeout_ms = std::get<std::uint64_t>(v); },
     {}},
    {"capture",
     "immediate",
     FieldType::boolean,
     "false",
     false,
     0,
     0,
     {},
     "Hand over every packet at once (more wake-ups, lower latency).",
     [](SensorConfig& c, const Value& v) { c.capture_immediate = std::get<bool>(v); },
     {}},
    {"capture",
     "promiscuous",
     FieldType::boolean,
     "false",
     false,
     0,
     0,
     {},
     "Promiscuous mode (only needed when the sensor's traffic is mirrored to this port).",
     [](SensorConfig& c, const Value& v) { c.capture_promiscuous = std::get<bool>(v); },
     {}},
    {"capture",
     "filter",
     FieldType::string,
     "",
     false,
     0,
     0,
     {},
     "Extra BPF filter, ANDed with the one generated from sensor.addresses.",
     [](SensorConfig& c, const Value& v) { c.capture_filter = std::get<std::string>(v); },
     {}},
    {"capture",
     "ring_slots",
     FieldType::uint,
     "32768",
     false,
     64,
     1 << 22,
     {},
     "Packets buffered between the capture and classifier threads (256 bytes each).",
     [](SensorConfig& c, const Value& v) { c.ring_slots = std::get<std::uint64_t>(v); },
     {}},
    {"capture",
     "replay_ring_full",
     FieldType::choice,
     "wait",
     false,
     0,
     0,
     {"wait", "drop"},
     "Replay from a file when the ring is full: wait (lossless) or drop and count (as live).",
     [](SensorConfig& c, const Value& v) {
       c.replay_ring_full =
           std::get<std::string>(v) == "drop" ? RingFullPolicy::drop : RingFullPolicy::wait;
     },
     {}},
    {"capture",
     "cpu_affinity",
     FieldType::choice,
     "auto",
     false,
     0,
     0,
     {"auto", "off"},
     "Where the capture, classifier and sealing threads run: auto binds capture and classifier to "
     "two different CPUs of those the process may use (sealing shares the capture's on a two-CPU "
     "box), off leaves them to the scheduler.",
     [](SensorConfig& c, const Value& v) { c.cpu_affinity = std::get<std::string>(v) == "auto"; },
     {}},
    {"state",
     "dir",
     FieldType::string,
     "/var/lib/teiten/sensor",
     false,
     0,
     0,
     {},
     "Folder for the spool and the sequence number (relative: to this file).",
     [](SensorConfig& c, const Value& v) { c.state_dir = std::get<std::string>(v); },
     {}},
    {"spool",
     "max_bytes",
     FieldType::uint,
     "67108864",
     false,
     4194304,
     1ULL << 40,
     {},
     "Bound of the spool of sealed buckets awaiting delivery; the oldest are dropped (and counted) "
     "beyond it.",
     [](SensorConfig& c, const Value& v) { c.spool_max_bytes = std::get<std::uint64_t>(v); },
     {}},
    {"spool",
     "dead_letter_max_bytes",
     FieldType::uint,
     "16777216",
     false,
     65536,
     1ULL << 40,
     {},
     "Bound of the dead-letter area (state.dir/dead-letter): buckets the collector refused, kept "
     "to be sent again (teitenctl dead-letter); the oldest are removed (and counted) beyond it.",
     [](SensorConfig& c, const Value& v) { c.dead_letter_max_bytes = std::get<std::uint64_t>(v); },
     {}},
    {"upload",
     "collector",
     FieldType::string,
     "",
     false,
     0,
     0,
     {},
     "Collector to deliver to, HOST:PORT (HOST is checked against its certificate), or several "
     "separated by commas (collectors sharing one PostgreSQL database; see failover); \"\" for "
     "none.",
     [](SensorConfig& c, const Value& v) { c.upload_collector = std::get<std::string>(v); },
     [](const Value& v) -> std::string {
       const auto& all = std::get<std::string>(v);
       if (all.empty()) return {};
       std::size_t n = 0;
       for (std::size_t p = 0; p <= all.size(); ++n) {
         const auto comma = std::min(all.find(',', p), all.size());
         const std::string s = all.substr(p, comma - p);
         const auto colon = s.rfind(':');
         if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() ||
             s.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
           return "'" + s + "' is not HOST:PORT";
         }
         p = comma + 1;
       }
       if (n > 16) return "at most 16 collectors";
       return {};
     },
     {},
     Reload::live},
    {"upload",
     "failover",
     FieldType::choice,
     "order",
     false,
     0,
     0,
     {"order", "random"},
     "With several collectors: order tries them as listed, moving to the next when one "
     "fails; random moves to another chosen at random (spreads sensors over collectors). "
     "Backoff starts once every collector failed in a row. Delivery stays exactly-once: "
     "the collectors share the database that deduplicates.",
     [](SensorConfig& c, const Value& v) { c.upload_failover = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"upload",
     "ca",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "CA certificate the collector's certificate must chain to.",
     [](SensorConfig& c, const Value& v) { c.upload_ca = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"upload",
     "cert",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "This sensor's upload certificate (clientAuth, role sensor, id = sensor.id: "
     "sensor-<id>.pem from teitenctl pki sensor).",
     [](SensorConfig& c, const Value& v) { c.upload_cert = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"upload",
     "key",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "This sensor's private key.",
     [](SensorConfig& c, const Value& v) { c.upload_key = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"upload",
     "batch",
     FieldType::uint,
     "100",
     false,
     1,
     10000,
     {},
     "Buckets per request.",
     [](SensorConfig& c, const Value& v) { c.upload_batch = std::get<std::uint64_t>(v); },
     {},
     {},
     Reload::live},
    {"upload",
     "timeout",
     FieldType::duration,
     "15",
     false,
     1,
     600,
     {},
     "Deadline of each step of an upload.",
     [](SensorConfig& c, const Value& v) { c.upload_timeout_s = std::get<std::uint64_t>(v); },
     {},
     {},
     Reload::live},
    {"service",
     "user",
     FieldType::string,
     "",
     false,
     0,
     0,
     {},
     "Started as root: the user to run as once the capture is open, keeping only CAP_NET_RAW "
     "(\"\": stay). Under systemd the unit sets the user instead.",
     [](SensorConfig& c, const Value& v) { c.service_user = std::get<std::string>(v); },
     {}},
    {"control",
     "listen",
     FieldType::string,
     "127.0.0.1:9443",
     false,
     0,
     0,
     {},
     "Control server (pull, status, metrics over mutual TLS): ADDRESS:PORT to bind.",
     [](SensorConfig& c, const Value& v) {
       const auto& s = std::get<std::string>(v);
       const auto colon = s.rfind(':');
       std::string host = s.substr(0, colon);
       if (host.size() > 2 && host.front() == '[' && host.back() == ']')
         host = host.substr(1, host.size() - 2);
       c.control_address = host;
       c.control_port = static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1)));
     },
     [](const Value& v) -> std::string {
       const auto& s = std::get<std::string>(v);
       const auto colon = s.rfind(':');
       if (colon == std::string::npos || colon == 0 || colon + 1 == s.size() ||
           s.size() - colon > 6 ||
           s.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
           std::stoul(s.substr(colon + 1)) > 65535) {
         return "'" + s + "' is not ADDRESS:PORT (e.g. 127.0.0.1:9443, [::1]:9443)";
       }
       return {};
     }},
    {"control",
     "ca",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "CA that operators' client certificates must chain to.",
     [](SensorConfig& c, const Value& v) { c.control_ca = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"control",
     "cert",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "The control server's certificate (serverAuth, role sensor: sensor-<id>-control.pem from "
     "teitenctl pki sensor); \"\": no control server.",
     [](SensorConfig& c, const Value& v) { c.control_cert = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"control",
     "key",
     FieldType::file_path,
     "",
     false,
     0,
     0,
     {},
     "Its private key.",
     [](SensorConfig& c, const Value& v) { c.control_key = std::get<std::string>(v); },
     {},
     {},
     Reload::live},
    {"control",
     "allowed",
     FieldType::string_list,
     "",
     false,
     0,
     0,
     {},
     "Operators (and monitors, for /metrics) allowed, by the id in their certificate's role "
     "(teitenctl pki operator --name alice: alice), e.g. [alice].",
     [](SensorConfig& c, const Value& v) {
       c.control_allowed = std::get<std::vector<std::string>>(v);
     },
     {},
     {},
     Reload::live},
    {"control",
     "recent_max_bytes",
     FieldType::uint,
     "16777216",
     false,
     65536,
     1ULL << 32,
     {},
     "Bound of the recently sealed buckets kept for pulls (GET /v1/buckets, teitenctl pull), as "
     "their JSON lines; the oldest go first (at most 1440 buckets). Kept only with the control "
     "server on.",
     [](SensorConfig& c, const Value& v) {
       c.control_recent_max_bytes = std::get<std::uint64_t>(v);
     },
     {}},
    log_level_field(&SensorConfig::log_level),
};

// A relative state.dir is relative to the configuration file's folder.
void resolve_paths(SensorConfig& c) {
  if (!c.state_dir.empty() && c.state_dir.front() != '/') {
    const auto slash = c.path.rfind('/');
    if (slash != std::string::npos) c.state_dir = c.path.substr(0, slash + 1) + c.state_dir;
  }
}

}  // namespace

const std::vector<Field<SensorConfig>>& sensor_schema() {
  return kSchema;
}

std::variant<SensorConfig, std::vector<ConfigError>> parse_sensor_config(const std::string& path,
                                                                         const std::string& text) {
  SensorConfig c;
  c.path = path;
  c.sha256 = sha256_hex(text);
  auto errors = load_yaml(path, text, kSchema, c);
  if (errors.empty() && !c.upload_collector.empty() &&
      (c.upload_ca.empty() || c.upload_cert.empty() || c.upload_key.empty())) {
    errors.push_back(
        ConfigError{path, 1, 1, "upload", "collector is set, so ca, cert and key are required"});
  }
  const bool control = !c.control_ca.empty() || !c.control_cert.empty() || !c.control_key.empty();
  if (errors.empty() && control &&
      (c.control_ca.empty() || c.control_cert.empty() || c.control_key.empty() ||
       c.control_allowed.empty())) {
    errors.push_back(ConfigError{path, 1, 1, "control",
                                 "ca, cert, key and allowed go together: set all four for a "
                                 "control server, or none"});
  }
  if (!errors.empty()) return errors;
  resolve_paths(c);
  return c;
}

Reloaded reload_sensor_config(const SensorConfig& running, SensorConfig next) {
  Reloaded r;
  auto keep = [&](const F& f, const std::string& key) {
    const auto it = running.values.find(key);
    if (it == running.values.end()) return;
    f.apply(next, it->second);
    next.values[key] = it->second;
  };
  // Turning delivery or the control server on or off changes what runs: the next start
  // does that, and their keys keep their running values meanwhile.
  const bool upload_toggled = running.upload_collector.empty() != next.upload_collector.empty();
  const bool control_toggled = running.control_cert.empty() != next.control_cert.empty();
  for (const auto& f : kSchema) {
    const std::string key = std::string{f.section} + "." + std::string{f.key};
    const auto a = running.values.find(key);
    const auto b = next.values.find(key);
    const bool changed = (a == running.values.end()) != (b == next.values.end()) ||
                         (a != running.values.end() && a->second != b->second);
    const bool toggled =
        (upload_toggled && f.section == "upload") || (control_toggled && f.section == "control");
    if (!changed || (f.reload == Reload::live && !toggled)) continue;
    keep(f, key);
    r.deferred.push_back(key);
  }
  // state.dir as written, then resolved once (the parse resolved an unchanged one already).
  for (const auto& f : kSchema) {
    if (f.section == "state" && f.key == "dir" && next.values.count("state.dir"))
      f.apply(next, next.values.at("state.dir"));
  }
  resolve_paths(next);
  r.config = std::move(next);
  return r;
}

std::variant<SensorConfig, std::vector<ConfigError>> load_sensor_config(const std::string& path) {
  std::string text, error;
  if (!read_config_file(path, text, error)) {
    return std::vector<ConfigError>{ConfigError{path, 1, 1, "file", error}};
  }
  return parse_sensor_config(path, text);
}

std::string sensor_config_example() {
  std::ostringstream out;
  out << "# teiten-sensord configuration (generated from the schema: teiten-sensord "
         "--print-example-config).\n";
  std::string_view section;
  for (const auto& f : kSchema) {
    if (f.section != section) {
      section = f.section;
      out << "\n" << section << ":\n";
    }
    out << "  # " << f.description;
    if (f.type == FieldType::uint || f.type == FieldType::duration) {
      out << " Range [" << f.min << ", " << f.max << "]"
          << (f.type == FieldType::duration ? " s." : ".");
    }
    if (f.type == FieldType::choice) {
      out << " One of:";
      for (auto c : f.choices) out << " " << c;
      out << ".";
    }
    out << (f.required ? " Required." : "")
        << (f.reload == Reload::live ? " Changes on reload (SIGHUP)." : "") << "\n";
    if (f.required && f.key == "id") {
      out << "  " << f.key << ": sensor-1\n";
    } else if (f.required && f.type == FieldType::string_list) {
      out << "  " << f.key << ":\n    - 192.0.2.10\n    - 2001:db8::10\n";
    } else if (f.type == FieldType::string_list) {
      out << "  " << f.key << ": []\n";
    } else if (f.type == FieldType::file_path || f.type == FieldType::string) {
      out << "  " << f.key << ": \"" << f.default_text << "\"\n";
    } else {
      out << "  " << f.key << ": " << f.default_text << "\n";
    }
  }
  return out.str();
}

}  // namespace teiten::config

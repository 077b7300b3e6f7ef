// SPDX-License-Identifier: Apache-2.0
// teitenctl pki: sets up a sensor network's certificates with the OpenSSL library.
#include <arpa/inet.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <iostream>

#include "common/bucket/bucket_json.h"
#include "common/tls/pki.h"
#include "ctl/commands.h"

namespace teiten::ctl {

int cmd_pki(const std::vector<std::string>& args) {
  if (args.empty()) return fail_usage("pki: expected init, collector, sensor, operator or monitor");
  const std::string what = args[0];
  std::string dir, name;
  std::vector<std::string> dns, ips;
  std::int64_t days = what == "init" ? 3650 : 825;
  std::optional<std::int64_t> not_before, not_after;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return fail_usage("pki: " + a + " needs a value");
    const std::string& v = args[++i];
    if (a == "--dir") {
      dir = v;
    } else if (a == "--name" || a == "--id") {
      name = v;
    } else if (a == "--dns") {
      dns.push_back(v);
    } else if (a == "--ip") {
      ips.push_back(v);
    } else if (a == "--days") {
      try {
        days = std::stoll(v);
      } catch (...) {
        return fail_usage("pki: --days: '" + v + "' is not a number");
      }
      if (days < 1 || days > 36500) return fail_usage("pki: --days: out of range [1, 36500]");
    } else if (a == "--not-before" || a == "--not-after") {
      const auto t = bucket::parse_rfc3339(v);
      if (!t) return fail_usage("pki: " + a + ": '" + v + "' is not YYYY-MM-DDTHH:MM:SSZ");
      (a == "--not-before" ? not_before : not_after) = *t;
    } else {
      return fail_usage("pki: unknown option '" + a + "'");
    }
  }
  if (dir.empty()) return fail_usage("pki: --dir is required");
  const std::int64_t now = std::time(nullptr);
  tls::CertSpec spec;
  spec.not_before = not_before.value_or(now - 300);  // tolerate small clock differences
  spec.not_after = not_after.value_or(now + days * 86400);
  spec.dns_names = dns;
  spec.ip_addresses = ips;
  try {
    std::filesystem::create_directories(dir);
    ::chmod(dir.c_str(), 0700);
    const std::string ca_cert = dir + "/ca.pem", ca_key = dir + "/ca.key";
    if (what == "init") {
      if (std::filesystem::exists(ca_key)) {
        std::cerr << "teitenctl pki: " << ca_key << " exists; refusing to replace the CA\n";
        return 1;
      }
      spec.common_name = name.empty() ? "Teiten CA" : name;
      spec.role = tls::CertRole::ca;
      tls::write_credential(tls::make_ca(spec), ca_cert, ca_key);
      std::cout << "CA: " << ca_cert << " (key " << ca_key << ", mode 0600)\n";
      return 0;
    }
    if (name.empty()) return fail_usage("pki " + what + ": --name (or --id) is required");
    tls::Credential ca{tls::read_private_key(ca_key), tls::read_certificate(ca_cert)};
    if (!tls::valid_role_id(name))
      return fail_usage(
          "pki " + what + ": '" + name +
          "' cannot be written into a certificate's role (1-64 of A-Z a-z 0-9 . _ -)");
    spec.common_name = name;
    spec.role_id = name;
    // One certificate per use: a TLS server's (serverAuth only) or a client's (clientAuth
    // only), with the role and id as a subjectAltName URI (urn:teiten:<role>:<id>).
    auto write = [&](tls::CertRole use, tls::Role role, const std::string& base,
                     const std::string& what_for) {
      spec.role = use;
      spec.teiten_role = role;
      tls::write_credential(tls::issue(ca, spec), base + ".pem", base + ".key");
      std::cout << what_for << ": " << base << ".pem (key " << base << ".key, mode 0600)\n";
    };
    if (what == "collector") {
      // The name the sensors connect to is always in subjectAltName (RFC 6125).
      in6_addr a6{};
      in_addr a4{};
      const bool is_ip =
          inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1;
      (is_ip ? spec.ip_addresses : spec.dns_names)
          .insert((is_ip ? spec.ip_addresses : spec.dns_names).begin(), name);
      write(tls::CertRole::server, tls::Role::collector, dir + "/collector",
            "collector " + name + " (server)");
    } else if (what == "sensor") {
      const std::string base = dir + "/sensor-" + name;
      write(tls::CertRole::client, tls::Role::sensor, base, "sensor " + name + " uploads (client)");
      // The control server's: names operators reach it by go in subjectAltName (--dns,
      // --ip; "localhost" and 127.0.0.1 by default).
      if (spec.dns_names.empty() && spec.ip_addresses.empty()) {
        spec.dns_names = {"localhost"};
        spec.ip_addresses = {"127.0.0.1"};
      }
      write(tls::CertRole::server, tls::Role::sensor, base + "-control",
            "sensor " + name + " control server (server)");
    } else if (what == "operator") {
      write(tls::CertRole::client, tls::Role::operator_, dir + "/operator-" + name,
            "operator " + name + " (client)");
    } else if (what == "monitor") {
      write(tls::CertRole::client, tls::Role::monitor, dir + "/monitor-" + name,
            "monitor " + name + " (client: /metrics only)");
    } else {
      return fail_usage("pki: unknown command '" + what +
                        "' (init, collector, sensor, operator, monitor)");
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "teitenctl pki: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace teiten::ctl

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::tls {

/// Owning handles for OpenSSL objects.
struct PkeyFree {
  void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const noexcept { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

/// What a certificate is for (its extendedKeyUsage): a TLS server's or a TLS client's,
/// never both (a key that can stand in for a server must not also be a client's).
enum class CertRole {
  ca,
  server,  ///< serverAuth only: the collector, a sensor's control server
  client,  ///< clientAuth only: a sensor's uploads, an operator, a monitor
};

/// Who a certificate speaks for in a Teiten network (docs/security.md). Written into the
/// certificate as a subjectAltName URI `urn:teiten:<role>:<id>`, never taken from a name.
enum class Role {
  none,       ///< no Teiten role URI (a certificate issued before roles, or by hand)
  collector,  ///< the collector's server certificate
  sensor,     ///< a sensor: its upload (client) or control server (server) certificate
  operator_,  ///< queries, reports, dashboard, the sensors' control servers
  monitor,    ///< read-only: /metrics
  count_,
};
/// "collector", "sensor", "operator", "monitor", "none".
std::string_view to_string(Role r) noexcept;
/// The role named `s`, or nullopt (none is not a role one can ask for).
std::optional<Role> role_from_string(std::string_view s) noexcept;
/// Whether `id` may stand in a role URI: 1-64 of A-Z a-z 0-9 . _ - (as sensor ids).
bool valid_role_id(std::string_view id) noexcept;

/// Who a verified peer certificate speaks for.
struct PeerIdentity {
  Role role = Role::none;
  std::string id;           ///< from the role URI ("" without one)
  std::string common_name;  ///< for messages only: it grants nothing
  /// "sensor 'tokyo-1'", or "certificate 'alice' (no Teiten role)".
  std::string describe() const;
};

/// The role and id written into `cert` (the one urn:teiten: URI of its subjectAltName;
/// none when it has no such URI, more than one, or a malformed one).
PeerIdentity peer_identity(X509* cert);

/// Whether `cert` carries an extendedKeyUsage extension that names serverAuth (`server`)
/// or clientAuth (otherwise). A certificate without the extension has neither: OpenSSL's
/// purpose check alone would take it for anything.
bool has_key_usage(X509* cert, bool server) noexcept;

/// A certificate to issue. Times are seconds since 1970 (UTC).
struct CertSpec {
  std::string common_name;
  CertRole role = CertRole::client;
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
  Role teiten_role = Role::none;  ///< written as urn:teiten:<role>:<role_id> when not none
  std::string role_id;
};

/// A private key (EC P-256) and its certificate.
struct Credential {
  PkeyPtr key;
  X509Ptr cert;
};

/// Creates a self-signed CA. Throws std::runtime_error with OpenSSL's reason on failure.
Credential make_ca(const CertSpec& spec);

/// Issues a certificate for `spec`, signed by `ca`. Throws std::runtime_error.
Credential issue(const Credential& ca, const CertSpec& spec);

/// Writes the certificate (PEM, mode 0644) and the key (PEM, mode 0600, created with that
/// mode so it is never readable by others, even briefly). Throws std::runtime_error.
void write_credential(const Credential& c, const std::string& cert_path,
                      const std::string& key_path);

/// Reads a PEM certificate / private key. Throws std::runtime_error naming the file.
X509Ptr read_certificate(const std::string& path);
PkeyPtr read_private_key(const std::string& path);

/// The subject's commonName, or "" if it has none.
std::string common_name(X509* cert);

/// notAfter as seconds since 1970, or nullopt if unreadable.
std::optional<std::int64_t> not_after(X509* cert);

/// OpenSSL's queued errors as one line (and clears the queue).
std::string openssl_error();

}  // namespace teiten::tls

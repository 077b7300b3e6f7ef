#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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

/// What a certificate is for.
enum class CertRole {
  ca,
  server,
  client,
  client_server,  ///< a sensor: a client of the collector, a server to operators' pulls
};

/// A certificate to issue. Times are seconds since 1970 (UTC).
struct CertSpec {
  std::string common_name;
  CertRole role = CertRole::client;
  std::vector<std::string> dns_names;     ///< subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  ///< subjectAltName IP entries
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
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

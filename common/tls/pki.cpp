// SPDX-License-Identifier: Apache-2.0
#include "common/tls/pki.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace teiten::tls {
namespace {

struct FileClose {
  void operator()(FILE* f) const noexcept { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileClose>;

constexpr std::string_view kRoleUriPrefix = "urn:teiten:";

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + openssl_error());
}

PkeyPtr make_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("generating an EC P-256 key");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) fail("building extension " + std::string{OBJ_nid2sn(nid)} + "=" + value);
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) fail("adding extension");
}

X509Ptr build(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer_cert,
              EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  X509_set_version(cert.get(), 2);  // v3
  // A random 127-bit serial (RFC 5280 section 4.1.2.2: positive, at most 20 octets).
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) fail("RAND_bytes");
  serial_bytes[0] &= 0x7F;
  BIGNUM* bn = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (!serial) fail("setting the serial number");
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(spec.not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(spec.not_after))) {
    fail("setting the validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("Teiten"), -1, -1, 0);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                  -1, -1, 0)) {
    fail("setting the common name");
  }
  X509* issuer = issuer_cert ? issuer_cert : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));
  X509_set_pubkey(cert.get(), subject_key);

  switch (spec.role) {
    case CertRole::ca:
      add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
      add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
      break;
    case CertRole::server:
      add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
      add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
      add_ext(cert.get(), issuer, NID_ext_key_usage, "serverAuth");
      break;
    case CertRole::client:
      add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
      add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
      add_ext(cert.get(), issuer, NID_ext_key_usage, "clientAuth");
      break;
  }
  add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (issuer_cert) add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  std::string san;
  if (spec.teiten_role != Role::none) {
    if (!valid_role_id(spec.role_id))
      throw std::runtime_error("'" + spec.role_id + "' cannot be a " +
                               std::string{to_string(spec.teiten_role)} +
                               " id (1-64 of A-Z a-z 0-9 . _ -)");
    san = "URI:" + std::string{kRoleUriPrefix} + std::string{to_string(spec.teiten_role)} + ":" +
          spec.role_id;
  }
  for (const auto& d : spec.dns_names) san += (san.empty() ? "" : ",") + std::string{"DNS:"} + d;
  for (const auto& ip : spec.ip_addresses)
    san += (san.empty() ? "" : ",") + std::string{"IP:"} + ip;
  if (!san.empty()) add_ext(cert.get(), issuer, NID_subject_alt_name, san);

  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) fail("signing the certificate");
  return cert;
}

FilePtr open_for_write(const std::string& path, mode_t mode) {
  // O_EXCL is not used: re-issuing over an old file is intended. fchmod fixes the mode of
  // a file that already existed with looser permissions before anything is written.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  if (::fchmod(fd, mode) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("cannot set the mode of " + path + ": " + std::strerror(e));
  }
  FILE* f = ::fdopen(fd, "w");
  if (!f) {
    ::close(fd);
    throw std::runtime_error("cannot write " + path);
  }
  return FilePtr(f);
}

}  // namespace

std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::collector:
      return "collector";
    case Role::sensor:
      return "sensor";
    case Role::operator_:
      return "operator";
    case Role::monitor:
      return "monitor";
    case Role::none:
    case Role::count_:
      break;
  }
  return "none";
}

std::optional<Role> role_from_string(std::string_view s) noexcept {
  for (int i = 1; i < static_cast<int>(Role::count_); ++i)
    if (to_string(static_cast<Role>(i)) == s) return static_cast<Role>(i);
  return std::nullopt;
}

bool valid_role_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 64) return false;
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string PeerIdentity::describe() const {
  if (role == Role::none)
    return "certificate '" + common_name + "' (no Teiten role: re-issue it, docs/security.md)";
  return std::string{to_string(role)} + " '" + id + "'";
}

PeerIdentity peer_identity(X509* cert) {
  PeerIdentity out;
  if (!cert) return out;
  out.common_name = common_name(cert);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  int found = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = n->d.uniformResourceIdentifier;
    const std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                                static_cast<std::size_t>(ASN1_STRING_length(uri)));
    if (text.substr(0, kRoleUriPrefix.size()) != kRoleUriPrefix) continue;
    ++found;
    const std::string_view rest = text.substr(kRoleUriPrefix.size());
    const auto colon = rest.find(':');
    const auto role =
        colon == std::string_view::npos ? std::nullopt : role_from_string(rest.substr(0, colon));
    const std::string_view id =
        colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (role && valid_role_id(id)) {
      out.role = *role;
      out.id = std::string{id};
    }
  }
  GENERAL_NAMES_free(names);
  // Two role URIs would make the certificate mean what each reader picks: it means nothing.
  if (found != 1) {
    out.role = Role::none;
    out.id.clear();
  }
  return out;
}

bool has_key_usage(X509* cert, bool server) noexcept {
  if (!cert) return false;
  if ((X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) == 0) return false;
  return (X509_get_extended_key_usage(cert) & (server ? XKU_SSL_SERVER : XKU_SSL_CLIENT)) != 0;
}

std::string openssl_error() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += (out.empty() ? "" : "; ") + std::string{buf};
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Credential make_ca(const CertSpec& spec) {
  Credential c;
  c.key = make_key();
  c.cert = build(spec, c.key.get(), nullptr, c.key.get());
  return c;
}

Credential issue(const Credential& ca, const CertSpec& spec) {
  Credential c;
  c.key = make_key();
  c.cert = build(spec, c.key.get(), ca.cert.get(), ca.key.get());
  return c;
}

void write_credential(const Credential& c, const std::string& cert_path,
                      const std::string& key_path) {
  {
    FilePtr key = open_for_write(key_path, 0600);
    if (!PEM_write_PrivateKey(key.get(), c.key.get(), nullptr, nullptr, 0, nullptr, nullptr)) {
      fail("writing " + key_path);
    }
    if (std::fflush(key.get()) != 0 || ::fsync(::fileno(key.get())) != 0) {
      throw std::runtime_error("cannot write " + key_path + ": " + std::strerror(errno));
    }
  }
  FilePtr cert = open_for_write(cert_path, 0644);
  if (!PEM_write_X509(cert.get(), c.cert.get())) fail("writing " + cert_path);
  if (std::fflush(cert.get()) != 0 || ::fsync(::fileno(cert.get())) != 0) {
    throw std::runtime_error("cannot write " + cert_path + ": " + std::strerror(errno));
  }
}

X509Ptr read_certificate(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "r"));
  if (!f) throw std::runtime_error("cannot read certificate " + path + ": " + std::strerror(errno));
  X509Ptr cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("reading certificate " + path);
  return cert;
}

PkeyPtr read_private_key(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "r"));
  if (!f) throw std::runtime_error("cannot read private key " + path + ": " + std::strerror(errno));
  PkeyPtr key(PEM_read_PrivateKey(f.get(), nullptr, nullptr, nullptr));
  if (!key) fail("reading private key " + path);
  return key;
}

std::string common_name(X509* cert) {
  if (!cert) return {};
  X509_NAME* name = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::optional<std::int64_t> not_after(X509* cert) {
  if (!cert) return std::nullopt;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return std::nullopt;
  return static_cast<std::int64_t>(timegm(&tm));
}

}  // namespace teiten::tls

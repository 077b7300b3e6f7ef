// SPDX-License-Identifier: Apache-2.0
#include "common/tls/context.h"

#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <iterator>
#include <stdexcept>

namespace teiten::tls {

namespace asio = boost::asio;

namespace {

// The role a context's servers must have, kept with the OpenSSL context itself.
const Role kRoles[] = {Role::none, Role::collector, Role::sensor, Role::operator_, Role::monitor};
static_assert(std::size(kRoles) == static_cast<std::size_t>(Role::count_));

int role_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace

Role server_role_of(SSL_CTX* ctx) {
  const auto* r = static_cast<const Role*>(SSL_CTX_get_ex_data(ctx, role_index()));
  return r ? *r : Role::none;
}

asio::ssl::context make_server_tls(const ServerTlsFiles& files, const std::string& what,
                                   bool require_client_certificate) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(files.cert, ec);
  if (ec) throw std::runtime_error(what + ".cert: cannot load " + files.cert + ": " + ec.message());
  ctx.use_private_key_file(files.key, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error(what + ".key: cannot load " + files.key + ": " + ec.message());
  // A server certificate that could also be a client's would let its key impersonate a
  // peer: refuse to serve with one that lacks serverAuth (or has no usage at all).
  if (!has_key_usage(SSL_CTX_get0_certificate(native), true))
    throw std::runtime_error(what + ".cert: " + files.cert +
                             " is not a TLS server certificate (no extendedKeyUsage serverAuth); "
                             "re-issue it with teitenctl pki (docs/security.md)");
  if (!require_client_certificate) return ctx;  // any client
  ctx.load_verify_file(files.ca, ec);
  if (ec) throw std::runtime_error(what + ".ca: cannot load " + files.ca + ": " + ec.message());
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
  // OpenSSL's purpose check passes a certificate without extendedKeyUsage; only one issued
  // for TLS clients (clientAuth named) identifies a peer.
  ctx.set_verify_callback([](bool preverified, asio::ssl::verify_context& vc) {
    X509_STORE_CTX* sc = vc.native_handle();
    if (preverified && X509_STORE_CTX_get_error_depth(sc) == 0 &&
        !has_key_usage(X509_STORE_CTX_get_current_cert(sc), false)) {
      X509_STORE_CTX_set_error(sc, X509_V_ERR_INVALID_PURPOSE);
      return false;
    }
    return preverified;
  });
  return ctx;
}

asio::ssl::context make_client_tls(const ClientTlsFiles& files, Role server_role) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_ex_data(ctx.native_handle(), role_index(),
                      const_cast<Role*>(&kRoles[static_cast<std::size_t>(server_role)]));
  SSL_CTX_set_purpose(ctx.native_handle(), X509_PURPOSE_SSL_SERVER);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  ctx.load_verify_file(files.ca, ec);
  if (ec) throw std::runtime_error("cannot load CA " + files.ca + ": " + ec.message());
  if (!files.cert.empty()) {
    ctx.use_certificate_chain_file(files.cert, ec);
    if (ec) throw std::runtime_error("cannot load certificate " + files.cert + ": " + ec.message());
    ctx.use_private_key_file(files.key, asio::ssl::context::pem, ec);
    if (ec) throw std::runtime_error("cannot load private key " + files.key + ": " + ec.message());
  }
  ctx.set_verify_mode(asio::ssl::verify_peer);
  return ctx;
}

}  // namespace teiten::tls

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <string>

#include "common/tls/pki.h"

// The TLS contexts of Teiten's servers and clients (mutual TLS with roles in the
// certificates, docs/security.md); the HTTP layer that runs over them is common/http/.
namespace teiten::tls {

/// Server credentials and the CA that clients' certificates must chain to.
struct ServerTlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

/// A TLS 1.2+ server context requiring a client certificate that chains to `ca` and
/// carries an extendedKeyUsage extension naming clientAuth (a certificate without the
/// extension is refused in the handshake), unless `require_client_certificate` is false:
/// then any client. Throws std::runtime_error naming `what`.key that failed to load.
boost::asio::ssl::context make_server_tls(const ServerTlsFiles& files, const std::string& what,
                                          bool require_client_certificate = true);

/// Client credentials and the CA that the server's certificate must chain to.
struct ClientTlsFiles {
  std::string ca;
  std::string cert;
  std::string key;
};

/// A TLS 1.2+ client context: verifies the server against `ca`, presents `cert`/`key`.
/// https_request() through it talks only to a server whose certificate names serverAuth
/// and carries `server_role` (urn:teiten:<role>:<id>), and says so when it does not.
/// Reads the files now (call again to pick up renewed certificates). Throws
/// std::runtime_error naming the file that failed.
boost::asio::ssl::context make_client_tls(const ClientTlsFiles& files, Role server_role);

/// The role make_client_tls() asked of the servers a context talks to (Role::none: any).
Role server_role_of(SSL_CTX* ctx);

}  // namespace teiten::tls

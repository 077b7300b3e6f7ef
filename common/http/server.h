// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/tls/context.h"
#include "common/tls/pki.h"

namespace teiten::http {

using tls::PeerIdentity;
using tls::ServerTlsFiles;

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

/// Bounds that keep one slow or hostile client from starving the others
/// (docs/security.md).
struct ServerLimits {
  std::uint64_t max_body_bytes = 16ULL << 20;
  std::uint64_t max_header_bytes = 8192;
  std::uint64_t io_timeout_s = 15;  ///< reading a whole request; writing a response
  std::uint64_t max_connections = 256;
  std::uint64_t max_inflight_bytes = 256ULL << 20;  ///< bodies in memory, all connections
  std::uint64_t handshake_timeout_s = 5;            ///< from accept to a finished handshake
  std::uint64_t max_connections_per_address = 32;   ///< open connections of one peer address
  /// Slots that only connections with a finished handshake may hold: connections still in
  /// their handshake share max_connections - this. When those are taken, a new connection
  /// ends the oldest one still in its handshake.
  std::uint64_t reserved_authenticated = 64;
};

/// Counters of an HTTPS server (I/O thread writes, any thread reads).
struct HttpServerStats {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> refused_over_cap{0};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> bad_requests{0};
  std::atomic<std::uint64_t> timeouts{0};
  std::atomic<std::uint64_t> refused_busy{0};         ///< bodies beyond max_inflight_bytes
  std::atomic<std::uint64_t> refused_per_address{0};  ///< over max_connections_per_address
  std::atomic<std::uint64_t> handshakes_evicted{0};   ///< ended for a newer connection
  std::atomic<std::uint64_t> handshake_timeouts{0};   ///< not done in handshake_timeout_s
  std::atomic<std::uint64_t> open_connections{0};     ///< now
  std::atomic<std::uint64_t> open_handshakes{0};      ///< now, still in their handshake
};

/// Called once with the answer of a deferred request, from any thread.
using Finish = std::function<void(Response)>;
/// An answer another thread gives: `start` (on the I/O thread) hands the work on, and
/// that work calls its Finish once. The connection waits for it; others go on.
struct Deferred {
  std::function<void(Finish)> start;
};
using Reply = std::variant<Response, Deferred>;

/// Answers one request from the peer `who` (role and id from its verified certificate;
/// Role::none without one), at once or deferred. Runs on the I/O thread.
using Handler = std::function<Reply(const Request&, const PeerIdentity& who)>;

/// A response with `body` of `content_type` (Server header `server_name`).
Response text_response(unsigned status, std::string body, std::string_view content_type,
                       bool keep_alive, std::string_view server_name);
/// A JSON response.
Response json_response(unsigned status, std::string body, bool keep_alive,
                       std::string_view server_name);
/// {"error": message}.
Response error_response(unsigned status, const std::string& message, bool keep_alive,
                        std::string_view server_name);

/// 403 for a peer whose role may not do `action`: "certificate of sensor 'tokyo-1' cannot
/// query" (every endpoint's refusal says it the same way; docs/security.md).
Response role_refusal(const PeerIdentity& who, std::string_view action, bool keep_alive,
                      std::string_view server_name);

/// key=value pairs of a request target's query string (not percent-decoded: the APIs'
/// values are identifiers, numbers and RFC 3339 times).
std::vector<std::pair<std::string, std::string>> query_params(std::string_view target);

/// An HTTPS/1.1 server with mutual TLS on Boost.Beast coroutines: caps on connections
/// (in all, per peer address, and for handshakes, with slots kept for peers that finished
/// theirs), a handshake deadline, one deadline per request, bounded headers and bodies
/// (413 read out before closing so that the client sees it), bodies in memory bounded
/// over all connections (503), and an orderly shutdown.
class HttpsServer {
 public:
  HttpsServer(boost::asio::io_context& io, boost::asio::ssl::context tls, ServerLimits limits,
              Handler handler, std::string server_name);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  /// Binds and starts accepting. Throws std::runtime_error naming address:port.
  void listen(const std::string& address, std::uint16_t port);
  /// The port bound (port 0 picks one).
  std::uint16_t port() const;
  /// New credentials (reload) for the connections accepted from now on, in a fresh
  /// context (the old CA is no longer trusted); on failure (thrown, naming the file) the
  /// old context stays. I/O thread.
  void reload_tls(const ServerTlsFiles& files, const std::string& what,
                  bool require_client_certificate = true);
  /// Stops accepting (open connections finish). I/O thread or before run().
  void close();
  /// Orderly shutdown: stops accepting, ends connections waiting for a request or still in
  /// their handshake now, and the others once the response in progress is written (within
  /// `grace`; then they are cut). The io_context's run() can then return by itself; the
  /// server must outlive it. I/O thread.
  void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));
  const HttpServerStats& stats() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace teiten::http

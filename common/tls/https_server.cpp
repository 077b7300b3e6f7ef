#include "common/tls/https_server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "common/log/log.h"
#include "common/tls/pki.h"

namespace teiten::tls {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

void bump(std::atomic<std::uint64_t>& c) {
  c.fetch_add(1, std::memory_order_relaxed);
}

// Bytes of request bodies being held, shared by all connections.
class Reservation {
 public:
  explicit Reservation(std::atomic<std::uint64_t>& pool) : pool_(pool) {}
  ~Reservation() { pool_.fetch_sub(held_, std::memory_order_relaxed); }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  bool take(std::uint64_t n, std::uint64_t limit) {
    std::uint64_t now = pool_.load(std::memory_order_relaxed);
    do {
      if (n > limit || now > limit - n) return false;
    } while (!pool_.compare_exchange_weak(now, now + n, std::memory_order_relaxed));
    held_ += n;
    return true;
  }

 private:
  std::atomic<std::uint64_t>& pool_;
  std::uint64_t held_ = 0;
};

}  // namespace

Response text_response(unsigned status, std::string body, std::string_view content_type,
                       bool keep_alive, std::string_view server_name) {
  Response res{static_cast<http::status>(status), 11};
  res.set(http::field::server, beast::string_view(server_name.data(), server_name.size()));
  res.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response json_response(unsigned status, std::string body, bool keep_alive,
                       std::string_view server_name) {
  return text_response(status, std::move(body), "application/json", keep_alive, server_name);
}

Response error_response(unsigned status, const std::string& message, bool keep_alive,
                        std::string_view server_name) {
  return json_response(status, nlohmann::json{{"error", message}}.dump(), keep_alive, server_name);
}

std::vector<std::pair<std::string, std::string>> query_params(std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  const auto q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const auto eq = kv.find('=');
    out.emplace_back(std::string{kv.substr(0, eq)},
                     eq == std::string_view::npos ? "" : std::string{kv.substr(eq + 1)});
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
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
  if (!require_client_certificate) return ctx;  // browsers: server authentication only
  ctx.load_verify_file(files.ca, ec);
  if (ec) throw std::runtime_error(what + ".ca: cannot load " + files.ca + ": " + ec.message());
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  // Only certificates issued for TLS clients (extendedKeyUsage clientAuth) identify peers.
  SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
  return ctx;
}

struct HttpsServer::Impl {
  Impl(asio::io_context& io_, asio::ssl::context tls_, ServerLimits l, Handler h, std::string n)
      : io(io_),
        tls(std::make_shared<asio::ssl::context>(std::move(tls_))),
        limits(l),
        handler(std::move(h)),
        name(std::move(n)),
        acceptor(io_) {}

  awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE, ENFILE, ENOBUFS...: say so, wait a little, keep accepting.
        log::get("https")->warn("accept failed: {}", ec.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      if (active >= limits.max_connections) {
        bump(stats.refused_over_cap);
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++active;
      bump(stats.connections);
      asio::co_spawn(io, session(std::move(socket)), [this](std::exception_ptr) { --active; });
    }
  }

  // Lingering close (RFC 9112 9.6): a client still sending the body it announced would
  // get a reset instead of our answer if the socket closed under it. Read and discard
  // until it stops, within the deadline and a byte bound.
  static awaitable<void> linger(beast::ssl_stream<beast::tcp_stream>& stream,
                                std::chrono::seconds timeout) {
    constexpr std::size_t kMaxDiscard = 256ULL << 20;
    std::array<char, 16384> sink;
    std::size_t discarded = 0;
    beast::get_lowest_layer(stream).expires_after(timeout);
    while (discarded < kMaxDiscard) {
      beast::error_code ec;
      discarded += co_await stream.async_read_some(asio::buffer(sink),
                                                   asio::redirect_error(use_awaitable, ec));
      if (ec) break;
    }
  }

  awaitable<void> session(tcp::socket socket) {
    // The context as of this connection: a reload replaces it for later ones only.
    const std::shared_ptr<asio::ssl::context> context = tls;
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *context);
    const auto timeout = std::chrono::seconds(limits.io_timeout_s);
    try {
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await stream.async_handshake(asio::ssl::stream_base::server, use_awaitable);
    } catch (const std::exception& e) {
      bump(stats.handshake_failures);
      log::get("https")->debug("handshake failed: {}", e.what());
      co_return;
    }
    // The chain was verified in the handshake; the identity is the leaf's commonName.
    const std::string identity = common_name(SSL_get0_peer_certificate(stream.native_handle()));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      parser.body_limit(limits.max_body_bytes);
      beast::error_code ec;
      // One deadline for the whole request: a client sending a byte a second is cut off.
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(use_awaitable, ec));
      // The body is held in memory: all connections together stay within
      // max_inflight_bytes (256 connections x 16 MiB would not fit a small box).
      Reservation reserved(inflight);
      if (!ec && !parser.is_done()) {
        const std::uint64_t need = parser.content_length().value_or(limits.max_body_bytes);
        if (!reserved.take(need, limits.max_inflight_bytes)) {
          bump(stats.refused_busy);
          auto res =
              error_response(503, "busy: too many request bodies in memory; retry", false, name);
          res.set(http::field::retry_after, "1");
          co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
          if (!ec) co_await linger(stream, timeout);
          break;
        }
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      }
      if (ec == http::error::end_of_stream || ec == asio::ssl::error::stream_truncated) break;
      if (ec == beast::error::timeout) {
        bump(stats.timeouts);
        break;
      }
      if (ec) {
        bump(stats.bad_requests);
        const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit;
        auto res = error_response(
            too_large ? 413 : 400,
            too_large ? "request too large" : "malformed request: " + ec.message(), false, name);
        beast::get_lowest_layer(stream).expires_after(timeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        if (!ec && too_large) co_await linger(stream, timeout);
        break;
      }
      bump(stats.requests);
      Response res;
      try {
        res = handler(parser.get(), identity);
      } catch (const std::exception& e) {
        log::get("https")->error("handler failed: {}", e.what());
        res = error_response(500, "internal error", false, name);
      }
      const bool keep = res.keep_alive();
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
      if (ec || !keep) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    beast::error_code ignored;
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ignored));
  }

  asio::io_context& io;
  std::shared_ptr<asio::ssl::context> tls;
  ServerLimits limits;
  Handler handler;
  std::string name;
  tcp::acceptor acceptor;
  HttpServerStats stats;
  std::uint64_t active = 0;
  std::atomic<std::uint64_t> inflight{0};
};

HttpsServer::HttpsServer(asio::io_context& io, asio::ssl::context tls, ServerLimits limits,
                         Handler handler, std::string server_name)
    : impl_(std::make_unique<Impl>(io, std::move(tls), limits, std::move(handler),
                                   std::move(server_name))) {}

HttpsServer::~HttpsServer() = default;

void HttpsServer::listen(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error("'" + address + "' is not an IP address: " + ec.message());
  const tcp::endpoint ep(addr, port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                             ec.message());
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

std::uint16_t HttpsServer::port() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpsServer::reload_tls(const ServerTlsFiles& files, const std::string& what) {
  // A fresh context, not the old one amended: a replaced CA must stop being trusted, and
  // sessions resumed from before the reload must not skip the new checks.
  impl_->tls = std::make_shared<asio::ssl::context>(make_server_tls(files, what));
}

void HttpsServer::close() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

const HttpServerStats& HttpsServer::stats() const noexcept {
  return impl_->stats;
}

}  // namespace teiten::tls

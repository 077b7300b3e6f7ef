// SPDX-License-Identifier: Apache-2.0
#include "common/http/server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/log/log.h"
#include "common/tls/pki.h"

namespace teiten::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
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
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::server, beast::string_view(server_name.data(), server_name.size()));
  res.set(bhttp::field::content_type, beast::string_view(content_type.data(), content_type.size()));
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

Response role_refusal(const PeerIdentity& who, std::string_view action, bool keep_alive,
                      std::string_view server_name) {
  return error_response(403, "certificate of " + who.describe() + " cannot " + std::string{action},
                        keep_alive, server_name);
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

struct HttpsServer::Impl : std::enable_shared_from_this<HttpsServer::Impl> {
  // One open connection, in accept order (the oldest handshake is the first not done).
  struct Conn {
    beast::tcp_stream* stream = nullptr;
    asio::ip::address peer;
    bool handshaken = false;
    bool busy = false;     // a request is being answered
    bool evicted = false;  // no longer counted: ended for a newer connection
  };
  using ConnList = std::list<Conn>;

  Impl(asio::io_context& io_, asio::ssl::context tls_, ServerLimits l, Handler h, std::string n)
      : io(io_),
        tls(std::make_shared<asio::ssl::context>(std::move(tls_))),
        limits(l),
        handler(std::move(h)),
        name(std::move(n)),
        acceptor(io_),
        grace_timer(io_) {}

  std::uint64_t handshake_slots() const {
    return limits.max_connections > limits.reserved_authenticated
               ? limits.max_connections - limits.reserved_authenticated
               : 1;
  }

  // Ends the oldest connection still in its handshake; false if there is none.
  bool evict_oldest_handshake() {
    for (auto& c : conns) {
      // A connection whose session has not started yet has no stream to end.
      if (c.handshaken || c.evicted || !c.stream) continue;
      c.evicted = true;
      --counted;
      --handshaking;
      --per_address[c.peer];
      bump(stats.handshakes_evicted);
      boost::system::error_code ignored;
      c.stream->socket().cancel(ignored);
      return true;
    }
    return false;
  }

  // Whether a new connection from `peer` may be served, making room if it must.
  bool admit(const asio::ip::address& peer) {
    if (per_address[peer] >= limits.max_connections_per_address) {
      bump(stats.refused_per_address);
      return false;
    }
    if (counted >= limits.max_connections || handshaking >= handshake_slots()) {
      if (!evict_oldest_handshake()) {
        bump(stats.refused_over_cap);
        return false;
      }
    }
    return true;
  }

  void release(ConnList::iterator it) {
    if (!it->evicted) {
      --counted;
      if (!it->handshaken) --handshaking;
      if (--per_address[it->peer] == 0) per_address.erase(it->peer);
    } else if (per_address[it->peer] == 0) {
      per_address.erase(it->peer);
    }
    conns.erase(it);
    publish();
  }

  void publish() {
    stats.open_connections.store(counted, std::memory_order_relaxed);
    stats.open_handshakes.store(handshaking, std::memory_order_relaxed);
  }

  // Coroutines hold `self`: a frame destroyed with the io_context after the server (a
  // shutdown that did not wait) still finds the state its destructors touch.
  awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open() || stopping) co_return;
      if (ec) {
        // EMFILE, ENFILE, ENOBUFS...: say so, wait a little, keep accepting.
        log::get("https")->warn("accept failed: {}", ec.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      const auto remote = socket.remote_endpoint(ec);
      if (ec || !admit(remote.address())) {
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++counted;
      ++handshaking;
      ++per_address[remote.address()];
      conns.push_back(Conn{nullptr, remote.address()});
      publish();
      bump(stats.connections);
      asio::co_spawn(io, session(self, std::move(socket), std::prev(conns.end())),
                     [self](std::exception_ptr e) {
                       if (e) log::get("https")->debug("session ended by an exception");
                       if (self->stopping && self->conns.empty()) self->grace_timer.cancel();
                     });
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

  // Releases the connection's slot however the session ends.
  struct ConnGuard {
    Impl* impl;
    ConnList::iterator it;
    ~ConnGuard() { impl->release(it); }
  };

  // A deferred request's wait: the worker's Finish posts the answer to this thread and
  // wakes the session, which waits on a timer that never expires by itself.
  struct Wait {
    explicit Wait(asio::io_context& io) : wake(io, asio::steady_timer::time_point::max()) {}
    asio::steady_timer wake;
    std::optional<Response> answer;
  };
  std::list<std::weak_ptr<Wait>> waits;  // for cancel_all: a stop does not wait for workers

  awaitable<Response> wait_for(Deferred deferred) {
    auto state = std::make_shared<Wait>(io);
    waits.remove_if([](const std::weak_ptr<Wait>& w) { return w.expired(); });
    waits.push_back(state);
    deferred.start([state, &io = io](Response r) {
      asio::post(io, [state, r = std::move(r)]() mutable {
        if (!state->answer) state->answer = std::move(r);
        state->wake.cancel();
      });
    });
    while (!state->answer) {
      beast::error_code ec;
      co_await state->wake.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    co_return std::move(*state->answer);
  }

  awaitable<void> session([[maybe_unused]] std::shared_ptr<Impl> self, tcp::socket socket,
                          ConnList::iterator conn) {
    // The context as of this connection: a reload replaces it for later ones only.
    const std::shared_ptr<asio::ssl::context> context = tls;
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *context);
    conn->stream = &beast::get_lowest_layer(stream);
    ConnGuard guard{this, conn};
    const auto timeout = std::chrono::seconds(limits.io_timeout_s);
    {
      beast::error_code ec;
      beast::get_lowest_layer(stream).expires_after(
          std::chrono::seconds(limits.handshake_timeout_s));
      co_await stream.async_handshake(asio::ssl::stream_base::server,
                                      asio::redirect_error(use_awaitable, ec));
      if (ec) {
        bump(ec == beast::error::timeout ? stats.handshake_timeouts : stats.handshake_failures);
        log::get("https")->debug("handshake failed: {}", ec.message());
        co_return;
      }
    }
    if (conn->evicted || stopping) co_return;
    conn->handshaken = true;
    --handshaking;
    publish();
    // The chain and the key usage were verified in the handshake; the role and id are
    // the certificate's role URI (never its name).
    const PeerIdentity who = tls::peer_identity(SSL_get0_peer_certificate(stream.native_handle()));
    beast::flat_buffer buffer;
    for (;;) {
      if (stopping) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      parser.body_limit(limits.max_body_bytes);
      beast::error_code ec;
      // One deadline for the whole request: a client sending a byte a second is cut off.
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await bhttp::async_read_header(stream, buffer, parser,
                                        asio::redirect_error(use_awaitable, ec));
      conn->busy = true;
      // The body is held in memory: all connections together stay within
      // max_inflight_bytes (256 connections x 16 MiB would not fit a small box).
      Reservation reserved(inflight);
      if (!ec && !parser.is_done()) {
        const std::uint64_t need = parser.content_length().value_or(limits.max_body_bytes);
        if (!reserved.take(need, limits.max_inflight_bytes)) {
          bump(stats.refused_busy);
          auto res =
              error_response(503, "busy: too many request bodies in memory; retry", false, name);
          res.set(bhttp::field::retry_after, "1");
          co_await bhttp::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
          if (!ec) co_await linger(stream, timeout);
          break;
        }
        co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
      }
      if (ec == bhttp::error::end_of_stream || ec == asio::ssl::error::stream_truncated ||
          ec == asio::error::operation_aborted) {
        break;
      }
      if (ec == beast::error::timeout) {
        bump(stats.timeouts);
        break;
      }
      if (ec) {
        bump(stats.bad_requests);
        const bool too_large = ec == bhttp::error::body_limit || ec == bhttp::error::header_limit;
        auto res = error_response(
            too_large ? 413 : 400,
            too_large ? "request too large" : "malformed request: " + ec.message(), false, name);
        beast::get_lowest_layer(stream).expires_after(timeout);
        co_await bhttp::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        if (!ec && too_large) co_await linger(stream, timeout);
        break;
      }
      if (!handler) break;  // the server object is gone: nothing to answer with
      bump(stats.requests);
      Response res;
      try {
        Reply reply = handler(parser.get(), who);
        if (auto* deferred = std::get_if<Deferred>(&reply)) {
          res = co_await wait_for(std::move(*deferred));
        } else {
          res = std::move(std::get<Response>(reply));
        }
      } catch (const std::exception& e) {
        log::get("https")->error("handler failed: {}", e.what());
        res = error_response(500, "internal error", false, name);
      }
      if (stopping) res.keep_alive(false);  // the answer in progress, then close
      const bool keep = res.keep_alive();
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await bhttp::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
      conn->busy = false;
      if (ec || !keep) break;
    }
    if (stopping) co_return;  // no close_notify exchange to wait for while stopping
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    beast::error_code ignored;
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ignored));
  }

  void shutdown(std::chrono::milliseconds grace) {
    stopping = true;
    boost::system::error_code ec;
    acceptor.close(ec);
    for (auto& c : conns) {
      if (c.busy || !c.stream) continue;
      c.stream->socket().cancel(ec);
    }
    if (conns.empty()) return;
    grace_timer.expires_after(grace);
    grace_timer.async_wait([this](boost::system::error_code e) {
      if (!e) cancel_all();  // else every session ended in time
    });
  }

  // Ends every session's pending operation: each then ends and releases its slot.
  void cancel_all() {
    boost::system::error_code ignored;
    for (auto& c : conns)
      if (c.stream) c.stream->socket().cancel(ignored);
    // Requests still waiting for a worker are answered now (the worker's answer, when it
    // comes, is dropped).
    for (const auto& w : waits) {
      if (const auto state = w.lock()) {
        if (!state->answer) state->answer = error_response(503, "stopping; retry", false, name);
        state->wake.cancel();
      }
    }
    waits.clear();
  }

  asio::io_context& io;
  std::shared_ptr<asio::ssl::context> tls;
  ServerLimits limits;
  Handler handler;
  std::string name;
  tcp::acceptor acceptor;
  asio::steady_timer grace_timer;
  HttpServerStats stats;
  ConnList conns;
  std::map<asio::ip::address, std::uint64_t> per_address;
  std::uint64_t counted = 0;      // open connections that hold a slot
  std::uint64_t handshaking = 0;  // of those, still in their handshake
  bool stopping = false;
  std::atomic<std::uint64_t> inflight{0};
};

HttpsServer::HttpsServer(asio::io_context& io, asio::ssl::context tls, ServerLimits limits,
                         Handler handler, std::string server_name)
    : impl_(std::make_shared<Impl>(io, std::move(tls), limits, std::move(handler),
                                   std::move(server_name))) {}

HttpsServer::~HttpsServer() {
  // Sessions may outlive this object until their io_context runs or is destroyed: they
  // must not call a handler whose objects are going away.
  impl_->handler = nullptr;
  impl_->stopping = true;
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
  impl_->grace_timer.cancel();
  impl_->cancel_all();
}

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
  asio::co_spawn(impl_->io, impl_->accept_loop(impl_), asio::detached);
}

std::uint16_t HttpsServer::port() const {
  boost::system::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpsServer::reload_tls(const ServerTlsFiles& files, const std::string& what,
                             bool require_client_certificate) {
  // A fresh context, not the old one amended: a replaced CA must stop being trusted, and
  // sessions resumed from before the reload must not skip the new checks.
  impl_->tls = std::make_shared<asio::ssl::context>(
      make_server_tls(files, what, require_client_certificate));
}

void HttpsServer::close() {
  boost::system::error_code ec;
  impl_->acceptor.close(ec);
}

void HttpsServer::shutdown(std::chrono::milliseconds grace) {
  impl_->shutdown(grace);
}

const HttpServerStats& HttpsServer::stats() const noexcept {
  return impl_->stats;
}

}  // namespace teiten::http

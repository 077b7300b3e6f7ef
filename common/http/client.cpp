// SPDX-License-Identifier: Apache-2.0
#include "common/http/client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <future>
#include <iterator>
#include <stdexcept>

#include "common/version.h"

namespace teiten::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using asio::use_awaitable;

asio::awaitable<HttpResponse> https_request(asio::ssl::context& tls, std::string host,
                                            std::string port, std::string method,
                                            std::string target, std::string body,
                                            std::chrono::seconds deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  beast::ssl_stream<beast::tcp_stream> stream(ex, tls);
  // SNI, and the name the server's certificate must carry (RFC 6125 checks by OpenSSL).
  // (SSL_set_tlsext_host_name without its C-style cast.)
  if (!SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                host.data())) {
    throw boost::system::system_error(boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                                                asio::error::get_ssl_category()),
                                      "sni");
  }
  // The name (RFC 6125), and a certificate issued for TLS servers: OpenSSL's purpose check
  // alone passes one without extendedKeyUsage, which could be any peer's.
  stream.set_verify_callback([check = asio::ssl::host_name_verification(host)](
                                 bool preverified, asio::ssl::verify_context& vc) mutable {
    X509_STORE_CTX* sc = vc.native_handle();
    if (!check(preverified, vc)) return false;
    if (X509_STORE_CTX_get_error_depth(sc) == 0 &&
        !tls::has_key_usage(X509_STORE_CTX_get_current_cert(sc), true)) {
      X509_STORE_CTX_set_error(sc, X509_V_ERR_INVALID_PURPOSE);
      return false;
    }
    return true;
  });

  beast::get_lowest_layer(stream).expires_after(deadline);
  asio::ip::tcp::resolver::results_type endpoints;
  try {
    endpoints = co_await resolver.async_resolve(host, port, use_awaitable);
  } catch (const boost::system::system_error& e) {
    throw boost::system::system_error(e.code(), "resolve");
  }
  try {
    co_await beast::get_lowest_layer(stream).async_connect(endpoints, use_awaitable);
  } catch (const boost::system::system_error& e) {
    throw boost::system::system_error(e.code(), "connect");
  }
  beast::get_lowest_layer(stream).expires_after(deadline);
  try {
    co_await stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  } catch (const boost::system::system_error& e) {
    const long verify = SSL_get_verify_result(stream.native_handle());
    if (verify != X509_V_OK) {
      throw boost::system::system_error(e.code(),
                                        std::string{"handshake: server certificate refused: "} +
                                            X509_verify_cert_error_string(verify));
    }
    throw boost::system::system_error(e.code(), "handshake");
  }
  // Nothing is sent to a server that is not the peer asked for: a sensor's control server
  // certificate must not stand in for the collector (the sensor would delete its spool).
  if (const tls::Role want = tls::server_role_of(SSL_get_SSL_CTX(stream.native_handle()));
      want != tls::Role::none) {
    const tls::PeerIdentity who =
        tls::peer_identity(SSL_get0_peer_certificate(stream.native_handle()));
    if (who.role != want) {
      throw std::runtime_error("handshake: " + host + ":" + port +
                               " presented the certificate of " + who.describe() + ", not a " +
                               std::string{tls::to_string(want)} + "'s: nothing sent");
    }
  }
  bhttp::request<bhttp::string_body> req{method == "POST" ? bhttp::verb::post : bhttp::verb::get,
                                         target, 11};
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::user_agent, std::string{"teiten/"} + kVersion);
  if (!body.empty()) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(deadline);
  beast::error_code write_ec;
  co_await bhttp::async_write(stream, req, asio::redirect_error(use_awaitable, write_ec));
  // A server may answer before it has read the whole body (413) and close; its answer can
  // still be waiting to be read, so try before reporting the failed write.
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(256ULL << 20);
  beast::get_lowest_layer(stream).expires_after(
      write_ec ? std::min(deadline, std::chrono::seconds(2)) : deadline);
  beast::error_code read_ec;
  co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, read_ec));
  if (read_ec) {
    if (write_ec) throw boost::system::system_error(write_ec, "write");
    throw boost::system::system_error(read_ec, "read");
  }
  HttpResponse out;
  out.status = parser.get().result_int();
  out.body = std::move(parser.get().body());
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
  beast::error_code ignored;
  co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ignored));  // best effort
  co_return out;
}

HttpResponse https_request_sync(asio::ssl::context& tls, const std::string& host,
                                const std::string& port, const std::string& method,
                                const std::string& target, const std::string& body,
                                std::chrono::seconds deadline) {
  asio::io_context io(1);
  auto fut = asio::co_spawn(io, https_request(tls, host, port, method, target, body, deadline),
                            asio::use_future);
  io.run();
  return fut.get();
}

}  // namespace teiten::http

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <string>

#include "common/tls/context.h"

namespace teiten::http {

/// One HTTP response.
struct HttpResponse {
  unsigned status = 0;
  std::string body;
};

/// Sends one HTTPS request (a fresh connection) to host:port, verifying the server's
/// certificate against the context's CA and `host` (with SNI), its key usage and its role
/// (make_client_tls). Every step has `deadline`. Throws boost::system::system_error
/// naming the stage that failed ("resolve", "connect", "handshake", "write", "read"), or
/// std::runtime_error when the server's certificate has another role than the one asked.
boost::asio::awaitable<HttpResponse> https_request(boost::asio::ssl::context& tls, std::string host,
                                                   std::string port, std::string method,
                                                   std::string target, std::string body,
                                                   std::chrono::seconds deadline);

/// Blocking convenience wrapper for command-line tools.
HttpResponse https_request_sync(boost::asio::ssl::context& tls, const std::string& host,
                                const std::string& port, const std::string& method,
                                const std::string& target, const std::string& body,
                                std::chrono::seconds deadline);

}  // namespace teiten::http

#include "collector/server.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/log/log.h"
#include "common/tls/pki.h"
#include "common/version.h"

namespace teiten::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr std::size_t kMaxBatchBuckets = 10000;

void bump(std::atomic<std::uint64_t>& c) {
  c.fetch_add(1, std::memory_order_relaxed);
}

http::response<http::string_body> json_response(http::status status, const nlohmann::json& body,
                                                bool keep_alive) {
  http::response<http::string_body> res{status, 11};
  res.set(http::field::server, std::string{"teiten-collectord/"} + kVersion);
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = body.dump();
  res.prepare_payload();
  return res;
}

http::response<http::string_body> error_response(http::status status, const std::string& message,
                                                 bool keep_alive) {
  return json_response(status, nlohmann::json{{"error", message}}, keep_alive);
}

// Splits a query string into key=value pairs (values are not percent-decoded: the API's
// values are identifiers, numbers and RFC 3339 times, which need no escaping).
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

}  // namespace

asio::ssl::context make_server_tls(const CollectorConfig& config) {
  asio::ssl::context ctx(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(config.tls_cert, ec);
  if (ec)
    throw std::runtime_error("tls.cert: cannot load " + config.tls_cert + ": " + ec.message());
  ctx.use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
  if (ec) throw std::runtime_error("tls.key: cannot load " + config.tls_key + ": " + ec.message());
  ctx.load_verify_file(config.tls_ca, ec);
  if (ec) throw std::runtime_error("tls.ca: cannot load " + config.tls_ca + ": " + ec.message());
  ctx.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  // Only certificates issued for TLS clients (extendedKeyUsage clientAuth) identify sensors.
  SSL_CTX_set_purpose(native, X509_PURPOSE_SSL_CLIENT);
  return ctx;
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

struct Server::Impl {
  Impl(asio::io_context& io_, const CollectorConfig& c, Storage& s, ServerStats& st)
      : io(io_), config(c), storage(s), stats(st), tls(make_server_tls(c)), acceptor(io_) {}

  awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // EMFILE, ENFILE, ENOBUFS...: say so, wait a little, keep accepting.
        log::get("collectord")->warn("accept failed: {}", ec.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      if (active >= config.max_connections) {
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

  awaitable<void> session(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
    const auto timeout = std::chrono::seconds(config.io_timeout_s);
    try {
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await stream.async_handshake(asio::ssl::stream_base::server, use_awaitable);
    } catch (const std::exception& e) {
      bump(stats.handshake_failures);
      log::get("collectord")->debug("handshake failed: {}", e.what());
      co_return;
    }
    // The chain was verified in the handshake; the identity is the leaf's commonName.
    X509* peer = SSL_get0_peer_certificate(stream.native_handle());
    const std::string identity = tls::common_name(peer);
    const RegisteredSensor* sensor = config.find_sensor(identity);
    if (!sensor) bump(stats.unknown_identity);

    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(config.max_header_bytes));
      parser.body_limit(config.max_body_bytes);
      beast::error_code ec;
      // One deadline for the whole request: a client sending a byte a second is cut off.
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await http::async_read_header(stream, buffer, parser,
                                       asio::redirect_error(use_awaitable, ec));
      // The body is held in memory: all connections together stay within
      // max_inflight_bytes (256 connections x 16 MiB would not fit a small collector).
      Reservation reserved(inflight);
      if (!ec && !parser.is_done()) {
        const std::uint64_t need = parser.content_length().value_or(config.max_body_bytes);
        if (!reserved.take(need, config.max_inflight_bytes)) {
          bump(stats.refused_busy);
          auto res = error_response(http::status::service_unavailable,
                                    "busy: too many request bodies in memory; retry", false);
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
            too_large ? http::status::payload_too_large : http::status::bad_request,
            too_large ? "request too large" : "malformed request: " + ec.message(), false);
        beast::get_lowest_layer(stream).expires_after(timeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        // Lingering close (RFC 9112 9.6): a client still sending the body it announced
        // would get a reset instead of this answer if the socket closed under it. Read and
        // discard until it stops, within the deadline and a byte bound.
        if (!ec && too_large) co_await linger(stream, timeout);
        break;
      }
      bump(stats.requests);
      auto req = parser.release();
      auto res = handle(req, identity, sensor);
      const bool keep = res.keep_alive();
      beast::get_lowest_layer(stream).expires_after(timeout);
      co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
      if (ec || !keep) break;
    }
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    beast::error_code ignored;
    co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ignored));
  }

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

  http::response<http::string_body> handle(const http::request<http::string_body>& req,
                                           const std::string& identity,
                                           const RegisteredSensor* sensor) {
    const bool keep = req.keep_alive();
    const std::string_view target{req.target().data(), req.target().size()};
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/v1/healthz" && req.method() == http::verb::get) {
      return json_response(http::status::ok, {{"status", "ok"}, {"version", kVersion}}, keep);
    }
    if (path == "/v1/buckets") {
      if (req.method() != http::verb::post)
        return error_response(http::status::method_not_allowed, "use POST", keep);
      if (!sensor) {
        return error_response(http::status::forbidden,
                              "certificate identity '" + identity + "' is not a registered sensor",
                              keep);
      }
      return ingest(req.body(), *sensor, keep);
    }
    if (path == "/v1/query") {
      if (req.method() != http::verb::get)
        return error_response(http::status::method_not_allowed, "use GET", keep);
      return query(target, keep);
    }
    return error_response(http::status::not_found, "no such endpoint", keep);
  }

  http::response<http::string_body> ingest(const std::string& body, const RegisteredSensor& sensor,
                                           bool keep) {
    std::string error;
    auto batch = bucket::from_batch_json(body, kMaxBatchBuckets, error);
    if (!batch) {
      bump(stats.bad_requests);
      return error_response(http::status::bad_request, error, keep);
    }
    for (const auto& b : *batch) {
      if (b.sensor_id != sensor.id) {
        bump(stats.identity_mismatches);
        return error_response(http::status::forbidden,
                              "batch holds buckets of sensor '" + b.sensor_id +
                                  "' but the certificate is '" + sensor.id + "': nothing stored",
                              keep);
      }
      // The registry says when a sensor observed for the network; buckets from outside
      // that period (a box tested before it was commissioned, or still running after it
      // was retired) would distort every report.
      if (b.start < sensor.active_from || (sensor.active_to && b.start >= *sensor.active_to)) {
        bump(stats.outside_active_period);
        return error_response(
            http::status::forbidden,
            "bucket seq " + std::to_string(b.seq) + " starts at " +
                bucket::format_rfc3339(b.start) + ", outside sensor '" + sensor.id +
                "''s active period (from " + bucket::format_rfc3339(sensor.active_from) +
                (sensor.active_to ? ", to " + bucket::format_rfc3339(*sensor.active_to) : "") +
                "): nothing stored",
            keep);
      }
    }
    std::vector<IngestResult> results;
    try {
      results = storage.ingest(*batch);
    } catch (const std::exception& e) {
      log::get("collectord")->error("ingest failed sensor={}: {}", sensor.id, e.what());
      return error_response(http::status::service_unavailable, "storage unavailable; retry", keep);
    }
    nlohmann::json stored = nlohmann::json::array(), duplicate = nlohmann::json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      nlohmann::json id = {{"boot_id", (*batch)[i].boot_id}, {"seq", (*batch)[i].seq}};
      if (results[i] == IngestResult::stored) {
        bump(stats.buckets_stored);
        stored.push_back(std::move(id));
      } else {
        bump(stats.buckets_duplicate);
        duplicate.push_back(std::move(id));
      }
    }
    return json_response(http::status::ok, {{"stored", stored}, {"duplicate", duplicate}}, keep);
  }

  http::response<http::string_body> query(std::string_view target, bool keep) {
    Query q;
    for (const auto& [k, v] : query_params(target)) {
      auto time_of = [&](std::int64_t& out) -> bool {
        const auto t = bucket::parse_rfc3339(v);
        if (!t) return false;
        out = *t;
        return true;
      };
      if (k == "from" || k == "to") {
        if (!time_of(k == "from" ? q.from : q.to)) {
          return error_response(http::status::bad_request, k + ": expected YYYY-MM-DDTHH:MM:SSZ",
                                keep);
        }
      } else if (k == "sensor") {
        q.sensors.push_back(v);
      } else if (k == "proto") {
        q.proto = v;
      } else if (k == "country") {
        q.country = v;
      } else if (k == "fingerprint") {
        q.fingerprint = v;
      } else if (k == "kind") {
        q.kind = v;
      } else if (k == "port") {
        int port = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
        if (ec != std::errc{} || end != v.data() + v.size() || port < -1 || port > 65535) {
          return error_response(http::status::bad_request, "port: expected -1 or 0..65535", keep);
        }
        q.port = port;
      } else if (k == "group_by") {
        std::string_view rest = v;
        while (!rest.empty()) {
          const auto comma = rest.find(',');
          q.group_by.emplace_back(rest.substr(0, comma));
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      } else {
        return error_response(http::status::bad_request, "unknown parameter '" + k + "'", keep);
      }
    }
    try {
      const bool hourly = storage.needs_rollups(q);
      const auto rows = storage.query(q);
      const Accounting a = storage.accounting(q);
      nlohmann::json out_rows = nlohmann::json::array();
      for (const auto& r : rows) {
        nlohmann::json row;
        for (std::size_t i = 0; i < q.group_by.size(); ++i) {
          if (q.group_by[i] == "port") {
            // As in sealed buckets: a number, or null for packets without a port.
            const int port = std::atoi(r.group[i].c_str());
            row["port"] = port < 0 ? nlohmann::json(nullptr) : nlohmann::json(port);
          } else {
            row[q.group_by[i]] = r.group[i];
          }
        }
        row["packets"] = r.packets;
        row["bytes"] = r.bytes;
        out_rows.push_back(std::move(row));
      }
      return json_response(http::status::ok,
                           {{"source", hourly ? "hourly" : "detail"},
                            {"rows", out_rows},
                            {"accounting",
                             {{"buckets", a.buckets},
                              {"observed_packets", a.observed_packets},
                              {"not_for_sensor", a.not_for_sensor},
                              {"self_traffic", a.self_traffic},
                              {"malformed", a.malformed},
                              {"ring_drops", a.ring_drops},
                              {"kernel_drops", a.kernel_drops},
                              {"interface_drops", a.interface_drops},
                              {"overflow_packets", a.overflow_packets},
                              {"spool_dropped", a.spool_dropped}}}},
                           keep);
    } catch (const std::invalid_argument& e) {
      return error_response(http::status::bad_request, e.what(), keep);
    }
  }

  asio::io_context& io;
  const CollectorConfig& config;
  Storage& storage;
  ServerStats& stats;
  asio::ssl::context tls;
  tcp::acceptor acceptor;
  std::uint64_t active = 0;
  std::atomic<std::uint64_t> inflight{0};  ///< request body bytes reserved
};

Server::Server(asio::io_context& io, const CollectorConfig& config, Storage& storage)
    : impl_(std::make_unique<Impl>(io, config, storage, stats_)) {}

Server::~Server() = default;

void Server::start() {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(impl_->config.listen_address, ec);
  if (ec) throw std::runtime_error("collector.listen: " + ec.message());
  const tcp::endpoint ep(address, impl_->config.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + impl_->config.listen_address + ":" +
                             std::to_string(impl_->config.port) + ": " + ec.message());
  }
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
}

std::uint16_t Server::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace teiten::collector

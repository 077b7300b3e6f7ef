// SPDX-License-Identifier: Apache-2.0
// What the collector refuses, with nothing stored, and what it bounds while other sensors
// keep being served: real TLS clients and raw sockets on loopback.
#include <utility>  // before Asio

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "common/bucket/bucket_json.h"
#include "tests/integration/network_fixture.h"

using namespace teiten;
using namespace teiten::test;
namespace asio = boost::asio;

namespace {

std::string one_batch(Network& n, const std::string& sensor_id) {
  write_file(n.dir / "s.yaml", "sensor:\n  id: " + sensor_id +
                                   "\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n");
  if (!std::filesystem::exists(n.dir / "small.pcap")) {
    gen::GenOptions o;
    o.packets = 2000;
    o.duration_s = 120;
    gen::generate(o, n.dir / "small.pcap");
  }
  const RunResult r =
      run({sensord_path(), "-c", n.dir / "s.yaml", "-r", n.dir / "small.pcap"}, n.dir);
  REQUIRE(r.exit_code == 0);
  return bucket::to_batch_json(read_buckets_from_string(r.out));
}

std::uint64_t stored_buckets(Network& n) {
  const auto res = n.request("operator-op", "GET", "/v1/query?group_by=proto");
  REQUIRE(res.status == 200);
  return nlohmann::json::parse(res.body)["accounting"]["buckets"].get<std::uint64_t>();
}

// A request with a hand-made client context; returns the HTTP status or -1 if TLS failed.
int post_with(Network& n, asio::ssl::context& ctx, const std::string& body) {
  try {
    return static_cast<int>(http::https_request_sync(ctx, "localhost", std::to_string(n.port),
                                                     "POST", "/v1/buckets", body,
                                                     std::chrono::seconds(10))
                                .status);
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

TEST_CASE(
    "refused with nothing stored: no certificate, another CA, expired, wrong identity, TLS 1.0",
    "[security]") {
  Network n;
  auto collector = n.start_collector();
  const std::string body = one_batch(n, "gen-1");
  const std::string pki = n.pki();

  SECTION("no client certificate") {
    auto ctx = tls::make_client_tls({pki + "/ca.pem", "", ""}, tls::Role::collector);
    CHECK(post_with(n, ctx, body) == -1);
  }
  SECTION("a certificate from another CA") {
    n.ctl({"pki", "init", "--dir", n.dir / "other"});
    n.ctl({"pki", "sensor", "--dir", n.dir / "other", "--id", "gen-1"});
    auto ctx = tls::make_client_tls(
        {pki + "/ca.pem", n.dir / "other/sensor-gen-1.pem", n.dir / "other/sensor-gen-1.key"},
        tls::Role::collector);
    CHECK(post_with(n, ctx, body) == -1);
  }
  SECTION("an expired certificate") {
    // Same CA, issued into a folder of its own so the valid certificate stays.
    const std::string exp = n.dir / "expired";
    std::filesystem::create_directories(exp);
    std::filesystem::copy(pki + "/ca.pem", exp + "/ca.pem");
    std::filesystem::copy(pki + "/ca.key", exp + "/ca.key");
    n.ctl({"pki", "sensor", "--dir", exp, "--id", "gen-1", "--not-before", "2020-01-01T00:00:00Z",
           "--not-after", "2021-01-01T00:00:00Z"});
    auto ctx = tls::make_client_tls(
        {pki + "/ca.pem", exp + "/sensor-gen-1.pem", exp + "/sensor-gen-1.key"},
        tls::Role::collector);
    CHECK(post_with(n, ctx, body) == -1);
  }
  SECTION("a batch whose sensor id differs from the certificate") {
    const auto res = n.request("sensor-gen-2", "POST", "/v1/buckets", body);
    REQUIRE(res.status == 200);
    const auto verdicts = nlohmann::json::parse(res.body);
    CHECK(verdicts["stored"].empty());
    REQUIRE(!verdicts["refused"].empty());
    CHECK(verdicts["refused"][0]["reason"] == "wrong_sensor");
  }
  SECTION("a certificate of the CA whose identity is not a registered sensor") {
    n.ctl({"pki", "sensor", "--dir", pki, "--id", "stranger"});
    const auto res = n.request("sensor-stranger", "POST", "/v1/buckets", one_batch(n, "stranger"));
    CHECK(res.status == 403);
  }
  SECTION("buckets from outside the sensor's active period in the registry") {
    n.ctl({"pki", "sensor", "--dir", pki, "--id", "retired-1"});
    const auto res =
        n.request("sensor-retired-1", "POST", "/v1/buckets", one_batch(n, "retired-1"));
    REQUIRE(res.status == 200);
    const auto verdicts = nlohmann::json::parse(res.body);
    CHECK(verdicts["stored"].empty());
    REQUIRE(!verdicts["refused"].empty());
    CHECK(verdicts["refused"][0]["reason"] == "outside_active_period");
    CHECK(verdicts["refused"][0]["message"].get<std::string>().find(
              "outside sensor 'retired-1''s active period") != std::string::npos);
  }
  SECTION("a client that offers only TLS 1.0") {
    auto ctx = tls::make_client_tls(
        {pki + "/ca.pem", pki + "/sensor-gen-1.pem", pki + "/sensor-gen-1.key"},
        tls::Role::collector);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx.native_handle(), "DEFAULT:@SECLEVEL=0");
    CHECK(post_with(n, ctx, body) == -1);
  }
  CHECK(stored_buckets(n) == 0);
  // The rightful sensor is still served and stores the very same batch.
  const auto ok = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  CHECK(ok.status == 200);
  CHECK(stored_buckets(n) > 0);
}

TEST_CASE("oversized bodies, slow clients and garbage are bounded while others are served",
          "[security]") {
  Network n;
  auto collector = n.start_collector(
      "limits:\n  max_body_bytes: 65536\n  io_timeout: 2\n  max_inflight_bytes: 100000\n");
  const std::string body = one_batch(n, "gen-1");
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve("127.0.0.1", std::to_string(n.port));

  // A client that sends one byte a second, and one that sends garbage.
  asio::ip::tcp::socket slow(io), garbage(io);
  asio::connect(slow, endpoints);
  asio::connect(garbage, endpoints);
  asio::write(
      garbage,
      asio::buffer(std::string("\x16\x03\x01\xff\xff garbage that is not a TLS record\r\n\r\n")));
  const auto started = std::chrono::steady_clock::now();
  std::thread dribble([&] {
    boost::system::error_code ec;
    for (int i = 0; i < 10 && !ec; ++i) {
      asio::write(slow, asio::buffer("\x16", 1), ec);
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });

  // Meanwhile a sensor is served normally.
  const auto ok = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  CHECK(ok.status == 200);

  // An oversized body is refused with 413 and nothing of it is stored.
  const std::uint64_t before = stored_buckets(n);
  const std::string big = "{\"buckets\":[" + std::string(70000, ' ') + "]}";
  const auto res = n.request("sensor-gen-1", "POST", "/v1/buckets", big);
  CHECK(res.status == 413);
  CHECK(stored_buckets(n) == before);

  // The slow client is cut off at the deadline (2 s), long before it finished.
  char byte;
  boost::system::error_code ec;
  slow.read_some(asio::buffer(&byte, 1), ec);  // returns when the server closes
  const auto held = std::chrono::steady_clock::now() - started;
  CHECK(ec);
  CHECK(held < std::chrono::seconds(8));
  dribble.join();
  // The server may answer with a TLS alert; then it closes the connection (a reset when
  // garbage it never read was still in its receive buffer).
  char buf[256];
  for (int i = 0; i < 100 && !ec; ++i) garbage.read_some(asio::buffer(buf), ec);
  CHECK((ec == asio::error::eof || ec == asio::error::connection_reset));
  // A client that announces a 60,000-byte body and stalls holds that much of the 100,000
  // bytes of bodies in memory; a 50,000-byte request meanwhile is told to come back
  // later (503) before its body is read, a small one is served.
  const std::string pki = n.pki();
  asio::ssl::context ctx =
      tls::make_client_tls({pki + "/ca.pem", pki + "/sensor-gen-1.pem", pki + "/sensor-gen-1.key"},
                           tls::Role::collector);
  asio::ssl::stream<asio::ip::tcp::socket> stall(io, ctx);
  asio::connect(stall.next_layer(), endpoints);
  stall.handshake(asio::ssl::stream_base::client);
  asio::write(stall, asio::buffer(std::string("POST /v1/buckets HTTP/1.1\r\nHost: localhost\r\n"
                                              "Content-Length: 60000\r\n\r\n{")));
  const std::string half = "{\"buckets\":[" + std::string(50000, ' ') + "]}";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto busy = n.request("sensor-gen-1", "POST", "/v1/buckets", half);
  CHECK(busy.status == 503);
  const auto small = n.request("sensor-gen-1", "POST", "/v1/buckets", "{\"buckets\":[]}");
  INFO(small.body);
  CHECK(small.status == 200);
  // Once the stalled client is cut off at the deadline, the same request is read and
  // answered (it holds no buckets).
  CHECK(eventually(
      [&] { return n.request("sensor-gen-1", "POST", "/v1/buckets", half).status == 200; },
      std::chrono::seconds(10)));

  CHECK(n.request("sensor-gen-1", "GET", "/v1/healthz").status == 200);
}

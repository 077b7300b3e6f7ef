// SPDX-License-Identifier: Apache-2.0
// Live notable changes: a real collector judges the last whole hour of hourly buckets that
// a sensor delivered through the API, counts the spike for Prometheus and posts it as JSON
// to a webhook: an HTTPS listener this test starts on loopback.
#include <utility>  // before Asio

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bucket/bucket_json.h"
#include "common/tls/context.h"
#include "tests/integration/network_fixture.h"
#include "tests/integration/test_support.h"

using namespace teiten;
using namespace teiten::test;
namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

// An HTTPS listener on 127.0.0.1 that keeps the bodies POSTed to it and answers 204.
class WebhookListener {
 public:
  explicit WebhookListener(const std::string& pki)
      : tls_(tls::make_server_tls({pki + "/ca.pem", pki + "/collector.pem", pki + "/collector.key"},
                                  "webhook", false)),
        acceptor_(io_, {asio::ip::address_v4::loopback(), 0}) {
    thread_ = std::thread([this] { serve(); });
  }
  ~WebhookListener() {
    stop_ = true;
    // A connection of our own wakes the accept() the thread waits in.
    boost::system::error_code ec;
    asio::ip::tcp::socket wake(io_);
    wake.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  void serve() {
    while (!stop_) {
      boost::system::error_code ec;
      asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), tls_);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (ec) continue;
      beast::flat_buffer buf;
      beast::http::request<beast::http::string_body> req;
      beast::http::read(stream, buf, req, ec);
      if (ec) continue;
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(std::string{req.method_string()} + " " + std::string{req.target()} +
                          "\n" + req.body());
      }
      beast::http::response<beast::http::empty_body> res{beast::http::status::no_content, 11};
      beast::http::write(stream, res, ec);
      stream.shutdown(ec);
    }
  }
  asio::io_context io_;
  asio::ssl::context tls_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

std::uint64_t metric_value(const std::string& text, const std::string& name) {
  const auto at = text.find("\n" + name + " ");
  if (at == std::string::npos) return UINT64_MAX;
  return std::stoull(text.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE("a spike in the last whole hour is counted for Prometheus and posted to a webhook",
          "[events]") {
  Network n;
  WebhookListener hook(n.pki());
  const std::string live =
      "events:\n  live_period: 1\n  live_grace: 0\n  live_baseline_hours: 24\n"
      "  webhook: https://localhost:" +
      std::to_string(hook.port()) + "/teiten/events\n";
  auto collector = n.start_collector(live);
  // 30 ordinary hours of 23/TCP (90-129 packets), then the last whole hour at 2,000.
  const std::int64_t last = std::time(nullptr) / 3600 - 1;
  std::vector<bucket::SealedBucket> batch;
  for (std::int64_t h = last - 30; h <= last; ++h)
    batch.push_back(hour_bucket("gen-1", "live-test", batch.size(), h, 23,
                                h == last ? 2000 : 90 + static_cast<std::uint64_t>(h * 7 % 40)));
  REQUIRE(n.request("sensor-gen-1", "POST", "/v1/buckets", bucket::to_batch_json(batch)).status ==
          200);
  // The collector judged the last hour at its start, before the buckets came: a restart
  // judges it again (a live collector judges each hour once, live_grace after its end).
  collector->kill(SIGTERM);
  collector->wait();
  const auto started = std::chrono::steady_clock::now();
  collector = n.start_collector(live);
  REQUIRE(eventually([&] { return !hook.bodies().empty(); }, std::chrono::seconds(30)));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("live spike posted " << seconds << " s after the collector started");
  const auto bodies = hook.bodies();
  REQUIRE(bodies.size() == 1);
  CHECK(bodies[0].rfind("POST /teiten/events\n", 0) == 0);
  const auto body = nlohmann::json::parse(bodies[0].substr(bodies[0].find('\n') + 1));
  const auto& e = body["event"];
  CHECK(e["kind"] == "spike");
  CHECK(e["destination"] == "23/TCP");
  CHECK(e["scope"] == "domestic");
  CHECK(e["hour"] == bucket::format_rfc3339(last * 3600));
  CHECK(e["excess"].get<double>() > 1800);
  CHECK(e["sentence"].get<std::string>().find("Packets to 23/TCP at domestic sensors jumped in "
                                              "the hour from " +
                                              bucket::format_rfc3339(last * 3600)) == 0);

  const auto res = n.request("operator-op", "GET", "/metrics");
  REQUIRE(res.status == 200);
  CHECK(metric_value(res.body, "teiten_collector_live_events_total") == 1);
  CHECK(metric_value(res.body, "teiten_collector_webhook_posts_total") == 1);
  CHECK(metric_value(res.body, "teiten_collector_webhook_failures_total") == 0);
  CHECK(res.body.find("teiten_collector_live_event_score{destination=\"23/TCP\",scope=\"domestic\","
                      "fingerprint=\"all\",hour=\"" +
                      bucket::format_rfc3339(last * 3600) + "\"}") != std::string::npos);
  CHECK(read_file(n.dir / "collector-2.log").find("notable change: Packets to 23/TCP") !=
        std::string::npos);

  // A webhook that cannot be reached is counted, and the event still shows.
  collector->kill(SIGTERM);
  collector->wait();
  collector = n.start_collector(
      "events:\n  live_period: 1\n  live_grace: 0\n"
      "  live_baseline_hours: 24\n  webhook: https://localhost:1/x\n");
  REQUIRE(eventually(
      [&] {
        const auto m = n.request("operator-op", "GET", "/metrics");
        return metric_value(m.body, "teiten_collector_webhook_failures_total") == 1 &&
               metric_value(m.body, "teiten_collector_live_events_total") == 1;
      },
      std::chrono::seconds(30)));
}

TEST_CASE("a webhook that is not an https URL is refused at start", "[events]") {
  Network n;
  n.write_collector_config("events:\n  webhook: http://example.test/hook\n");
  const RunResult r =
      run({collector_path(), "-c", n.dir / "collector.yaml", "--check-config"}, n.dir);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("is not an https://HOST[:PORT][/PATH] URL") != std::string::npos);
}

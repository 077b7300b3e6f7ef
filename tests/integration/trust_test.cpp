// SPDX-License-Identifier: Apache-2.0
// The collector's trust boundaries (docs/security.md), tried as an attacker and as a
// careless operator would: roles from certificates at every endpoint, key usage checked in
// the handshake, per-bucket verdicts with refused buckets delivered around, bounded
// values, a connection flood, and SIGTERM during uploads. Real processes, real TLS on
// loopback, a real SQLite database; totals reconciled with the generator's truth.
#include <utility>  // before Asio

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/tls/pki.h"
#include "tests/integration/network_fixture.h"

using namespace teiten;
using namespace teiten::test;

namespace {

std::string batch_of(Network& n, const std::string& sensor_id) {
  write_file(n.dir / "b.yaml", "sensor:\n  id: " + sensor_id +
                                   "\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n");
  gen::GenOptions o;
  o.packets = 600;
  o.duration_s = 120;
  gen::generate(o, n.dir / "b.pcap");
  const RunResult r = run({sensord_path(), "-c", n.dir / "b.yaml", "-r", n.dir / "b.pcap"}, n.dir);
  REQUIRE(r.exit_code == 0);
  return bucket::to_batch_json(read_buckets_from_string(r.out));
}

// Issues a certificate of the fixture's CA with the OpenSSL command line, for shapes
// teitenctl pki never makes (no extendedKeyUsage).
void issue_with_openssl(Network& n, const std::string& name, const std::string& extensions) {
  const std::string p = n.pki() + "/" + name;
  write_file(p + ".ext", extensions);
  REQUIRE(run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-nodes", "-keyout", p + ".key", "-subj", "/CN=" + name, "-out", p + ".csr"},
              n.dir)
              .exit_code == 0);
  REQUIRE(run({"openssl", "x509", "-req", "-in", p + ".csr", "-CA", n.pki() + "/ca.pem", "-CAkey",
               n.pki() + "/ca.key", "-CAcreateserial", "-days", "1", "-extfile", p + ".ext", "-out",
               p + ".pem"},
              n.dir)
              .exit_code == 0);
}

std::uint64_t metric(Network& n, const std::string& name) {
  const auto res = n.request("operator-op", "GET", "/metrics");
  REQUIRE(res.status == 200);
  const std::string key = "\nteiten_" + name + " ";
  const auto at = res.body.find(key);
  REQUIRE(at != std::string::npos);
  return std::stoull(res.body.substr(at + key.size()));
}

}  // namespace

TEST_CASE("every endpoint checks the role in the certificate, a name grants nothing", "[trust]") {
  Network n;
  n.ctl({"pki", "monitor", "--dir", n.pki(), "--name", "prometheus"});
  // An operator certificate named like a registered sensor, and a sensor named like the
  // operator: the role decides, never the name.
  n.ctl({"pki", "operator", "--dir", n.pki(), "--name", "gen-1"});
  n.ctl({"pki", "sensor", "--dir", n.pki(), "--id", "op"});
  {
    // A certificate of the CA without a role (as issued before roles existed).
    const tls::Credential ca{tls::read_private_key(n.pki() + "/ca.key"),
                             tls::read_certificate(n.pki() + "/ca.pem")};
    const std::int64_t now = std::time(nullptr);
    tls::write_credential(
        tls::issue(ca, {"gen-2", tls::CertRole::client, {}, {}, now - 60, now + 3600}),
        n.pki() + "/legacy.pem", n.pki() + "/legacy.key");
  }
  auto collector = n.start_collector();
  const std::string body = batch_of(n, "gen-1");

  struct Case {
    std::string who, method, target;
    unsigned status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"operator-gen-1", "POST", "/v1/buckets", 403,
       "certificate of operator 'gen-1' cannot upload buckets"},
      {"legacy", "POST", "/v1/buckets", 403, "certificate 'gen-2' (no Teiten role"},
      {"monitor-prometheus", "POST", "/v1/buckets", 403, "cannot upload buckets"},
      {"sensor-gen-1", "GET", "/v1/query?group_by=proto", 403,
       "certificate of sensor 'gen-1' cannot query"},
      {"sensor-op", "GET", "/v1/query?group_by=proto", 403,
       "certificate of sensor 'op' cannot query"},
      {"monitor-prometheus", "GET", "/v1/query?group_by=proto", 403, "cannot query"},
      {"sensor-gen-1", "GET", "/v1/report?quarter=2022Q3", 403, "cannot read reports"},
      {"legacy", "GET", "/v1/report?quarter=2022Q3", 403, "no Teiten role"},
      {"sensor-gen-1", "GET", "/v1/events?quarter=2022Q3", 403, "cannot read events"},
      {"monitor-prometheus", "GET", "/v1/events?quarter=2022Q3", 403, "cannot read events"},
      {"operator-op", "GET", "/v1/events?quarter=2022Q3&format=csv", 200, "day,last_day,kind"},
      {"sensor-gen-1", "GET", "/metrics", 403, "cannot read metrics"},
      {"legacy", "GET", "/v1/healthz", 403, "no Teiten role"},
      {"monitor-prometheus", "GET", "/metrics", 200, "teiten_collector_buckets_stored_total"},
      {"operator-op", "GET", "/metrics", 200, "teiten_collector_buckets_stored_total"},
      {"operator-gen-1", "GET", "/v1/query?group_by=proto", 200, "accounting"},
      {"sensor-gen-1", "GET", "/v1/healthz", 200, "ok"},
  };
  for (const auto& c : cases) {
    INFO(c.who << " " << c.method << " " << c.target);
    const auto res = n.request(c.who, c.method, c.target, c.method == "POST" ? body : "");
    CHECK(res.status == c.status);
    CHECK(res.body.find(c.says) != std::string::npos);
  }
  // Nothing reached the store; the sensor's own certificate still delivers.
  CHECK(n.accounting("gen-1")["buckets"] == 0);
  CHECK(n.request("sensor-gen-1", "POST", "/v1/buckets", body).status == 200);
  CHECK(n.accounting("gen-1")["buckets"].get<std::uint64_t>() > 0);
  CHECK(metric(n, "collector_role_refusals_total") >= 11);

  // teitenctl says what is wrong, too.
  const RunResult q =
      run({teitenctl_path(), "query", "--collector", "localhost:" + std::to_string(n.port), "--ca",
           n.pki() + "/ca.pem", "--cert", n.pki() + "/sensor-gen-1.pem", "--key",
           n.pki() + "/sensor-gen-1.key"},
          n.dir);
  CHECK(q.exit_code != 0);
  CHECK(q.err.find("certificate of sensor 'gen-1' cannot query") != std::string::npos);
}

TEST_CASE("certificates without the needed key usage are refused in the handshake", "[trust]") {
  Network n;
  auto collector = n.start_collector();
  const std::string body = batch_of(n, "gen-1");
  // A sensor certificate of the CA with the right role URI but no extendedKeyUsage
  // (OpenSSL's purpose check alone lets such a certificate through).
  issue_with_openssl(n, "no-eku",
                     "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                     "subjectAltName=URI:urn:teiten:sensor:gen-1\n");
  // A server-only certificate used as a client.
  const std::string pki = n.pki();
  for (const std::string who : {"no-eku", "sensor-gen-1-control", "collector"}) {
    INFO(who);
    auto ctx =
        tls::make_client_tls({pki + "/ca.pem", pki + "/" + who + ".pem", pki + "/" + who + ".key"},
                             tls::Role::collector);
    CHECK_THROWS(http::https_request_sync(ctx, "localhost", std::to_string(n.port), "POST",
                                          "/v1/buckets", body, std::chrono::seconds(10)));
  }
  CHECK(n.accounting("gen-1")["buckets"] == 0);
}

TEST_CASE("a sensor's key cannot stand in for the collector: the uploader sends nothing",
          "[trust]") {
  Network n;
  // A "collector" serving with sensor gen-2's control server certificate (a valid server
  // certificate of the same CA, for localhost).
  auto real = n.start_collector();  // learns a free port
  real.reset();
  real = n.start_collector();  // its configuration now names that port
  real.reset();
  write_file(n.dir / "collector.yaml", std::regex_replace(read_file(n.dir / "collector.yaml"),
                                                          std::regex("pki/collector\\.(pem|key)"),
                                                          "pki/sensor-gen-2-control.$1"));
  Process fake({collector_path(), "-c", n.dir / "collector.yaml"}, n.dir / "fake.log");
  REQUIRE(eventually(
      [&] { return read_file(n.dir / "fake.log").find("listening") != std::string::npos; },
      std::chrono::seconds(20)));
  generate(n.dir, 3000, 300);
  n.write_sensor_config("gen-1", "");
  Process sensor(sensord(n, "gen-1"), n.dir / "sensor.log");
  INFO(read_file(n.dir / "fake.log"));
  CHECK(eventually(
      [&] {
        return read_file(n.dir / "sensor.log")
                   .find(
                       "presented the certificate of sensor 'gen-2', not a collector's: nothing "
                       "sent") != std::string::npos;
      },
      std::chrono::seconds(30)));
  CHECK(sensor.running());
  sensor.kill(SIGTERM);
  REQUIRE(sensor.wait_for(std::chrono::seconds(30)).has_value());
  // Nothing was delivered, nothing left the spool.
  const std::string log = read_file(n.dir / "sensor.log");
  INFO(log);
  CHECK(log.find("delivered=0") != std::string::npos);
  CHECK(std::regex_search(log, std::regex("pending=[1-9]")));
  // The fake answered no request: the sensor never sent one.
  fake.kill(SIGTERM);
  REQUIRE(fake.wait_for(std::chrono::seconds(20)).has_value());
  CHECK(read_file(n.dir / "fake.log").find("stored=0") != std::string::npos);
}

TEST_CASE("refused buckets go to the dead-letter area, the rest is delivered, resend completes it",
          "[trust]") {
  Network n;
  n.ctl({"pki", "sensor", "--dir", n.pki(), "--id", "late-1"});
  // The registry says late-1 started on 2022-01-01; its capture begins 20 minutes before
  // (a box tested before commissioning, or a clock not yet set).
  n.extra_sensors = "  - id: late-1\n    region: domestic\n    active_from: 2022-01-01\n";
  gen::GenOptions o;
  o.packets = 6000;
  o.start = 1640993600;  // 2021-12-31T23:33:20Z
  o.duration_s = 1800;
  o.seed = 7;
  const auto truth = gen::generate(o, n.dir / "in.pcap");
  auto collector = n.start_collector();
  n.write_sensor_config("late-1", make_mmdb(n.dir));
  const RunResult first = run(sensord(n, "late-1"), n.dir);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);  // ends: the refused buckets do not block the others
  std::size_t before = 0, after = 0;
  for (const auto& [start, b] : truth.buckets) (start < 1640995200 ? before : after)++;
  REQUIRE(before > 0);
  CHECK(n.accounting("late-1")["buckets"] == after);
  CHECK(first.err.find("refused=" + std::to_string(before)) != std::string::npos);
  CHECK(first.err.find("dead_letter_held=" + std::to_string(before)) != std::string::npos);
  CHECK(metric(n, "collector_buckets_refused_total{reason=\"outside_active_period\"}") == before);

  const RunResult list = run(
      {teitenctl_path(), "dead-letter", "list", "--state-dir", n.dir / "state-late-1", "--json"},
      n.dir);
  REQUIRE(list.exit_code == 0);
  const auto letters = nlohmann::json::parse(list.out)["dead_letters"];
  REQUIRE(letters.size() == before);
  CHECK(letters[0]["reason"] == "outside_active_period");
  CHECK(letters[0]["message"].get<std::string>().find("active period from 2022-01-01T00:00:00Z") !=
        std::string::npos);

  // The operator fixes the registry, queues the dead letters, and the sensor sends them.
  collector.reset();
  n.extra_sensors = "  - id: late-1\n    region: domestic\n    active_from: 2021-12-01\n";
  collector = n.start_collector();
  const RunResult resend = run(
      {teitenctl_path(), "dead-letter", "resend", "--state-dir", n.dir / "state-late-1"}, n.dir);
  REQUIRE(resend.exit_code == 0);
  CHECK(resend.out.find(std::to_string(before) + " dead letters queued") != std::string::npos);
  const RunResult second = run(sensord(n, "late-1"), n.dir);
  INFO(second.err);
  REQUIRE(second.exit_code == 0);
  CHECK(second.err.find("dead_letter_held=0") != std::string::npos);
  // Nothing lost, nothing twice.
  CHECK(diff(n.totals("late-1"), truth_totals(truth)) == "");
  CHECK(n.accounting("late-1")["buckets"] == truth.buckets.size());
}

TEST_CASE("out-of-range counts and dates are refused, queries and the dashboard keep answering",
          "[trust]") {
  Network n;
  auto collector = n.start_collector();
  const std::string good = batch_of(n, "gen-1");
  auto buckets = nlohmann::json::parse(good)["buckets"];
  REQUIRE(buckets.size() >= 2);
  // A count of 2^63 (with totals that agree), and a bucket dated 9999-12-31.
  auto huge = buckets[0];
  huge["seq"] = 1000;
  huge["rows"][0]["packets"] = 9223372036854775807ULL;
  std::uint64_t sum = 0;
  for (const auto& r : huge["rows"]) sum += r["packets"].get<std::uint64_t>();
  huge["observed"]["packets"] = sum + huge["loss"]["overflow"]["packets"].get<std::uint64_t>();
  auto future = buckets[1];
  future["seq"] = 1001;
  future["start"] = "9999-12-31T00:00:00Z";
  nlohmann::json batch = {{"buckets", {huge, future, buckets[0], buckets[1]}}};
  const auto res = n.request("sensor-gen-1", "POST", "/v1/buckets", batch.dump());
  REQUIRE(res.status == 200);
  const auto verdicts = nlohmann::json::parse(res.body);
  REQUIRE(verdicts["refused"].size() == 2);
  CHECK(verdicts["refused"][0]["index"] == 0);
  CHECK(verdicts["refused"][0]["reason"] == "malformed");
  CHECK(verdicts["refused"][1]["index"] == 1);
  CHECK(verdicts["refused"][1]["reason"] == "in_future");
  CHECK(verdicts["stored"].size() == 2);
  // Queries over everything, the API's reports and the dashboard's default page answer.
  CHECK(n.request("operator-op", "GET", "/v1/query?group_by=proto,port").status == 200);
  CHECK(n.request("operator-op", "GET", "/v1/report?from=2022-06-01&to=2022-07-31").status == 200);
  auto ctx = tls::make_client_tls(
      {n.pki() + "/ca.pem", n.pki() + "/operator-op.pem", n.pki() + "/operator-op.key"},
      tls::Role::collector);
  const auto page =
      http::https_request_sync(ctx, "localhost", std::to_string(n.dashboard_port), "GET",
                               "/api/report.json", "", std::chrono::seconds(30));
  CHECK(page.status == 200);
}

TEST_CASE("a flood of idle connections does not lock the sensors out", "[trust]") {
  Network n;
  auto collector = n.start_collector();
  const std::string body = batch_of(n, "gen-1");
  // 400 connections that never start a handshake, from 127.0.0.2 to 127.0.0.21 (20 per
  // address): more than the collector's 256 connections.
  std::vector<int> fds;
  for (int a = 2; a <= 21; ++a) {
    for (int i = 0; i < 20; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      REQUIRE(fd >= 0);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl(0x7f000000u | static_cast<std::uint32_t>(a));
      REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
      sockaddr_in dst{};
      dst.sin_family = AF_INET;
      dst.sin_port = htons(n.port);
      dst.sin_addr.s_addr = htonl(0x7f000001u);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0)
        fds.push_back(fd);
      else
        ::close(fd);
    }
  }
  CHECK(fds.size() > 256);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The sensor is still served, several times over, while the flood holds on.
  for (int i = 0; i < 5; ++i) {
    const auto res = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
    CHECK(res.status == 200);
  }
  CHECK(metric(n, "http_handshakes_evicted_total") > 0);
  for (const int fd : fds) ::close(fd);
  // The handshake deadline ends what is left.
  CHECK(
      eventually([&] { return metric(n, "http_open_handshakes") == 0; }, std::chrono::seconds(15)));
}

TEST_CASE("SIGTERM while sensors upload: an orderly stop, then nothing lost or twice", "[trust]") {
  Network n;
  const auto truth = generate(n.dir, 30000, 3000, 10);  // 300 buckets of 10 s
  auto collector = n.start_collector();
  const std::string mmdb = make_mmdb(n.dir);
  n.write_sensor_config("gen-1", mmdb, "buckets:\n  width: 10\n");
  n.write_sensor_config("gen-2", mmdb, "buckets:\n  width: 10\n");
  // Two sensors delivering at once while the capture is replayed (paced).
  Process s1(sensord(n, "gen-1", {"--replay-rate", "10000"}), n.dir / "s1.log");
  Process s2(sensord(n, "gen-2", {"--replay-rate", "10000"}), n.dir / "s2.log");
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 150 * round));
    collector->kill(SIGTERM);
    const auto rc = collector->wait_for(std::chrono::seconds(20));
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);  // exited by itself: no abort, no sanitizer report
    const std::string log = read_file(n.dir / ("collector-" + std::to_string(n.starts) + ".log"));
    CHECK(log.find("ERROR: AddressSanitizer") == std::string::npos);
    CHECK(log.find("stopped connections=") != std::string::npos);
    collector = n.start_collector();
  }
  for (Process* s : {&s1, &s2}) {
    const auto rc = s->wait_for(std::chrono::seconds(120));
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
  CHECK(diff(n.totals("gen-2"), truth_totals(truth)) == "");
}

// SPDX-License-Identifier: Apache-2.0
// Several collectors on one PostgreSQL: sensors fail over between them and every bucket
// is stored exactly once, whatever fails on the way. Real processes, real certificates,
// real TLS on loopback, a real PostgreSQL server (Debian's postgresql-15).
#include <utility>  // before Asio

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "collector/store/store.h"
#include "common/bucket/bucket_json.h"
#include "ctl/gen/traffic_gen.h"
#include "ctl/sim/simulator.h"
#include "tests/integration/network_fixture.h"
#include "tests/integration/test_support.h"
#include "tests/support/postgres.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

namespace {

// Six sensors (the fixture's gen-1 and gen-2, and four more) in the registry.
void add_sensors(Network& n, int count) {
  for (int i = 3; i <= count; ++i) {
    const std::string id = "gen-" + std::to_string(i);
    n.ctl({"pki", "sensor", "--dir", n.pki(), "--id", id});
    n.extra_sensors += "  - id: " + id + "\n    region: " + (i % 2 ? "domestic" : "overseas") +
                       "\n    active_from: 2022-01-01\n";
  }
}

std::string storage_yaml(const std::string& conninfo) {
  return "storage:\n  backend: postgresql\n  postgresql: \"" + conninfo + "\"\n";
}

// A private PostgreSQL server (this test restarts it: the suite's shared one must not).
struct PrivatePostgres {
  explicit PrivatePostgres(const TempDir& dir) : state(dir / "pg.state") {
    REQUIRE(std::system(("'" + script() + "' start '" + state + "' >/dev/null").c_str()) == 0);
    read_folder();
  }
  /// A streaming replica (hot standby) of `primary`, a server of its own.
  PrivatePostgres(const TempDir& dir, const PrivatePostgres& primary)
      : state(dir / "replica.state") {
    REQUIRE(std::system(
                ("'" + script() + "' replica '" + primary.state + "' '" + state + "'").c_str()) ==
            0);
    read_folder();
  }
  void read_folder() {
    folder = read_file(state);
    while (!folder.empty() && folder.back() == '\n') folder.pop_back();
  }
  void stop() const {
    REQUIRE(std::system(("'" + script() + "' stop '" + state + "'").c_str()) == 0);
  }
  ~PrivatePostgres() { (void)!std::system(("'" + script() + "' stop '" + state + "'").c_str()); }
  void restart(int seconds_down) const {
    REQUIRE(
        std::system(("'" + script() + "' restart '" + state + "' " + std::to_string(seconds_down))
                        .c_str()) == 0);
  }
  std::string conninfo() const { return "host=" + folder + " user=teiten dbname=postgres"; }
  static std::string script() { return source_dir() + "/tests/tools/pg-fixture.sh"; }
  std::string state, folder;
};

}  // namespace

TEST_CASE("three collectors on one PostgreSQL: one killed, one stopped, totals exact",
          "[scale][postgresql][once]") {
  Network n;
  add_sensors(n, 6);
  const auto truth = generate(n.dir, 24000, 3000, 10);  // 300 buckets of 10 s per sensor
  const std::string storage = storage_yaml(fresh_postgres_database());
  std::vector<std::unique_ptr<Process>> collectors;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    n.port = 0;
    collectors.push_back(n.start_collector(storage));
    ports.push_back(n.port);
  }
  n.collectors = "localhost:" + std::to_string(ports[0]) +
                 ",localhost:" + std::to_string(ports[1]) +
                 ",localhost:" + std::to_string(ports[2]);
  const std::string mmdb = make_mmdb(n.dir);
  std::vector<std::unique_ptr<Process>> sensors;
  for (int i = 1; i <= 6; ++i) {
    const std::string id = "gen-" + std::to_string(i);
    // Half in order (all start on the first collector), half at random.
    n.write_sensor_config(
        id, mmdb, std::string{i % 2 ? "  failover: random\n" : ""} + "buckets:\n  width: 10\n");
    sensors.push_back(std::make_unique<Process>(sensord(n, id, {"--replay-rate", "8000"}),
                                                n.dir / (id + ".log")));
  }
  // During ingest: the first collector dies, then the second stops in order.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  collectors[0]->kill(SIGKILL);
  collectors[0]->wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  collectors[1]->kill(SIGTERM);
  const auto stopped = collectors[1]->wait_for(std::chrono::seconds(30));
  REQUIRE(stopped.has_value());
  CHECK(*stopped == 0);
  for (int i = 0; i < 6; ++i) {
    INFO("sensor gen-" << i + 1 << ": "
                       << read_file(n.dir / ("gen-" + std::to_string(i + 1) + ".log")));
    const auto rc = sensors[static_cast<std::size_t>(i)]->wait_for(std::chrono::seconds(240));
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
  // Every sensor moved to another collector at least once (the first one died under all
  // of those that started on it), and the last collector answers for everything.
  int failed_over = 0;
  for (int i = 1; i <= 6; ++i)
    if (read_file(n.dir / ("gen-" + std::to_string(i) + ".log")).find("trying localhost:") !=
        std::string::npos)
      ++failed_over;
  CHECK(failed_over >= 3);
  n.port = ports[2];
  for (int i = 1; i <= 6; ++i) {
    const std::string id = "gen-" + std::to_string(i);
    INFO(id);
    CHECK(diff(n.totals(id), truth_totals(truth)) == "");
    CHECK(n.accounting(id)["buckets"] == truth.buckets.size());
  }
}

TEST_CASE("the database restarted during ingest: collectors reconnect, totals exact",
          "[scale][postgresql][once]") {
  Network n;
  PrivatePostgres pg(n.dir);
  const auto truth = generate(n.dir, 20000, 3000, 10);
  const std::string storage = storage_yaml(pg.conninfo());
  std::vector<std::unique_ptr<Process>> collectors;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 2; ++i) {
    n.port = 0;
    collectors.push_back(n.start_collector(storage));
    ports.push_back(n.port);
  }
  n.collectors = "localhost:" + std::to_string(ports[0]) + ",localhost:" + std::to_string(ports[1]);
  const std::string mmdb = make_mmdb(n.dir);
  std::vector<std::unique_ptr<Process>> sensors;
  for (const std::string id : {"gen-1", "gen-2"}) {
    n.write_sensor_config(id, mmdb, "buckets:\n  width: 10\n");
    sensors.push_back(std::make_unique<Process>(sensord(n, id, {"--replay-rate", "6000"}),
                                                n.dir / (id + ".log")));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  pg.restart(2);
  for (auto& s : sensors) {
    const auto rc = s->wait_for(std::chrono::seconds(240));
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
  // The outage was seen (batches answered 503, retried) and survived by both collectors.
  std::string logs;
  for (int i = 1; i <= n.starts; ++i)
    logs += read_file(n.dir / ("collector-" + std::to_string(i) + ".log"));
  CHECK(logs.find("ingest failed") != std::string::npos);
  for (auto& c : collectors) CHECK(c->running());
  for (const std::string id : {"gen-1", "gen-2"}) {
    INFO(id);
    CHECK(diff(n.totals(id), truth_totals(truth)) == "");
    CHECK(n.accounting(id)["buckets"] == truth.buckets.size());
  }
}

namespace {

// The systemd side of sd_notify: a datagram socket the collector is told of in
// NOTIFY_SOCKET; each message it sends is one datagram.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifySocket() { ::close(fd_); }
  /// Messages received within `timeout`, until one contains `what`.
  std::string wait_for(const std::string& what, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;
      seen_ += std::string(buf, static_cast<std::size_t>(n)) + "\n";
      if (seen_.find(what) != std::string::npos) break;
    }
    return seen_;
  }

 private:
  std::string path_, seen_;
  int fd_ = -1;
};

}  // namespace

TEST_CASE("the collector as a service: READY=1, SIGHUP reloads the registry, uploads go on",
          "[scale][service]") {
  Network n;
  n.ctl({"pki", "sensor", "--dir", n.pki(), "--id", "gen-3"});
  NotifySocket notify(n.dir / "notify.sock");
  n.collector_env = {"NOTIFY_SOCKET=" + n.dir / "notify.sock"};
  const auto truth = generate(n.dir, 20000, 3000, 10);
  auto collector = n.start_collector();
  CHECK(notify.wait_for("READY=1", std::chrono::seconds(10)).find("READY=1") != std::string::npos);
  const std::string mmdb = make_mmdb(n.dir);
  // gen-1 uploads all along; gen-3 is not in the registry yet.
  n.write_sensor_config("gen-1", mmdb, "buckets:\n  width: 10\n");
  Process gen1(sensord(n, "gen-1", {"--replay-rate", "4000"}), n.dir / "gen-1.log");
  n.write_sensor_config("gen-3", mmdb, "buckets:\n  width: 10\n");
  Process refused(sensord(n, "gen-3"), n.dir / "gen-3-refused.log");
  REQUIRE(eventually(
      [&] {
        return read_file(n.dir / "gen-3-refused.log").find("not in the collector's registry") !=
               std::string::npos;
      },
      std::chrono::seconds(20)));
  refused.kill(SIGTERM);
  refused.wait();
  // A configuration that does not load is refused; the collector goes on as it was.
  write_file(n.dir / "collector.yaml", "collector: [\n");
  collector->kill(SIGHUP);
  REQUIRE(eventually(
      [&] {
        return read_file(n.dir / "collector-1.log").find("reload refused") != std::string::npos;
      },
      std::chrono::seconds(10)));
  CHECK(n.request("operator-op", "GET", "/v1/healthz").status == 200);
  // gen-3 joins the registry: a reload, not a restart.
  n.extra_sensors = "  - id: gen-3\n    region: domestic\n    active_from: 2022-01-01\n";
  n.write_collector_config();
  collector->kill(SIGHUP);
  REQUIRE(eventually(
      [&] { return read_file(n.dir / "collector-1.log").find("reloaded") != std::string::npos; },
      std::chrono::seconds(10)));
  const std::string messages = notify.wait_for("RELOADING=1", std::chrono::seconds(5));
  CHECK(messages.find("RELOADING=1") != std::string::npos);
  Process gen3(sensord(n, "gen-3"), n.dir / "gen-3.log");
  for (Process* p : {&gen1, &gen3}) {
    const auto rc = p->wait_for(std::chrono::seconds(120));
    REQUIRE(rc.has_value());
    CHECK(*rc == 0);
  }
  CHECK(collector->running());
  // The upload in progress was never cut off by the reloads.
  CHECK(read_file(n.dir / "gen-1.log").find("upload failed") == std::string::npos);
  for (const std::string id : {"gen-1", "gen-3"}) {
    INFO(id);
    CHECK(diff(n.totals(id), truth_totals(truth)) == "");
  }
  collector->kill(SIGTERM);
  CHECK(collector->wait_for(std::chrono::seconds(20)) == std::optional<int>{0});
  CHECK(notify.wait_for("STOPPING=1", std::chrono::seconds(5)).find("STOPPING=1") !=
        std::string::npos);
}

TEST_CASE("reports run beside ingest: uploads are acknowledged while reports wait their turn",
          "[scale][workers]") {
  Network n;
  // A quarter of six simulated sensors, stored before the collector starts.
  sim::SimOptions o;
  o.domestic = 3;
  o.overseas = 3;
  o.months = 3;
  o.width_s = 86400;
  o.start_day = 19083;  // 2022-04-01
  {
    auto store = collector::open_store({"sqlite", n.dir / "collector.sqlite", "", "Asia/Tokyo"});
    for (std::size_t i = 0; i < 6; ++i) {
      std::vector<bucket::SealedBucket> batch;
      sim::simulate_sensor(o, i, [&](bucket::SealedBucket&& b) { batch.push_back(std::move(b)); });
      store->ingest(batch);
    }
  }
  n.extra_sensors = sim::sim_registry_yaml(o);
  // One report worker: reports queue up behind each other, not in front of uploads.
  auto collector = n.start_collector("storage:\n  report_workers: 1\n  report_queue: 64\n");
  using Clock = std::chrono::steady_clock;
  const auto started = Clock::now();
  std::vector<std::thread> operators;
  std::vector<Clock::time_point> report_done(24);
  std::vector<int> report_status(24, 0);
  for (std::size_t i = 0; i < report_done.size(); ++i) {
    operators.emplace_back([&, i] {
      // The reports queue behind one worker at nice 10; under a sanitizer on a busy machine
      // the last of them waits long, which is the point: give it time, and fail, not abort.
      try {
        report_status[i] =
            n.request("operator-op", "GET", "/v1/report?quarter=2022Q2&rank=all&format=markdown",
                      "", std::chrono::seconds(300))
                .status;
      } catch (const std::exception&) {
        report_status[i] = -1;
      }
      report_done[i] = Clock::now();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the reports are queued
  Clock::time_point uploads_done;
  for (std::uint64_t seq = 0; seq < 6; ++seq) {
    const auto res =
        n.request("sensor-gen-1", "POST", "/v1/buckets",
                  bucket::to_batch_json({telnet_minute("gen-1", "ordering", seq, 5, 200)}));
    CHECK(res.status == 200);
    uploads_done = Clock::now();
  }
  for (auto& t : operators) t.join();
  for (const int status : report_status) CHECK(status == 200);
  // Every upload was acknowledged before half the queued reports were answered: on the
  // ingest thread, each upload's handshake and request would have waited behind reports.
  std::sort(report_done.begin(), report_done.end());
  const auto ms = [&](Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t - started).count();
  };
  INFO("uploads done at " << ms(uploads_done) << " ms; reports done at " << ms(report_done[0])
                          << ".." << ms(report_done.back()) << " ms");
  CHECK(uploads_done < report_done[report_done.size() / 2]);
  const auto metrics = n.request("operator-op", "GET", "/metrics").body;
  CHECK(metrics.find("teiten_collector_reports_total 24") != std::string::npos);
}

TEST_CASE("reports read a streaming replica: ingest stays on the primary, reads go on without it",
          "[scale][postgresql][replica]") {
  Network n;
  PrivatePostgres primary(n.dir);
  PrivatePostgres replica(n.dir, primary);
  const std::string storage =
      storage_yaml(primary.conninfo()) + "  report_postgresql: \"" + replica.conninfo() + "\"\n";
  // A replica of what? Only PostgreSQL has one.
  n.write_collector_config("storage:\n  report_postgresql: \"" + replica.conninfo() + "\"\n");
  const RunResult refused =
      run({collector_path(), "-c", n.dir / "collector.yaml", "--check-config"}, n.dir);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find("storage.report_postgresql: only with storage.backend postgresql") !=
        std::string::npos);
  n.write_collector_config(storage);
  const RunResult check =
      run({collector_path(), "-c", n.dir / "collector.yaml", "--check-config"}, n.dir);
  INFO(check.out << check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("reports read database") != std::string::npos);
  auto collector = n.start_collector(storage);
  std::vector<bucket::SealedBucket> batch;
  for (std::uint64_t seq = 0; seq < 5; ++seq)
    batch.push_back(telnet_minute("gen-1", "replica", seq, 7, 280));
  REQUIRE(n.request("sensor-gen-1", "POST", "/v1/buckets", bucket::to_batch_json(batch)).status ==
          200);
  // The replica replays the primary's commit a moment later: the query sees it then.
  const auto on_23 = [&] {
    const auto res = n.request("operator-op", "GET", "/v1/query?sensor=gen-1&group_by=port");
    if (res.status != 200) return std::int64_t{-1};
    const auto body = nlohmann::json::parse(res.body);
    for (const auto& r : body["rows"])
      if (r["port"] == 23) return r["packets"].get<std::int64_t>();
    return std::int64_t{0};
  };
  REQUIRE(eventually([&] { return on_23() == 35; }, std::chrono::seconds(20)));
  // With the primary gone, uploads cannot be stored (503, the sensor retries later), while
  // queries and reports go on answering from the replica: they never read the primary.
  primary.stop();
  batch[0].seq = 99;
  CHECK(
      n.request("sensor-gen-1", "POST", "/v1/buckets", bucket::to_batch_json({batch[0]})).status ==
      503);
  CHECK(on_23() == 35);
  const auto report =
      n.request("operator-op", "GET", "/v1/report?quarter=2022Q3&rank=all&format=markdown");
  CHECK(report.status == 200);
  CHECK(collector->running());
}

TEST_CASE("a bucket whose boot id holds a control byte is refused alone, on PostgreSQL too",
          "[scale][postgresql]") {
  Network n;
  auto collector = n.start_collector(storage_yaml(fresh_postgres_database()));
  std::vector<bucket::SealedBucket> batch;
  for (const std::string& boot : {std::string{"bad\0id", 6}, std::string{"good"}}) {
    bucket::SealedBucket b;
    b.sensor_id = "gen-1";
    b.boot_id = boot;
    b.seq = 1;
    b.start = 1656633600;
    b.width_s = 60;
    b.rows.push_back(
        {classify::Key{classify::Proto::tcp, true, 23, classify::make_country('J', 'P'),
                       classify::Fingerprint::mirai, classify::Kind::scan},
         5, 200});
    batch.push_back(b);
  }
  const auto res = n.request("sensor-gen-1", "POST", "/v1/buckets", bucket::to_batch_json(batch));
  REQUIRE(res.status == 200);
  const auto verdicts = nlohmann::json::parse(res.body);
  REQUIRE(verdicts["refused"].size() == 1);
  CHECK(verdicts["refused"][0]["index"] == 0);
  CHECK(verdicts["refused"][0]["reason"] == "malformed");
  CHECK(verdicts["stored"].size() == 1);
  CHECK(n.accounting("gen-1")["buckets"] == 1);
}

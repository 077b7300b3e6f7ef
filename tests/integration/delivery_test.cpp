// Sealed buckets travel from teiten-sensord to teiten-collectord over mutual TLS on
// loopback and are stored exactly once, whatever fails on the way. Real processes, real
// certificates (teitenctl pki), real TLS, a real SQLite database.
#include <utility>  // before Asio

#include <sys/mount.h>
#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "common/bucket/bucket_json.h"
#include "common/tls/https_client.h"
#include "ctl/gen/traffic_gen.h"
#include "tests/integration/test_support.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

namespace {

using Totals = std::map<std::string, std::uint64_t>;

std::string collector_path() {
  std::string s = sensord_path();
  return s.substr(0, s.rfind("/daemon/")) + "/collector/teiten-collectord";
}

/// A CA, a collector and sensors with certificates, in a temporary folder.
class Network {
 public:
  Network() {
    ctl({"pki", "init", "--dir", pki()});
    ctl({"pki", "collector", "--dir", pki(), "--name", "localhost", "--ip", "127.0.0.1"});
    ctl({"pki", "sensor", "--dir", pki(), "--id", "gen-1"});
    ctl({"pki", "sensor", "--dir", pki(), "--id", "gen-2"});
    ctl({"pki", "operator", "--dir", pki(), "--name", "op"});
  }
  std::string pki() const { return dir / "pki"; }
  void ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {teitenctl_path()};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult r = run(argv, dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
  }

  /// Starts the collector (port chosen by the kernel) and waits until it listens.
  std::unique_ptr<Process> start_collector(const std::string& extra = "") {
    write_file(
        dir / "collector.yaml",
        "collector:\n  listen: 127.0.0.1\n  port: " + std::to_string(port ? port : 0) +
            "\n  database: collector.sqlite\ntls:\n  ca: pki/ca.pem\n  cert: pki/collector.pem\n"
            "  key: pki/collector.key\n" +
            extra +
            "sensors:\n  - id: gen-1\n    region: domestic\n    label: Tokyo 1\n    active_from: "
            "2022-01-01\n"
            "  - id: gen-2\n    region: overseas\n    active_from: 2022-01-01\n");
    const std::string log = dir / ("collector-" + std::to_string(++starts) + ".log");
    auto p = std::make_unique<Process>(
        std::vector<std::string>{collector_path(), "-c", dir / "collector.yaml"}, log);
    std::smatch m;
    const std::regex re("listening address=\\S+ port=(\\d+)");
    REQUIRE(eventually(
        [&] {
          const std::string text = read_file(log);
          if (!std::regex_search(text, m, re)) return false;
          port = static_cast<std::uint16_t>(std::stoi(m[1]));
          return true;
        },
        std::chrono::seconds(20)));
    return p;
  }

  void write_sensor_config(const std::string& id, const std::string& mmdb,
                           const std::string& extra = "") {
    write_file(dir / (id + ".yaml"),
               "sensor:\n  id: " + id +
                   "\n  addresses: [203.0.113.7, \"2001:db8:7::7\"]\ngeoip:\n  database: \"" +
                   mmdb + "\"\nstate:\n  dir: state-" + id + "\nupload:\n  collector: localhost:" +
                   std::to_string(port) + "\n  ca: pki/ca.pem\n  cert: pki/sensor-" + id +
                   ".pem\n  key: pki/sensor-" + id + ".key\n" + extra);
  }

  tls::HttpResponse request(const std::string& who, const std::string& method,
                            const std::string& target, const std::string& body = "") {
    auto ctx = tls::make_client_tls(
        {pki() + "/ca.pem", pki() + "/" + who + ".pem", pki() + "/" + who + ".key"});
    return tls::https_request_sync(ctx, "localhost", std::to_string(port), method, target, body,
                                   std::chrono::seconds(20));
  }

  /// The collector's totals per (proto, port, country, fingerprint, kind) for one sensor.
  Totals totals(const std::string& sensor) {
    const auto res =
        request("operator-op", "GET",
                "/v1/query?sensor=" + sensor + "&group_by=proto,port,country,fingerprint,kind");
    REQUIRE(res.status == 200);
    Totals out;
    const auto body = nlohmann::json::parse(res.body);  // kept alive for the loop
    for (const auto& r : body["rows"]) {
      out[r["proto"].get<std::string>() + "/" + r["port"].dump() + "/" +
          r["country"].get<std::string>() + "/" + r["fingerprint"].get<std::string>() + "/" +
          r["kind"].get<std::string>()] = r["packets"].get<std::uint64_t>();
    }
    return out;
  }
  nlohmann::json accounting(const std::string& sensor) {
    const auto res =
        request("operator-op", "GET", "/v1/query?sensor=" + sensor + "&group_by=proto");
    REQUIRE(res.status == 200);
    return nlohmann::json::parse(res.body)["accounting"];
  }

  TempDir dir;
  std::uint16_t port = 0;
  int starts = 0;
};

Totals truth_totals(const gen::GroundTruth& t) {
  Totals out;
  for (const auto& [start, b] : t.buckets) {
    for (const auto& [packed, v] : b.rows) {
      const classify::Key k = classify::Key::unpack(packed);
      out[std::string{to_string(k.proto)} + "/" + (k.has_port ? std::to_string(k.port) : "null") +
          "/" + classify::country_to_string(k.country) + "/" +
          std::string{to_string(k.fingerprint)} + "/" + std::string{to_string(k.kind)}] +=
          v.packets;
    }
  }
  return out;
}

/// "" when equal, else the first differences, readable.
std::string diff(const Totals& got, const Totals& want) {
  std::string out;
  int shown = 0;
  std::uint64_t got_sum = 0, want_sum = 0;
  for (const auto& [k, v] : got) got_sum += v;
  for (const auto& [k, v] : want) want_sum += v;
  for (const auto& [k, v] : want) {
    const auto it = got.find(k);
    const std::uint64_t g = it == got.end() ? 0 : it->second;
    if (g != v && shown++ < 8)
      out += k + ": got " + std::to_string(g) + ", want " + std::to_string(v) + "\n";
  }
  for (const auto& [k, v] : got) {
    if (!want.count(k) && shown++ < 8) out += k + ": got " + std::to_string(v) + ", want none\n";
  }
  if (!out.empty())
    out += "total: got " + std::to_string(got_sum) + ", want " + std::to_string(want_sum) + "\n";
  return out;
}

std::string make_mmdb(const TempDir& dir) {
  std::string text;
  for (const auto& p : gen::country_prefixes()) text += p.prefix + "\t" + p.country + "\n";
  write_file(dir / "prefixes.tsv", text);
  const RunResult r = run({"perl", source_dir() + "/tests/tools/write_mmdb.pl", "country_code",
                           dir / "prefixes.tsv", dir / "test.mmdb"},
                          dir);
  REQUIRE(r.exit_code == 0);
  return dir / "test.mmdb";
}

gen::GroundTruth generate(const TempDir& dir, std::uint64_t packets, std::uint32_t duration,
                          std::uint32_t width = 60) {
  gen::GenOptions o;
  o.packets = packets;
  o.duration_s = duration;
  o.bucket_width_s = width;
  o.seed = 5;
  return gen::generate(o, dir / "in.pcap");
}

std::vector<std::string> sensord(Network& n, const std::string& id,
                                 const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {sensord_path(),    "-c",      n.dir / (id + ".yaml"), "-r",
                                   n.dir / "in.pcap", "--upload"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

}  // namespace

TEST_CASE("generated traffic reaches the collector exactly: totals equal the ground truth",
          "[delivery]") {
  Network n;
  const auto truth = generate(n.dir, 40000, 1800);
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir));
  const RunResult r = run(sensord(n, "gen-1"), n.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
  const auto acc = n.accounting("gen-1");
  CHECK(acc["buckets"] == truth.buckets.size());
  std::uint64_t nfs = 0;
  for (const auto& [s, b] : truth.buckets) nfs += b.not_for_sensor;
  CHECK(acc["not_for_sensor"] == nfs);
  // teitenctl query shows the same through the CLI.
  const RunResult q =
      run({teitenctl_path(), "query", "--collector", "localhost:" + std::to_string(n.port), "--ca",
           n.pki() + "/ca.pem", "--cert", n.pki() + "/operator-op.pem", "--key",
           n.pki() + "/operator-op.key", "--group-by", "fingerprint", "--fingerprint", "mirai"},
          n.dir);
  REQUIRE(q.exit_code == 0);
  std::uint64_t mirai = 0;
  for (const auto& [k, v] : truth_totals(truth)) {
    if (k.find("/mirai/") != std::string::npos) mirai += v;
  }
  CHECK(q.out.find("mirai") != std::string::npos);
  CHECK(q.out.find(std::to_string(mirai)) != std::string::npos);
}

TEST_CASE("buckets sealed while the collector is down all arrive once it starts", "[delivery]") {
  Network n;
  const auto truth = generate(n.dir, 20000, 1200);
  auto first = n.start_collector();  // to learn a free port
  first->kill(SIGKILL);
  first->wait();
  n.write_sensor_config("gen-1", make_mmdb(n.dir));
  Process sensor(sensord(n, "gen-1"), n.dir / "sensor.log");
  // Everything is sealed and spooled while nobody listens.
  REQUIRE(eventually(
      [&] { return read_file(n.dir / "sensor.log").find("upload failed") != std::string::npos; },
      std::chrono::seconds(20)));
  CHECK(sensor.running());
  auto collector = n.start_collector();
  const auto rc = sensor.wait_for(std::chrono::seconds(120));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

TEST_CASE("a collector killed during ingest loses nothing and counts nothing twice", "[delivery]") {
  Network n;
  const auto truth = generate(n.dir, 30000, 3000, 10);  // 300 buckets of 10 s
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  Process sensor(sensord(n, "gen-1", {"--replay-rate", "15000"}), n.dir / "sensor.log");
  std::mt19937 rng(42);
  for (int i = 0; i < 5 && sensor.running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 200));
    collector->kill(SIGKILL);
    collector->wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    collector = n.start_collector();
  }
  const auto rc = sensor.wait_for(std::chrono::seconds(180));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
  CHECK(n.accounting("gen-1")["buckets"] == truth.buckets.size());
}

TEST_CASE("the same batch sent twice is acknowledged twice and counted once", "[delivery]") {
  Network n;
  auto collector = n.start_collector();
  write_file(n.dir / "s.yaml",
             "sensor:\n  id: gen-1\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n");
  generate(n.dir, 3000, 300);
  const RunResult r = run(
      {sensord_path(), "-c", n.dir / "s.yaml", "-r", n.dir / "in.pcap", "--boot-id", "b1"}, n.dir);
  REQUIRE(r.exit_code == 0);
  std::vector<bucket::SealedBucket> batch = read_buckets_from_string(r.out);
  const std::string body = bucket::to_batch_json(batch);
  const auto first = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  REQUIRE(first.status == 200);
  const auto j1 = nlohmann::json::parse(first.body);
  CHECK(j1["stored"].size() == batch.size());
  CHECK(j1["duplicate"].empty());
  const auto second = n.request("sensor-gen-1", "POST", "/v1/buckets", body);
  REQUIRE(second.status == 200);
  const auto j2 = nlohmann::json::parse(second.body);
  CHECK(j2["stored"].empty());
  CHECK(j2["duplicate"].size() == batch.size());
  std::uint64_t observed = 0;
  for (const auto& b : batch) observed += b.observed_packets();
  CHECK(n.accounting("gen-1")["observed_packets"] == observed);
  CHECK(n.accounting("gen-1")["buckets"] == batch.size());
}

TEST_CASE("a sensor killed at random moments 50 times still delivers everything exactly once",
          "[delivery][kill]") {
  Network n;
  const auto truth = generate(n.dir, 40000, 4000, 10);  // 400 buckets of 10 s
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  std::mt19937 rng(7);
  int kills = 0;
  for (int i = 0; i < 50; ++i) {
    Process sensor(sensord(n, "gen-1", {"--replay-rate", "5000"}), n.dir / "sensor.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));
    if (!sensor.running()) break;  // finished early: nothing left to kill
    sensor.kill(SIGKILL);
    CHECK(sensor.wait() == 128 + SIGKILL);
    ++kills;
  }
  INFO("kills: " << kills);
  CHECK(kills == 50);
  const RunResult last = run(sensord(n, "gen-1"), n.dir);
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  // Replay resumes at the first packet not yet in a sealed bucket, and sealed buckets are
  // spooled before anything else: even the open bucket of each kill is not lost.
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

TEST_CASE("a full disk under the spool is counted and recovered from", "[delivery][disk]") {
  Network n;
  const std::string mnt = n.dir / "state-gen-1";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    WARN("SKIPPED: cannot mount a tmpfs here (" << std::strerror(errno)
                                                << "); the full-disk test needs root");
    return;
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  const auto truth = generate(n.dir, 20000, 3000, 10);
  auto first = n.start_collector();  // learn a port, then stop: the spool must fill
  first->kill(SIGKILL);
  first->wait();
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 10\n");
  Process sensor(sensord(n, "gen-1"), n.dir / "sensor.log");
  REQUIRE(eventually(
      [&] {
        return read_file(n.dir / "sensor.log").find("spool write failed") != std::string::npos;
      },
      std::chrono::seconds(60)));
  CHECK(sensor.running());               // no crash: it waits for space
  auto collector = n.start_collector();  // delivery frees the space
  const auto rc = sensor.wait_for(std::chrono::seconds(180));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(read_file(n.dir / "sensor.log").find("spool write recovered") != std::string::npos);
  CHECK(diff(n.totals("gen-1"), truth_totals(truth)) == "");
}

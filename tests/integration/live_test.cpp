// Live capture for real: a veth pair whose far end sits in a network namespace the test
// creates, tcpreplay sending a generated capture from there to the sensor's address, the
// sensor capturing the near end and delivering to a collector on loopback.
#include <utility>  // before Asio

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/integration/network_fixture.h"

using namespace teiten;
using namespace teiten::test;

namespace {

bool sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

/// A network namespace with a veth pair: `outer` in the test's namespace (the sensor's
/// interface, 203.0.113.7/24), `inner` in the namespace (203.0.113.1/24). Removed at
/// scope exit. `ok` is false (with `why`) where namespaces cannot be made.
struct Veth {
  std::string ns, outer, inner, why;
  bool ok = false;
  Veth() {
    const std::string id = std::to_string(::getpid() % 100000);
    ns = "teiten-t" + id;
    outer = "tto" + id;
    inner = "tti" + id;
    if (::geteuid() != 0) {
      why = "needs root to create a network namespace";
      return;
    }
    if (!sh("command -v tcpreplay")) {
      why = "tcpreplay is not installed (scripts/install-deps.sh installs it)";
      return;
    }
    ok = sh("ip netns add " + ns) && create();
    if (!ok) why = "cannot create a network namespace with a veth pair here";
  }
  bool create() {
    return sh("ip link add " + outer + " type veth peer name " + inner) &&
           sh("ip link set " + inner + " netns " + ns) &&
           sh("ip addr add 203.0.113.7/24 dev " + outer) && sh("ip link set " + outer + " up") &&
           sh("ip netns exec " + ns + " ip addr add 203.0.113.1/24 dev " + inner) &&
           sh("ip netns exec " + ns + " ip link set " + inner + " up") &&
           sh("ip netns exec " + ns + " ip link set lo up");
  }
  ~Veth() {
    sh("ip link del " + outer);
    sh("ip netns del " + ns);
  }
  /// Sends `pcap` from the namespace's end at `pps` packets per second.
  bool replay(const std::string& pcap, int pps = 4000) {
    return sh("ip netns exec " + ns + " tcpreplay --pps=" + std::to_string(pps) + " -i " + inner +
              " " + pcap);
  }
};

void chown_tree(const std::string& path, const std::string& user) {
  REQUIRE(sh("chown -R " + user + " " + path));
  REQUIRE(sh("chmod 755 " + path));
}

std::map<std::string, std::string> proc_status(pid_t pid) {
  std::map<std::string, std::string> out;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = v;
  }
  return out;
}

Totals times(const Totals& t, std::uint64_t k) {
  Totals out;
  for (const auto& [key, v] : t) out[key] = v * k;
  return out;
}

}  // namespace

TEST_CASE("live capture over veth equals the ground truth, and survives the interface going",
          "[live]") {
  Veth veth;
  if (!veth.ok) {
    WARN("SKIPPED: " << veth.why);
    return;
  }
  Network n;
  const auto truth = truth_totals(generate(n.dir, 6000, 600, 10));
  auto collector = n.start_collector();
  n.write_sensor_config("gen-1", make_mmdb(n.dir),
                        "buckets:\n  width: 10\ncapture:\n  interface: " + veth.outer +
                            "\nservice:\n  user: nobody\n");
  chown_tree(n.dir.path(), "nobody");
  const std::string log = n.dir / "sensor.log";
  Process sensor({sensord_path(), "-c", n.dir / "gen-1.yaml"}, log);
  REQUIRE(eventually([&] { return read_file(log).find("capture active") != std::string::npos; },
                     std::chrono::seconds(20)));
  INFO(read_file(log));

  // Runs as nobody, with CAP_NET_RAW (bit 13) and nothing else.
  const auto st = proc_status(sensor.pid());
  CHECK(st.at("Uid").substr(0, st.at("Uid").find_first_of(" \t")) == "65534");
  CHECK(st.at("CapEff") == "0000000000002000");
  CHECK(st.at("CapPrm") == "0000000000002000");
  CHECK(st.at("CapBnd") == "0000000000002000");
  CHECK(st.at("CapInh") == "0000000000000000");
  CHECK(st.at("CapAmb") == "0000000000000000");

  REQUIRE(veth.replay(n.dir / "in.pcap"));
  CHECK(
      eventually([&] { return diff(n.totals("gen-1"), truth).empty(); }, std::chrono::seconds(40)));
  CHECK(diff(n.totals("gen-1"), truth) == "");

  // Down and up: counted, logged, re-opened without a restart.
  REQUIRE(sh("ip link set " + veth.outer + " down"));
  CHECK(eventually([&] { return read_file(log).find("capture lost") != std::string::npos; },
                   std::chrono::seconds(10)));
  REQUIRE(sh("ip link set " + veth.outer + " up"));
  CHECK(eventually([&] { return read_file(log).find("capture re-opened") != std::string::npos; },
                   std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // carrier up on both ends
  REQUIRE(veth.replay(n.dir / "in.pcap"));
  CHECK(eventually([&] { return diff(n.totals("gen-1"), times(truth, 2)).empty(); },
                   std::chrono::seconds(40)));

  // Vanishes and comes back (a new interface of the same name).
  REQUIRE(sh("ip link del " + veth.outer));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  REQUIRE(veth.create());
  const auto reopened = [&] {
    const std::string text = read_file(log);
    std::size_t count = 0;
    for (auto at = text.find("capture re-opened"); at != std::string::npos;
         at = text.find("capture re-opened", at + 1))
      ++count;
    return count;
  };
  CHECK(eventually([&] { return reopened() >= 2; }, std::chrono::seconds(15)));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  REQUIRE(veth.replay(n.dir / "in.pcap"));

  // SIGTERM while buckets are still being delivered: exits 0, the open bucket spooled;
  // the next start delivers the rest, exactly.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  sensor.kill(SIGTERM);
  const auto rc = sensor.wait_for(std::chrono::seconds(30));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  Process again({sensord_path(), "-c", n.dir / "gen-1.yaml"}, n.dir / "sensor-2.log");
  CHECK(eventually([&] { return diff(n.totals("gen-1"), times(truth, 3)).empty(); },
                   std::chrono::seconds(40)));
  CHECK(diff(n.totals("gen-1"), times(truth, 3)) == "");
  const auto acc = n.accounting("gen-1");
  INFO(acc.dump());
  CHECK(acc["kernel_drops"].get<std::uint64_t>() == 0);
}

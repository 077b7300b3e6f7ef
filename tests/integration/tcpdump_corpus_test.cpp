// SPDX-License-Identifier: Apache-2.0
// Every capture of tcpdump's regression corpus (../shared/testdata/pcaps/tcpdump) goes
// through the sensor's offline reader: no crash, no sanitizer report, and every packet is
// either classified or counted under a named reason, or the file's link type is refused
// at start with a clear message.
#include <pcap/pcap.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/integration/test_support.h"
#include "tests/unit/test_paths.h"

using namespace teiten::test;
namespace fs = std::filesystem;

namespace {
// Packets in a capture, counted by libpcap itself (independently of the sensor).
long count_packets(const std::string& path, int& dlt) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* h = pcap_open_offline(path.c_str(), err);
  if (!h) return -1;
  dlt = pcap_datalink(h);
  long n = 0;
  pcap_pkthdr* hdr;
  const u_char* data;
  int rc;
  while ((rc = pcap_next_ex(h, &hdr, &data)) == 1) ++n;
  pcap_close(h);
  return rc == PCAP_ERROR ? -2 - n : n;
}
}  // namespace

TEST_CASE("every tcpdump regression capture is classified or counted by reason",
          "[integration][corpus]") {
  const fs::path corpus = shared_testdata() + "/pcaps/tcpdump";
  if (!fs::exists(corpus)) {
    WARN("SKIPPED: " << corpus.string() << " is absent");
    return;
  }
  TempDir dir;
  write_file(dir / "sensor.yaml",
             "sensor:\n  id: corpus\n  addresses: [0.0.0.0/0, \"::/0\"]\n"
             "geoip:\n  database: \"" +
                 default_geoip_database() + "\"\n");
  if (!fs::exists(default_geoip_database())) {
    write_file(
        dir / "sensor.yaml",
        "sensor:\n  id: corpus\n  addresses: [0.0.0.0/0, \"::/0\"]\ngeoip:\n  database: \"\"\n");
  }
  std::size_t files = 0, refused = 0, classified = 0, counted = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    const std::string name = e.path().filename().string();
    if (name == "LICENSE") continue;
    ++files;
    INFO(name);
    int dlt = -1;
    const long packets = count_packets(e.path().string(), dlt);
    const RunResult r = run({sensord_path(), "-c", dir / "sensor.yaml", "-r", e.path().string(),
                             "-o", dir / "out.jsonl"},
                            dir);
    if (r.exit_code == 2) {
      // Refused: only for a link type the sensor does not decode, and it says which.
      CHECK(r.err.find("unsupported link type") != std::string::npos);
      CHECK(r.err.find(pcap_datalink_val_to_name(dlt)) != std::string::npos);
      ++refused;
      continue;
    }
    REQUIRE(r.exit_code == 0);
    REQUIRE(packets >= 0);
    std::uint64_t accounted = 0;
    for (const auto& b : read_buckets(dir / "out.jsonl")) {
      accounted += b.accounted_packets();
      classified += b.observed_packets() + b.not_for_sensor + b.self_traffic;
      counted += b.loss.malformed_total();
    }
    CHECK(accounted == static_cast<std::uint64_t>(packets));
  }
  CHECK(files > 60);
  CHECK(refused < files / 4);
  CHECK(classified > 0);
  CHECK(counted > 0);
}

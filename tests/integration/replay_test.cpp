// SPDX-License-Identifier: Apache-2.0
// Replays generated captures through the real teiten-sensord and compares the sealed
// buckets with the generator's ground truth, exactly.
#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>

#include "ctl/gen/traffic_gen.h"
#include "tests/integration/test_support.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

namespace {

std::string config_yaml(const std::string& db, const std::string& extra = "") {
  return "sensor:\n  id: gen-1\n  addresses: [203.0.113.7, \"2001:db8:7::7\"]\n"
         "geoip:\n  database: \"" +
         db + "\"\n" + extra;
}

/// Writes the generator's prefixes as a MaxMind DB in the given layout.
std::string make_mmdb(const TempDir& dir, const std::string& layout) {
  const std::string tsv = dir / "prefixes.tsv", out = dir / (layout + ".mmdb");
  std::string text;
  for (const auto& p : gen::country_prefixes()) text += p.prefix + "\t" + p.country + "\n";
  write_file(tsv, text);
  const RunResult r =
      run({"perl", source_dir() + "/tests/tools/write_mmdb.pl", layout, tsv, out}, dir);
  REQUIRE(r.exit_code == 0);
  return out;
}

/// Every bucket equals the truth: rows (packets and bytes per key), not-for-sensor and
/// malformed by reason; nothing dropped, nothing folded.
void require_matches_truth(const std::vector<bucket::SealedBucket>& buckets,
                           const gen::GroundTruth& truth) {
  REQUIRE(buckets.size() == truth.buckets.size());
  std::uint64_t accounted = 0;
  for (const auto& b : buckets) {
    INFO("bucket " << bucket::format_rfc3339(b.start));
    const auto it = truth.buckets.find(b.start);
    REQUIRE(it != truth.buckets.end());
    const gen::BucketTruth& t = it->second;
    std::map<std::uint64_t, counters::CounterValue> got;
    for (const auto& r : b.rows) got[r.key.pack()] = {r.packets, r.bytes};
    REQUIRE(got.size() == t.rows.size());
    for (const auto& [k, v] : t.rows) {
      const auto g = got.find(k);
      REQUIRE(g != got.end());
      CHECK(g->second.packets == v.packets);
      CHECK(g->second.bytes == v.bytes);
    }
    CHECK(b.not_for_sensor == t.not_for_sensor);
    CHECK(b.self_traffic == t.self_traffic);
    CHECK(b.loss.malformed == t.malformed);
    CHECK(b.loss.ring_drops == 0);
    CHECK(b.loss.overflow_packets == 0);
    CHECK(b.late_packets == 0);
    CHECK(b.width_s == truth.width_s);
    accounted += b.accounted_packets();
  }
  CHECK(accounted == truth.packets);
}

/// Writes sensor.yaml with a country_code test database and `extra` settings, replays
/// in.pcap into out.jsonl, and returns the run.
RunResult replay_with(const TempDir& dir, const std::string& extra) {
  write_file(dir / "sensor.yaml", config_yaml(make_mmdb(dir, "country_code"), extra));
  return run(
      {sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap", "-o", dir / "out.jsonl"},
      dir);
}

}  // namespace

TEST_CASE("replay of generated traffic equals the ground truth, in both GeoIP layouts",
          "[integration][replay]") {
  TempDir dir;
  gen::GenOptions o;
  o.seed = 7;
  o.packets = 60000;
  o.duration_s = 1800;
  const gen::GroundTruth truth = gen::generate(o, dir / "in.pcap");
  for (const char* layout : {"geoip2", "country_code"}) {
    INFO(layout);
    write_file(dir / "sensor.yaml", config_yaml(make_mmdb(dir, layout)));
    const RunResult r = run({sensord_path(), "--config", dir / "sensor.yaml", "--read",
                             dir / "in.pcap", "--output", dir / "out.jsonl"},
                            dir);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    require_matches_truth(read_buckets(dir / "out.jsonl"), truth);
  }
}

TEST_CASE("the same input yields byte-identical output", "[integration][replay]") {
  TempDir dir;
  gen::GenOptions o;
  o.packets = 20000;
  gen::generate(o, dir / "in.pcap");
  write_file(dir / "sensor.yaml", config_yaml(make_mmdb(dir, "country_code")));
  const RunResult a =
      run({sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap", "-o", dir / "a.jsonl"},
          dir);
  const RunResult b =
      run({sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap", "-o", "-"}, dir);
  REQUIRE(a.exit_code == 0);
  REQUIRE(b.exit_code == 0);
  const std::string first = read_file(dir / "a.jsonl");
  CHECK(first.size() > 1000);
  CHECK(first == b.out);
  // The capture from standard input ("-r -", a pipe from tcpdump -w -): the same buckets.
  const RunResult c = run({"/bin/sh", "-c", "exec \"$0\" -c \"$1\" -r - -o \"$2\" < \"$3\"",
                           sensord_path(), dir / "sensor.yaml", dir / "c.jsonl", dir / "in.pcap"},
                          dir);
  REQUIRE(c.exit_code == 0);
  CHECK(read_file(dir / "c.jsonl") == first);
}

TEST_CASE("a ring that drops instead of waiting still accounts for every packet",
          "[integration][replay]") {
  TempDir dir;
  gen::GenOptions o;
  o.packets = 200000;
  // No sensor uploads in this capture: a dropped outbound packet would leave its answer
  // to be counted as an observation, which is right for a lossy ring but not this check.
  o.not_for_sensor_share = 0;
  const gen::GroundTruth truth = gen::generate(o, dir / "in.pcap");
  const RunResult r = replay_with(dir, "capture:\n  ring_slots: 64\n  replay_ring_full: drop\n");
  REQUIRE(r.exit_code == 0);
  std::uint64_t accounted = 0, drops = 0;
  for (const auto& b : read_buckets(dir / "out.jsonl")) {
    accounted += b.accounted_packets();
    drops += b.loss.ring_drops;
    // Whatever was counted was really there.
    const auto& t = truth.buckets.at(b.start);
    for (const auto& row : b.rows) CHECK(row.packets <= t.rows.at(row.key.pack()).packets);
  }
  CHECK(accounted == truth.packets);
  INFO("ring drops: " << drops);
  CHECK(r.err.find("ring_drops=" + std::to_string(drops)) != std::string::npos);
}

TEST_CASE("a bucket's key cap folds rows into overflow with totals intact",
          "[integration][replay]") {
  TempDir dir;
  gen::GenOptions o;
  o.packets = 30000;
  const gen::GroundTruth truth = gen::generate(o, dir / "in.pcap");
  const RunResult r = replay_with(dir, "buckets:\n  max_keys: 16\n");
  REQUIRE(r.exit_code == 0);
  std::uint64_t folded = 0;
  for (const auto& b : read_buckets(dir / "out.jsonl")) {
    const auto& t = truth.buckets.at(b.start);
    std::uint64_t truth_packets = 0, truth_bytes = 0;
    for (const auto& [k, v] : t.rows) {
      truth_packets += v.packets;
      truth_bytes += v.bytes;
    }
    CHECK(b.rows.size() <= 16);
    CHECK(b.observed_packets() == truth_packets);
    CHECK(b.observed_bytes() == truth_bytes);
    folded += b.loss.overflow_packets;
  }
  CHECK(folded > 0);
}

namespace {

// Writes the same IP packets under another link layer.
void write_with_link(const std::string& path, int dlt,
                     const std::vector<std::vector<std::uint8_t>>& ip_packets) {
  pcap_t* dead = pcap_open_dead(dlt, 65535);
  pcap_dumper_t* d = pcap_dump_open(dead, path.c_str());
  REQUIRE(d);
  std::uint32_t t = 1656633600;
  for (const auto& ip : ip_packets) {
    const bool v6 = (ip[0] >> 4) == 6;
    std::vector<std::uint8_t> frame;
    switch (dlt) {
      case DLT_EN10MB:  // with two 802.1ad/802.1Q tags
        frame = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x88, 0xA8, 0, 10, 0x81, 0x00, 0, 20};
        frame.push_back(v6 ? 0x86 : 0x08);
        frame.push_back(v6 ? 0xDD : 0x00);
        break;
      case DLT_LINUX_SLL:
        frame.assign(14, 0);
        frame.push_back(v6 ? 0x86 : 0x08);
        frame.push_back(v6 ? 0xDD : 0x00);
        break;
      case DLT_LINUX_SLL2:
        frame = {static_cast<std::uint8_t>(v6 ? 0x86 : 0x08),
                 static_cast<std::uint8_t>(v6 ? 0xDD : 0x00)};
        frame.resize(20, 0);
        break;
      case DLT_NULL:  // little-endian host, AF_INET6 as on Linux
        frame = {static_cast<std::uint8_t>(v6 ? 10 : 2), 0, 0, 0};
        break;
      case DLT_LOOP:  // network order, AF_INET6 as on OpenBSD
        frame = {0, 0, 0, static_cast<std::uint8_t>(v6 ? 24 : 2)};
        break;
      default:  // DLT_RAW
        break;
    }
    frame.insert(frame.end(), ip.begin(), ip.end());
    pcap_pkthdr h{};
    h.ts.tv_sec = t++;
    h.caplen = h.len = static_cast<bpf_u_int32>(frame.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, frame.data());
  }
  pcap_dump_close(d);
  pcap_close(dead);
}

std::vector<std::vector<std::uint8_t>> ip_packets_of(const std::string& ethernet_pcap,
                                                     std::size_t n) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* h = pcap_open_offline(ethernet_pcap.c_str(), err);
  REQUIRE(h);
  std::vector<std::vector<std::uint8_t>> out;
  pcap_pkthdr* hdr;
  const u_char* data;
  while (out.size() < n && pcap_next_ex(h, &hdr, &data) == 1) {
    std::size_t off = 12;
    while (off + 2 <= hdr->caplen && ((data[off] == 0x81 && data[off + 1] == 0x00))) off += 4;
    const bool ip4 = data[off] == 0x08 && data[off + 1] == 0x00;
    const bool ip6 = data[off] == 0x86 && data[off + 1] == 0xDD;
    if (!ip4 && !ip6) continue;
    off += 2;
    // Only well-formed packets, trimmed of Ethernet padding, so every link type agrees.
    std::size_t len = ip4 ? (std::size_t{data[off + 2]} << 8 | data[off + 3])
                          : 40 + (std::size_t{data[off + 4]} << 8 | data[off + 5]);
    if (off + len > hdr->caplen || len < 20 || (ip4 && (data[off] & 0x0F) < 5)) continue;
    out.emplace_back(data + off, data + off + len);
  }
  pcap_close(h);
  return out;
}

}  // namespace

TEST_CASE("every supported link type yields the same buckets", "[integration][replay][link]") {
  TempDir dir;
  gen::GenOptions o;
  o.packets = 3000;
  o.malformed_share = 0;
  o.duration_s = 600;
  gen::generate(o, dir / "gen.pcap");
  const auto packets = ip_packets_of(dir / "gen.pcap", 2000);
  REQUIRE(packets.size() > 1500);
  write_file(dir / "sensor.yaml", config_yaml(make_mmdb(dir, "geoip2")));
  std::string baseline;
  for (const int dlt : {DLT_RAW, DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2, DLT_NULL, DLT_LOOP}) {
    INFO("DLT " << dlt);
    write_with_link(dir / "in.pcap", dlt, packets);
    const RunResult r =
        run({sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap"}, dir);
    REQUIRE(r.exit_code == 0);
    std::uint64_t observed = 0;
    for (const auto& b : read_buckets_from_string(r.out)) {
      CHECK(b.loss.malformed_total() == 0);
      observed += b.observed_packets() + b.not_for_sensor + b.self_traffic;
    }
    CHECK(observed == packets.size());
    if (baseline.empty()) baseline = r.out;
    CHECK(r.out == baseline);
  }
}

TEST_CASE("an unsupported link type is refused at start, naming it",
          "[integration][replay][link]") {
  TempDir dir;
  write_with_link(dir / "ppp.pcap", DLT_PPP, {});
  write_file(dir / "sensor.yaml", config_yaml(""));
  const RunResult r = run({sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "ppp.pcap"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unsupported link type PPP (9)") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("SIGTERM stops a replay of a sparse capture within moments, every packet accounted",
          "[integration][replay][stop]") {
  TempDir dir;
  // 2,000 packets over a year: 527,000 empty minutes to seal between them, which took
  // about two minutes and ignored SIGTERM meanwhile.
  gen::GenOptions o;
  o.packets = 2000;
  o.duration_s = 366 * 86400;
  o.seed = 11;
  gen::generate(o, dir / "in.pcap");
  write_file(dir / "sensor.yaml", config_yaml(""));
  Process p(
      {sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap", "-o", dir / "out.jsonl"},
      dir / "sensor.log");
  REQUIRE(
      eventually([&] { return !read_file(dir / "out.jsonl").empty(); }, std::chrono::seconds(30)));
  const auto asked = std::chrono::steady_clock::now();
  p.kill(SIGTERM);
  const auto rc = p.wait_for(std::chrono::seconds(30));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  // A bound for a behaviour, not a benchmark: it was well over a minute.
  CHECK(std::chrono::steady_clock::now() - asked < std::chrono::seconds(10));
  // What was sealed adds up to what the closing line says was observed: nothing lost.
  const auto buckets = read_buckets(dir / "out.jsonl");
  std::uint64_t observed = 0;
  for (const auto& b : buckets) observed += b.observed_packets();
  const std::string log = read_file(dir / "sensor.log");
  INFO(log);
  CHECK(log.find("observed=" + std::to_string(observed) + " ") != std::string::npos);
  CHECK(buckets.size() < 366 * 1440);
}

TEST_CASE(
    "a FIFO as the capture: the sensor says it waits for a writer, replays what comes, "
    "and stops on SIGTERM while the writer is quiet",
    "[integration][replay][stop]") {
  TempDir dir;
  const auto truth = [&] {
    gen::GenOptions o;
    o.packets = 3000;
    o.duration_s = 600;
    return gen::generate(o, dir / "in.pcap");
  }();
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  write_file(dir / "sensor.yaml", config_yaml(make_mmdb(dir, "country_code")));
  Process p(
      {sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "fifo", "-o", dir / "out.jsonl"},
      dir / "sensor.log");
  CHECK(eventually(
      [&] {
        return read_file(dir / "sensor.log").find("a FIFO; waiting for a writer") !=
               std::string::npos;
      },
      std::chrono::seconds(10)));
  CHECK(p.running());
  // The writer sends the whole capture and stays (as tcpdump -w would on a quiet link).
  const int fd = ::open((dir / "fifo").c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const std::string bytes = read_file(dir / "in.pcap");
  REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  // It has read all there is and waits for more (the writer is still there).
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(p.running());
  p.kill(SIGTERM);
  const auto rc = p.wait_for(std::chrono::seconds(10));
  ::close(fd);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  // Every packet written is in a sealed bucket: the open one was sealed at the stop.
  require_matches_truth(read_buckets(dir / "out.jsonl"), truth);
}

TEST_CASE(
    "a replay reloads at SIGHUP: a new GeoIP database waits for the next start, and the "
    "replay still equals the truth",
    "[integration][replay][reload]") {
  TempDir dir;
  const auto truth = [&] {
    gen::GenOptions o;
    o.packets = 3000;
    o.duration_s = 600;
    return gen::generate(o, dir / "in.pcap");
  }();
  const std::string db = make_mmdb(dir, "country_code");
  write_file(dir / "sensor.yaml", config_yaml(db));
  Process p({sensord_path(), "-c", dir / "sensor.yaml", "-r", dir / "in.pcap", "-o",
             dir / "out.jsonl", "--replay-rate", "1000"},
            dir / "sensor.log");
  REQUIRE(eventually(
      [&] { return read_file(dir / "sensor.log").find("replay start") != std::string::npos; },
      std::chrono::seconds(10)));
  std::filesystem::copy_file(db, dir / "other.mmdb");
  write_file(dir / "sensor.yaml", config_yaml(dir / "other.mmdb", "log:\n  level: debug\n"));
  p.kill(SIGHUP);
  CHECK(eventually(
      [&] {
        return read_file(dir / "sensor.log")
                   .find("reload: geoip.database changed: that takes effect at the next start") !=
               std::string::npos;
      },
      std::chrono::seconds(10)));
  const auto rc = p.wait_for(std::chrono::seconds(30));
  INFO(read_file(dir / "sensor.log"));
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  CHECK(read_file(dir / "sensor.log").find("reloaded ") != std::string::npos);
  require_matches_truth(read_buckets(dir / "out.jsonl"), truth);
}

// SPDX-License-Identifier: Apache-2.0
// Pipeline benchmark (issue "Performance"): replays a generated capture through
//   1. a bare libpcap loop that only parses and counts destination ports,
//   2. the same loop with one libmaxminddb lookup per packet (what GeoIP costs uncached),
//   3. the full sensor pipeline: the real teiten-sensord binary, as a child process,
// and prints packets per second of each, their ratios, and the daemon's peak RSS.
// Figures only: nothing here asserts a time.
#include <pcap/pcap.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/classify/geoip.h"
#include "common/decode/bytes.h"
#include "ctl/gen/traffic_gen.h"

namespace {

using Clock = std::chrono::steady_clock;
using teiten::decode::load_be16;

struct BareState {
  std::array<std::uint64_t, 65536> ports{};
  std::uint64_t packets = 0;
  const teiten::classify::GeoIpDatabase* db = nullptr;
  std::uint64_t countries = 0;
};

// The least a port counter must do: Ethernet (+VLAN), IPv4/IPv6 header, TCP/UDP port.
void bare_callback(u_char* user, const pcap_pkthdr* h, const u_char* p) {
  auto* st = reinterpret_cast<BareState*>(user);
  ++st->packets;
  std::size_t off = 12;
  if (h->caplen < off + 2) return;
  std::uint16_t type = load_be16(p + off);
  if (type == 0x8100 && h->caplen >= off + 6) {
    off += 4;
    type = load_be16(p + off);
  }
  off += 2;
  std::size_t l4 = 0;
  std::uint8_t proto = 0;
  if (type == 0x0800 && h->caplen >= off + 20) {
    l4 = off + static_cast<std::size_t>(p[off] & 0x0F) * 4;
    proto = p[off + 9];
    if (st->db) {
      const std::uint32_t src = (std::uint32_t{p[off + 12]} << 24) |
                                (std::uint32_t{p[off + 13]} << 16) |
                                (std::uint32_t{p[off + 14]} << 8) | p[off + 15];
      st->countries += st->db->lookup_v4(src);
    }
  } else if (type == 0x86DD && h->caplen >= off + 40) {
    l4 = off + 40;
    proto = p[off + 6];
  } else {
    return;
  }
  if ((proto == 6 || proto == 17) && h->caplen >= l4 + 4) ++st->ports[load_be16(p + l4 + 2)];
}

// `big_buffer`: read through a 1 MiB stdio buffer, as teiten-sensord does, instead of
// pcap_open_offline's stdio default (one page).
double run_bare(const std::string& pcap, const teiten::classify::GeoIpDatabase* db,
                std::uint64_t& packets, bool big_buffer = false) {
  char err[PCAP_ERRBUF_SIZE];
  static std::vector<char> buffer(std::size_t{1} << 20);
  pcap_t* h = nullptr;
  if (big_buffer) {
    FILE* f = std::fopen(pcap.c_str(), "rb");
    if (f && std::setvbuf(f, buffer.data(), _IOFBF, buffer.size()) == 0)
      h = pcap_fopen_offline(f, err);
    else
      std::snprintf(err, sizeof err, "cannot open %s", pcap.c_str());
  } else {
    h = pcap_open_offline(pcap.c_str(), err);
  }
  if (!h) {
    std::fprintf(stderr, "bench: %s\n", err);
    std::exit(1);
  }
  BareState st;
  st.db = db;
  const auto t0 = Clock::now();
  while (pcap_dispatch(h, 4096, bare_callback, reinterpret_cast<u_char*>(&st)) > 0) {
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  pcap_close(h);
  packets = st.packets;
  return s;
}

struct ChildResult {
  double seconds = 0;
  long max_rss_kib = 0;
  int status = -1;
};

ChildResult run_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto t0 = Clock::now();
  // posix_spawn (vfork semantics), not fork: a forked child's ru_maxrss would start at
  // this process's own resident size.
  pid_t pid = 0;
  if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  ChildResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  r.max_rss_kib = ru.ru_maxrss;
  r.status = status;
  return r;
}

double mpps(std::uint64_t packets, double seconds) {
  return static_cast<double>(packets) / seconds / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t packets = 10'000'000;
  std::string dir = "/tmp/teiten-bench";
  std::string sensord = TEITEN_BENCH_SENSORD;
  std::string geoip = std::string{TEITEN_SOURCE_DIR} + "/data/geoip/geo-whois-asn-country.mmdb";
  int rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--packets")
      packets = std::stoull(v);
    else if (a == "--dir")
      dir = v;
    else if (a == "--geoip")
      geoip = v;
    else if (a == "--rounds")
      rounds = std::stoi(v);
    else {
      std::fprintf(stderr,
                   "usage: pipeline_bench [--packets N] [--dir DIR] [--geoip MMDB] [--rounds N]\n");
      return 2;
    }
  }
  std::filesystem::create_directories(dir);
  const std::string pcap = dir + "/bench-" + std::to_string(packets) + ".pcap";
  if (!std::filesystem::exists(pcap)) {
    std::printf("generating %llu packets into %s ...\n", static_cast<unsigned long long>(packets),
                pcap.c_str());
    teiten::gen::GenOptions o;
    o.packets = packets;
    o.duration_s = 3600;
    teiten::gen::generate(o, pcap + ".tmp");
    std::filesystem::rename(pcap + ".tmp", pcap);
  }
  const auto size = std::filesystem::file_size(pcap);
  std::string error;
  const auto db = teiten::classify::GeoIpDatabase::open(geoip, error);
  if (!db) {
    std::fprintf(stderr, "bench: %s\n", error.c_str());
    return 1;
  }
  const std::string cfg = dir + "/bench-sensor.yaml";
  std::ofstream(cfg) << "sensor:\n  id: bench\n  addresses: [203.0.113.7, \"2001:db8:7::7\"]\n"
                     << "geoip:\n  database: \"" << geoip << "\"\nlog:\n  level: warn\n";

  std::uint64_t n = 0;
  run_bare(pcap, nullptr, n);  // warm the page cache
  double best_bare = 1e9, best_big = 1e9, best_geo = 1e9, best_full = 1e9;
  long rss = 0;
  for (int r = 0; r < rounds; ++r) {
    best_bare = std::min(best_bare, run_bare(pcap, nullptr, n));
    std::uint64_t n1 = 0;
    best_big = std::min(best_big, run_bare(pcap, nullptr, n1, true));
    std::uint64_t n2 = 0;
    best_geo = std::min(best_geo, run_bare(pcap, db.get(), n2));
    const ChildResult c =
        run_child({sensord, "--config", cfg, "--read", pcap, "--output", "/dev/null"});
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
      std::fprintf(stderr, "bench: teiten-sensord failed (status %d)\n", c.status);
      return 1;
    }
    best_full = std::min(best_full, c.seconds);
    rss = std::max(rss, c.max_rss_kib);
  }
  const double bare = mpps(n, best_bare), big = mpps(n, best_big), geo = mpps(n, best_geo),
               full = mpps(n, best_full);
  std::printf("\ncapture: %llu packets, %.0f MiB, page cache warm; best of %d rounds\n",
              static_cast<unsigned long long>(n), static_cast<double>(size) / 1048576.0, rounds);
  std::printf("%-44s %8.2f Mpps  (%.3f s)\n", "bare pcap_dispatch loop, dst-port counts", bare,
              best_bare);
  std::printf("%-44s %8.2f Mpps  (%.3f s)\n", "same loop, 1 MiB stdio buffer (as sensord)", big,
              best_big);
  std::printf("%-44s %8.2f Mpps  (%.3f s)\n", "same loop + libmaxminddb lookup per packet", geo,
              best_geo);
  std::printf("%-44s %8.2f Mpps  (%.3f s, whole process)\n", "full pipeline: teiten-sensord --read",
              full, best_full);
  std::printf(
      "ratio full / bare: %.2f   full / bare with 1 MiB buffer: %.2f   full / bare+mmdb: "
      "%.2f\n",
      full / bare, full / big, full / geo);
  std::printf("teiten-sensord peak RSS: %.1f MiB\n", static_cast<double>(rss) / 1024.0);
  std::printf("targets: full >= 8 Mpps: %s; full >= 0.5 x bare: %s; RSS < 64 MiB: %s\n",
              full >= 8.0 ? "met" : "NOT met", full >= 0.5 * bare ? "met" : "NOT met",
              rss < 64 * 1024 ? "met" : "NOT met");
  return 0;
}

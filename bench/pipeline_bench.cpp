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

#include <algorithm>
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

// Children are started by a spawner forked first thing in main(), while this process is
// small. A child started from here directly would report this process's peak instead of
// its own: Linux records the old address space's high-water mark in the process's
// ru_maxrss at exec, and a posix_spawn (vfork) child's old address space is this one,
// grown by the capture generation, the GeoIP database and libpcap's buffers (79 MiB where
// GNU time measured the daemon alone at 40 MiB).
class Spawner {
 public:
  Spawner() {
    int to[2], from[2];
    if (::pipe(to) != 0 || ::pipe(from) != 0) {
      std::perror("pipe");
      std::exit(1);
    }
    pid_ = ::fork();
    if (pid_ < 0) {
      std::perror("fork");
      std::exit(1);
    }
    if (pid_ == 0) {
      ::close(to[1]);
      ::close(from[0]);
      serve(to[0], from[1]);
      ::_exit(0);
    }
    ::close(to[0]);
    ::close(from[1]);
    out_ = to[1];
    in_ = from[0];
  }
  ~Spawner() {
    ::close(out_);  // the spawner reads end-of-file and exits
    ::close(in_);
    ::waitpid(pid_, nullptr, 0);
  }

  ChildResult run(const std::vector<std::string>& argv) {
    std::string msg;
    for (const auto& a : argv) msg.append(a).push_back('\0');
    const std::uint32_t n = static_cast<std::uint32_t>(msg.size());
    const auto t0 = Clock::now();
    if (!write_all(out_, &n, sizeof n) || !write_all(out_, msg.data(), n)) std::exit(1);
    std::array<long, 2> reply{};
    if (!read_all(in_, reply.data(), sizeof reply)) std::exit(1);
    ChildResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.status = static_cast<int>(reply[0]);
    r.max_rss_kib = reply[1];
    return r;
  }

 private:
  static bool write_all(int fd, const void* p, std::size_t n) {
    for (auto* c = static_cast<const char*>(p); n;) {
      const ssize_t w = ::write(fd, c, n);
      if (w <= 0) return false;
      c += w;
      n -= static_cast<std::size_t>(w);
    }
    return true;
  }
  static bool read_all(int fd, void* p, std::size_t n) {
    for (auto* c = static_cast<char*>(p); n;) {
      const ssize_t r = ::read(fd, c, n);
      if (r <= 0) return false;
      c += r;
      n -= static_cast<std::size_t>(r);
    }
    return true;
  }
  // The spawner's loop: an argv (NUL-separated) in, status and ru_maxrss (KiB) out.
  static void serve(int in, int out) {
    std::uint32_t n = 0;
    while (read_all(in, &n, sizeof n)) {
      std::string msg(n, '\0');
      if (!read_all(in, msg.data(), n)) return;
      std::vector<char*> args;
      for (std::size_t i = 0; i < msg.size(); i += std::strlen(msg.data() + i) + 1)
        args.push_back(msg.data() + i);
      args.push_back(nullptr);
      pid_t pid = 0;
      std::array<long, 2> reply{-1, 0};
      if (posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) == 0) {
        int status = 0;
        rusage ru{};
        ::wait4(pid, &status, 0, &ru);
        reply = {status, ru.ru_maxrss};
      }
      if (!write_all(out, reply.data(), sizeof reply)) return;
    }
  }
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
};

double mpps(std::uint64_t packets, double seconds) {
  return static_cast<double>(packets) / seconds / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Spawner spawner;  // first, while this process is small
  std::uint64_t packets = 10'000'000;
  std::string dir = "/tmp/teiten-bench";
  std::string sensord = TEITEN_BENCH_SENSORD;
  std::string geoip = std::string{TEITEN_SOURCE_DIR} + "/data/geoip/geo-whois-asn-country.mmdb";
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--packets")
      packets = std::stoull(v);
    else if (a == "--dir")
      dir = v;
    else if (a == "--geoip")
      geoip = v;
    else if (a == "--sensord")
      sensord = v;
    else if (a == "--rounds")
      rounds = std::max(1, std::stoi(v));
    else {
      std::fprintf(stderr,
                   "usage: pipeline_bench [--packets N] [--dir DIR] [--geoip MMDB] [--rounds N] "
                   "[--sensord PATH]\n");
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
  // The ratio of each round (its bare loops and the pipeline run one after the other): on a
  // shared machine whose speed changes from minute to minute, the median of these says
  // more than the ratio of two bests that may come from different minutes.
  std::vector<double> round_ratio, round_ratio_big;
  for (int r = 0; r < rounds; ++r) {
    const double bare_s = run_bare(pcap, nullptr, n);
    best_bare = std::min(best_bare, bare_s);
    std::uint64_t n1 = 0;
    const double big_s = run_bare(pcap, nullptr, n1, true);
    best_big = std::min(best_big, big_s);
    std::uint64_t n2 = 0;
    best_geo = std::min(best_geo, run_bare(pcap, db.get(), n2));
    const ChildResult c =
        spawner.run({sensord, "--config", cfg, "--read", pcap, "--output", "/dev/null"});
    if (!WIFEXITED(c.status) || WEXITSTATUS(c.status) != 0) {
      std::fprintf(stderr, "bench: teiten-sensord failed (status %d)\n", c.status);
      return 1;
    }
    best_full = std::min(best_full, c.seconds);
    rss = std::max(rss, c.max_rss_kib);
    round_ratio.push_back(bare_s / c.seconds);
    round_ratio_big.push_back(big_s / c.seconds);
  }
  // Median, lowest and highest of the rounds' ratios.
  const auto spread = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const double median =
        v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    return std::array<double, 3>{median, v.front(), v.back()};
  };
  const auto ratio = spread(round_ratio), ratio_big = spread(round_ratio_big);
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
  std::printf(
      "ratio per round, median of %d: full / bare %.2f (%.2f to %.2f), full / bare with 1 MiB "
      "buffer %.2f (%.2f to %.2f)\n",
      rounds, ratio[0], ratio[1], ratio[2], ratio_big[0], ratio_big[1], ratio_big[2]);
  std::printf("teiten-sensord peak RSS: %.1f MiB\n", static_cast<double>(rss) / 1024.0);
  std::printf("targets: full >= 8 Mpps: %s; full >= 0.5 x bare: %s; RSS < 64 MiB: %s\n",
              full >= 8.0 ? "met" : "NOT met", full >= 0.5 * bare ? "met" : "NOT met",
              rss < 64 * 1024 ? "met" : "NOT met");
  return 0;
}

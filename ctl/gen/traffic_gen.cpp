// SPDX-License-Identifier: Apache-2.0
#include "ctl/gen/traffic_gen.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/bucket/bucket_json.h"

namespace teiten::gen {
namespace {

using classify::Fingerprint;
using classify::Key;
using classify::Kind;
using classify::Proto;
using decode::DecodeStatus;

// splitmix64: small, fast, and the same on every platform (std distributions are not).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n).
  std::uint64_t below(std::uint64_t n) noexcept {
    __extension__ using u128 = unsigned __int128;  // Lemire's multiply-shift reduction
    return static_cast<std::uint64_t>((static_cast<u128>(next()) * n) >> 64);
  }
  std::uint32_t u32() noexcept { return static_cast<std::uint32_t>(next() >> 32); }
  std::uint16_t u16() noexcept { return static_cast<std::uint16_t>(next() >> 48); }
  /// True with probability p.
  bool chance(double p) noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  std::uint64_t s_;
};

template <typename T>
struct Weighted {
  T value;
  unsigned weight;
};

template <typename T>
const T& pick(Rng& rng, const std::vector<Weighted<T>>& items) {
  unsigned total = 0;
  for (const auto& i : items) total += i.weight;
  std::uint64_t r = rng.below(total);
  for (const auto& i : items) {
    if (r < i.weight) return i.value;
    r -= i.weight;
  }
  return items.back().value;
}

// Source countries, weighted roughly like a darknet's sources, with real allocations so
// the default database places most of them in the same country.
struct CountrySource {
  const char* country;
  const char* v4;  // prefix
  const char* v6;  // prefix or nullptr
  unsigned weight;
};
constexpr CountrySource kCountries[] = {
    {"CN", "223.64.0.0/11", "240e::/20", 30},   {"US", "8.0.0.0/9", "2600:1700::/28", 16},
    {"JP", "126.0.0.0/8", "2400:4050::/30", 8}, {"RU", "95.24.0.0/13", nullptr, 7},
    {"BR", "177.128.0.0/10", "2804::/20", 6},   {"IN", "117.192.0.0/10", nullptr, 6},
    {"KR", "121.128.0.0/10", nullptr, 5},       {"TW", "114.32.0.0/12", nullptr, 4},
    {"VN", "113.160.0.0/11", nullptr, 4},       {"DE", "79.192.0.0/10", "2003::/19", 4},
    {"NL", "145.94.0.0/16", nullptr, 3},        {"GB", "81.2.69.0/24", nullptr, 2},
    {"--", "100.64.0.0/10", nullptr, 2},  // shared address space: in no country database
};

struct Prefix4 {
  std::uint32_t net;
  unsigned bits;
};
struct Prefix6 {
  std::array<std::uint8_t, 16> net;
  unsigned bits;
};

Prefix4 parse4(const char* text) {
  const std::string s{text};
  const auto slash = s.find('/');
  in_addr a{};
  if (inet_pton(AF_INET, s.substr(0, slash).c_str(), &a) != 1) throw std::logic_error(s);
  return {ntohl(a.s_addr), static_cast<unsigned>(std::stoul(s.substr(slash + 1)))};
}
Prefix6 parse6(const char* text) {
  const std::string s{text};
  const auto slash = s.find('/');
  in6_addr a{};
  if (inet_pton(AF_INET6, s.substr(0, slash).c_str(), &a) != 1) throw std::logic_error(s);
  Prefix6 p{};
  std::memcpy(p.net.data(), &a, 16);
  p.bits = static_cast<unsigned>(std::stoul(s.substr(slash + 1)));
  return p;
}

std::uint32_t random_in(Rng& rng, const Prefix4& p) {
  const std::uint32_t host_mask = p.bits == 0 ? ~0u : (p.bits >= 32 ? 0u : (~0u >> p.bits));
  std::uint32_t a = p.net | (rng.u32() & host_mask);
  if ((a & 0xFF) == 0 || (a & 0xFF) == 255) a ^= 1;  // avoid .0/.255 hosts, purely cosmetic
  return a;
}
std::array<std::uint8_t, 16> random_in(Rng& rng, const Prefix6& p) {
  std::array<std::uint8_t, 16> a = p.net;
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned fixed = p.bits >= (i + 1) * 8 ? 8 : (p.bits > i * 8 ? p.bits - i * 8 : 0);
    const auto keep = static_cast<std::uint8_t>(fixed == 0 ? 0 : 0xFF << (8 - fixed));
    a[i] = static_cast<std::uint8_t>((a[i] & keep) | (rng.u32() & ~keep & 0xFF));
  }
  return a;
}

enum class Behaviour { mirai, masscan, zmap, generic, backscatter };

struct Host {
  unsigned country;  // index into kCountries
  bool v6;
  std::uint32_t v4;
  std::array<std::uint8_t, 16> a6;
  Behaviour behaviour;
};

// Destination ports of ordinary scanners, weighted like a telescope's TOP list.
const std::vector<Weighted<std::uint16_t>> kTcpPorts = {
    {23, 60},   {22, 90},   {80, 60},   {443, 35},  {8080, 30}, {445, 40}, {3389, 30},
    {1433, 12}, {3306, 10}, {6379, 10}, {5555, 10}, {81, 8},    {8443, 8}, {5900, 8},
    {2323, 5},  {37215, 1}, {8088, 6},  {9200, 5},  {25, 5},    {21, 6},   {5501, 0},
    {60001, 3}, {52869, 4}, {7547, 5},  {8000, 6},  {443, 5},   {0, 30},  // 0: random port
};
const std::vector<Weighted<std::uint16_t>> kMiraiPorts = {
    {23, 700}, {2323, 110}, {37215, 90}, {22, 25}, {5501, 18}, {80, 10}, {8080, 10}, {5555, 8},
};
const std::vector<Weighted<std::uint16_t>> kUdpPorts = {
    {5060, 30}, {53, 20}, {123, 15}, {1900, 12}, {161, 10}, {137, 8}, {11211, 6}, {0, 20},
};

// Frame builder: Ethernet (optionally 802.1Q-tagged), then an IP packet.
class Frame {
 public:
  void start(bool vlan, std::uint16_t ethertype) {
    len_ = 0;
    static constexpr std::uint8_t kDst[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x07};
    static constexpr std::uint8_t kSrc[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, 0x01};
    put(kDst, 6);
    put(kSrc, 6);
    if (vlan) {
      be16(0x8100);
      be16(100);
    }
    be16(ethertype);
    l3_ = len_;
  }
  void put(const std::uint8_t* p, std::size_t n) {
    std::memcpy(buf_.data() + len_, p, n);
    len_ += n;
  }
  void be16(std::uint16_t v) {
    buf_[len_++] = static_cast<std::uint8_t>(v >> 8);
    buf_[len_++] = static_cast<std::uint8_t>(v);
  }
  void be32(std::uint32_t v) {
    be16(static_cast<std::uint16_t>(v >> 16));
    be16(static_cast<std::uint16_t>(v));
  }
  void byte(std::uint8_t v) { buf_[len_++] = v; }
  void zeros(std::size_t n) {
    std::memset(buf_.data() + len_, 0, n);
    len_ += n;
  }
  void set16(std::size_t at, std::uint16_t v) {
    buf_[at] = static_cast<std::uint8_t>(v >> 8);
    buf_[at + 1] = static_cast<std::uint8_t>(v);
  }
  std::size_t size() const { return len_; }
  std::size_t l3() const { return l3_; }
  std::uint8_t* data() { return buf_.data(); }

 private:
  std::array<std::uint8_t, 2048> buf_{};
  std::size_t len_ = 0;
  std::size_t l3_ = 0;
};

std::uint16_t ip_checksum(const std::uint8_t* p, std::size_t n) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < n; i += 2)
    sum += static_cast<std::uint32_t>((p[i] << 8) | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

// What one generated packet is, for the ground truth.
struct Intent {
  enum class Outcome {
    observed,
    not_for_sensor,
    self_traffic,
    malformed
  } outcome = Outcome::observed;
  Key key;
  std::uint32_t ip_length = 0;
  DecodeStatus reason = DecodeStatus::ok;
};

class Generator {
 public:
  explicit Generator(const GenOptions& o) : o_(o), rng_(o.seed) {
    sensor4_ = parse4((o.sensor_v4 + "/32").c_str()).net;
    sensor6_ = parse6((o.sensor_v6 + "/128").c_str()).net;
    for (const auto& c : kCountries) {
      p4_.push_back(parse4(c.v4));
      p6_.push_back(c.v6 ? std::optional<Prefix6>(parse6(c.v6)) : std::nullopt);
      const bool planned = std::any_of(o.plan.begin(), o.plan.end(),
                                       [&](const PlanEntry& e) { return e.country == c.country; });
      if (!planned) country_weights_.push_back({static_cast<unsigned>(&c - kCountries), c.weight});
    }
    if (country_weights_.empty()) throw std::invalid_argument("the plan names every country");
    hosts_.reserve(o.repeated_sources);
    double total = 0;
    for (std::uint32_t i = 0; i < o.repeated_sources; ++i) {
      hosts_.push_back(make_host());
      total += 1.0 / std::pow(i + 1.0, 0.9);  // Zipf-like: a few sources send most
      zipf_cum_.push_back(total);
    }
  }

  Intent next(Frame& f, std::int64_t ts) {
    if (rng_.chance(o_.malformed_share)) return malformed(f);
    if (rng_.chance(o_.not_for_sensor_share)) return not_for_sensor(f, ts);
    Host h;
    if (hosts_.empty() || rng_.chance(o_.one_off_share)) {
      h = make_host();
    } else {
      const double r = static_cast<double>(rng_.next() >> 11) * 0x1.0p-53 * zipf_cum_.back();
      const auto it = std::upper_bound(zipf_cum_.begin(), zipf_cum_.end(), r);
      h = hosts_[std::min<std::size_t>(it - zipf_cum_.begin(), hosts_.size() - 1)];
    }
    if (rng_.chance(o_.fragment_share) && !h.v6) return fragment(f, h);
    return observed(f, h);
  }

 private:
  Host make_host() {
    Host h{};
    h.country = pick(rng_, country_weights_);
    h.v6 = p6_[h.country].has_value() && rng_.chance(o_.v6_share * 3);
    h.v4 = random_in(rng_, p4_[h.country]);
    if (h.v6) h.a6 = random_in(rng_, *p6_[h.country]);
    if (h.v6) {
      h.behaviour = rng_.chance(0.2) ? Behaviour::backscatter : Behaviour::generic;
    } else {
      h.behaviour = pick(rng_, std::vector<Weighted<Behaviour>>{{Behaviour::mirai, 45},
                                                                {Behaviour::masscan, 8},
                                                                {Behaviour::zmap, 7},
                                                                {Behaviour::generic, 32},
                                                                {Behaviour::backscatter, 8}});
    }
    return h;
  }

  std::uint16_t pick_port(const std::vector<Weighted<std::uint16_t>>& table) {
    const std::uint16_t p = pick(rng_, table);
    return p != 0 ? p : static_cast<std::uint16_t>(1024 + rng_.below(64511));
  }

  // An IP ID that matches no fingerprint for this TCP SYN (or any packet, with seq 0).
  std::uint16_t neutral_id(std::uint16_t dport, std::uint32_t seq, bool tcp_syn) {
    for (;;) {
      const std::uint16_t id = rng_.u16();
      if (id == classify_zmap_id()) continue;
      if (tcp_syn && id == static_cast<std::uint16_t>((sensor4_ ^ dport ^ seq) & 0xFFFF)) continue;
      return id;
    }
  }
  static constexpr std::uint16_t classify_zmap_id() { return 54321; }

  std::uint32_t neutral_seq() {
    std::uint32_t s;
    do s = rng_.u32();
    while (s == sensor4_);
    return s;
  }

  void ipv4_header(Frame& f, std::uint32_t src, std::uint32_t dst, std::uint8_t proto,
                   std::uint16_t id, std::uint16_t total_len, std::uint16_t frag = 0,
                   std::uint8_t ihl_words = 5) {
    const std::size_t at = f.size();
    f.byte(static_cast<std::uint8_t>(0x40 | ihl_words));
    f.byte(0);
    f.be16(total_len);
    f.be16(id);
    f.be16(frag);
    f.byte(static_cast<std::uint8_t>(32 + rng_.below(200)));  // TTL
    f.byte(proto);
    f.be16(0);
    f.be32(src);
    f.be32(dst);
    if (ihl_words >= 5) f.set16(at + 10, ip_checksum(f.data() + at, 20));
  }

  void ipv6_header(Frame& f, const std::array<std::uint8_t, 16>& src,
                   const std::array<std::uint8_t, 16>& dst, std::uint8_t next,
                   std::uint16_t payload_len) {
    f.be32(0x60000000u | (rng_.u32() & 0xFFFFF));
    f.be16(payload_len);
    f.byte(next);
    f.byte(static_cast<std::uint8_t>(32 + rng_.below(200)));
    f.put(src.data(), 16);
    f.put(dst.data(), 16);
  }

  void tcp_header(Frame& f, std::uint16_t sport, std::uint16_t dport, std::uint32_t seq,
                  std::uint8_t flags, bool mss_option) {
    f.be16(sport);
    f.be16(dport);
    f.be32(seq);
    f.be32((flags & decode_ack()) ? rng_.u32() : 0);
    f.byte(static_cast<std::uint8_t>((mss_option ? 6 : 5) << 4));
    f.byte(flags);
    f.be16(static_cast<std::uint16_t>(1024 + rng_.below(64000)));
    f.be16(0);  // checksum: not verified by the sensor
    f.be16(0);
    if (mss_option) {
      f.byte(2);
      f.byte(4);
      f.be16(1460);
    }
  }
  static constexpr std::uint8_t decode_ack() { return 0x10; }

  Intent observed(Frame& f, const Host& h) {
    Intent in;
    in.key.country = classify::country_from_string(kCountries[h.country].country);
    if (h.v6) return observed_v6(f, h, in);
    const bool vlan = rng_.chance(o_.vlan_share);
    f.start(vlan, 0x0800);
    const std::uint16_t sport = static_cast<std::uint16_t>(1024 + rng_.below(64511));
    switch (h.behaviour) {
      case Behaviour::mirai: {
        const std::uint16_t dport = pick_port(kMiraiPorts);
        // Mirai: SYN, seq = destination address, 20-byte IP and TCP headers.
        ipv4_header(f, h.v4, sensor4_, 6, neutral_id(dport, sensor4_, false), 40);
        tcp_header(f, sport, dport, sensor4_, 0x02, false);
        in.key = with(in.key, Proto::tcp, dport, Fingerprint::mirai, Kind::scan);
        in.ip_length = 40;
        return in;
      }
      case Behaviour::masscan: {
        const std::uint16_t dport = pick_port(kTcpPorts);
        const std::uint32_t seq = neutral_seq();
        const auto id = static_cast<std::uint16_t>((sensor4_ ^ dport ^ seq) & 0xFFFF);
        if (id == classify_zmap_id()) return observed(f, h);  // would be ambiguous: redraw
        ipv4_header(f, h.v4, sensor4_, 6, id, 40);
        tcp_header(f, sport, dport, seq, 0x02, false);
        in.key = with(in.key, Proto::tcp, dport, Fingerprint::masscan, Kind::scan);
        in.ip_length = 40;
        return in;
      }
      case Behaviour::zmap: {
        const auto roll = rng_.below(10);
        if (roll < 7) {
          const std::uint16_t dport = pick_port(kTcpPorts);
          std::uint32_t seq = neutral_seq();
          while (static_cast<std::uint16_t>((sensor4_ ^ dport ^ seq) & 0xFFFF) == 54321)
            seq = neutral_seq();
          ipv4_header(f, h.v4, sensor4_, 6, 54321, 40);
          tcp_header(f, sport, dport, seq, 0x02, false);
          in.key = with(in.key, Proto::tcp, dport, Fingerprint::zmap, Kind::scan);
          in.ip_length = 40;
        } else if (roll < 9) {
          const std::uint16_t dport = pick_port(kUdpPorts);
          udp_packet(f, h.v4, sport, dport, 54321, in);
          in.key.fingerprint = Fingerprint::zmap;
        } else {
          icmp_packet(f, h.v4, 8, 0, 54321, in);
          in.key.fingerprint = Fingerprint::zmap;
        }
        return in;
      }
      case Behaviour::generic: {
        const auto roll = rng_.below(100);
        if (roll < 78) {
          const std::uint16_t dport = pick_port(kTcpPorts);
          const std::uint32_t seq = neutral_seq();
          const bool mss = rng_.chance(0.6);
          const std::uint16_t len = mss ? 44 : 40;
          ipv4_header(f, h.v4, sensor4_, 6, neutral_id(dport, seq, true), len);
          tcp_header(f, sport, dport, seq, 0x02, mss);
          in.key = with(in.key, Proto::tcp, dport, Fingerprint::none, Kind::scan);
          in.ip_length = len;
        } else if (roll < 93) {
          udp_packet(f, h.v4, sport, pick_port(kUdpPorts), neutral_id(0, 0, false), in);
        } else {
          icmp_packet(f, h.v4, 8, 0, neutral_id(0, 0, false), in);
        }
        return in;
      }
      case Behaviour::backscatter: {
        const auto roll = rng_.below(100);
        if (roll < 70) {
          // Reply of a spoofed-attack victim: from its service port to a random port.
          const std::uint16_t svc = pick(
              rng_, std::vector<Weighted<std::uint16_t>>{{80, 5}, {443, 4}, {22, 1}, {25565, 1}});
          const std::uint8_t flags = rng_.chance(0.6) ? 0x12 : (rng_.chance(0.5) ? 0x04 : 0x14);
          const auto dport = static_cast<std::uint16_t>(1024 + rng_.below(64511));
          ipv4_header(f, h.v4, sensor4_, 6, neutral_id(0, 0, false), 40);
          tcp_header(f, svc, dport, neutral_seq(), flags, false);
          in.key = with(in.key, Proto::tcp, dport, Fingerprint::none, Kind::backscatter);
          in.ip_length = 40;
        } else if (roll < 85) {
          icmp_packet(f, h.v4, 0, 0, neutral_id(0, 0, false), in);  // echo reply
        } else {
          icmp_packet(f, h.v4, rng_.chance(0.8) ? 3 : 11, 1, neutral_id(0, 0, false), in);
        }
        return in;
      }
    }
    return in;
  }

  // The n-th packet of plan entry `index`: its sources are the entry's own addresses.
 public:
  Intent planned(Frame& f, const PlanEntry& e, std::size_t index, std::uint64_t n) {
    Intent in;
    const auto c = static_cast<std::size_t>(
        std::find_if(std::begin(kCountries), std::end(kCountries),
                     [&](const CountrySource& x) { return e.country == x.country; }) -
        std::begin(kCountries));
    in.key.country = classify::country_from_string(e.country);
    const std::uint32_t src = p4_[c].net + (static_cast<std::uint32_t>(index + 1) << 12) +
                              static_cast<std::uint32_t>(n % e.hosts) + 1;
    f.start(false, 0x0800);
    const auto sport = static_cast<std::uint16_t>(1024 + rng_.below(64511));
    if (e.proto == Proto::udp) {
      udp_packet(f, src, sport, e.port, neutral_id(0, 0, false), in);
      return in;
    }
    const std::uint32_t seq = e.mirai ? sensor4_ : neutral_seq();
    ipv4_header(f, src, sensor4_, 6,
                e.mirai ? neutral_id(e.port, seq, false) : neutral_id(e.port, seq, true), 40);
    tcp_header(f, sport, e.port, seq, 0x02, false);
    in.key = with(in.key, Proto::tcp, e.port, e.mirai ? Fingerprint::mirai : Fingerprint::none,
                  Kind::scan);
    in.ip_length = 40;
    return in;
  }

 private:
  static Key with(Key k, Proto p, std::uint16_t port, Fingerprint fp, Kind kind) {
    k.proto = p;
    k.has_port = true;
    k.port = port;
    k.fingerprint = fp;
    k.kind = kind;
    return k;
  }

  void udp_packet(Frame& f, std::uint32_t src, std::uint16_t sport, std::uint16_t dport,
                  std::uint16_t id, Intent& in) {
    const auto payload = static_cast<std::uint16_t>(rng_.below(120));
    const auto len = static_cast<std::uint16_t>(28 + payload);
    ipv4_header(f, src, sensor4_, 17, id, len);
    f.be16(sport);
    f.be16(dport);
    f.be16(static_cast<std::uint16_t>(8 + payload));
    f.be16(0);
    f.zeros(payload);
    in.key = with(in.key, Proto::udp, dport, Fingerprint::none, Kind::scan);
    in.ip_length = len;
  }

  void icmp_packet(Frame& f, std::uint32_t src, std::uint8_t type, std::uint8_t code,
                   std::uint16_t id, Intent& in) {
    const bool error = type == 3 || type == 11;
    const std::uint16_t payload = error ? 28 : 32;  // errors quote IP header + 8 bytes
    const auto len = static_cast<std::uint16_t>(20 + 8 + payload);
    ipv4_header(f, src, sensor4_, 1, id, len);
    f.byte(type);
    f.byte(code);
    f.be16(0);
    f.be32(rng_.u32());
    f.zeros(payload);
    const Kind kind = type == 8 ? Kind::scan : Kind::backscatter;
    in.key = with(in.key, Proto::icmp, type, Fingerprint::none, kind);
    in.ip_length = len;
  }

  Intent observed_v6(Frame& f, const Host& h, Intent& in) {
    f.start(rng_.chance(o_.vlan_share), 0x86DD);
    const auto roll = rng_.below(100);
    const std::uint16_t sport = static_cast<std::uint16_t>(1024 + rng_.below(64511));
    if (h.behaviour == Behaviour::backscatter) {
      ipv6_header(f, h.a6, sensor6_, 58, 8);
      f.byte(129);  // echo reply
      f.byte(0);
      f.be16(0);
      f.be32(rng_.u32());
      in.key = with(in.key, Proto::icmpv6, 129, Fingerprint::none, Kind::backscatter);
      in.ip_length = 48;
    } else if (roll < 75) {
      const std::uint16_t dport = pick_port(kTcpPorts);
      ipv6_header(f, h.a6, sensor6_, 6, 24);
      tcp_header(f, sport, dport, rng_.u32(), 0x02, true);
      in.key = with(in.key, Proto::tcp, dport, Fingerprint::none, Kind::scan);
      in.ip_length = 64;
    } else if (roll < 90) {
      const std::uint16_t dport = pick_port(kUdpPorts);
      ipv6_header(f, h.a6, sensor6_, 17, 8);
      f.be16(sport);
      f.be16(dport);
      f.be16(8);
      f.be16(0);
      in.key = with(in.key, Proto::udp, dport, Fingerprint::none, Kind::scan);
      in.ip_length = 48;
    } else {
      ipv6_header(f, h.a6, sensor6_, 58, 8);
      f.byte(128);  // echo request
      f.byte(0);
      f.be16(0);
      f.be32(rng_.u32());
      in.key = with(in.key, Proto::icmpv6, 128, Fingerprint::none, Kind::scan);
      in.ip_length = 48;
    }
    return in;
  }

  Intent fragment(Frame& f, const Host& h) {
    // A non-first UDP fragment: no transport header, so no port and kind `other`.
    Intent in;
    in.key.country = classify::country_from_string(kCountries[h.country].country);
    f.start(false, 0x0800);
    const std::uint16_t len = 20 + 64;
    ipv4_header(f, h.v4, sensor4_, 17, neutral_id(0, 0, false), len,
                static_cast<std::uint16_t>(185 + rng_.below(100)));
    f.zeros(64);
    in.key.proto = Proto::udp;
    in.key.has_port = false;
    in.key.kind = Kind::other;
    in.ip_length = len;
    return in;
  }

  Intent not_for_sensor(Frame& f, std::int64_t ts) {
    Intent in;
    in.outcome = Intent::Outcome::not_for_sensor;
    f.start(false, 0x0800);
    if (rng_.chance(0.5)) {
      // To the neighbouring address (a shared segment, a misrouted scan).
      ipv4_header(f, random_in(rng_, p4_[0]), sensor4_ + 1, 6, rng_.u16(), 40);
      tcp_header(f, 40000, 23, rng_.u32(), 0x02, false);
    } else if (last_upload_ && ts - *last_upload_ <= 60 && rng_.chance(0.5)) {
      // The collector's answer on the sensor's own upload connection: self traffic too,
      // though addressed to the sensor (docs/live-capture.md).
      in.outcome = Intent::Outcome::self_traffic;
      ipv4_header(f, 0xC6336401 /* 198.51.100.1 */, sensor4_, 6, rng_.u16(), 40);
      tcp_header(f, 443, 51000, rng_.u32(), 0x10, false);
    } else {
      // The sensor's own outbound traffic (an upload to its collector): a connection
      // starts with a SYN.
      in.outcome = Intent::Outcome::self_traffic;
      const bool fresh = !last_upload_ || ts - *last_upload_ > 60;
      last_upload_ = ts;
      ipv4_header(f, sensor4_, 0xC6336401 /* 198.51.100.1 */, 6, rng_.u16(), 40);
      tcp_header(f, 51000, 443, rng_.u32(), fresh ? 0x02 : 0x10, false);
    }
    return in;
  }

  Intent malformed(Frame& f) {
    Intent in;
    in.outcome = Intent::Outcome::malformed;
    const std::uint32_t src = random_in(rng_, p4_[0]);
    switch (rng_.below(8)) {
      case 0:  // ARP request
        f.start(false, 0x0806);
        f.zeros(28);
        in.reason = DecodeStatus::link_unsupported_protocol;
        break;
      case 1:  // IHL 4
        f.start(false, 0x0800);
        ipv4_header(f, src, sensor4_, 6, 1, 40, 0, 4);
        f.zeros(20);
        in.reason = DecodeStatus::ipv4_bad_ihl;
        break;
      case 2:  // total length beyond the frame
        f.start(false, 0x0800);
        ipv4_header(f, src, sensor4_, 6, 1, 1400);
        tcp_header(f, 1, 23, 5, 0x02, false);
        in.reason = DecodeStatus::ipv4_bad_total_length;
        break;
      case 3:  // TCP data offset 3 words
        f.start(false, 0x0800);
        ipv4_header(f, src, sensor4_, 6, 1, 40);
        tcp_header(f, 1, 23, 5, 0x02, false);
        f.data()[f.size() - 8] = 0x30;
        in.reason = DecodeStatus::tcp_bad_data_offset;
        break;
      case 4:  // UDP length 4
        f.start(false, 0x0800);
        ipv4_header(f, src, sensor4_, 17, 1, 28);
        f.be16(1);
        f.be16(53);
        f.be16(4);
        f.be16(0);
        in.reason = DecodeStatus::udp_bad_length;
        break;
      case 5: {  // eleven IPv6 destination-options headers
        f.start(false, 0x86DD);
        std::array<std::uint8_t, 16> s6{};
        s6[0] = 0x24;
        ipv6_header(f, s6, sensor6_, 60, 11 * 8);
        for (int i = 0; i < 11; ++i) {
          f.byte(i == 10 ? 59 : 60);
          f.byte(0);
          f.zeros(6);
        }
        in.reason = DecodeStatus::ipv6_ext_depth_exceeded;
        break;
      }
      case 6:  // four VLAN tags
        f.start(true, 0x8100);
        f.be16(200);
        f.be16(0x8100);
        f.be16(300);
        f.be16(0x8100);
        f.be16(400);
        f.be16(0x0800);
        ipv4_header(f, src, sensor4_, 6, 1, 40);
        tcp_header(f, 1, 23, 5, 0x02, false);
        in.reason = DecodeStatus::vlan_depth_exceeded;
        break;
      default:  // TCP header cut short inside a datagram that says it holds it
        f.start(false, 0x0800);
        ipv4_header(f, src, sensor4_, 6, 1, 32);
        f.zeros(12);
        in.reason = DecodeStatus::tcp_truncated;
        break;
    }
    return in;
  }

  const GenOptions& o_;
  Rng rng_;
  std::uint32_t sensor4_ = 0;
  std::array<std::uint8_t, 16> sensor6_{};
  std::vector<Prefix4> p4_;
  std::vector<std::optional<Prefix6>> p6_;
  std::vector<Weighted<unsigned>> country_weights_;
  std::vector<Host> hosts_;
  std::optional<std::int64_t> last_upload_;  ///< time of the sensor's last upload packet
  std::vector<double> zipf_cum_;
};

std::int64_t align(std::int64_t ts, std::int64_t width) {
  std::int64_t q = ts / width;
  if (ts % width != 0 && ts < 0) --q;
  return q * width;
}

}  // namespace

std::vector<PlanEntry> parse_plan(const std::string& text) {
  std::vector<PlanEntry> plan;
  std::istringstream in(text);
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty()) continue;
    const auto fail = [&](const std::string& why) {
      return std::invalid_argument("plan line " + std::to_string(no) + ": " + why);
    };
    if (w.size() < 6 || w.size() > 7)
      throw fail("expected COUNTRY PROTO PORT mirai|none PACKETS HOSTS [YYYY-MM-DD]");
    PlanEntry e;
    e.country = w[0];
    // Each entry's sources are a block of 4096 addresses of the country's prefix.
    if (std::none_of(std::begin(kCountries), std::end(kCountries), [&](const CountrySource& c) {
          return e.country == c.country && e.country != "--" && parse4(c.v4).bits <= 12;
        }))
      throw fail("'" + w[0] + "' is not a country the plan can use (CN US JP BR IN KR TW VN DE)");
    if (w[1] != "tcp" && w[1] != "udp") throw fail("protocol must be tcp or udp");
    e.proto = w[1] == "tcp" ? Proto::tcp : Proto::udp;
    if (w[3] != "mirai" && w[3] != "none") throw fail("fingerprint must be mirai or none");
    e.mirai = w[3] == "mirai";
    if (e.mirai && e.proto != Proto::tcp) throw fail("Mirai-type packets are TCP");
    const auto number = [&](const std::string& x, const char* what, std::uint64_t lo,
                            std::uint64_t hi) {
      if (x.empty() || x.size() > 12 || x.find_first_not_of("0123456789") != std::string::npos ||
          std::stoull(x) < lo || std::stoull(x) > hi)
        throw fail(std::string{what} + " must be a number from " + std::to_string(lo) + " to " +
                   std::to_string(hi));
      return std::stoull(x);
    };
    e.port = static_cast<std::uint16_t>(number(w[2], "port", 0, 65535));
    e.packets = number(w[4], "packets", 0, 100000000);
    e.hosts = static_cast<std::uint32_t>(number(w[5], "hosts", 1, 4095));
    if (w.size() == 7) {
      // A UTC date (the day from its midnight) or an RFC 3339 time (24 hours from it).
      const auto t = bucket::parse_rfc3339(w[6].size() == 10 ? w[6] + "T00:00:00Z" : w[6]);
      if (!t) throw fail("day must be YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
      e.day = *t;
    }
    plan.push_back(e);
  }
  return plan;
}

const std::vector<CountryPrefix>& country_prefixes() {
  static const std::vector<CountryPrefix> list = [] {
    std::vector<CountryPrefix> v;
    for (const auto& c : kCountries) {
      v.push_back({c.v4, c.country});
      if (c.v6) v.push_back({c.v6, c.country});
    }
    return v;
  }();
  return list;
}

GroundTruth generate(const GenOptions& opts, const std::string& pcap_path) {
  if (opts.bucket_width_s == 0 || opts.duration_s == 0) {
    throw std::invalid_argument("duration and bucket width must be positive");
  }
  std::unique_ptr<pcap_t, decltype(&pcap_close)> dead(pcap_open_dead(DLT_EN10MB, 65535),
                                                      &pcap_close);
  pcap_dumper_t* dumper = pcap_dump_open(dead.get(), pcap_path.c_str());
  if (!dumper)
    throw std::runtime_error("cannot write " + pcap_path + ": " + pcap_geterr(dead.get()));
  std::unique_ptr<pcap_dumper_t, decltype(&pcap_dump_close)> dump_guard(dumper, &pcap_dump_close);

  GroundTruth truth;
  truth.width_s = opts.bucket_width_s;
  truth.packets = opts.packets;
  Generator g(opts);
  Frame f;
  const double step_us = static_cast<double>(opts.duration_s) * 1e6 /
                         static_cast<double>(std::max<std::uint64_t>(opts.packets, 1));
  // When each packet is sent: the others evenly, planned ones at random times of the span
  // (or of their day); -1 marks one of the others, k the plan's entry k.
  std::vector<std::pair<std::int64_t, std::int32_t>> events;
  if (!opts.plan.empty()) {
    Rng when(opts.seed ^ 0x706C616EULL);
    const std::int64_t span_us = std::int64_t{opts.duration_s} * 1000000;
    for (std::uint64_t i = 0; i < opts.packets; ++i)
      events.emplace_back(static_cast<std::int64_t>(static_cast<double>(i) * step_us), -1);
    for (std::size_t k = 0; k < opts.plan.size(); ++k) {
      const PlanEntry& e = opts.plan[k];
      std::int64_t lo = 0, hi = span_us;
      if (e.day) {
        lo = std::max<std::int64_t>(0, (*e.day - opts.start) * 1000000);
        hi = std::min<std::int64_t>(span_us, (*e.day + 86400 - opts.start) * 1000000);
        if (hi <= lo) throw std::invalid_argument("plan: a day outside the generated span");
      }
      for (std::uint64_t j = 0; j < e.packets; ++j)
        events.emplace_back(
            lo + static_cast<std::int64_t>(when.next() % static_cast<std::uint64_t>(hi - lo)),
            static_cast<std::int32_t>(k));
    }
    std::stable_sort(events.begin(), events.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    truth.packets = events.size();
  }
  std::vector<std::uint64_t> sent(opts.plan.size(), 0);
  const std::uint64_t total = opts.plan.empty() ? opts.packets : events.size();
  for (std::uint64_t i = 0; i < total; ++i) {
    const auto offset_us = opts.plan.empty()
                               ? static_cast<std::int64_t>(static_cast<double>(i) * step_us)
                               : events[i].first;
    const std::int32_t k = opts.plan.empty() ? -1 : events[i].second;
    const Intent in =
        k < 0 ? g.next(f, opts.start + offset_us / 1000000)
              : g.planned(f, opts.plan[static_cast<std::size_t>(k)], static_cast<std::size_t>(k),
                          sent[static_cast<std::size_t>(k)]++);
    pcap_pkthdr h{};
    h.ts.tv_sec = static_cast<time_t>(opts.start + offset_us / 1000000);
    h.ts.tv_usec = static_cast<suseconds_t>(offset_us % 1000000);
    h.caplen = static_cast<bpf_u_int32>(f.size());
    // Ethernet pads frames to 60 bytes on the wire (without FCS).
    h.len = static_cast<bpf_u_int32>(std::max<std::size_t>(f.size(), 60));
    if (h.len > f.size()) {
      f.zeros(h.len - f.size());
      h.caplen = h.len;
    }
    pcap_dump(reinterpret_cast<u_char*>(dumper), &h, f.data());
    BucketTruth& b = truth.buckets[align(h.ts.tv_sec, opts.bucket_width_s)];
    switch (in.outcome) {
      case Intent::Outcome::observed: {
        auto& v = b.rows[in.key.pack()];
        ++v.packets;
        v.bytes += in.ip_length;
        break;
      }
      case Intent::Outcome::not_for_sensor:
        ++b.not_for_sensor;
        break;
      case Intent::Outcome::self_traffic:
        ++b.self_traffic;
        break;
      case Intent::Outcome::malformed:
        ++b.malformed[static_cast<std::size_t>(in.reason)];
        break;
    }
  }
  if (pcap_dump_flush(dumper) != 0) throw std::runtime_error("cannot write " + pcap_path);
  return truth;
}

std::string GroundTruth::to_json() const {
  nlohmann::ordered_json j;
  j["width_s"] = width_s;
  j["packets"] = packets;
  auto arr = nlohmann::ordered_json::array();
  for (const auto& [start, b] : buckets) {
    nlohmann::ordered_json jb;
    jb["start"] = bucket::format_rfc3339(start);
    auto rows = nlohmann::ordered_json::array();
    for (const auto& [packed, v] : b.rows) {
      const Key k = Key::unpack(packed);
      nlohmann::ordered_json r;
      r["proto"] = to_string(k.proto);
      r["port"] = k.has_port ? nlohmann::ordered_json(k.port) : nlohmann::ordered_json(nullptr);
      r["country"] = classify::country_to_string(k.country);
      r["fingerprint"] = to_string(k.fingerprint);
      r["kind"] = to_string(k.kind);
      r["packets"] = v.packets;
      r["bytes"] = v.bytes;
      rows.push_back(std::move(r));
    }
    jb["rows"] = std::move(rows);
    jb["not_for_sensor"] = b.not_for_sensor;
    jb["self_traffic"] = b.self_traffic;
    nlohmann::ordered_json mal = nlohmann::ordered_json::object();
    for (std::size_t i = 1; i < b.malformed.size(); ++i) {
      if (b.malformed[i])
        mal[std::string{to_string(static_cast<DecodeStatus>(i))}] = b.malformed[i];
    }
    jb["malformed"] = std::move(mal);
    arr.push_back(std::move(jb));
  }
  j["buckets"] = std::move(arr);
  return j.dump(1);
}

}  // namespace teiten::gen

// SPDX-License-Identifier: Apache-2.0
#include "common/classify/self_traffic.h"

#include <algorithm>
#include <cstring>

#include "common/decode/bytes.h"

namespace teiten::classify {

namespace {
constexpr std::uint8_t kTcp = 6;
}

SelfTraffic::SelfTraffic(AddressSet own, std::vector<std::uint16_t> local_tcp_ports,
                         std::size_t max_flows, std::int64_t idle_s)
    : own_(std::move(own)),
      local_tcp_ports_(std::move(local_tcp_ports)),
      max_flows_(max_flows),
      idle_s_(idle_s) {}

std::size_t SelfTraffic::FlowHash::operator()(const Flow& f) const noexcept {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&](std::uint8_t b) { h = (h ^ b) * 1099511628211ULL; };
  for (auto b : f.peer) mix(b);
  mix(static_cast<std::uint8_t>(f.peer_port));
  mix(static_cast<std::uint8_t>(f.peer_port >> 8));
  mix(static_cast<std::uint8_t>(f.local_port));
  mix(static_cast<std::uint8_t>(f.local_port >> 8));
  mix(f.proto);
  mix(f.version);
  return static_cast<std::size_t>(h);
}

std::size_t SelfTraffic::peer_slot(const Flow& f) noexcept {
  if (f.version == 4) return peer_slot(decode::load_be32(f.peer.data()), 0);
  return peer_slot(decode::load_be64(f.peer.data()), decode::load_be64(f.peer.data() + 8));
}

void SelfTraffic::expire(std::int64_t now) {
  std::erase_if(flows_, [&](const auto& kv) { return now - kv.second > idle_s_; });
  if (flows_.size() < max_flows_) return recount_peers();
  // Still full of live flows: forget the oldest half rather than grow.
  std::vector<std::int64_t> seen;
  seen.reserve(flows_.size());
  for (const auto& kv : flows_) seen.push_back(kv.second);
  std::nth_element(seen.begin(), seen.begin() + static_cast<std::ptrdiff_t>(seen.size() / 2),
                   seen.end());
  const std::int64_t cut = seen[seen.size() / 2];
  std::erase_if(flows_, [&](const auto& kv) { return kv.second <= cut; });
  recount_peers();
}

void SelfTraffic::recount_peers() {
  peers_.fill(0);
  for (const auto& kv : flows_) mark_peer(peer_slot(kv.first));
}

bool SelfTraffic::is_self(const decode::DecodedPacket& p, std::int64_t ts) {
  const bool v4 = p.ip_version == 4;
  const bool from_us = v4 ? own_.contains_v4(p.src4) : own_.contains_v6(p.src6);
  const bool to_us = v4 ? own_.contains_v4(p.dst4) : own_.contains_v6(p.dst6);
  if (!from_us && !to_us) return false;
  // Only TCP and UDP have ports; other protocols are matched by peer address alone.
  const bool ports = p.has_transport && (p.ip_proto == kTcp || p.ip_proto == 17);
  Flow f;
  f.proto = p.ip_proto;
  f.version = p.ip_version;
  auto put_peer = [&](std::uint32_t a4, const std::array<std::uint8_t, 16>& a6) {
    if (v4) {
      for (int i = 0; i < 4; ++i)
        f.peer[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(a4 >> (24 - 8 * i));
    } else {
      f.peer = a6;
    }
  };
  if (from_us) {
    put_peer(p.dst4, p.dst6);
    if (ports) {
      f.peer_port = p.dport;
      f.local_port = p.sport;
    }
    auto it = flows_.find(f);
    if (it != flows_.end()) {
      it->second = ts;
      return true;
    }
    // Only what the box starts opens a flow. Its kernel's answers to scanners (RST,
    // SYN-ACK, echo replies, ICMP errors) are self traffic too, but must not make that
    // scanner's later packets look like answers to the box.
    bool opens = true;
    if (p.ip_proto == kTcp) {
      opens = p.has_transport && (p.tcp_flags & 0x12) == 0x02;  // SYN without ACK
    } else if (p.ip_proto == 1 || p.ip_proto == 58) {
      opens = p.has_transport && (p.icmp_type == (p.ip_proto == 1 ? 8 : 128));  // echo request
    }
    if (opens) {
      if (flows_.size() >= max_flows_) expire(ts);
      if (flows_.emplace(f, ts).second) mark_peer(peer_slot(f));
    }
    return true;
  }
  if (ports && p.ip_proto == kTcp &&
      std::find(local_tcp_ports_.begin(), local_tcp_ports_.end(), p.dport) !=
          local_tcp_ports_.end()) {
    return true;
  }
  // A peer the box has no flow with (almost every inbound packet): no Flow to build.
  const std::size_t slot =
      v4 ? peer_slot(p.src4, 0)
         : peer_slot(decode::load_be64(p.src6.data()), decode::load_be64(p.src6.data() + 8));
  if (((peers_[slot / 64] >> (slot % 64)) & 1) == 0) return false;
  put_peer(p.src4, p.src6);
  if (ports) {
    f.peer_port = p.sport;
    f.local_port = p.dport;
  }
  auto it = flows_.find(f);
  if (it == flows_.end() || ts - it->second > idle_s_) return false;
  it->second = ts;
  return true;
}

}  // namespace teiten::classify

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/classify/address_set.h"
#include "common/decode/packet.h"

namespace teiten::classify {

/// Recognises the sensor's own traffic, which must never count as an observation: a box
/// with one global address uploads, resolves names, syncs time and answers operators from
/// that address, so those replies arrive on the captured interface addressed to it.
/// Its own outbound packets (source = one of its addresses) are self traffic; those that
/// start something (TCP SYN, UDP, ICMP echo request) open a flow; inbound packets of such a flow
/// (same protocol, peer address and both ports) are self traffic for `idle_s` after the flow's last
/// packet; so is inbound TCP to one of `local_tcp_ports` (the control server). Bounded: at most
/// `max_flows` flows, the idle ones forgotten first. One thread (the classifier's).
class SelfTraffic {
 public:
  SelfTraffic(AddressSet own, std::vector<std::uint16_t> local_tcp_ports,
              std::size_t max_flows = 65536, std::int64_t idle_s = 300);

  /// True if `p` (decoded, seen at `ts`) is the sensor's own traffic.
  bool is_self(const decode::DecodedPacket& p, std::int64_t ts);

  std::size_t flows() const noexcept { return flows_.size(); }

 private:
  struct Flow {
    std::array<std::uint8_t, 16> peer{};
    std::uint16_t peer_port = 0;
    std::uint16_t local_port = 0;
    std::uint8_t proto = 0;
    std::uint8_t version = 0;
    bool operator==(const Flow&) const = default;
  };
  struct FlowHash {
    std::size_t operator()(const Flow& f) const noexcept;
  };
  void expire(std::int64_t now);
  void recount_peers();
  /// A slot of peers_ for a peer address, as two big-endian halves (IPv4: the address
  /// and 0). Inline: it is on every inbound packet's path.
  static std::size_t peer_slot(std::uint64_t hi, std::uint64_t lo) noexcept {
    return static_cast<std::size_t>(((hi ^ (lo * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL) >>
                                    52);  // 4096 slots
  }
  static std::size_t peer_slot(const Flow& f) noexcept;

  AddressSet own_;
  std::vector<std::uint16_t> local_tcp_ports_;
  std::size_t max_flows_;
  std::int64_t idle_s_;
  std::unordered_map<Flow, std::int64_t, FlowHash> flows_;  ///< -> last packet time
  /// One bit per peer-address slot: set while the box has a flow with a peer of that
  /// slot. Most inbound packets come from peers the box never talked to, and this table
  /// (512 bytes, so it stays in the L1 cache) tells so without the map's lookup.
  std::array<std::uint64_t, 64> peers_{};
  void mark_peer(std::size_t slot) noexcept {
    peers_[slot / 64] |= std::uint64_t{1} << (slot % 64);
  }
};

}  // namespace teiten::classify

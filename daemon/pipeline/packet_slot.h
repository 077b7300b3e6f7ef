// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>

namespace teiten::sensor {

/// What a ring slot carries.
enum class SlotType : std::uint8_t {
  packet,  ///< a captured packet
  tick,    ///< no packet: time passed (live mode timer), `ts_sec` is the time
  eof,     ///< end of the capture: seal the open bucket and stop
  drops,   ///< capture losses: kernel and interface drops (two u64 in `data`)
  learn,   ///< a packet already counted before a resume: only teaches the self-traffic flows
};

/// One preallocated ring slot, 256 bytes: a packet's timestamp, lengths and its first
/// kDataBytes captured bytes (enough for every header the classifier reads: Ethernet with
/// two VLAN tags, IPv6 with several extension headers, TCP). The capture thread fills it
/// in place, the classifier thread reads it in place.
/// Cache-line aligned, with `data` at offset 32, so that a packet's first 32 bytes share
/// the line of the slot's header.
struct alignas(64) PacketSlot {
  static constexpr std::size_t kDataBytes = 224;
  std::int64_t ts_sec = 0;
  std::uint64_t drops_before = 0;  ///< packets dropped (ring full) since the previous slot
  std::uint64_t index = 0;         ///< position in the capture (packets before this one)
  std::uint32_t wire_len = 0;      ///< length on the wire
  std::uint16_t caplen = 0;        ///< bytes in `data` (<= kDataBytes)
  SlotType type = SlotType::packet;
  std::uint8_t reserved = 0;
  std::uint8_t data[kDataBytes];
};
static_assert(sizeof(PacketSlot) == 256);
static_assert(offsetof(PacketSlot, data) == 32);

}  // namespace teiten::sensor

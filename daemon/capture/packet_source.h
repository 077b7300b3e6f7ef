// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <pcap/pcap.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "common/decode/link.h"

namespace teiten::sensor {

/// Loss counters of a capture, as deltas since the previous call.
struct CaptureDrops {
  std::uint64_t kernel = 0;     ///< pcap_stats ps_drop: the socket's buffer was full
  std::uint64_t interface = 0;  ///< the interface's rx_dropped (sysfs)
};

/// Where a source hands its packets: libpcap callbacks given by the reader (the pipeline),
/// which pcap_dispatch calls directly, with no call of the source's in between in the
/// common case (a replay at full speed, a live capture).
struct PacketHandlers {
  pcap_handler packet = nullptr;  ///< a packet to count
  /// A resumed replay's packet that is already in sealed buckets: not counted again, but
  /// the sensor's own connections it opened must still be learnt (self traffic).
  pcap_handler learn = nullptr;
  u_char* user = nullptr;
  /// Set when the reader stops: a paced replay's wait ends.
  const std::atomic<bool>* stop = nullptr;
};

/// What one PacketSource::read() did.
enum class SourceRead : std::uint8_t {
  packets,  ///< handed packets over (maybe none: nothing arrived in time)
  end,      ///< a savefile's end, or a blocked read ended by a stop
  failed,   ///< a read failed for good (error())
  lost,     ///< live: the interface went down or vanished; the capture is closed (error())
  opened,   ///< live: the capture was opened again
};

/// A source of packets for the sensor pipeline: a live interface (LiveCapture) or a
/// capture file (Savefile, with pacing and resume). Read from one thread only.
class PacketSource {
 public:
  virtual ~PacketSource() = default;

  /// The link type of the packets read().
  virtual decode::LinkType link() const noexcept = 0;
  /// Live: packets carry the wall clock, so the reader closes quiet buckets on a tick of
  /// its own each second and charges take_drops(); a file's clock is its packets'.
  virtual bool live() const noexcept = 0;
  /// Whether packets can be read now (live: false while the interface is away).
  virtual bool is_open() const noexcept { return true; }
  /// A read that may block until its writer writes (a pipe, a FIFO): the reader ends it
  /// at a stop with a signal (EINTR).
  virtual bool blocking() const noexcept { return false; }

  /// Hands up to a batch of packets to `h`; a live source waits at most about 100 ms for
  /// them and reopens a lost interface once a second.
  virtual SourceRead read(const PacketHandlers& h) = 0;
  /// What failed, after read() said failed or lost.
  virtual const std::string& error() const noexcept = 0;
  /// Drops since the previous call (live; a file has none).
  virtual CaptureDrops take_drops() { return {}; }
};

}  // namespace teiten::sensor

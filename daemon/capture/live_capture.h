// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/decode/link.h"
#include "daemon/capture/packet_source.h"

namespace teiten::sensor {

/// How to open the live capture (sensor.yaml `capture:`).
struct LiveOptions {
  std::string interface;
  std::uint32_t snaplen = 256;
  std::uint64_t buffer_bytes = 8ULL << 20;
  std::uint32_t timeout_ms = 50;
  bool immediate = false;
  bool promiscuous = false;
  std::string filter;  ///< BPF, see bpf_filter_for()
};

/// The BPF filter for a sensor: IPv4/IPv6 packets to or from one of its addresses or
/// prefixes (from: to recognise its own traffic), untagged or with an 802.1Q tag, and the
/// operator's filter if any.
std::string bpf_filter_for(const std::vector<std::string>& addresses, const std::string& extra);

/// A libpcap live capture on one interface that survives the interface going down,
/// vanishing and coming back: after a capture error read() closes it and tries to open it
/// again each second, with the link type it first had. Capture thread only.
class LiveCapture final : public PacketSource {
 public:
  explicit LiveCapture(LiveOptions options);
  ~LiveCapture() override;
  LiveCapture(const LiveCapture&) = delete;
  LiveCapture& operator=(const LiveCapture&) = delete;

  /// Opens the capture (needs CAP_NET_RAW). Returns "" or what failed.
  std::string open();
  void close();
  pcap_t* handle() const noexcept { return handle_; }
  const LiveOptions& options() const noexcept { return options_; }

  // PacketSource
  decode::LinkType link() const noexcept override { return link_; }
  bool live() const noexcept override { return true; }
  bool is_open() const noexcept override { return handle_ != nullptr; }
  SourceRead read(const PacketHandlers& h) override;
  const std::string& error() const noexcept override { return error_; }

  /// Waits until packets can be read or `timeout` passes. Returns "" or the socket's error
  /// (the interface went down or vanished): then the caller closes and reopens.
  std::string wait(std::chrono::milliseconds timeout);

  /// Drops since the previous call, those counted when the capture was lost included.
  /// pcap_stats counters are 32-bit on Linux and wrap; sysfs counters restart when the
  /// interface is re-created: both handled.
  CaptureDrops take_drops() override;

 private:
  std::optional<std::uint64_t> read_rx_dropped() const;

  LiveOptions options_;
  pcap_t* handle_ = nullptr;
  decode::LinkType link_ = decode::LinkType::ethernet;
  std::uint32_t last_ps_drop_ = 0;
  std::optional<std::uint64_t> last_rx_dropped_;
  // read(): the link type of the first open (another one is not this interface any more),
  // when to try to open again, whether the failure to was logged, the last error.
  std::optional<decode::LinkType> first_link_;
  std::chrono::steady_clock::time_point next_open_{};
  bool down_logged_ = false;
  CaptureDrops held_drops_;  ///< counted when the capture was lost
  std::string error_;
};

}  // namespace teiten::sensor

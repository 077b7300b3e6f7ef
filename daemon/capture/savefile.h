// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <pcap/pcap.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "daemon/capture/packet_source.h"

namespace teiten::sensor {

/// An open capture file (pcap or pcapng) as a packet source: its libpcap handle, link type
/// and the stdio buffer libpcap reads it through (1 MiB: with stdio's default of one page,
/// reading took a read(2) per 4 KiB, a fifth of the capture thread's time). Resume and
/// pacing belong here: resume_after() hands the first packets over to be learnt only, and
/// pace() spreads the rest over time.
class Savefile final : public PacketSource {
 public:
  static constexpr std::size_t kBufferBytes = std::size_t{1} << 20;
  Savefile(pcap_t* handle, decode::LinkType link, std::unique_ptr<char[]> buffer, bool blocking)
      : handle_(handle), link_(link), buffer_(std::move(buffer)), blocking_(blocking) {}
  ~Savefile() override {
    if (handle_) pcap_close(handle_);  // closes the stream first, then buffer_ goes
  }
  Savefile(const Savefile&) = delete;
  Savefile& operator=(const Savefile&) = delete;

  /// The first `packets` are already in sealed buckets (a resumed replay): learnt, not
  /// counted.
  void resume_after(std::uint64_t packets) noexcept { skip_ = packets; }
  /// Packet n (counted from the first not skipped) is handed over no earlier than n / pps
  /// after the first; 0: as fast as the reader takes them.
  void pace(std::uint64_t packets_per_second) noexcept { pps_ = packets_per_second; }

  pcap_t* handle() const noexcept { return handle_; }
  decode::LinkType link() const noexcept override { return link_; }
  bool live() const noexcept override { return false; }
  bool blocking() const noexcept override { return blocking_; }
  SourceRead read(const PacketHandlers& h) override;
  const std::string& error() const noexcept override { return error_; }

 private:
  static void on_slow(u_char* user, const pcap_pkthdr* h, const u_char* bytes);

  pcap_t* handle_;
  decode::LinkType link_;
  std::unique_ptr<char[]> buffer_;
  bool blocking_;
  std::uint64_t skip_ = 0;
  std::uint64_t pps_ = 0;
  std::uint64_t index_ = 0;  ///< packets read so far, skipped ones included
  std::chrono::steady_clock::time_point pace_start_{};
  const PacketHandlers* handlers_ = nullptr;  ///< during read(), for on_slow
  std::string error_;
};

/// Opens a savefile (pcap or pcapng; "-": standard input) and checks its link type.
/// Returns nullptr with `error` set ("cannot open ...", "unsupported link type ...").
std::unique_ptr<Savefile> open_savefile(const std::string& path, std::string& error);

}  // namespace teiten::sensor

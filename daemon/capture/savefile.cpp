// SPDX-License-Identifier: Apache-2.0
#include "daemon/capture/savefile.h"

#include <stdio_ext.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/log/log.h"

namespace teiten::sensor {

std::unique_ptr<Savefile> open_savefile(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  // "-": standard input (a pipe from tcpdump -w -), with stdio's buffer: it outlives
  // the Savefile (libpcap does not close stdin).
  const bool from_stdin = path == "-";
  // Opening a FIFO blocks until something opens it for writing: say so, or the daemon
  // just seems to hang.
  struct stat st {};
  if (!from_stdin && ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) {
    log::get("capture")->info("--read {}: a FIFO; waiting for a writer to open it", path);
  }
  FILE* file = from_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (!file) {
    error = "cannot open capture " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  // Only the capture thread reads this stream. Once a process has a second thread, glibc
  // locks a FILE on every fread, and libpcap makes two per packet.
  __fsetlocking(file, FSETLOCKING_BYCALLER);
  std::unique_ptr<char[]> buffer;
  if (!from_stdin) {
    buffer = std::make_unique<char[]>(Savefile::kBufferBytes);
    if (std::setvbuf(file, buffer.get(), _IOFBF, Savefile::kBufferBytes) != 0) {
      buffer.reset();  // stdio's own buffer then
    }
  }
  pcap_t* h = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
  if (!h) {
    if (!from_stdin) std::fclose(file);
    error = "cannot open capture " + path + ": " + errbuf;
    return nullptr;
  }
  const int dlt = pcap_datalink(h);
  const auto type = decode::link_type_from_dlt(dlt);
  if (!type) {
    const char* name = pcap_datalink_val_to_name(dlt);
    error = "unsupported link type " + std::string{name ? name : "?"} + " (" + std::to_string(dlt) +
            ") in " + path +
            "; supported: EN10MB (with 802.1Q/802.1ad), LINUX_SLL, LINUX_SLL2, RAW, IPV4, "
            "IPV6, NULL, LOOP";
    pcap_close(h);
    return nullptr;
  }
  // Not a regular file (standard input, a FIFO): a read can block while the writer is
  // quiet, and a stop must be able to end it.
  struct stat fst {};
  const bool blocking = ::fstat(::fileno(file), &fst) == 0 && !S_ISREG(fst.st_mode);
  return std::make_unique<Savefile>(h, *type, std::move(buffer), blocking);
}

SourceRead Savefile::read(const PacketHandlers& h) {
  // At full speed past the resumed part, libpcap calls the reader's handler directly.
  const bool plain = index_ >= skip_ && pps_ == 0;
  int n = 0;
  if (plain) [[likely]] {
    n = pcap_dispatch(handle_, 4096, h.packet, h.user);
    if (n > 0) index_ += static_cast<std::uint64_t>(n);
  } else {
    handlers_ = &h;
    n = pcap_dispatch(handle_, 4096, &Savefile::on_slow, reinterpret_cast<u_char*>(this));
    handlers_ = nullptr;
  }
  if (n == 0 || n == PCAP_ERROR_BREAK) return SourceRead::end;
  if (n == PCAP_ERROR) {
    // A read ended by a stop (EINTR from the reader's signal) is the end asked for.
    if (blocking_ && h.stop && h.stop->load(std::memory_order_relaxed)) return SourceRead::end;
    error_ = std::string{"pcap_dispatch failed: "} + pcap_geterr(handle_);
    return SourceRead::failed;
  }
  return SourceRead::packets;
}

void Savefile::on_slow(u_char* user, const pcap_pkthdr* hdr, const u_char* bytes) {
  auto* self = reinterpret_cast<Savefile*>(user);
  const PacketHandlers& h = *self->handlers_;
  const std::uint64_t index = self->index_++;
  if (index < self->skip_) return h.learn(h.user, hdr, bytes);
  if (self->pps_) {
    // Paced replay: packet n leaves no earlier than n / pps after the first.
    if (index == self->skip_) self->pace_start_ = std::chrono::steady_clock::now();
    const auto due =
        self->pace_start_ + std::chrono::microseconds((index - self->skip_) * 1000000 / self->pps_);
    while (!(h.stop && h.stop->load(std::memory_order_relaxed)) &&
           std::chrono::steady_clock::now() < due) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  h.packet(h.user, hdr, bytes);
}

}  // namespace teiten::sensor

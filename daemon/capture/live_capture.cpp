// SPDX-License-Identifier: Apache-2.0
#include "daemon/capture/live_capture.h"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <thread>
#include <utility>

#include "common/log/log.h"

namespace teiten::sensor {

std::string bpf_filter_for(const std::vector<std::string>& addresses, const std::string& extra) {
  std::string hosts;
  for (const auto& a : addresses) {
    if (!hosts.empty()) hosts += " or ";
    hosts += (a.find('/') != std::string::npos ? "net " : "host ") + a;
  }
  std::string f = "(ip or ip6)";
  if (!hosts.empty()) f += " and (" + hosts + ")";
  if (!extra.empty()) f += " and (" + extra + ")";
  // 802.1Q-tagged frames on a trunk port (when the NIC does not strip the tag; libpcap's
  // "vlan" also matches a tag the kernel moved into metadata).
  return "(" + f + ") or (vlan and " + f + ")";
}

LiveCapture::LiveCapture(LiveOptions options) : options_(std::move(options)) {}

LiveCapture::~LiveCapture() {
  close();
}

std::string LiveCapture::open() {
  close();
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* h = pcap_create(options_.interface.c_str(), errbuf);
  if (!h) return std::string{"pcap_create "} + options_.interface + ": " + errbuf;
  auto fail = [&](const std::string& what) {
    std::string msg = what + " " + options_.interface + ": " + pcap_geterr(h);
    pcap_close(h);
    return msg;
  };
  pcap_set_snaplen(h, static_cast<int>(options_.snaplen));
  pcap_set_buffer_size(h, static_cast<int>(options_.buffer_bytes));
  pcap_set_timeout(h, static_cast<int>(options_.timeout_ms));
  pcap_set_immediate_mode(h, options_.immediate ? 1 : 0);
  pcap_set_promisc(h, options_.promiscuous ? 1 : 0);
  const int rc = pcap_activate(h);
  if (rc < 0) {
    std::string msg = std::string{"pcap_activate "} + options_.interface + ": " +
                      pcap_statustostr(rc) + " (" + pcap_geterr(h) + ")";
    pcap_close(h);
    return msg;
  }
  const int dlt = pcap_datalink(h);
  const auto type = decode::link_type_from_dlt(dlt);
  if (!type) {
    const char* name = pcap_datalink_val_to_name(dlt);
    pcap_close(h);
    return "unsupported link type " + std::string{name ? name : "?"} + " on " + options_.interface;
  }
  bpf_program prog{};
  if (pcap_compile(h, &prog, options_.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    return fail("capture filter '" + options_.filter + "' does not compile on");
  const int set = pcap_setfilter(h, &prog);
  pcap_freecode(&prog);
  if (set != 0) return fail("pcap_setfilter");
  if (pcap_setnonblock(h, 1, errbuf) != 0) {
    pcap_close(h);
    return std::string{"pcap_setnonblock "} + options_.interface + ": " + errbuf;
  }
  handle_ = h;
  link_ = *type;
  if (!first_link_) first_link_ = link_;
  last_ps_drop_ = 0;
  // Counts from before this capture are not ours to charge.
  last_rx_dropped_ = read_rx_dropped();
  return {};
}

void LiveCapture::close() {
  if (handle_) pcap_close(handle_);
  handle_ = nullptr;
}

std::string LiveCapture::wait(std::chrono::milliseconds timeout) {
  const int fd = handle_ ? pcap_get_selectable_fd(handle_) : -1;
  if (fd < 0) return {};
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
  // In non-blocking mode libpcap does not poll itself, so the socket's error (ENETDOWN
  // when the interface goes down, ENODEV when it is removed) is ours to read.
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0 && !(p.revents & (POLLHUP | POLLNVAL))) return {};
    return std::string{"capture socket on "} + options_.interface + ": " +
           (err ? std::strerror(err) : "hang-up");
  }
  return {};
}

SourceRead LiveCapture::read(const PacketHandlers& h) {
  using clock = std::chrono::steady_clock;
  auto logger = log::get("capture");
  if (!handle_) {
    if (clock::now() >= next_open_) {
      error_ = open();
      if (error_.empty() && link_ == first_link_) {
        logger->info("capture re-opened interface={}", options_.interface);
        down_logged_ = false;
        return SourceRead::opened;
      }
      if (error_.empty()) close();  // another link type: not this interface
      if (!down_logged_) {
        logger->warn("capture cannot be re-opened interface={}: {} (retrying each second)",
                     options_.interface, error_.empty() ? "the link type changed" : error_);
      }
      down_logged_ = true;
      next_open_ = clock::now() + std::chrono::seconds(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return SourceRead::packets;
  }
  error_ = wait(std::chrono::milliseconds(100));
  if (error_.empty()) {
    if (pcap_dispatch(handle_, 4096, h.packet, h.user) == PCAP_ERROR) error_ = pcap_geterr(handle_);
  }
  if (error_.empty()) return SourceRead::packets;
  // Down or gone: what the kernel counted so far is kept for take_drops(), then reopen.
  const CaptureDrops d = take_drops();
  held_drops_.kernel += d.kernel;
  held_drops_.interface += d.interface;
  close();
  logger->warn("capture lost interface={}: {}", options_.interface, error_);
  down_logged_ = false;
  next_open_ = clock::now() + std::chrono::seconds(1);
  return SourceRead::lost;
}

std::optional<std::uint64_t> LiveCapture::read_rx_dropped() const {
  std::ifstream in("/sys/class/net/" + options_.interface + "/statistics/rx_dropped");
  std::uint64_t v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

CaptureDrops LiveCapture::take_drops() {
  CaptureDrops d = std::exchange(held_drops_, CaptureDrops{});
  if (handle_) {
    pcap_stat st{};
    if (pcap_stats(handle_, &st) == 0) {
      // u_int arithmetic: correct across one wrap of the 32-bit counter.
      d.kernel += static_cast<std::uint32_t>(st.ps_drop - last_ps_drop_);
      last_ps_drop_ = st.ps_drop;
    }
  }
  if (const auto now = read_rx_dropped()) {
    // Lower than before: the interface was re-created and its counter restarted.
    if (last_rx_dropped_ && *now >= *last_rx_dropped_) {
      d.interface += *now - *last_rx_dropped_;
    } else if (last_rx_dropped_) {
      d.interface += *now;
    }
    last_rx_dropped_ = now;
  }
  return d;
}

}  // namespace teiten::sensor

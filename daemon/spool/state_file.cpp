// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "daemon/spool/framing.h"

namespace teiten::sensor {
namespace {
constexpr std::size_t kSlotBytes = 4 + 7 * 8 + 4;
constexpr off_t kSlotStride = 512;
}  // namespace

using spool_io::crc32;
using spool_io::get_le;
using spool_io::put_le;

StateFile::StateFile(const std::string& dir) : path_(dir + "/state") {
  const std::string data = spool_io::read_all(path_);
  bool found = false;
  for (int slot = 0; slot < 2; ++slot) {
    const std::size_t at = static_cast<std::size_t>(slot * kSlotStride);
    if (data.size() < at + kSlotBytes || data.compare(at, 4, "TSS1") != 0) continue;
    const char* p = data.data() + at;
    if (crc32(std::string_view(p, kSlotBytes - 4)) != get_le(p + kSlotBytes - 4, 4)) continue;
    const std::uint64_t generation = get_le(p + 4, 8);
    if (found && generation < generation_) continue;
    found = true;
    generation_ = generation;
    loaded_ = SpoolState{get_le(p + 12, 8), get_le(p + 20, 8), get_le(p + 28, 8),
                         get_le(p + 36, 8), get_le(p + 44, 8), get_le(p + 52, 8)};
  }
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ >= 0 && data.size() >= static_cast<std::size_t>(2 * kSlotStride)) return;
  // New (or unusable): write the whole file once, so that its blocks exist from now on.
  if (fd_ >= 0) ::close(fd_);
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  const std::string zeros(2 * kSlotStride, '\0');
  const bool ok = fd >= 0 &&
                  ::write(fd, zeros.data(), zeros.size()) == static_cast<ssize_t>(zeros.size()) &&
                  ::fdatasync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    throw std::runtime_error("cannot create the spool state file " + path_ + ": " +
                             std::strerror(errno));
  }
  spool_io::fsync_dir(dir);
  fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0 || (found && !write(loaded_, true))) {
    throw std::runtime_error("cannot write the spool state file " + path_ + ": " +
                             std::strerror(errno));
  }
}

StateFile::~StateFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool StateFile::write(const SpoolState& s, bool sync) {
  std::string slot = "TSS1";
  put_le(slot, generation_ + 1, 8);
  for (const std::uint64_t v :
       {s.next_seq, s.resume_token, s.acked_below, s.sent_below, s.unreported_drops, s.dropping})
    put_le(slot, v, 8);
  put_le(slot, crc32(slot), 4);
  const off_t at = static_cast<off_t>((generation_ + 1) % 2) * kSlotStride;
  if (fd_ < 0 || ::pwrite(fd_, slot.data(), slot.size(), at) != static_cast<ssize_t>(slot.size()) ||
      (sync && ::fdatasync(fd_) != 0)) {
    return false;
  }
  ++generation_;
  synced_ = sync;
  return true;
}

}  // namespace teiten::sensor

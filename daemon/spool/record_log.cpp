// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/record_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "daemon/spool/framing.h"

namespace teiten::sensor {
namespace fs = std::filesystem;

namespace spool_io {

std::uint32_t crc32(std::string_view s) {
  boost::crc_32_type crc;
  crc.process_bytes(s.data(), s.size());
  return crc.checksum();
}

std::string read_all(const std::string& path) {
  std::string data;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return data;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace spool_io

using spool_io::crc32;
using spool_io::get_le;
using spool_io::put_le;

std::vector<std::string> RecordLog::list() {
  // Only names are held in memory while listing, so thousands of leftovers cost one
  // directory scan.
  std::vector<std::string> segments;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 28 && name.rfind("seg-", 0) == 0 && name.substr(24) == ".log" &&
        name.find_first_not_of("0123456789", 4) == 24)
      segments.push_back(name);
  }
  if (ec) throw std::runtime_error("cannot read spool folder " + dir_ + ": " + ec.message());
  std::sort(segments.begin(), segments.end());
  if (!segments.empty()) number_from(number_of(segments.back()) + 1);
  return segments;
}

std::string RecordLog::path_of(std::uint64_t number) const {
  char name[40];
  std::snprintf(name, sizeof name, "seg-%020llu.log", static_cast<unsigned long long>(number));
  return dir_ + "/" + name;
}

std::uint64_t RecordLog::number_of(const std::string& segment) {
  return std::stoull(segment.substr(segment.size() - 24, 20));
}

std::uint64_t RecordLog::scan(
    const std::string& path, std::span<const char* const> magics,
    const std::function<void(const char*, std::string_view, std::size_t)>& on_record) const {
  const std::string data = spool_io::read_all(path);
  const char* p = data.data();
  std::uint64_t corrupt = 0;
  std::size_t off = 0;
  // Torn or garbled: count it once and look for the next record's magic.
  auto resync = [&] {
    ++corrupt;
    std::size_t next = std::string::npos;
    for (const char* m : magics) next = std::min(next, data.find(m, off + 1, 4));
    off = next;
  };
  while (off < data.size()) {
    const char* magic = nullptr;
    if (data.size() - off >= kHeader) {
      for (const char* m : magics)
        if (std::memcmp(p + off, m, 4) == 0) magic = m;
    }
    if (!magic) {
      resync();
      continue;
    }
    const std::uint64_t len = get_le(p + off + 4, 4);
    const std::uint64_t crc = get_le(p + off + 8, 4);
    if (len > kMaxRecord || len > data.size() - off - kHeader) {
      resync();
      continue;
    }
    const std::size_t at = off + kHeader;
    const std::string_view payload(p + at, len);
    off = at + len;
    if (crc32(payload) != crc) {
      ++corrupt;
      continue;
    }
    on_record(magic, payload, at);
  }
  return corrupt;
}

std::optional<std::vector<std::uint64_t>> RecordLog::append(const char* magic,
                                                            std::span<const std::string> payloads) {
  if (current_.empty() || current_size_ >= segment_bytes_) {
    current_ = path_of(counter_++);
    current_size_ = 0;
  }
  // The records one after another, written at once and made durable by one fdatasync.
  std::string rec;
  std::vector<std::uint64_t> payload_at;
  for (const std::string& payload : payloads) {
    rec.append(magic, 4);
    put_le(rec, payload.size(), 4);
    put_le(rec, crc32(payload), 4);
    payload_at.push_back(current_size_ + rec.size());
    rec += payload;
  }
  const bool created = current_size_ == 0;
  const int fd = ::open(current_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return std::nullopt;
  std::size_t done = 0;
  while (done < rec.size()) {
    const ssize_t n = ::write(fd, rec.data() + done, rec.size() - done);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // Leave no half record behind: cut the file back to where these records started.
      if (::ftruncate(fd, static_cast<off_t>(current_size_)) != 0) {
        // Cannot cut it back: a new segment next, so offsets stay right; the reader skips
        // the torn tail (magic + CRC).
        current_.clear();
      }
      ::close(fd);
      return std::nullopt;
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = ::fdatasync(fd) == 0;
  if (!synced && ::ftruncate(fd, static_cast<off_t>(current_size_)) != 0) {
    // Cannot cut it back: start a new segment, so offsets stay right; the reader skips a
    // duplicate tail by its CRC and the collector deduplicates a record read back twice.
    current_.clear();
  }
  ::close(fd);
  if (!synced) return std::nullopt;
  if (created) spool_io::fsync_dir(dir_);
  current_size_ += rec.size();
  return payload_at;
}

std::optional<std::string> RecordLog::read(const std::string& segment, std::uint64_t offset,
                                           std::uint32_t length) const {
  std::string out(length, '\0');
  const int fd = ::open(segment.c_str(), O_RDONLY | O_CLOEXEC);
  const ssize_t n = fd < 0 ? -1 : ::pread(fd, out.data(), length, static_cast<off_t>(offset));
  if (fd >= 0) ::close(fd);
  if (n != static_cast<ssize_t>(length)) return std::nullopt;
  return out;
}

void RecordLog::remove(const std::string& segment) {
  std::error_code ec;
  fs::remove(segment, ec);
  spool_io::fsync_dir(dir_);
  if (segment == current_) current_.clear();
}

void RecordLog::remove_unless(const std::function<bool(const std::string&)>& keep) {
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir_, ec)) {
    if (f.path().filename().string().rfind("seg-", 0) != 0) continue;
    const std::string path = f.path().string();
    if (keep(path)) continue;
    fs::remove(f.path(), ec);
    if (path == current_) current_.clear();
  }
}

}  // namespace teiten::sensor

#include "daemon/spool/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "common/bucket/bucket_json.h"
#include "common/log/log.h"

namespace teiten::sensor {
namespace fs = std::filesystem;
namespace {

// Record framing: magic "TSP1", payload length (u32 LE), CRC-32 of the payload (u32 LE),
// payload (one bucket as a JSON line). The magic lets a reader resynchronise after a torn
// write; the CRC catches bit rot and half-written payloads.
constexpr std::uint8_t kMagic[4] = {'T', 'S', 'P', '1'};
constexpr std::size_t kHeader = 12;
constexpr std::uint32_t kMaxRecord = 64u << 20;

std::uint32_t crc32(const std::string& s) {
  boost::crc_32_type crc;
  crc.process_bytes(s.data(), s.size());
  return crc.checksum();
}

void put_le32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint32_t get_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
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

}  // namespace

Spool::Spool(std::string dir, std::uint64_t max_bytes, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes), segment_bytes_(segment_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create spool folder " + dir_ + ": " + ec.message());
  // Segment names sort in write order: seg-<20-digit counter>.log. Only names are held
  // in memory while listing, so thousands of leftovers cost one directory scan.
  std::set<std::string> segments;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 28 && name.rfind("seg-", 0) == 0 && name.substr(24) == ".log")
      segments.insert(name);
  }
  if (ec) throw std::runtime_error("cannot read spool folder " + dir_ + ": " + ec.message());
  {
    const std::string state = read_all(dir_ + "/state");
    unsigned long long seq = 0, token = 0, acked = 0;
    if (std::sscanf(state.c_str(), "next_seq %llu\nresume_token %llu\nacked_below %llu", &seq,
                    &token, &acked) == 3) {
      next_seq_ = seq;
      resume_token_ = token;
      acked_below_ = acked;
    }
  }
  const std::uint64_t state_seq = next_seq_, state_token = resume_token_;
  for (const auto& name : segments) {
    segment_counter_ =
        std::max<std::uint64_t>(segment_counter_, std::stoull(name.substr(4, 20)) + 1);
    load_segment(dir_ + "/" + name);
  }
  std::lock_guard lock(mu_);
  // Records written after the state file's last update (a kill in between) advanced the
  // sequence and resume token: persist that now, before any of those records can be
  // acknowledged and deleted, or a later start would fall back to the stale state.
  if ((next_seq_ != state_seq || resume_token_ != state_token) && !write_state_locked()) {
    throw std::runtime_error("cannot write the spool state in " + dir_ + ": " +
                             std::strerror(errno));
  }
  delete_done_segments_locked();
  log::get("spool")->info(
      "spool open dir={} segments={} records={} corrupt={} state_next_seq={} "
      "state_resume_token={} next_seq={} resume_token={}",
      dir_, segments.size(), entries_.size(), stats_.corrupt_records, state_seq, state_token,
      next_seq_, resume_token_);
}

void Spool::load_segment(const std::string& path) {
  const std::string data = read_all(path);
  const auto* p = reinterpret_cast<const std::uint8_t*>(data.data());
  std::size_t off = 0;
  while (off < data.size()) {
    if (data.size() - off < kHeader || std::memcmp(p + off, kMagic, 4) != 0) {
      // Torn or garbled: count it once and look for the next record's magic.
      ++stats_.corrupt_records;
      const auto next = data.find("TSP1", off + 1);
      if (next == std::string::npos) break;
      off = next;
      continue;
    }
    const std::uint32_t len = get_le32(p + off + 4);
    const std::uint32_t crc = get_le32(p + off + 8);
    if (len > kMaxRecord || len > data.size() - off - kHeader) {
      ++stats_.corrupt_records;
      const auto next = data.find("TSP1", off + 1);
      if (next == std::string::npos) break;
      off = next;
      continue;
    }
    const std::string payload = data.substr(off + kHeader, len);
    std::string error;
    std::optional<bucket::SealedBucket> b;
    if (crc32(payload) == crc && payload.size() > 8)
      b = bucket::from_json_line(std::string_view(payload).substr(8), error);
    if (!b) {
      ++stats_.corrupt_records;
      off += kHeader + len;
      continue;
    }
    std::uint64_t token = 0;
    for (int i = 7; i >= 0; --i)
      token = (token << 8) | static_cast<std::uint8_t>(payload[static_cast<std::size_t>(i)]);
    resume_token_ = std::max(resume_token_, token);
    next_seq_ = std::max(next_seq_, b->seq + 1);
    // Delivery is in order, so everything below acked_below was acknowledged: such a record
    // only waits for its segment to be deleted.
    if (b->seq < acked_below_) {
      off += kHeader + len;
      continue;
    }
    stats_.bytes += kHeader + len;
    entries_.push_back(Entry{b->boot_id, b->seq, b->accounted_packets(), path, off + kHeader, len});
    off += kHeader + len;
  }
  stats_.pending = entries_.size();
}

bool Spool::write_record(const std::string& payload) {
  if (current_segment_.empty() || current_size_ >= segment_bytes_) {
    char name[40];
    std::snprintf(name, sizeof name, "seg-%020llu.log",
                  static_cast<unsigned long long>(segment_counter_++));
    current_segment_ = dir_ + "/" + name;
    current_size_ = 0;
  }
  std::string rec(reinterpret_cast<const char*>(kMagic), 4);
  put_le32(rec, static_cast<std::uint32_t>(payload.size()));
  put_le32(rec, crc32(payload));
  rec += payload;
  const bool created = current_size_ == 0;
  const int fd = ::open(current_segment_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < rec.size()) {
    const ssize_t n = ::write(fd, rec.data() + done, rec.size() - done);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      // Leave no half record behind: cut the file back to where this record started.
      if (::ftruncate(fd, static_cast<off_t>(current_size_)) != 0) {
        // A torn tail is still detected by the reader (magic + CRC).
      }
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = ::fdatasync(fd) == 0;
  if (!synced && ::ftruncate(fd, static_cast<off_t>(current_size_)) != 0) {
    // Cannot cut it back: start a new segment, so offsets stay right; the reader skips a
    // duplicate tail by its CRC and the collector deduplicates a record read back twice.
    current_segment_.clear();
  }
  ::close(fd);
  if (!synced) return false;
  if (created) fsync_dir(dir_);
  current_size_ += rec.size();
  return true;
}

void Spool::drop_oldest_locked() {
  // Whole segments go, so that what was dropped (and counted) cannot come back from disk
  // after a restart.
  const std::string segment = entries_.front().segment;
  while (!entries_.empty() && entries_.front().segment == segment) {
    const Entry& e = entries_.front();
    ++stats_.dropped_buckets;
    stats_.dropped_packets += e.packets;
    undelivered_drops_ += e.packets;
    stats_.bytes -= kHeader + e.length;
    entries_.pop_front();
  }
  stats_.pending = entries_.size();
  if (segment == current_segment_) current_segment_.clear();
  std::error_code ec;
  fs::remove(segment, ec);
}

bool Spool::append(const bucket::SealedBucket& b, std::uint64_t resume_token) {
  std::string payload;
  for (int i = 0; i < 8; ++i) payload += static_cast<char>((resume_token >> (8 * i)) & 0xFF);
  payload += bucket::to_json_line(b);
  std::lock_guard lock(mu_);
  const std::uint64_t bytes = kHeader + payload.size();
  // At the bound, the oldest buckets make room (their packets are counted as dropped and
  // reported in a later bucket's loss.spool_dropped).
  while (!entries_.empty() && stats_.bytes + bytes > max_bytes_) drop_oldest_locked();
  if (!write_record(payload)) {
    ++stats_.write_errors;
    delete_done_segments_locked();
    return false;
  }
  ++stats_.appended;
  stats_.bytes += bytes;
  next_seq_ = std::max(next_seq_, b.seq + 1);
  resume_token_ = std::max(resume_token_, resume_token);
  // The record is durable; the state file only has to catch up (a crash in between is
  // repaired at start from the records themselves). Failure here is counted, not fatal.
  state_dirty_ = true;
  if (!write_state_locked()) ++stats_.write_errors;
  // write_record may have started a new segment: the record is the last one written.
  entries_.push_back(Entry{b.boot_id, b.seq, b.accounted_packets(), current_segment_,
                           current_size_ - payload.size(),
                           static_cast<std::uint32_t>(payload.size())});

  stats_.pending = entries_.size();
  delete_done_segments_locked();
  return true;
}

std::vector<bucket::SealedBucket> Spool::peek(std::size_t max) {
  std::lock_guard lock(mu_);
  std::vector<bucket::SealedBucket> out;
  for (std::size_t i = 0; i < entries_.size() && out.size() < max; ++i) {
    const Entry& e = entries_[i];
    std::string payload(e.length, '\0');
    const int fd = ::open(e.segment.c_str(), O_RDONLY | O_CLOEXEC);
    const ssize_t n =
        fd < 0 ? -1 : ::pread(fd, payload.data(), e.length, static_cast<off_t>(e.offset));
    if (fd >= 0) ::close(fd);
    std::string error;
    auto b = n == static_cast<ssize_t>(e.length) && e.length > 8
                 ? bucket::from_json_line(std::string_view(payload).substr(8), error)
                 : std::nullopt;
    if (!b) {
      // Verified when written or loaded; unreadable now means the disk changed under us.
      ++stats_.corrupt_records;
      continue;
    }
    out.push_back(std::move(*b));
  }
  return out;
}

void Spool::ack(const std::vector<std::pair<std::string, std::uint64_t>>& ids) {
  std::lock_guard lock(mu_);
  std::set<std::pair<std::string, std::uint64_t>> done(ids.begin(), ids.end());
  std::deque<Entry> keep;
  for (auto& e : entries_) {
    if (done.count({e.boot_id, e.seq})) {
      ++stats_.acked;
      stats_.bytes -= kHeader + e.length;
    } else {
      keep.push_back(std::move(e));
    }
  }
  entries_ = std::move(keep);
  stats_.pending = entries_.size();
  // Record how far delivery got before deleting anything, so that acknowledged buckets
  // left in a segment that is still needed do not come back after a restart.
  const std::uint64_t below = entries_.empty() ? next_seq_ : entries_.front().seq;
  if (below > acked_below_) {
    acked_below_ = below;
    state_dirty_ = true;
  }
  if (state_dirty_ && !write_state_locked()) {
    // The state on disk is behind (e.g. the disk is full): deleting records now could let
    // a later start resume from it and seal delivered packets again. Keep the files; the
    // next ack retries.
    ++stats_.write_errors;
    return;
  }
  delete_done_segments_locked();
}

void Spool::delete_done_segments_locked() {
  // A segment with nothing unacknowledged goes, the one being written included (the next
  // append starts a new one): a small disk must get its space back.
  std::set<std::string> live;
  for (const auto& e : entries_) live.insert(e.segment);
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir_, ec)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("seg-", 0) != 0) continue;
    const std::string path = f.path().string();
    if (live.count(path)) continue;
    fs::remove(f.path(), ec);
    if (path == current_segment_) current_segment_.clear();
  }
}

bool Spool::write_state_locked() {
  const std::string path = dir_ + "/state", tmp = dir_ + "/state.tmp";
  const std::string text = "next_seq " + std::to_string(next_seq_) + "\nresume_token " +
                           std::to_string(resume_token_) + "\nacked_below " +
                           std::to_string(acked_below_) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                  ::fdatasync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return false;
  fsync_dir(dir_);
  state_dirty_ = false;
  return true;
}

std::uint64_t Spool::next_seq() {
  std::lock_guard lock(mu_);
  return next_seq_;
}

std::uint64_t Spool::resume_token() {
  std::lock_guard lock(mu_);
  return resume_token_;
}

std::uint64_t Spool::take_dropped_packets() {
  std::lock_guard lock(mu_);
  return std::exchange(undelivered_drops_, 0);
}

std::optional<std::uint64_t> Spool::max_seq() {
  std::lock_guard lock(mu_);
  std::optional<std::uint64_t> m;
  for (const auto& e : entries_) m = std::max(m.value_or(0), e.seq);
  return m;
}

SpoolStats Spool::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace teiten::sensor

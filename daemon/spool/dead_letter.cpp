// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/dead_letter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/bucket/bucket_json.h"

namespace teiten::sensor {

namespace fs = std::filesystem;

namespace {

constexpr const char* kHeld = ".json";
constexpr const char* kQueued = ".resend";
// A dead letter is one bucket line and a few fields: bounded like a bucket line.
constexpr std::uintmax_t kMaxFileBytes = bucket::kMaxBucketLineBytes + 4096;

bool write_durably(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const bool ok = done == data.size() && ::fdatasync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  const int dfd = ::open(fs::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

std::optional<nlohmann::json> read_letter(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec || size > kMaxFileBytes) return std::nullopt;
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("bucket") || !j["bucket"].is_string())
    return std::nullopt;
  return j;
}

}  // namespace

std::string to_json(const DeadLetter& d) {
  return nlohmann::ordered_json{{"boot_id", d.boot_id},
                                {"seq", d.seq},
                                {"start", bucket::format_rfc3339(d.start)},
                                {"packets", d.packets},
                                {"reason", d.reason},
                                {"message", d.message},
                                {"refused_at", bucket::format_rfc3339(d.refused_at)},
                                {"queued", d.queued}}
      .dump();
}

DeadLetterStore::DeadLetterStore(std::string dir, std::uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create " + dir_ + ": " + ec.message());
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const auto ext = entry.path().extension().string();
    if (ext != kHeld && ext != kQueued) continue;
    const auto j = read_letter(entry.path());
    if (!j) continue;  // left for an operator to look at; never sent
    std::string error;
    const auto b = bucket::from_json_line((*j)["bucket"].get<std::string>(), error);
    if (!b) continue;
    DeadLetter d;
    d.boot_id = b->boot_id;
    d.seq = b->seq;
    d.start = b->start;
    d.packets = b->observed_packets();
    d.reason = j->value("reason", "");
    d.message = j->value("message", "");
    d.refused_at = j->value("refused_at", std::int64_t{0});
    d.queued = ext == kQueued;
    d.bytes = entry.file_size(ec);
    index_.push_back(std::move(d));
  }
  std::sort(index_.begin(), index_.end(), [](const DeadLetter& a, const DeadLetter& b) {
    return std::tie(a.refused_at, a.boot_id, a.seq) < std::tie(b.refused_at, b.boot_id, b.seq);
  });
  count_locked();
}

std::string DeadLetterStore::path_of(const std::string& boot_id, std::uint64_t seq,
                                     bool queued) const {
  return dir_ + "/" + boot_id + "-" + std::to_string(seq) + (queued ? kQueued : kHeld);
}

void DeadLetterStore::count_locked() {
  stats_.held = stats_.held_packets = stats_.bytes = stats_.queued = 0;
  for (const auto& d : index_) {
    ++stats_.held;
    stats_.held_packets += d.packets;
    stats_.bytes += d.bytes;
    if (d.queued) ++stats_.queued;
  }
}

bool DeadLetterStore::put(const bucket::SealedBucket& b, const std::string& reason,
                          const std::string& message) {
  // Boot ids are hex from the sensor itself; anything else never names a file.
  if (b.boot_id.empty() || b.boot_id.size() > 64 ||
      b.boot_id.find_first_not_of("0123456789abcdefABCDEF-") != std::string::npos)
    return false;
  DeadLetter d;
  d.boot_id = b.boot_id;
  d.seq = b.seq;
  d.start = b.start;
  d.packets = b.observed_packets();
  d.reason = reason;
  d.message = message.substr(0, 1000);
  d.refused_at = std::time(nullptr);
  const std::string text = nlohmann::json{
      {"reason", d.reason},
      {"message", d.message},
      {"refused_at", d.refused_at},
      {"bucket", bucket::to_json_line(
                     b)}}.dump();
  d.bytes = text.size();
  std::lock_guard lock(mu_);
  if (!write_durably(path_of(b.boot_id, b.seq, false), text)) return false;
  std::error_code ec;
  fs::remove(path_of(b.boot_id, b.seq, true), ec);  // refused again after a resend
  std::erase_if(index_,
                [&](const DeadLetter& x) { return x.boot_id == d.boot_id && x.seq == d.seq; });
  index_.push_back(std::move(d));
  ++stats_.refused_total;
  enforce_bound_locked();
  return true;
}

void DeadLetterStore::enforce_bound_locked() {
  count_locked();
  // The oldest go first; the newest one always stays (it was just written).
  while (stats_.bytes > max_bytes_ && index_.size() > 1) {
    const DeadLetter d = index_.front();
    std::error_code ec;
    fs::remove(path_of(d.boot_id, d.seq, d.queued), ec);
    index_.erase(index_.begin());
    stats_.bytes -= std::min(stats_.bytes, d.bytes);
    ++stats_.dropped_buckets;
    stats_.dropped_packets += d.packets;
  }
  count_locked();
}

std::vector<DeadLetter> DeadLetterStore::list() {
  std::lock_guard lock(mu_);
  return index_;
}

std::size_t DeadLetterStore::queue_all() {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto& d : index_) {
    if (d.queued) continue;
    if (::rename(path_of(d.boot_id, d.seq, false).c_str(),
                 path_of(d.boot_id, d.seq, true).c_str()) == 0) {
      d.queued = true;
      ++n;
    }
  }
  count_locked();
  return n;
}

std::vector<bucket::SealedBucket> DeadLetterStore::queued(std::size_t max) {
  std::lock_guard lock(mu_);
  std::vector<bucket::SealedBucket> out;
  for (const auto& d : index_) {
    if (!d.queued) continue;
    if (out.size() >= max) break;
    const auto j = read_letter(path_of(d.boot_id, d.seq, true));
    std::string error;
    if (!j) continue;
    if (auto b = bucket::from_json_line((*j)["bucket"].get<std::string>(), error))
      out.push_back(std::move(*b));
  }
  return out;
}

void DeadLetterStore::delivered(const std::string& boot_id, std::uint64_t seq) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (fs::remove(path_of(boot_id, seq, true), ec)) ++stats_.resent_total;
  std::erase_if(index_, [&](const DeadLetter& x) {
    return x.boot_id == boot_id && x.seq == seq && x.queued;
  });
  count_locked();
}

DeadLetterStats DeadLetterStore::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace teiten::sensor

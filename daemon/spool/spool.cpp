// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>
#include <tuple>

#include "common/bucket/bucket_json.h"
#include "common/bucket/merge.h"
#include "common/log/log.h"
#include "daemon/spool/framing.h"

namespace teiten::sensor {
namespace fs = std::filesystem;
namespace {

// Record payloads (the record log frames them, record_log.h): "TSP1": resume token (u64
// LE) + one bucket as a JSON line. "TSP2", written by a merge: resume token + count (u32
// LE) + count x (n (u32 LE) + n x (first, last seq covered, u64 LE each) + length (u32 LE)
// + JSON line).
constexpr char kPlain[] = "TSP1";
constexpr char kMerged[] = "TSP2";
constexpr const char* kMagics[] = {kPlain, kMerged};
constexpr std::size_t kHeader = RecordLog::kHeader;
constexpr std::uint32_t kMaxRecord = RecordLog::kMaxRecord;

using spool_io::crc32;
using spool_io::get_le;
using spool_io::put_le;

}  // namespace

Spool::Spool(std::string dir, std::uint64_t max_bytes, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), bound_(max_bytes), log_(dir_, segment_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create spool folder " + dir_ + ": " + ec.message());
  std::vector<std::string> segments = log_.list();
  state_file_ = std::make_unique<StateFile>(dir_);
  const SpoolState& st = state_file_->loaded();
  next_seq_ = st.next_seq;
  resume_token_ = st.resume_token;
  acked_below_ = st.acked_below;
  sent_below_ = st.sent_below;
  unreported_drops_ = st.unreported_drops;
  dropping_ = st.dropping;
  const std::uint64_t state_seq = next_seq_, state_token = resume_token_;
  const bool finish_drop = dropping_ != 0;
  if (finish_drop) {
    // A kill came while a segment was being dropped: its packets are already counted as
    // dropped, so it must not be delivered too. Its number is never used again.
    const std::string path = log_.path_of(dropping_ - 1);
    if (std::erase(segments, path.substr(path.rfind('/') + 1))) log_.remove(path);
    log_.number_from(dropping_);
    dropping_ = 0;
  }
  std::vector<Entry> loaded;  // in write order
  for (const auto& name : segments) load_segment(dir_ + "/" + name, loaded);
  // A merge writes its coarser buckets before it deletes what they replace, so a kill in
  // between leaves both: the later record covering a sequence number wins. (Acknowledged
  // merged buckets still cover: their parts may be on disk.)
  std::map<std::uint64_t, std::uint64_t> covered;  // first -> last seq, of kept merged buckets
  std::vector<Entry> kept;
  for (auto it = loaded.rbegin(); it != loaded.rend(); ++it) {
    auto c = covered.upper_bound(it->seq);
    if (c != covered.begin() && it->seq <= std::prev(c)->second) continue;
    for (const auto& [lo, hi] : it->covers) covered[lo] = hi;
    // Delivery is in order: below acked_below only segment deletion was still pending.
    if (it->seq < acked_below_) continue;
    kept.push_back(std::move(*it));
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [](const Entry& a, const Entry& b) { return a.seq < b.seq; });
  for (auto& e : kept) {
    stats_.bytes += e.bytes;
    entries_.push_back(std::move(e));
  }
  stats_.pending = entries_.size();
  std::lock_guard lock(mu_);
  // A bucket appended after the state file's last update took the unreported drops with it.
  if (next_seq_ != state_seq) unreported_drops_ = 0;
  // Records written after the state file's last update (a kill in between) advanced the
  // sequence and resume token: persist that now, before any of those records can be
  // acknowledged and deleted, or a later start would fall back to the stale state.
  if ((next_seq_ != state_seq || resume_token_ != state_token || finish_drop) &&
      !write_state_locked()) {
    throw std::runtime_error("cannot write the spool state in " + dir_ + ": " +
                             std::strerror(errno));
  }
  delete_done_segments_locked();
  log::get("spool")->info(
      "spool open dir={} segments={} records={} corrupt={} state_next_seq={} "
      "state_resume_token={} next_seq={} resume_token={} unreported_dropped_packets={}",
      dir_, segments.size(), entries_.size(), stats_.corrupt_records, state_seq, state_token,
      next_seq_, resume_token_, unreported_drops_);
}

void Spool::load_segment(const std::string& path, std::vector<Entry>& out) {
  stats_.corrupt_records +=
      log_.scan(path, kMagics, [&](const char* magic, std::string_view payload, std::size_t at) {
        const bool plain = magic == kPlain;
        const std::size_t len = payload.size();
        if (len < 8) {
          ++stats_.corrupt_records;
          return;
        }
        resume_token_ = std::max(resume_token_, get_le(payload.data(), 8));
        // (covers, offset, length) of each bucket in the record, checked before use.
        struct Part {
          std::vector<std::pair<std::uint64_t, std::uint64_t>> covers;
          std::size_t from, n;
        };
        std::vector<Part> parts;
        bool ok = true;
        if (plain) {
          parts.push_back(Part{{}, 8, len - 8});
        } else {
          std::size_t q = 12;
          const std::uint64_t count = len >= 12 ? get_le(payload.data() + 8, 4) : 0;
          for (std::uint64_t i = 0; ok && i < count; ++i) {
            Part part;
            const std::uint64_t ranges = q + 4 <= len ? get_le(payload.data() + q, 4) : 0;
            ok = ranges > 0 && ranges <= (len - q - 4) / 16;
            q += 4;
            for (std::uint64_t r = 0; ok && r < ranges; ++r, q += 16) {
              part.covers.emplace_back(get_le(payload.data() + q, 8),
                                       get_le(payload.data() + q + 8, 8));
              ok = part.covers.back().first <= part.covers.back().second;
            }
            ok = ok && q + 4 <= len;
            if (!ok) break;
            part.n = get_le(payload.data() + q, 4);
            part.from = q + 4;
            ok = part.n <= len - part.from;
            q = part.from + part.n;
            parts.push_back(std::move(part));
          }
          ok = ok && len >= 12 && parts.size() == count && q == len;
        }
        if (!ok) {
          ++stats_.corrupt_records;
          return;
        }
        for (std::size_t i = 0; i < parts.size(); ++i) {
          auto& part = parts[i];
          std::string error;
          const auto b = bucket::from_json_line(payload.substr(part.from, part.n), error);
          if (!b || (!plain && part.covers.front().first != b->seq)) {
            ++stats_.corrupt_records;
            continue;
          }
          std::uint64_t last = b->seq;
          for (const auto& c : part.covers) last = std::max(last, c.second);
          next_seq_ = std::max(next_seq_, last + 1);
          // The record's framing is charged to its first bucket.
          const std::uint64_t bytes =
              plain ? len + kHeader
                    : part.n + 8 + 16 * part.covers.size() + (i == 0 ? kHeader + 12 : 0);
          out.push_back(Entry{b->boot_id, b->seq, std::move(part.covers), b->accounted_packets(),
                              b->loss.spool_dropped, path, at + part.from,
                              static_cast<std::uint32_t>(part.n), bytes,
                              crc32(payload.substr(part.from, part.n))});
        }
      });
}

void Spool::insert_sorted_locked(Entry e) {
  const auto at = std::upper_bound(entries_.begin(), entries_.end(), e.seq,
                                   [](std::uint64_t s, const Entry& x) { return s < x.seq; });
  entries_.insert(at, std::move(e));
}

bool Spool::merge_segment_locked(const std::string& segment) {
  std::vector<const Entry*> members;
  std::uint64_t old_bytes = 0;
  for (const auto& e : entries_) {
    if (e.segment == segment) {
      members.push_back(&e);
      old_bytes += e.bytes;
    }
  }
  std::vector<bucket::SealedBucket> parts;
  for (const Entry* e : members) {
    auto b = read_locked(*e);
    if (!b) return false;  // unreadable: dropping accounts for it by the index
    parts.push_back(std::move(*b));
  }
  auto target = [](const bucket::SealedBucket& b) {
    const std::uint32_t w = bucket::coarser_width(b.width_s);
    return w ? w : b.width_s;
  };
  // Groups: same sensor, boot, provenance and coarser window, in order of their first part.
  struct Group {
    std::vector<const bucket::SealedBucket*> parts;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covers;
  };
  std::vector<Group> groups;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& b = parts[i];
    const std::uint32_t w = target(b);
    Group* into = nullptr;
    for (auto& g : groups) {
      const auto& f = *g.parts.front();
      if (f.sensor_id == b.sensor_id && f.boot_id == b.boot_id && target(f) == w &&
          f.start / w == b.start / w &&
          f.provenance.software_version == b.provenance.software_version &&
          f.provenance.config_hash == b.provenance.config_hash &&
          f.provenance.geoip_build_epoch == b.provenance.geoip_build_epoch) {
        into = &g;
        break;
      }
    }
    if (!into) into = &groups.emplace_back();
    into->parts.push_back(&b);
    if (members[i]->covers.empty()) {
      into->covers.emplace_back(members[i]->seq, members[i]->seq);
    } else {
      into->covers.insert(into->covers.end(), members[i]->covers.begin(), members[i]->covers.end());
    }
  }
  std::string payload;
  put_le(payload, 0, 8);
  put_le(payload, groups.size(), 4);
  std::vector<bucket::SealedBucket> merged;
  std::vector<std::size_t> json_at, json_len;
  std::vector<std::uint32_t> json_crc;
  for (auto& g : groups) {
    // Adjacent ranges join, so a bucket standing for a day of one boot carries few.
    std::sort(g.covers.begin(), g.covers.end());
    std::vector<std::pair<std::uint64_t, std::uint64_t>> joined;
    for (const auto& c : g.covers) {
      if (!joined.empty() && c.first <= joined.back().second + 1) {
        joined.back().second = std::max(joined.back().second, c.second);
      } else {
        joined.push_back(c);
      }
    }
    g.covers = std::move(joined);
    std::sort(g.parts.begin(), g.parts.end(),
              [](const auto* a, const auto* b) { return a->seq < b->seq; });
    merged.push_back(bucket::merge_buckets(g.parts, target(*g.parts.front())));
    const std::string json = bucket::to_json_line(merged.back());
    put_le(payload, g.covers.size(), 4);
    for (const auto& [lo, hi] : g.covers) {
      put_le(payload, lo, 8);
      put_le(payload, hi, 8);
    }
    put_le(payload, json.size(), 4);
    json_at.push_back(payload.size());
    json_len.push_back(json.size());
    json_crc.push_back(crc32(json));
    payload += json;
  }
  // Worth it only if it gives back a tenth of the segment; otherwise the caller drops.
  log::get("spool")->debug("merge {} buckets={} into={} bytes={} -> {}", segment, parts.size(),
                           groups.size(), old_bytes, payload.size() + kHeader);
  if (!BoundPolicy::merge_worthwhile(old_bytes, kHeader + payload.size()) ||
      payload.size() > kMaxRecord)
    return false;
  if (segment == log_.current()) log_.close_current();  // write the result elsewhere
  const auto at = log_.append(kMerged, {&payload, 1});
  if (!at) return false;
  // Durable: the coarser buckets replace the segment's (a kill before the segment is
  // deleted leaves both, and the start keeps the later record).
  std::erase_if(entries_, [&](const Entry& e) { return e.segment == segment; });
  stats_.merged_buckets += parts.size();
  stats_.merges += merged.size();
  stats_.bytes -= old_bytes;
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const std::uint64_t bytes =
        json_len[i] + 8 + 16 * groups[i].covers.size() + (i == 0 ? kHeader + 12 : 0);
    stats_.bytes += bytes;
    insert_sorted_locked(Entry{merged[i].boot_id, merged[i].seq, std::move(groups[i].covers),
                               merged[i].accounted_packets(), merged[i].loss.spool_dropped,
                               log_.current(), at->front() + json_at[i],
                               static_cast<std::uint32_t>(json_len[i]), bytes, json_crc[i]});
  }
  stats_.pending = entries_.size();
  log_.remove(segment);
  return true;
}

bool Spool::drop_segment_locked(const std::string& segment) {
  // Whole segments go, so that what was dropped (and counted) cannot come back from disk
  // after a restart; the count is durable before the file goes.
  std::uint64_t packets = 0, carried = 0;
  for (const auto& e : entries_) {
    if (e.segment != segment) continue;
    packets += e.packets;
    carried += e.carried;
  }
  // The count and the segment's number go to the state file together, before the file
  // goes: a kill in between is finished at the next start (see the constructor).
  unreported_drops_ += packets + carried;
  dropping_ = RecordLog::number_of(segment) + 1;
  state_dirty_ = true;
  if (!write_state_locked()) {
    unreported_drops_ -= packets + carried;
    dropping_ = 0;
    return false;
  }
  std::erase_if(entries_, [&](const Entry& e) {
    if (e.segment != segment) return false;
    ++stats_.dropped_buckets;
    stats_.bytes -= e.bytes;
    return true;
  });
  stats_.dropped_packets += packets;
  stats_.pending = entries_.size();
  log_.remove(segment);
  dropping_ = 0;  // written with the next state update
  return true;
}

bool Spool::append(const bucket::SealedBucket& b, std::uint64_t resume_token) {
  const Appending one{b, resume_token};
  return append_group({&one, 1}) == 1;
}

std::size_t Spool::append_group(std::span<const Appending> group) {
  std::lock_guard lock(mu_);
  std::size_t done = 0;
  std::vector<std::string> payloads;
  std::vector<std::uint64_t> dropped;  // each record's loss.spool_dropped
  while (done < group.size()) {
    // The chunk's first bucket makes room at the bound as a bucket appended alone does:
    // merge the oldest segment's buckets into coarser ones, or, when that saves too
    // little, drop them (their packets go into this bucket's loss.spool_dropped).
    // Buckets that may have been sent stay: the bound can be exceeded by at most what is
    // in flight (docs/spool.md).
    payloads.assign(1, std::string{});
    dropped.assign(1, 0);
    const bucket::SealedBucket& b = group[done].bucket;  // not copied: a bucket is megabytes
    std::uint64_t spool_dropped = 0;
    for (;;) {
      spool_dropped = b.loss.spool_dropped + unreported_drops_;
      payloads[0].clear();
      put_le(payloads[0], group[done].resume_token, 8);
      payloads[0] += bucket::to_json_line(b, spool_dropped);
      if (bound_.fits(stats_.bytes, kHeader + payloads[0].size())) break;
      // A merge keeps no resume token and a drop deletes records: the state file, written
      // without waiting after appends, must be on the disk before either.
      if (!state_file_->synced() && !write_state_locked()) {
        ++stats_.write_errors;
        return done;
      }
      const std::string oldest = BoundPolicy::oldest_unpinned(entries_, sent_below_);
      if (oldest.empty()) break;
      if (merge_segment_locked(oldest)) continue;
      if (!drop_segment_locked(oldest)) {
        ++stats_.write_errors;
        return done;
      }
    }
    dropped[0] = spool_dropped;
    // Then the buckets behind it, while they fit under the bound and in the segment: the
    // chunk is written at once and shares one fdatasync (group commit).
    std::uint64_t chunk_bytes = kHeader + payloads[0].size();
    for (std::size_t i = done + 1; i < group.size(); ++i) {
      std::string payload;
      put_le(payload, group[i].resume_token, 8);
      payload += bucket::to_json_line(group[i].bucket);
      const std::uint64_t bytes = kHeader + payload.size();
      if (!bound_.fits(stats_.bytes, chunk_bytes + bytes) ||
          log_.current_size() + chunk_bytes + bytes > log_.segment_bytes())
        break;
      chunk_bytes += bytes;
      payloads.push_back(std::move(payload));
      dropped.push_back(group[i].bucket.loss.spool_dropped);
    }
    auto at = log_.append(kPlain, payloads);
    if (!at && payloads.size() > 1) {
      // A nearly full disk may still take one record (delivery frees space bucket by
      // bucket): the chunk's first alone, as an append of one would.
      payloads.resize(1);
      dropped.resize(1);
      at = log_.append(kPlain, payloads);
    }
    if (!at) {
      ++stats_.write_errors;
      delete_done_segments_locked();
      return done;
    }
    unreported_drops_ = 0;
    for (std::size_t k = 0; k < payloads.size(); ++k) {
      const bucket::SealedBucket& in = group[done + k].bucket;
      const std::uint64_t bytes = kHeader + payloads[k].size();
      ++stats_.appended;
      stats_.bytes += bytes;
      next_seq_ = std::max(next_seq_, in.seq + 1);
      resume_token_ = std::max(resume_token_, group[done + k].resume_token);
      insert_sorted_locked(Entry{in.boot_id,
                                 in.seq,
                                 {},
                                 in.accounted_packets(),
                                 dropped[k],
                                 log_.current(),
                                 (*at)[k] + 8,
                                 static_cast<std::uint32_t>(payloads[k].size() - 8),
                                 bytes,
                                 crc32(std::string_view{payloads[k]}.substr(8))});
    }
    done += payloads.size();
    stats_.pending = entries_.size();
    // The records are durable; the state file only has to catch up, so it is written
    // without waiting for the disk (a crash before it is repaired at start from the
    // records themselves). Failure here is counted, not fatal. Appending frees no
    // segment: acknowledgements, merges and drops delete them.
    state_dirty_ = true;
    if (!write_state_locked(/*sync=*/false)) ++stats_.write_errors;
  }
  return done;
}

std::optional<std::string> Spool::read_line_locked(const Entry& e) {
  auto json = log_.read(e.segment, e.offset, e.length);
  // The line as it was written (its CRC kept in the index since): no parse needed.
  if (!json || crc32(*json) != e.crc) return std::nullopt;
  return json;
}

std::optional<bucket::SealedBucket> Spool::read_locked(const Entry& e) {
  const auto line = read_line_locked(e);
  std::string error;
  if (!line) return std::nullopt;
  return bucket::from_json_line(*line, error);
}

std::vector<bucket::SealedBucket> Spool::peek(std::size_t max) {
  std::vector<bucket::SealedBucket> out;
  for (auto& s : peek_lines(max)) {
    std::string error;
    auto b = bucket::from_json_line(s.line, error);
    if (b) out.push_back(std::move(*b));
  }
  return out;
}

std::vector<Spool::Stored> Spool::peek_lines(std::size_t max) {
  std::lock_guard lock(mu_);
  std::vector<Stored> out;
  std::uint64_t sent_below = sent_below_;
  for (std::size_t i = 0; i < entries_.size() && out.size() < max;) {
    const Entry& e = entries_[i];
    auto line = read_line_locked(e);
    if (!line) {
      // Verified when written or loaded; unreadable now means the disk changed under us.
      // Its packets are known from the index: counted as dropped, like the bound does.
      ++stats_.corrupt_records;
      ++stats_.dropped_buckets;
      stats_.dropped_packets += e.packets;
      unreported_drops_ += e.packets + e.carried;
      stats_.bytes -= e.bytes;
      entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(i));
      stats_.pending = entries_.size();
      state_dirty_ = true;
      continue;
    }
    sent_below = std::max(sent_below, e.seq + 1);
    out.push_back({e.boot_id, e.seq, std::move(*line)});
    ++i;
  }
  if (sent_below != sent_below_) {
    sent_below_ = sent_below;
    state_dirty_ = true;
  }
  // What leaves here may be stored by the collector even if no acknowledgement comes
  // back: say so durably first, so that it is never merged or dropped (counted twice).
  if (state_dirty_ && !write_state_locked()) {
    ++stats_.write_errors;
    return {};
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
      stats_.bytes -= e.bytes;
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
  log_.remove_unless([&](const std::string& path) { return live.count(path) > 0; });
}

Spool::~Spool() = default;

bool Spool::write_state_locked(bool sync) {
  if (!state_file_->write(SpoolState{next_seq_, resume_token_, acked_below_, sent_below_,
                                     unreported_drops_, dropping_},
                          sync))
    return false;
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

std::uint64_t Spool::unreported_dropped_packets() {
  std::lock_guard lock(mu_);
  return unreported_drops_;
}

SpoolStats Spool::stats() {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace teiten::sensor

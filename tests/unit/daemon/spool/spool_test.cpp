// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/spool.h"

#include <boost/crc.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/integration/test_support.h"

using namespace teiten;
using teiten::sensor::Spool;
namespace fs = std::filesystem;

namespace {
bucket::SealedBucket make(std::uint64_t seq, std::uint64_t packets = 10) {
  bucket::SealedBucket b;
  b.sensor_id = "s1";
  b.boot_id = "boot";
  b.seq = seq;
  b.start = static_cast<std::int64_t>(seq) * 60;
  b.rows.push_back({classify::Key{classify::Proto::udp, true, 53, classify::kUnknownCountry,
                                  classify::Fingerprint::none, classify::Kind::scan},
                    packets, packets * 28});
  return b;
}
// The state file as docs/spool.md describes it: slot 0 of two, generation 1.
void write_state(const fs::path& path, std::vector<std::uint64_t> values) {
  std::string slot = "TSS1";
  values.insert(values.begin(), 1);  // generation
  // next_seq, resume_token, acked_below, sent_below, unreported_drops, dropping
  for (const auto v : values) {
    for (int i = 0; i < 8; ++i) slot += static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  boost::crc_32_type crc;
  crc.process_bytes(slot.data(), slot.size());
  for (int i = 0; i < 4; ++i) slot += static_cast<char>((crc.checksum() >> (8 * i)) & 0xFF);
  slot.resize(1024, '\0');
  test::write_file(path, slot);
}
std::vector<fs::path> segments(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("seg-", 0) == 0) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("spooled buckets survive a restart until acknowledged", "[spool]") {
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22);
    for (std::uint64_t i = 0; i < 5; ++i) REQUIRE(s.append(make(i), 100 * (i + 1)));
    s.ack({{"boot", 0}, {"boot", 1}});
    CHECK(s.stats().pending == 3);
  }
  Spool s(dir / "spool", 1 << 22);
  // Buckets 0 and 1 share a segment with unacknowledged ones: the segment stays, but the
  // state file says delivery got past them, so they do not come back.
  const auto left = s.peek(10);
  REQUIRE(left.size() == 3);
  CHECK(left[0] == make(2));
  CHECK(s.next_seq() == 5);
  CHECK(s.resume_token() == 500);
  s.ack({{"boot", 2}, {"boot", 3}, {"boot", 4}});
  CHECK(s.stats().pending == 0);
  CHECK(segments(dir / "spool").empty());
  Spool again(dir / "spool", 1 << 22);
  CHECK(again.next_seq() == 5);  // kept in the state file once the records are gone
  CHECK(again.resume_token() == 500);
}

TEST_CASE("a torn or corrupted record is skipped and counted, the rest is kept", "[spool]") {
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22);
    for (std::uint64_t i = 0; i < 4; ++i) REQUIRE(s.append(make(i)));
  }
  const auto seg = segments(dir / "spool").at(0);
  std::string data = test::read_file(seg);
  data[data.size() / 2] ^= 0x55;           // flip a byte in the middle (CRC catches it)
  data += std::string("TSP1\x10\x00", 6);  // and a torn record at the end (power cut)
  test::write_file(seg, data);
  Spool s(dir / "spool", 1 << 22);
  CHECK(s.stats().corrupt_records == 2);
  CHECK(s.stats().pending == 3);
}

namespace {
// Buckets whose rows are all distinct: merging them saves almost nothing.
bucket::SealedBucket distinct(std::uint64_t seq, std::uint64_t rows = 40) {
  bucket::SealedBucket b = make(seq, 1);
  b.rows.clear();
  for (std::uint64_t k = 0; k < rows; ++k) {
    b.rows.push_back({classify::Key{classify::Proto::tcp, true,
                                    static_cast<std::uint16_t>((seq * rows + k) % 65536),
                                    classify::kUnknownCountry, classify::Fingerprint::none,
                                    classify::Kind::scan},
                      1, 40});
  }
  std::sort(b.rows.begin(), b.rows.end(),
            [](const auto& x, const auto& y) { return x.key.pack() < y.key.pack(); });
  return b;
}
// Every packet appended is in a pending bucket, charged to one as spool_dropped, or
// waiting to be charged.
std::uint64_t accounted(Spool& s) {
  std::uint64_t n = s.unreported_dropped_packets();
  for (const auto& b : s.peek(1 << 20)) n += b.accounted_packets() + b.loss.spool_dropped;
  return n;
}
}  // namespace

TEST_CASE("at the byte bound the oldest buckets are merged into coarser ones, counts kept",
          "[spool]") {
  test::TempDir dir;
  Spool s(dir / "spool", 64 << 10, 16 << 10);  // 64 KiB in segments of 16 KiB
  std::uint64_t packets = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    REQUIRE(s.append(make(i, 3)));
    packets += 3;
  }
  const auto st = s.stats();
  CHECK(st.bytes <= 64u << 10);
  CHECK(st.merged_buckets > 0);
  CHECK(st.dropped_buckets == 0);  // 33 hours of one-row buckets fit once merged
  const auto left = s.peek(1 << 20);
  std::set<std::uint32_t> widths;
  std::uint64_t prev = 0;
  for (std::size_t i = 0; i < left.size(); ++i) {
    widths.insert(left[i].width_s);
    CHECK(left[i].start % left[i].width_s == 0);
    if (i > 0) CHECK(left[i].seq > prev);  // still in order
    prev = left[i].seq;
  }
  CHECK(widths.count(3600) == 1);
  CHECK(widths.count(60) == 1);  // the newest are still fine-grained
  CHECK(accounted(s) == packets);
  // The same after a restart.
  Spool again(dir / "spool", 64 << 10, 16 << 10);
  CHECK(again.stats().pending == left.size());
  CHECK(accounted(again) == packets);
}

TEST_CASE("buckets that do not merge are dropped, their packets charged to a later bucket",
          "[spool]") {
  test::TempDir dir;
  Spool s(dir / "spool", 64 << 10, 16 << 10);
  std::uint64_t packets = 0;
  for (std::uint64_t i = 0; i < 300; ++i) {
    const auto b = distinct(i);
    REQUIRE(s.append(b));
    packets += b.accounted_packets();
  }
  const auto st = s.stats();
  CHECK(st.bytes <= 64u << 10);
  CHECK(st.dropped_buckets > 0);
  CHECK(st.merged_buckets == 0);
  CHECK(segments(dir / "spool").size() <= 5);
  std::uint64_t charged = 0;
  for (const auto& b : s.peek(1 << 20)) charged += b.loss.spool_dropped;
  CHECK(charged + s.unreported_dropped_packets() == st.dropped_packets);
  CHECK(accounted(s) == packets);
}

TEST_CASE("buckets handed out for sending are neither merged nor dropped", "[spool]") {
  test::TempDir dir;
  Spool s(dir / "spool", 64 << 10, 16 << 10);
  for (std::uint64_t i = 0; i < 10; ++i) REQUIRE(s.append(make(i, 3)));
  const auto sent = s.peek(5);
  REQUIRE(sent.size() == 5);
  for (std::uint64_t i = 10; i < 2000; ++i) REQUIRE(s.append(i % 2 ? make(i, 3) : distinct(i)));
  CHECK(s.stats().merged_buckets + s.stats().dropped_buckets > 0);
  // Still there, unchanged: the collector may have stored them already.
  CHECK(s.peek(5) == sent);
  Spool again(dir / "spool", 64 << 10, 16 << 10);
  for (std::uint64_t i = 2000; i < 2500; ++i) REQUIRE(again.append(distinct(i)));
  CHECK(again.peek(5) == sent);
}

TEST_CASE("a kill between a merge's record and the deletion of what it replaced counts once",
          "[spool]") {
  test::TempDir dir;
  const fs::path spool = dir / "spool", saved = dir / "saved";
  std::uint64_t packets = 0;
  bool merged = false;
  {
    Spool s(spool, 64 << 10, 16 << 10);
    for (std::uint64_t i = 0; i < 4000 && !merged; ++i) {
      fs::remove_all(saved);
      fs::copy(spool, saved);
      REQUIRE(s.append(make(i, 3)));
      packets += 3;
      merged = s.stats().merges > 0;
    }
  }
  REQUIRE(merged);
  // Put back the segment the merge deleted, as if the kill came just before.
  for (const auto& e : fs::directory_iterator(saved)) {
    if (!fs::exists(spool / e.path().filename()))
      fs::copy_file(e.path(), spool / e.path().filename());
  }
  Spool s(spool, 64 << 10, 16 << 10);
  CHECK(accounted(s) == packets);
}

TEST_CASE("dropped packets not yet charged survive a restart", "[spool]") {
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22);
    REQUIRE(s.append(make(0)));
  }
  // A drop made durable, then a kill before the next bucket was written.
  write_state(dir / "spool/state", {1, 0, 0, 0, 7, 0});
  {
    Spool s(dir / "spool", 1 << 22);
    CHECK(s.unreported_dropped_packets() == 7);
    REQUIRE(s.append(make(1)));
    CHECK(s.unreported_dropped_packets() == 0);
    CHECK(s.peek(2).at(1).loss.spool_dropped == 7);
  }
  // The bucket carrying them was written but the kill came before the state file caught
  // up: they are not charged again.
  write_state(dir / "spool/state", {1, 0, 0, 2, 7, 0});
  Spool s(dir / "spool", 1 << 22);
  CHECK(s.unreported_dropped_packets() == 0);
  CHECK(s.next_seq() == 2);
}

TEST_CASE("thousands of leftover segments open in bounded time and memory", "[spool]") {
  test::TempDir dir;
  fs::create_directories(dir / "spool");
  // 3000 segments of one record each, as if a long outage left them.
  {
    Spool s(dir / "spool", 1ULL << 30);
    REQUIRE(s.append(make(0)));
  }
  const auto one = segments(dir / "spool").at(0);
  for (int i = 1; i < 3000; ++i) {
    char name[40];
    std::snprintf(name, sizeof name, "seg-%020d.log", i);
    fs::copy_file(one, dir / ("spool/" + std::string{name}));
  }
  const auto t0 = std::chrono::steady_clock::now();
  Spool s(dir / "spool", 1ULL << 30);
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO("opening took " << std::chrono::duration<double>(took).count() << " s");
  // The same bucket 3000 times: kept (the collector deduplicates), held as an index only.
  CHECK(s.stats().pending == 3000);
  CHECK(s.peek(5).size() == 5);
}

TEST_CASE("a state file older than the records is repaired before records can go", "[spool]") {
  // A kill between writing a record and updating the state file leaves the state behind.
  // If the next run delivered that record and died before appending anything, a third run
  // must still resume after it, not from the stale state (it would seal the bucket again).
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22);
    REQUIRE(s.append(make(0), 100));
    REQUIRE(s.append(make(1), 200));
  }
  write_state(dir / "spool/state", {1, 100, 0, 0, 0, 0});  // as if killed
  {
    Spool s(dir / "spool", 1 << 22);
    CHECK(s.next_seq() == 2);
    s.ack({{"boot", 0}, {"boot", 1}});  // delivered, segment deleted
    CHECK(segments(dir / "spool").empty());
  }
  Spool s(dir / "spool", 1 << 22);
  CHECK(s.next_seq() == 2);
  CHECK(s.resume_token() == 200);
}

TEST_CASE("a torn write of the state file falls back to its other slot", "[spool]") {
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22);
    REQUIRE(s.append(make(0), 42));  // generation 1, slot 1
    REQUIRE(s.peek(1).size() == 1);  // generation 2, slot 0
    s.ack({{"boot", 0}});            // generation 3, slot 1
    CHECK(segments(dir / "spool").empty());
  }
  std::string state = test::read_file(dir / "spool/state");
  REQUIRE(state.size() == 1024);
  state[512 + 20] ^= 0x40;  // power cut in the middle of the last update
  test::write_file(dir / "spool/state", state);
  Spool s(dir / "spool", 1 << 22);
  CHECK(s.next_seq() == 1);
  CHECK(s.resume_token() == 42);
  CHECK(s.stats().pending == 0);
}

TEST_CASE("a kill while a segment is dropped does not let it be delivered too", "[spool]") {
  test::TempDir dir;
  {
    Spool s(dir / "spool", 1 << 22, 1024);
    for (std::uint64_t i = 0; i < 6; ++i) REQUIRE(s.append(make(i, 5)));
  }
  const auto segs = segments(dir / "spool");
  REQUIRE(segs.size() >= 2);
  // The state as the drop of the first segment wrote it; the kill came before the file
  // was removed.
  const std::string data = test::read_file(segs.front());
  std::uint64_t in_first = 0;
  for (auto at = data.find("TSP1"); at != std::string::npos; at = data.find("TSP1", at + 1))
    ++in_first;
  REQUIRE(in_first > 0);
  const std::uint64_t number = std::stoull(segs.front().filename().string().substr(4, 20));
  write_state(dir / "spool/state", {6, 0, 0, 0, in_first * 5, number + 1});
  Spool s(dir / "spool", 1 << 22, 1024);
  CHECK_FALSE(fs::exists(segs.front()));
  CHECK(s.unreported_dropped_packets() == in_first * 5);
  CHECK(s.stats().pending == 6 - in_first);
  for (const auto& b : s.peek(100)) CHECK(b.seq >= in_first);  // they stay gone
  // The number is not used again, so a later start cannot remove a new segment by it.
  REQUIRE(s.append(make(6, 5)));
  for (const auto& p : segments(dir / "spool"))
    CHECK(std::stoull(p.filename().string().substr(4, 20)) != number);
}

TEST_CASE("a group of buckets is spooled as appending each would, sharing its writes", "[spool]") {
  // 2,000 one-row buckets under a 64 KiB bound in 16 KiB segments, one by one and in groups
  // of 250: the same records, merges, segments and state, before and after a restart.
  test::TempDir dir;
  const auto fill = [&](const std::string& name, std::size_t group) {
    Spool s(dir / name, 64 << 10, 16 << 10);
    std::vector<bucket::SealedBucket> buckets;
    for (std::uint64_t i = 0; i < 2000; ++i) buckets.push_back(make(i, 3 + i % 5));
    for (std::size_t i = 0; i < buckets.size(); i += group) {
      std::vector<Spool::Appending> g;
      for (std::size_t k = i; k < std::min(buckets.size(), i + group); ++k)
        g.push_back({buckets[k], 7 * k + 7});
      REQUIRE(s.append_group(g) == g.size());
    }
  };
  fill("one", 1);
  fill("group", 250);
  const auto lines = [](Spool& s) {
    std::vector<std::string> out;
    for (const auto& b : s.peek(1 << 20)) out.push_back(bucket::to_json_line(b));
    return out;
  };
  Spool one(dir / "one", 64 << 10, 16 << 10), group(dir / "group", 64 << 10, 16 << 10);
  const auto a = one.stats(), b = group.stats();
  CHECK(b.appended == 0);  // counted per run: both reopened
  CHECK(b.bytes == a.bytes);
  CHECK(b.pending == a.pending);
  CHECK(b.corrupt_records == 0);
  CHECK(group.next_seq() == 2000);
  CHECK(group.resume_token() == one.resume_token());
  CHECK(group.resume_token() == 7 * 1999 + 7);
  CHECK(segments(dir / "group").size() == segments(dir / "one").size());
  const auto la = lines(one), lb = lines(group);
  CHECK(lb == la);
  CHECK(accounted(group) == accounted(one));
  std::uint64_t packets = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) packets += 3 + i % 5;
  CHECK(accounted(group) == packets);

  // A group appended and counted in one run: merges at the bound happen within it.
  test::TempDir other;
  Spool s(other / "spool", 64 << 10, 16 << 10);
  std::vector<bucket::SealedBucket> many;
  for (std::uint64_t i = 0; i < 2000; ++i) many.push_back(make(i, 3));
  std::vector<Spool::Appending> g;
  for (const auto& x : many) g.push_back({x, x.seq});
  CHECK(s.append_group(g) == 2000);
  CHECK(s.stats().appended == 2000);
  CHECK(s.stats().merged_buckets > 0);
  CHECK(s.stats().bytes <= 64u << 10);
  CHECK(accounted(s) == 2000 * 3);
  CHECK(s.append_group({}) == 0);
}

TEST_CASE("the uploader gets the stored lines as written, and one changed on disk is dropped",
          "[spool]") {
  test::TempDir dir;
  Spool s(dir / "spool", 1 << 22);
  for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(s.append(make(i), i));
  // Byte for byte what was appended (nothing parsed and encoded again on the way).
  const auto lines = s.peek_lines(10);
  REQUIRE(lines.size() == 3);
  for (std::uint64_t i = 0; i < 3; ++i) {
    CHECK(lines[i].boot_id == "boot");
    CHECK(lines[i].seq == i);
    CHECK(lines[i].line == bucket::to_json_line(make(i)));
  }

  // A line whose bytes change after it was verified (bit rot, a tampered file): the index
  // holds its CRC, so it is not sent; its packets are accounted as dropped.
  test::TempDir other;
  Spool t(other / "spool", 1 << 22);
  for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(t.append(make(i, 10 + i)));
  const auto segs = segments(other / "spool");
  REQUIRE(segs.size() == 1);
  std::string data = test::read_file(segs[0]);
  const auto at = data.find("\"seq\":1");
  REQUIRE(at != std::string::npos);
  data[at + 6] = '7';  // same length: only the CRC can tell
  test::write_file(segs[0], data);
  const auto sent = t.peek_lines(10);
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].seq == 0);
  CHECK(sent[1].seq == 2);
  const auto st = t.stats();
  CHECK(st.corrupt_records == 1);
  CHECK(st.dropped_buckets == 1);
  CHECK(st.dropped_packets == 11);
  CHECK(t.unreported_dropped_packets() == 11);
}

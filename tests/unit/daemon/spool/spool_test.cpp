#include "daemon/spool/spool.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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

TEST_CASE("at the byte bound the oldest segments are dropped and their packets counted",
          "[spool]") {
  test::TempDir dir;
  Spool s(dir / "spool", 64 << 10, 16 << 10);  // 64 KiB in segments of 16 KiB
  std::uint64_t appended = 0;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    REQUIRE(s.append(make(i, 3)));
    ++appended;
  }
  const auto st = s.stats();
  CHECK(st.bytes <= 64u << 10);
  CHECK(segments(dir / "spool").size() <= 5);
  CHECK(st.dropped_buckets > 0);
  CHECK(st.dropped_packets == st.dropped_buckets * 3);
  CHECK(st.pending + st.dropped_buckets == appended);
  CHECK(s.take_dropped_packets() == st.dropped_packets);
  CHECK(s.take_dropped_packets() == 0);
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
  test::write_file(dir / "spool/state", "next_seq 1\nresume_token 100\n");  // as if killed
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

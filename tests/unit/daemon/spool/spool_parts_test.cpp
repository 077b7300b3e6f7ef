// SPDX-License-Identifier: Apache-2.0
// The spool's parts on their own: the record log, the state file and the bound policy.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/spool/bound_policy.h"
#include "daemon/spool/record_log.h"
#include "daemon/spool/state_file.h"
#include "tests/integration/test_support.h"

using namespace teiten::sensor;
namespace fs = std::filesystem;

TEST_CASE("the record log reads back what it appended and skips torn or garbled records",
          "[spool][record_log]") {
  teiten::test::TempDir dir;
  RecordLog log(dir.path(), 1 << 20);
  REQUIRE(log.list().empty());
  const std::vector<std::string> first = {"alpha", "beta"};
  const auto at = log.append("TSPx", first);
  REQUIRE(at);
  REQUIRE(at->size() == 2);
  const std::string segment = log.current();
  CHECK(log.read(segment, (*at)[1], 4) == std::optional<std::string>{"beta"});
  const std::string third = "gamma";
  REQUIRE(log.append("TSPy", {&third, 1}));
  // Garbage between records and a torn record at the end.
  const std::string good = teiten::test::read_file(segment);
  teiten::test::write_file(
      segment, good.substr(0, 2 * 12 + 9) + "junk" + good.substr(2 * 12 + 9) + good.substr(0, 10));
  const char* const magics[] = {"TSPx", "TSPy"};
  std::vector<std::string> seen;
  const std::uint64_t corrupt =
      log.scan(segment, magics, [&](const char* magic, std::string_view payload, std::size_t) {
        seen.push_back(std::string{magic, 4} + ":" + std::string{payload});
      });
  CHECK(seen == std::vector<std::string>{"TSPx:alpha", "TSPx:beta", "TSPy:gamma"});
  CHECK(corrupt == 2);
  // A new log on the folder numbers its segments after the existing one.
  RecordLog again(dir.path(), 1 << 20);
  REQUIRE(again.list().size() == 1);
  REQUIRE(again.append("TSPx", first));
  CHECK(RecordLog::number_of(again.current()) == RecordLog::number_of(segment) + 1);
  again.remove_unless([&](const std::string& path) { return path == segment; });
  CHECK(again.list() == std::vector<std::string>{fs::path(segment).filename().string()});
}

TEST_CASE("the state file keeps the last whole state when a slot is torn", "[spool][state_file]") {
  teiten::test::TempDir dir;
  {
    StateFile f(dir.path());
    CHECK(f.loaded().next_seq == 0);
    REQUIRE(f.write(SpoolState{5, 50, 1, 2, 3, 0}, true));
    REQUIRE(f.write(SpoolState{6, 60, 4, 5, 6, 7}, false));
    CHECK_FALSE(f.synced());
  }
  {
    const StateFile f(dir.path());
    CHECK(f.loaded().next_seq == 6);
    CHECK(f.loaded().resume_token == 60);
    CHECK(f.loaded().dropping == 7);
  }
  // Tear the newer slot (writes alternate: generation 2 went to slot 0, at offset 0): the
  // older one answers.
  std::string data = teiten::test::read_file(dir / "state");
  REQUIRE(data.size() == 1024);
  data[20] = static_cast<char>(data[20] ^ 0x55);
  teiten::test::write_file(dir / "state", data);
  const StateFile f(dir.path());
  CHECK(f.loaded().next_seq == 5);
  CHECK(f.loaded().resume_token == 50);
  CHECK(f.loaded().unreported_drops == 3);
}

TEST_CASE("the bound gives way at the oldest segment none of whose buckets was sent",
          "[spool][bound]") {
  struct E {
    std::string segment;
    std::uint64_t seq;
  };
  const std::vector<E> entries = {{"seg-1", 1}, {"seg-1", 2}, {"seg-2", 3}, {"seg-3", 4}};
  CHECK(BoundPolicy::oldest_unpinned(entries, 0) == "seg-1");
  CHECK(BoundPolicy::oldest_unpinned(entries, 2) == "seg-2");  // seq 1 may have been sent
  CHECK(BoundPolicy::oldest_unpinned(entries, 5).empty());
  const BoundPolicy bound(100);
  CHECK(bound.fits(60, 40));
  CHECK_FALSE(bound.fits(60, 41));
  CHECK(BoundPolicy::merge_worthwhile(100, 90));
  CHECK_FALSE(BoundPolicy::merge_worthwhile(100, 91));
}

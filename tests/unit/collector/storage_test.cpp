#include "collector/store/store.h"

#include <catch2/catch.hpp>

#include "tests/integration/test_support.h"
#include "tests/unit/collector/test_store.h"

using namespace teiten;
using namespace teiten::collector;

namespace {
bucket::SealedBucket make(const std::string& boot, std::uint64_t seq, std::int64_t start,
                          std::uint16_t port, std::uint64_t packets) {
  bucket::SealedBucket b;
  b.sensor_id = "s1";
  b.boot_id = boot;
  b.seq = seq;
  b.start = start;
  b.width_s = 60;
  b.rows.push_back(
      {classify::Key{classify::Proto::tcp, true, port, classify::make_country('J', 'P'),
                     classify::Fingerprint::mirai, classify::Kind::scan},
       packets, packets * 40});
  b.not_for_sensor = 1;
  b.self_traffic = 2;
  return b;
}
}  // namespace

TEST_CASE("storage ingests idempotently on sensor, boot id and sequence", "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  const std::vector<bucket::SealedBucket> batch = {make("a", 0, 0, 23, 5), make("a", 1, 60, 23, 7)};
  CHECK(s.ingest(batch) == std::vector<IngestResult>{IngestResult::stored, IngestResult::stored});
  CHECK(s.ingest(batch) ==
        std::vector<IngestResult>{IngestResult::duplicate, IngestResult::duplicate});
  // Same seq after a restart (new boot id) is a different bucket.
  CHECK(s.ingest({make("b", 0, 120, 22, 3)}) == std::vector<IngestResult>{IngestResult::stored});
  Query q;
  q.group_by = {"port"};
  const auto rows = s.query(q);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].group == std::vector<std::string>{"23"});
  CHECK(rows[0].packets == 12);
  CHECK(rows[0].bytes == 480);
  CHECK(rows[1].packets == 3);
  const Accounting a = s.accounting(q);
  CHECK(a.buckets == 3);
  CHECK(a.observed_packets == 15);
  CHECK(a.not_for_sensor == 3);
  CHECK(a.self_traffic == 6);
}

TEST_CASE("storage filters by time range, sensor and key fields", "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  Store& s = *ts;
  s.ingest({make("a", 0, 0, 23, 5), make("a", 1, 60, 22, 7), make("a", 2, 3600, 23, 11)});
  Query q;
  q.from = 60;
  q.to = 3601;
  CHECK(s.query(q).at(0).packets == 18);
  q.port = 23;
  CHECK(s.query(q).at(0).packets == 11);
  q = Query{};
  q.sensors = {"nobody"};
  CHECK(s.query(q).empty());
  q = Query{};
  q.group_by = {"sensor; DROP TABLE buckets"};
  CHECK_THROWS_AS(s.query(q), std::invalid_argument);
}

TEST_CASE("storage keeps data across reopening and prunes detail, not accounting",
          "[collector][storage]") {
  const std::string backend = TEITEN_EACH_BACKEND();
  INFO("backend " << backend);
  test::TempDir dir;
  test::TestStore ts(backend, dir);
  ts.store->ingest({make("a", 0, 0, 23, 5), make("a", 1, 86400, 23, 7)});
  ts.store.reset();
  const auto reopened = ts.open();
  Store& s = *reopened;
  CHECK(s.ingest({make("a", 0, 0, 23, 5)}) == std::vector<IngestResult>{IngestResult::duplicate});
  CHECK(s.prune_detail(3600) == 1);
  Query q;
  // The range holds a pruned bucket: the answer comes from the hourly rollups, whole.
  CHECK(s.needs_rollups(q));
  CHECK(s.query(q).at(0).packets == 12);
  CHECK(s.accounting(q).buckets == 2);
  // A range of kept detail only still comes from the detail.
  q.from = 3600;
  CHECK_FALSE(s.needs_rollups(q));
  CHECK(s.query(q).at(0).packets == 7);
  StoreConfig bad = ts.config;
  bad.path = "/nonexistent/folder/c.sqlite";
  bad.conninfo += "_missing";
  CHECK_THROWS(open_store(bad));
}

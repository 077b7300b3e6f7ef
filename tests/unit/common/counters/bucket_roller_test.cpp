// SPDX-License-Identifier: Apache-2.0
#include "common/counters/bucket_roller.h"

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <string>
#include <vector>

using namespace teiten;
using classify::Fingerprint;
using classify::Key;
using classify::Kind;
using classify::Proto;

namespace {
/// Options of a test roller: sensor "s1", boot "b", and the given key cap.
counters::RollerOptions options(std::size_t max_keys = 10000) {
  counters::RollerOptions o;
  o.sensor_id = "s1";
  o.boot_id = "b";
  o.max_keys = max_keys;
  return o;
}

struct Fixture {
  std::vector<bucket::SealedBucket> sealed;
  counters::BucketRoller make(std::uint32_t width = 60, std::size_t max_keys = 100,
                              std::uint32_t gap_fill = 1440) {
    counters::RollerOptions o = options(max_keys);
    o.first_seq = 7;
    o.width_s = width;
    o.max_gap_fill = gap_fill;
    return counters::BucketRoller(
        o, [this](bucket::SealedBucket&& b) { sealed.push_back(std::move(b)); });
  }
};
Key key(std::uint16_t port, Fingerprint fp = Fingerprint::none) {
  return Key{Proto::tcp, true, port, classify::make_country('J', 'P'), fp, Kind::scan};
}
}  // namespace

TEST_CASE("buckets align to UTC and seal when time passes their end", "[counters][roller]") {
  Fixture f;
  auto r = f.make();
  r.add(1656633601, key(23), 40, 1);
  r.add(1656633659, key(23, Fingerprint::mirai), 40, 1);
  r.add(1656633659, key(22), 44, 1);
  CHECK(f.sealed.empty());
  r.add(1656633660, key(23), 40, 1);
  REQUIRE(f.sealed.size() == 1);
  const auto& b = f.sealed[0];
  CHECK(b.start == 1656633600);
  CHECK(b.width_s == 60);
  CHECK(b.seq == 7);
  CHECK(b.sensor_id == "s1");
  REQUIRE(b.rows.size() == 3);
  // Sorted by key: 22 before 23, then 23/none before 23/mirai.
  CHECK(b.rows[0].key.port == 22);
  CHECK(b.rows[1].key.fingerprint == Fingerprint::none);
  CHECK(b.rows[2].key.fingerprint == Fingerprint::mirai);
  CHECK(b.observed_packets() == 3);
  CHECK(b.observed_bytes() == 124);
  r.flush();
  REQUIRE(f.sealed.size() == 2);
  CHECK(f.sealed[1].seq == 8);
  CHECK(f.sealed[1].start == 1656633660);
}

TEST_CASE("empty buckets in a gap are sealed, up to the fill cap", "[counters][roller]") {
  Fixture f;
  auto r = f.make(60, 100, 3);
  r.add(0, key(23), 40, 1);
  r.add(4 * 60, key(23), 40, 1);    // buckets 60, 120, 180 are empty: sealed
  r.add(100 * 60, key(23), 40, 1);  // 95 empty buckets: more than the cap, left as a gap
  r.flush();
  REQUIRE(f.sealed.size() == 6);
  CHECK(f.sealed[1].start == 60);
  CHECK(f.sealed[1].rows.empty());
  CHECK(f.sealed[3].start == 180);
  CHECK(f.sealed[4].start == 240);
  CHECK(f.sealed[5].start == 6000);
  for (std::size_t i = 0; i < f.sealed.size(); ++i) CHECK(f.sealed[i].seq == 7 + i);
}

TEST_CASE("a stopping roller leaves the rest of a gap unfilled, packets still counted",
          "[counters][roller]") {
  for (const bool thread : {false, true}) {
    INFO("sealing thread " << thread);
    std::vector<bucket::SealedBucket> sealed;
    std::atomic<bool> stop{false};
    counters::RollerOptions o = options(100);
    o.seal_thread = thread;
    o.stop_filling = &stop;
    counters::BucketRoller r(o, [&](bucket::SealedBucket&& b) { sealed.push_back(std::move(b)); });
    r.add(0, key(23), 40, 1);
    r.add(10 * 60, key(23), 40, 1);  // 9 empty buckets between: sealed
    stop = true;
    r.add(1000 * 60, key(22), 40, 1);  // 989 empty buckets: not filled while stopping
    r.flush();
    REQUIRE(sealed.size() == 12);
    std::uint64_t packets = 0;
    for (std::size_t i = 0; i < sealed.size(); ++i) {
      CHECK(sealed[i].seq == i);
      packets += sealed[i].observed_packets();
    }
    CHECK(sealed[5].rows.empty());
    CHECK(sealed[10].start == 600);
    CHECK(sealed[11].start == 60000);
    CHECK(packets == 3);
  }
}

TEST_CASE("the key cap folds new keys into overflow and totals still add up",
          "[counters][roller]") {
  Fixture f;
  auto r = f.make(60, 16);
  std::uint64_t bytes = 0;
  for (std::uint16_t p = 1; p <= 40; ++p) {
    r.add(10, key(p), p, 1);
    bytes += p;
  }
  r.add(10, key(1), 1000, 1);  // a known key still counts in its row
  bytes += 1000;
  r.flush();
  REQUIRE(f.sealed.size() == 1);
  const auto& b = f.sealed[0];
  CHECK(b.rows.size() == 16);
  CHECK(b.loss.overflow_packets == 24);
  CHECK(b.observed_packets() == 41);
  CHECK(b.observed_bytes() == bytes);
}

TEST_CASE("losses and late packets are charged to the bucket in force", "[counters][roller]") {
  Fixture f;
  auto r = f.make();
  r.add(120, key(23), 40, 1);
  r.add_malformed(121, decode::DecodeStatus::ipv4_bad_ihl);
  r.add_not_for_sensor(122);
  r.add_ring_drops(123, 5);
  r.add(30, key(23), 40, 1);  // earlier than the open bucket: counted in it, as late
  r.flush();
  REQUIRE(f.sealed.size() == 1);
  const auto& b = f.sealed[0];
  CHECK(b.start == 120);
  CHECK(b.loss.malformed[static_cast<std::size_t>(decode::DecodeStatus::ipv4_bad_ihl)] == 1);
  CHECK(b.not_for_sensor == 1);
  CHECK(b.loss.ring_drops == 5);
  CHECK(b.late_packets == 1);
  CHECK(b.observed_packets() == 2);
  CHECK(b.accounted_packets() == 9);
}

TEST_CASE("negative timestamps align downwards", "[counters][roller]") {
  Fixture f;
  auto r = f.make();
  CHECK(r.align(-1) == -60);
  CHECK(r.align(-60) == -60);
  CHECK(r.align(59) == 0);
}

TEST_CASE("a tick seals quiet buckets without counting anything", "[counters][roller]") {
  Fixture f;
  auto r = f.make();
  r.tick(60);
  r.tick(125);
  REQUIRE(f.sealed.size() == 1);
  CHECK(f.sealed[0].start == 60);
  CHECK(f.sealed[0].accounted_packets() == 0);
  CHECK_THROWS(f.make(7));
}

TEST_CASE("rows carry their distinct sources, through pending folds and the memory bound",
          "[counters][roller][sketch]") {
  Fixture f;
  auto r = f.make(60, 100);
  // 23/TCP: 300,000 packets from 1,000 sources (more than the pending list holds, so it is
  // folded mid-bucket); 22/TCP: 3 packets from 2 sources.
  for (std::uint32_t i = 0; i < 300000; ++i)
    r.add(60, key(23), 40, sketch::hash_ipv4(0x0A000000u + i % 1000));
  r.add(61, key(22), 40, sketch::hash_ipv4(1));
  r.add(61, key(22), 40, sketch::hash_ipv4(2));
  r.add(61, key(22), 40, sketch::hash_ipv4(1));
  // The open bucket, as a pull shows it, already has them.
  const auto open = r.snapshot();
  REQUIRE(open);
  CHECK(open->rows.at(1).hosts.count() == 1000);
  r.add(125, key(23), 40, sketch::hash_ipv4(9));
  REQUIRE(f.sealed.size() == 1);
  const auto& b = f.sealed[0];
  REQUIRE(b.rows.size() == 2);
  CHECK(b.rows[0].key.port == 22);
  CHECK(b.rows[0].hosts.count() == 2);
  CHECK(b.rows[1].packets == 300000);
  CHECK(b.rows[1].hosts.count() == 1000);
  CHECK(b.hosts_unrecorded == 0);
  r.flush();
  CHECK(f.sealed[1].rows.at(0).hosts.count() == 1);  // the next bucket starts afresh

  // A 1 MiB sketch bound: 64 dense rows fit; the rest record what fits, count the rest,
  // and every packet is still counted.
  Fixture g;
  counters::RollerOptions o = options(200);
  o.max_sketch_bytes = 1 << 20;
  counters::BucketRoller small(
      o, [&g](bucket::SealedBucket&& s) { g.sealed.push_back(std::move(s)); });
  for (std::uint16_t port = 1; port <= 100; ++port)
    for (std::uint32_t i = 0; i < 2000; ++i) small.add(0, key(port), 40, sketch::hash_ipv4(i));
  small.flush();
  REQUIRE(g.sealed.size() == 1);
  std::uint64_t packets = 0;
  std::size_t dense = 0;
  for (const auto& row : g.sealed[0].rows) {
    packets += row.packets;
    dense += row.hosts.dense();
  }
  CHECK(packets == 200000);
  CHECK(dense <= 64);
  CHECK(g.sealed[0].hosts_unrecorded > 0);
}

TEST_CASE("full lists of sources folded on the sealing thread give the same sketches",
          "[counters][roller]") {
  // 600,000 packets in one bucket: several full pending lists go to the sealing thread
  // (more than its spare lists, so the counting thread also waits for one). Rows get from
  // one to thousands of sources (sparse and dense sketches); a small budget is tried too.
  auto run = [](bool thread, std::size_t budget, std::string* snap) {
    std::vector<std::string> rows;
    counters::RollerOptions o = options(200);
    o.max_sketch_bytes = budget;
    o.seal_thread = thread;
    counters::BucketRoller r(o, [&](bucket::SealedBucket&& b) {
      for (const auto& row : b.rows)
        rows.push_back(std::to_string(row.key.port) + " " + std::to_string(row.packets) + " " +
                       row.hosts.to_base64());
      rows.push_back("unrecorded " + std::to_string(b.hosts_unrecorded));
    });
    for (std::uint32_t i = 0; i < 600000; ++i) {
      const auto port = static_cast<std::uint16_t>(i % 150);
      const std::uint32_t src = port < 10 ? i : (i * 7919u) % (port * 13u + 1);
      r.add(5, key(port), 40, sketch::hash_ipv4(src));
      // Snapshots without sketches while full lists are folded on the sealing thread
      // (ThreadSanitizer checks that they read nothing the thread writes).
      if (i % 50000 == 0) CHECK(r.snapshot(false)->hosts_unrecorded == 0);
      if (i == 400000) {
        const auto b = r.snapshot(true);
        REQUIRE(b);
        for (const auto& row : b->rows) *snap += row.hosts.to_base64() + ";";
      }
    }
    r.add(65, key(1), 40, 1);  // seals the first bucket
    r.flush();
    return rows;
  };
  for (const std::size_t budget : {std::size_t{8} << 20, std::size_t{64} << 10}) {
    INFO(budget);
    std::string snap_thread, snap_inline;
    const auto threaded = run(true, budget, &snap_thread);
    const auto inline_rows = run(false, budget, &snap_inline);
    CHECK(threaded == inline_rows);
    CHECK(snap_thread == snap_inline);
    REQUIRE(threaded.size() > 150);
    if (budget > (std::size_t{1} << 20)) {
      CHECK(threaded[150] == "unrecorded 0");
    } else {
      CHECK(threaded[150] != "unrecorded 0");  // the small budget was reached
    }
  }
}

TEST_CASE("hosts_unrecorded counts the packets whose sources the budget left out",
          "[counters][roller]") {
  // A budget below one dense sketch: no source can be recorded, and every observed packet
  // is counted as unrecorded, repeats of one source included, inline or on the thread.
  for (const bool thread : {false, true}) {
    INFO(thread);
    std::vector<bucket::SealedBucket> sealed;
    counters::RollerOptions o = options();
    o.max_sketch_bytes = 1;
    o.seal_thread = thread;
    counters::BucketRoller r(o, [&](bucket::SealedBucket&& b) { sealed.push_back(std::move(b)); });
    for (std::uint32_t i = 0; i < 1000; ++i)
      r.add(5, key(23), 40, sketch::hash_ipv4(0x0A000000u + i % 3));  // 3 sources
    for (std::uint32_t i = 0; i < 200000; ++i)                        // more than one full list
      r.add(6, key(22), 40, sketch::hash_ipv4(0x0B000000u + i % 7));
    r.flush();
    REQUIRE(sealed.size() == 1);
    CHECK(sealed[0].hosts_unrecorded == 201000);
    for (const auto& row : sealed[0].rows) CHECK(row.hosts.empty());
  }
}

TEST_CASE("sealing on the roller's own thread gives the same buckets, in order, tagged",
          "[counters][roller]") {
  auto run = [](bool thread, std::vector<std::uint64_t>* tags) {
    std::vector<std::string> lines;
    counters::RollerOptions o = options(50);
    o.seal_thread = thread;
    counters::BucketRoller r(
        o, counters::BucketRoller::TaggedSink{[&](bucket::SealedBucket&& b, std::uint64_t tag) {
          lines.push_back(std::to_string(b.seq) + " " + std::to_string(b.start) + " " +
                          std::to_string(b.observed_packets()) + " " +
                          std::to_string(b.rows.size()) + " " + std::to_string(b.hosts_unrecorded));
          if (tags) tags->push_back(tag);
        }});
    for (std::uint64_t i = 0; i < 20000; ++i) {
      r.set_tag(i);
      const auto ts = static_cast<std::int64_t>(i / 7);  // ~48 buckets, with gaps filled
      r.add(ts * (i % 97 == 0 ? 3 : 1), key(static_cast<std::uint16_t>(i % 60)), 40,
            sketch::hash_ipv4(static_cast<std::uint32_t>(i % 333)));
      if (i % 1000 == 0) r.add_not_for_sensor(ts);
    }
    r.flush();  // waits for the sealing thread: every bucket is out on return
    return lines;
  };
  std::vector<std::uint64_t> tags;
  const auto threaded = run(true, &tags);
  CHECK(threaded == run(false, nullptr));
  CHECK(threaded.size() > 40);
  CHECK(std::is_sorted(tags.begin(), tags.end()));
  CHECK(tags.back() == 19999);  // the last bucket was sealed by flush, after the last packet

  // A sink that fails: the error comes back to the counting thread.
  counters::RollerOptions o = options();
  o.seal_thread = true;
  counters::BucketRoller r(o,
                           [](bucket::SealedBucket&&) { throw std::runtime_error("disk full"); });
  r.add(0, key(23), 40, 1);
  CHECK_THROWS_WITH(r.flush(), "disk full");
}

TEST_CASE("sources whose hashes share their top bits, in reverse order, fold correctly",
          "[counters][roller][sketch]") {
  // The fold orders a row's sources by the hashes' top bits first and finishes with an
  // insertion sort; sources chosen so that all hashes share those bits, in descending
  // order, would make that sort quadratic. It gives up past a budget of moves and sorts
  // outright: the sketches must come out the same as adding the hashes one by one.
  const std::uint64_t top = std::uint64_t{0x5AB} << 53;
  for (const std::size_t n : {std::size_t{1000}, std::size_t{140000}}) {
    INFO(n << " sources");
    Fixture f;
    auto r = f.make();
    sketch::HostSketch expected;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t h = top | (std::uint64_t{0xFFFFFFFF} - i * 7);
      r.add(1656633601, key(23), 40, h);
      expected.add(h);
    }
    r.flush();
    REQUIRE(f.sealed.size() == 1);
    REQUIRE(f.sealed[0].rows.size() == 1);
    CHECK(f.sealed[0].rows[0].hosts == expected);
    CHECK(f.sealed[0].rows[0].hosts.dense() == (n > sketch::HostSketch::kSparseMax));
    CHECK(f.sealed[0].rows[0].packets == n);
  }
}

TEST_CASE("the sink hears that no sealed bucket is waiting after every burst, folds or not",
          "[counters][roller]") {
  for (const bool thread : {true, false}) {
    INFO("sealing thread: " << thread);
    counters::RollerOptions o = options(50);
    o.seal_thread = thread;
    std::mutex mu;
    std::string events;  // s: a bucket to the sink, i: idle
    counters::BucketRoller r(o, [&](bucket::SealedBucket&&) {
      std::lock_guard lock(mu);
      events += 's';
    });
    r.on_idle([&] {
      std::lock_guard lock(mu);
      events += 'i';
    });
    // Full lists of sources (fold jobs) queued behind sealed buckets, and silent gaps.
    for (std::int64_t bucket = 0; bucket < 6; ++bucket) {
      for (std::uint32_t i = 0; i < 150000; ++i)
        r.add(bucket * 600 + i % 60, key(23), 40, sketch::hash_ipv4(i));
    }
    r.flush();
    std::lock_guard lock(mu);
    REQUIRE(!events.empty());
    CHECK(events.back() == 'i');                    // nothing sealed is left ungathered at the end
    CHECK(events.find("ii") == std::string::npos);  // idle only after buckets
    CHECK(std::count(events.begin(), events.end(), 's') == 6 * 10 - 9);  // gaps filled
  }
}

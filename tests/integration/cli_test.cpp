// SPDX-License-Identifier: Apache-2.0
// The command-line surface of teiten-sensord and teitenctl, run as real processes.
#include <catch2/catch.hpp>

#include "collector/store/store.h"
#include "ctl/gen/traffic_gen.h"
#include "tests/integration/test_support.h"
#include "tests/support/postgres.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

TEST_CASE("sensord --help and --version exit 0, unknown arguments exit 2", "[cli]") {
  TempDir dir;
  RunResult r = run({sensord_path(), "--help"}, dir);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Usage: teiten-sensord") != std::string::npos);
  r = run({sensord_path(), "--version"}, dir);
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("teiten-sensord ", 0) == 0);
  r = run({sensord_path(), "--bogus"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "teiten-sensord: unknown argument '--bogus' (see --help)\n");
  r = run({sensord_path()}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "teiten-sensord: --config FILE is required (see --help)\n");
}

TEST_CASE("teitenctl COMMAND --help prints that command's usage and exits 0", "[cli][ctl]") {
  TempDir dir;
  for (const std::string cmd :
       {"generate", "summary", "pki", "query", "report", "simulate", "status", "pull"}) {
    INFO(cmd);
    const RunResult r = run({teitenctl_path(), cmd, "--help"}, dir);
    CHECK(r.exit_code == 0);
    CHECK(r.out.rfind("teitenctl " + cmd + " ", 0) == 0);  // its own paragraph first
    CHECK(r.out.find("Usage: teitenctl COMMAND") == std::string::npos);
  }
  RunResult r = run({teitenctl_path(), "pki", "-h"}, dir);
  CHECK(r.out.find("teitenctl pki operator") != std::string::npos);  // every pki form
  r = run({teitenctl_path(), "bogus", "--help"}, dir);
  CHECK(r.exit_code == 2);
}

TEST_CASE("sensord --check-config prints every error in compiler format and exits 2",
          "[cli][config]") {
  TempDir dir;
  write_file(
      dir / "bad.yaml",
      "sensor:\n  id: x\n  adress: 1.2.3.4\nbuckets:\n  width: 7\ngeoip:\n  database: \"\"\n");
  const RunResult r = run({sensord_path(), "--config", dir / "bad.yaml", "--check-config"}, dir);
  CHECK(r.exit_code == 2);
  const std::string f = dir / "bad.yaml";
  CHECK(r.err == f + ":3:3: sensor: unknown key 'adress' (did you mean 'addresses'?)\n" + f +
                     ":5:10: buckets.width: 7 seconds does not divide a day (86400 s)\n" + f +
                     ":2:3: sensor.addresses: required key is missing\n"
                     "teiten-sensord: 3 configuration errors in " +
                     f + "\n");
}

TEST_CASE("sensord --check-config accepts a good configuration and a readable database",
          "[cli][config]") {
  TempDir dir;
  write_file(dir / "db.mmdb", "this is not a MaxMind database");
  write_file(dir / "good.yaml",
             "sensor:\n  id: x\n  addresses: [192.0.2.1]\ngeoip:\n  database: \"\"\n");
  RunResult r = run({sensord_path(), "-c", dir / "good.yaml", "--check-config"}, dir);
  CHECK(r.exit_code == 0);
  CHECK(r.out ==
        dir / "good.yaml" + ": configuration OK (sensor x, 1 address, no GeoIP database)\n");
  // A database path relative to the configuration file's folder; a corrupt file is refused.
  write_file(dir / "db.yaml",
             "sensor:\n  id: x\n  addresses: [192.0.2.1]\ngeoip:\n  database: db.mmdb\n");
  r = run({sensord_path(), "-c", dir / "db.yaml", "--check-config"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err == dir / "db.yaml" + ": geoip.database: cannot open GeoIP database " +
                     dir / "db.mmdb" + ": The MaxMind DB file contains invalid metadata\n");
}

TEST_CASE("the shipped example configuration matches the schema", "[cli][config]") {
  TempDir dir;
  const RunResult r = run({sensord_path(), "--print-example-config"}, dir);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == read_file(source_dir() + "/config/sensor.yaml"));
}

TEST_CASE("sensord reports a capture it cannot open", "[cli]") {
  TempDir dir;
  write_file(dir / "good.yaml",
             "sensor:\n  id: x\n  addresses: [192.0.2.1]\ngeoip:\n  database: \"\"\n");
  write_file(dir / "junk.pcap", "not a capture at all");
  const RunResult r = run({sensord_path(), "-c", dir / "good.yaml", "-r", dir / "junk.pcap"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("cannot open capture " + dir / "junk.pcap") != std::string::npos);
}

TEST_CASE("teitenctl generate and summary work end to end", "[cli][ctl]") {
  TempDir dir;
  RunResult r = run({teitenctl_path(), "generate", "--out", dir / "g.pcap", "--truth",
                     dir / "t.json", "--packets", "5000", "--seed", "3"},
                    dir);
  REQUIRE(r.exit_code == 0);
  write_file(dir / "s.yaml",
             "sensor:\n  id: x\n  addresses: [203.0.113.7]\ngeoip:\n  database: \"\"\n");
  r = run({sensord_path(), "-c", dir / "s.yaml", "-r", dir / "g.pcap", "-o", dir / "b.jsonl"}, dir);
  REQUIRE(r.exit_code == 0);
  r = run({teitenctl_path(), "summary", dir / "b.jsonl"}, dir);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("packets     5000 = observed") != std::string::npos);
  CHECK(r.out.find("23/TCP") != std::string::npos);
  CHECK(r.out.find("Mirai-type") != std::string::npos);
  r = run({teitenctl_path(), "generate", "--packets", "x", "--out", dir / "y.pcap"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err == "teitenctl: --packets: 'x' is not a non-negative integer (see teitenctl help)\n");
  write_file(dir / "broken.jsonl", "{\"sensor\":1}\n");
  r = run({teitenctl_path(), "summary", dir / "broken.jsonl"}, dir);
  CHECK(r.exit_code == 1);
  CHECK(r.err == dir / "broken.jsonl" + ":1: sensor: expected a string of at most 256 bytes\n");
}

TEST_CASE("teitenctl db copy moves a SQLite store into an empty PostgreSQL database once",
          "[cli][postgresql]") {
  TempDir dir;
  {
    auto lite = collector::open_store({"sqlite", dir / "c.sqlite", "", "UTC"});
    for (std::uint64_t seq = 0; seq < 3; ++seq)
      lite->ingest({telnet_minute("s1", "boot", seq, 10 + seq, 400)});
  }
  const std::string target = fresh_postgres_database();
  const auto copy = [&] {
    return run(
        {teitenctl_path(), "db", "copy", "--sqlite", dir / "c.sqlite", "--postgresql", target},
        dir);
  };
  RunResult r = copy();
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("3 buckets (3 detail rows)") != std::string::npos);
  CHECK(r.out.find("days cut in UTC") != std::string::npos);
  auto pg = collector::open_store({"postgresql", "", target, "UTC"});
  collector::Query q;
  CHECK(pg->query(q).at(0).packets == 10 + 11 + 12);
  // A second copy would count everything twice: refused.
  r = copy();
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("already holds buckets") != std::string::npos);
  CHECK(pg->accounting(q).buckets == 3);
  r = run({teitenctl_path(), "db", "copy", "--sqlite", dir / "c.sqlite"}, dir);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--postgresql CONNINFO") != std::string::npos);
  r = run(
      {teitenctl_path(), "db", "copy", "--sqlite", dir / "missing.sqlite", "--postgresql", target},
      dir);
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("missing.sqlite") != std::string::npos);
}

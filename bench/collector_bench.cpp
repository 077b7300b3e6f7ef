// SPDX-License-Identifier: Apache-2.0
// Collector ingest benchmark: N simulated sensors POST batches of sealed buckets (50 rows
// each) to real teiten-collectord processes over mutual TLS on loopback, concurrently,
// while --dashboard-clients operators load dashboard pages and --report-clients ask the API
// for quarterly reports as fast as they are served.
// --backend sqlite (one collector) or postgresql (--collectors N on one PostgreSQL server
// this program starts with tests/tools/pg-fixture.sh, durable settings; sensors spread
// over the collectors). Prints buckets/s, rows/s, the acknowledgement latency (p50, p99)
// and the pages served. Figures only.
// --rate B offers B buckets/s in all (each sensor sends its batches on a schedule, the
// way sensors deliver as buckets seal) instead of as fast as acknowledged; latency then
// counts from each batch's scheduled time, so a late send is not hidden.
// --decode-only 1 starts nothing: it times the collector's decoding of the same batch
// bodies (bucket::decode_batch, on simdjson), next to the same decoder on nlohmann's SAX
// interface (the collector's until 2026-12-05 evening), the DOM decoder both fall back to
// for malformed bodies (the collector's before that), nlohmann's parse into a DOM, and its
// SAX lexer with a handler that does nothing (the floor of any decoder on that library).
#include <utility>  // before Asio

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bucket/batch_simdjson.h"
#include "common/bucket/bucket_json.h"
#include "common/http/client.h"
#include "common/tls/pki.h"

extern char** environ;

namespace {
using namespace teiten;
using Clock = std::chrono::steady_clock;

bucket::SealedBucket make_bucket(const std::string& sensor, std::uint64_t seq) {
  bucket::SealedBucket b;
  b.sensor_id = sensor;
  b.boot_id = "bench";
  b.seq = seq;
  b.start = 1656633600 + static_cast<std::int64_t>(seq) * 60;
  for (std::uint16_t i = 0; i < 50; ++i) {
    b.rows.push_back(
        {classify::Key{classify::Proto::tcp, true, static_cast<std::uint16_t>(i * 37 + 1),
                       classify::make_country('J', static_cast<char>('A' + i % 26)),
                       i % 3 ? classify::Fingerprint::none : classify::Fingerprint::mirai,
                       classify::Kind::scan},
         100u + i, 4000u + i});
  }
  return b;
}

// Accepts every event and keeps nothing: what nlohmann's lexer costs on its own.
struct NullSax : nlohmann::json_sax<nlohmann::json> {
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return true; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return true; }
  bool start_array(std::size_t) override { return true; }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

int decode_only(int batches, int batch_size) {
  std::vector<std::string> bodies;
  for (int b = 0; b < batches; ++b) {
    std::vector<bucket::SealedBucket> batch;
    for (int i = 0; i < batch_size; ++i)
      batch.push_back(make_bucket("bench-0", static_cast<std::uint64_t>(b * batch_size + i)));
    bodies.push_back(bucket::to_batch_json(batch));
  }
  const double buckets = static_cast<double>(batches) * batch_size;
  const auto time = [&](const char* what, auto&& fn) {
    const auto t0 = Clock::now();
    std::size_t check = 0;
    for (const auto& body : bodies) check += fn(body);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("%-44s %8.1f us/bucket  %8.0f buckets/s per core  (%zu)\n", what, s / buckets * 1e6,
                buckets / s, check);
  };
  time("decode_batch (simdjson, the collector)", [&](const std::string& body) {
    std::string error;
    const auto e = bucket::decode_batch(body, 100000, error);
    return e ? e->size() : 0;
  });
  time("from_batch_json_entries (nlohmann SAX)", [&](const std::string& body) {
    std::string error;
    const auto e = bucket::from_batch_json_entries(body, 100000, error);
    return e ? e->size() : 0;
  });
  time("detail::from_batch_json_entries_dom (before)", [&](const std::string& body) {
    std::string error;
    const auto e = bucket::detail::from_batch_json_entries_dom(body, 100000, error);
    return e ? e->size() : 0;
  });
  time("nlohmann::json::parse (DOM only)",
       [&](const std::string& body) { return nlohmann::json::parse(body)["buckets"].size(); });
  time("nlohmann::json::sax_parse (no-op handler)", [&](const std::string& body) {
    NullSax sax;
    return static_cast<std::size_t>(nlohmann::json::sax_parse(body, &sax));
  });
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  int sensors = 8, batches = 25, batch_size = 100, dashboard_clients = 0, collectors = 1,
      report_clients = 0, decode_only_flag = 0;
  double rate = 0;
  std::string backend = "sqlite";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--backend") {
      backend = argv[i + 1];
      continue;
    }
    if (a == "--rate") {
      rate = std::stod(argv[i + 1]);
      continue;
    }
    const int v = std::stoi(argv[i + 1]);
    if (a == "--collectors")
      collectors = v;
    else if (a == "--sensors")
      sensors = v;
    else if (a == "--batches")
      batches = v;
    else if (a == "--batch")
      batch_size = v;
    else if (a == "--dashboard-clients")
      dashboard_clients = v;
    else if (a == "--report-clients")
      report_clients = v;
    else if (a == "--decode-only")
      decode_only_flag = v;
  }
  if (decode_only_flag) return decode_only(batches, batch_size);
  const std::string dir = "/tmp/teiten-collector-bench";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::int64_t now = std::time(nullptr);
  const tls::Credential ca =
      tls::make_ca({"Bench CA", tls::CertRole::ca, {}, {}, now - 60, now + 86400});
  tls::write_credential(ca, dir + "/ca.pem", dir + "/ca.key");
  tls::write_credential(tls::issue(ca, {"localhost",
                                        tls::CertRole::server,
                                        {"localhost"},
                                        {},
                                        now - 60,
                                        now + 86400,
                                        tls::Role::collector,
                                        "localhost"}),
                        dir + "/collector.pem", dir + "/collector.key");
  std::string registry;
  for (int s = 0; s < sensors; ++s) {
    const std::string id = "bench-" + std::to_string(s);
    tls::write_credential(
        tls::issue(
            ca, {id, tls::CertRole::client, {}, {}, now - 60, now + 86400, tls::Role::sensor, id}),
        dir + "/" + id + ".pem", dir + "/" + id + ".key");
    registry += "  - id: " + id + "\n    region: domestic\n    active_from: 2022-01-01\n";
  }
  tls::write_credential(
      tls::issue(
          ca,
          {"op", tls::CertRole::client, {}, {}, now - 60, now + 86400, tls::Role::operator_, "op"}),
      dir + "/operator.pem", dir + "/operator.key");
  std::string storage;
  const std::string fixture = std::string{TEITEN_SOURCE_DIR} + "/tests/tools/pg-fixture.sh";
  if (backend == "postgresql") {
    if (std::system(("PG_FIXTURE_DURABLE=1 '" + fixture + "' start " + dir + "/pg.state").c_str()))
      return 1;
    std::string pgdir;
    std::ifstream(dir + "/pg.state") >> pgdir;
    storage = "storage:\n  backend: postgresql\n  postgresql: \"host=" + pgdir +
              " user=teiten dbname=postgres\"\n";
  } else {
    collectors = 1;
  }
  std::vector<pid_t> pids;
  for (int c = 0; c < collectors; ++c) {
    const std::string cfg = dir + "/collector-" + std::to_string(c) + ".yaml";
    std::ofstream(cfg) << "collector:\n  port: " << 18999 - 2 * c
                       << "\n  database: collector.sqlite\ntls:\n  ca: ca.pem\n  cert: "
                          "collector.pem\n"
                          "  key: collector.key\ndashboard:\n  port: "
                       << 18998 - 2 * c << "\n"
                       << storage << "sensors:\n"
                       << registry;
    std::string exe = TEITEN_BENCH_COLLECTORD;
    std::string cfg_arg = cfg;
    std::vector<char*> args = {exe.data(), const_cast<char*>("-c"), cfg_arg.data(), nullptr};
    pid_t pid = 0;
    posix_spawn(&pid, exe.c_str(), nullptr, nullptr, args.data(), environ);
    pids.push_back(pid);
    // The first migrates the schema; the others find it done.
    std::this_thread::sleep_for(std::chrono::milliseconds(c == 0 ? 1000 : 300));
  }
  std::vector<std::vector<std::string>> bodies(sensors);
  for (int s = 0; s < sensors; ++s) {
    for (int b = 0; b < batches; ++b) {
      std::vector<bucket::SealedBucket> batch;
      for (int i = 0; i < batch_size; ++i) {
        batch.push_back(make_bucket("bench-" + std::to_string(s),
                                    static_cast<std::uint64_t>(b * batch_size + i)));
      }
      bodies[s].push_back(bucket::to_batch_json(batch));
    }
  }
  std::vector<std::vector<double>> latencies(sensors);
  std::vector<int> failures(sensors, 0);
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < sensors; ++s) {
    threads.emplace_back([&, s] {
      const std::string id = "bench-" + std::to_string(s);
      auto ctx =
          tls::make_client_tls({dir + "/ca.pem", dir + "/" + id + ".pem", dir + "/" + id + ".key"},
                               tls::Role::collector);
      // Paced: sensor s sends batch k at t0 + (k + s / sensors) * interval.
      const auto interval = std::chrono::duration<double>(
          rate > 0 ? static_cast<double>(sensors) * batch_size / rate : 0.0);
      int k = 0;
      for (const auto& body : bodies[s]) {
        auto a = Clock::now();
        if (rate > 0) {
          a = t0 + std::chrono::duration_cast<Clock::duration>(
                       interval * (k + static_cast<double>(s) / sensors));
          std::this_thread::sleep_until(a);
        }
        ++k;
        try {
          const auto r = http::https_request_sync(
              ctx, "localhost", std::to_string(18999 - 2 * (s % collectors)), "POST", "/v1/buckets",
              body, std::chrono::seconds(60));
          if (r.status != 200) ++failures[s];
        } catch (const std::exception& e) {
          ++failures[s];
        }
        latencies[s].push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
      }
    });
  }
  // Operators loading a month's dashboard page again and again meanwhile.
  std::atomic<bool> ingest_done{false};
  std::atomic<int> pages{0};
  std::vector<std::thread> board;
  // Operators asking the API (the first collector) for reports meanwhile.
  std::atomic<int> reports{0};
  for (int c = 0; c < report_clients; ++c) {
    board.emplace_back([&] {
      auto ctx = tls::make_client_tls(
          {dir + "/ca.pem", dir + "/operator.pem", dir + "/operator.key"}, tls::Role::collector);
      while (!ingest_done) {
        try {
          const auto r = http::https_request_sync(ctx, "localhost", "18999", "GET",
                                                  "/v1/report?quarter=2022Q3&format=markdown", "",
                                                  std::chrono::seconds(60));
          if (r.status == 200) ++reports;
        } catch (const std::exception&) {
        }
      }
    });
  }
  for (int c = 0; c < dashboard_clients; ++c) {
    board.emplace_back([&] {
      auto ctx = tls::make_client_tls(
          {dir + "/ca.pem", dir + "/operator.pem", dir + "/operator.key"}, tls::Role::collector);
      while (!ingest_done) {
        try {
          const auto r = http::https_request_sync(ctx, "localhost", "18998", "GET",
                                                  "/api/report.json?from=2022-07-01&to=2022-07-31",
                                                  "", std::chrono::seconds(60));
          if (r.status == 200) ++pages;
        } catch (const std::exception&) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ingest_done = true;
  for (auto& t : board) t.join();
  for (const pid_t pid : pids) kill(pid, SIGTERM);
  for (const pid_t pid : pids) waitpid(pid, nullptr, 0);
  if (backend == "postgresql")
    (void)!std::system(("'" + fixture + "' stop " + dir + "/pg.state").c_str());
  std::vector<double> all;
  int failed = 0;
  for (int s = 0; s < sensors; ++s) {
    all.insert(all.end(), latencies[s].begin(), latencies[s].end());
    failed += failures[s];
  }
  std::sort(all.begin(), all.end());
  const double buckets = static_cast<double>(sensors) * batches * batch_size;
  std::printf(
      "collector ingest: %d sensors x %d batches x %d buckets of 50 rows, mutual TLS, one "
      "connection per batch, %s%s\n",
      sensors, batches, batch_size,
      rate > 0 ? ("offered " + std::to_string(static_cast<long>(rate)) + " buckets/s, ").c_str()
               : "",
      backend == "postgresql"
          ? (std::to_string(collectors) + " collector(s) on one PostgreSQL 15 (fsync on)").c_str()
          : "SQLite WAL synchronous=FULL");
  std::printf("  %.0f buckets/s, %.0f rows/s (%.0f buckets in %.2f s), failed requests: %d\n",
              buckets / secs, buckets * 50 / secs, buckets, secs, failed);
  std::printf("  acknowledgement latency per batch: p50 %.1f ms, p99 %.1f ms\n",
              all[all.size() / 2], all[std::min(all.size() - 1, all.size() * 99 / 100)]);
  std::printf("  dashboard: %d clients, %d pages served meanwhile (own thread and connection)\n",
              dashboard_clients, pages.load());
  std::printf("  reports: %d clients, %d quarterly reports served meanwhile (report workers)\n",
              report_clients, reports.load());
  const double p99 = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  if (report_clients > 0)
    std::printf("  target p99 <= 100 ms while reports run: %s\n", p99 <= 100 ? "met" : "NOT met");
  if (rate > 0) {
    // Paced: the throughput is what was offered; the figure is the latency.
  } else if (backend == "postgresql" && collectors >= 3) {
    std::printf("  target >= 10000 buckets/s with three collectors: %s\n",
                buckets / secs >= 10000 ? "met" : "NOT met");
  } else {
    std::printf("  target >= 2000 buckets/s: %s\n", buckets / secs >= 2000 ? "met" : "NOT met");
  }
  return failed ? 1 : 0;
}

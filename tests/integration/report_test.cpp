// SPDX-License-Identifier: Apache-2.0
// The quarterly analyses end to end: generated packets through teiten-sensord and
// teiten-collectord (mutual TLS, SQLite) into teitenctl report, and the dashboard in a
// real headless Chromium.
#include <utility>  // before Asio

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/integration/network_fixture.h"
#include "tests/integration/test_support.h"
#include "tests/support/postgres.h"
#include "tests/unit/test_paths.h"

using namespace teiten;
using namespace teiten::test;

namespace {

std::vector<std::string> report_cmd(Network& n, std::vector<std::string> extra) {
  std::vector<std::string> argv = {teitenctl_path(), "report",
                                   "--collector",    "localhost:" + std::to_string(n.port),
                                   "--ca",           n.pki() + "/ca.pem",
                                   "--cert",         n.pki() + "/operator-op.pem",
                                   "--key",          n.pki() + "/operator-op.key"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// CSV lines analysis,subject,period,series,value -> value.
std::map<std::string, std::string> csv_values(const std::string& csv) {
  std::map<std::string, std::string> out;
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const auto last = line.rfind(',');
    out[line.substr(0, last)] = line.substr(last + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("a quarter with the seed's Japan-sourced counts reports the seed's Table 1", "[report]") {
  // Through a collector on each backend: the same report, to the packet and the host.
  const std::string backend = GENERATE(as<std::string>{}, "sqlite", "postgresql");
  INFO("backend " << backend);
  Network n;
  // 91 days of Japan time from 2022-04-01 00:00 JST, hourly buckets.
  RunResult g = run({teitenctl_path(), "generate", "--out", n.dir / "in.pcap", "--plan",
                     source_dir() + "/tests/data/seed-2022q2.plan", "--packets", "20000", "--start",
                     "2022-03-31T15:00:00Z", "--duration", "7862400", "--seed", "7"},
                    n.dir);
  INFO(g.err);
  REQUIRE(g.exit_code == 0);
  auto collector =
      n.start_collector(backend == "sqlite" ? ""
                                            : "storage:\n  backend: postgresql\n  postgresql: \"" +
                                                  fresh_postgres_database() + "\"\n");
  n.write_sensor_config("gen-1", make_mmdb(n.dir), "buckets:\n  width: 3600\n");
  const RunResult r = run(sensord(n, "gen-1"), n.dir);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const RunResult j = run(report_cmd(n, {"--quarter", "2022Q2", "--format", "json"}), n.dir);
  INFO(j.err);
  REQUIRE(j.exit_code == 0);
  const auto rep = nlohmann::json::parse(j.out);
  CHECK(rep["time_zone"] == "Asia/Tokyo");
  const std::vector<std::string> labels = {"23/TCP", "37215/TCP", "2323/TCP", "22/TCP", "5501/TCP"};
  const std::vector<std::uint64_t> all = {54555, 6554, 3180, 5351, 1285};
  const std::vector<std::uint64_t> mirai = {51468, 6551, 2679, 1906, 1285};
  const std::vector<std::string> ratio = {"94.34%", "99.95%", "84.25%", "35.62%", "100.00%"};
  // Distinct sources by construction: the plan's host counts (exact below the sparse limit).
  const std::vector<std::uint64_t> hosts_all = {1200, 403, 350, 355, 60};
  const std::vector<std::uint64_t> hosts_mirai = {900, 400, 250, 150, 60};
  REQUIRE(rep["ports"].size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    const auto& p = rep["ports"][i];
    CHECK(p["destination"] == labels[i]);
    CHECK(p["all"] == all[i]);
    CHECK(p["fingerprinted"] == mirai[i]);
    CHECK(p["ratio"] == ratio[i]);
    CHECK(p["unique_hosts_all"] == hosts_all[i]);
    CHECK(p["unique_hosts_fingerprinted"] == hosts_mirai[i]);
    // Figures 1 and 2: the daily series add up to the quarter's counts.
    REQUIRE(p["daily"].size() == 91);
    std::uint64_t sum_all = 0, sum_mirai = 0;
    for (const auto& d : p["daily"]) {
      sum_all += d["all"].get<std::uint64_t>();
      sum_mirai += d["fingerprinted"].get<std::uint64_t>();
    }
    CHECK(sum_all == all[i]);
    CHECK(sum_mirai == mirai[i]);
  }
  // 22/TCP jumps on June 16 in ALL, not in Mirai-type.
  const auto& june16 = rep["ports"][3]["daily"][76];
  CHECK(june16["day"] == "2022-06-16");
  CHECK(june16["all"].get<std::uint64_t>() > 2000);
  CHECK(june16["fingerprinted"].get<std::uint64_t>() < 100);

  // The Markdown table is the seed's, with the ratios its counts give.
  const RunResult md = run(report_cmd(n, {"--quarter", "2022Q2"}), n.dir);
  REQUIRE(md.exit_code == 0);
  CHECK(md.out.find("| | 23/TCP | 37215/TCP | 2323/TCP | 22/TCP | 5501/TCP |") !=
        std::string::npos);
  CHECK(md.out.find("| ALL | 54555 | 6554 | 3180 | 5351 | 1285 |") != std::string::npos);
  CHECK(md.out.find("| Mirai-type | 51468 | 6551 | 2679 | 1906 | 1285 |") != std::string::npos);
  CHECK(md.out.find("| ratio | 94.34% | 99.95% | 84.25% | 35.62% | 100.00% |") !=
        std::string::npos);

  // CSV and HTML carry the same numbers.
  const RunResult csv = run(report_cmd(n, {"--quarter", "2022Q2", "--format", "csv"}), n.dir);
  REQUIRE(csv.exit_code == 0);
  const auto values = csv_values(csv.out);
  const RunResult html = run(
      report_cmd(n, {"--quarter", "2022Q2", "--format", "html", "--output", n.dir / "report.html"}),
      n.dir);
  REQUIRE(html.exit_code == 0);
  const std::string page = read_file(n.dir / "report.html");
  const auto shown = html_cells(page);
  for (std::size_t i = 0; i < 5; ++i) {
    const std::string key = "ports," + labels[i] + ",2022-04-01/2022-06-30,";
    CHECK(values.at(key + "ALL") == std::to_string(all[i]));
    CHECK(values.at(key + "Mirai-type") == std::to_string(mirai[i]));
    CHECK(values.at(key + "ratio") == ratio[i]);
    CHECK(shown.at("ports/" + labels[i] + "/all") == std::to_string(all[i]));
    CHECK(shown.at("ports/" + labels[i] + "/ratio") == ratio[i]);
  }
  CHECK(page.find("<polyline") != std::string::npos);
  CHECK(page.find("<script") == std::string::npos);  // the file is self-contained and static

  // Notable changes: the detector finds the seed's own example (nothing here names it),
  // in every format, and marks its day on the charts.
  const auto& events = rep["events"];
  INFO(events.dump(1));
  const auto jump = std::find_if(events.begin(), events.end(), [](const nlohmann::json& e) {
    return e["destination"] == "22/TCP" && e["day"] == "2022-06-16";
  });
  REQUIRE(jump != events.end());
  CHECK((*jump)["kind"] == "spike");
  CHECK((*jump)["country"] == "JP");
  CHECK((*jump)["scope"] == "domestic");
  CHECK((*jump)["fingerprinted_share"].get<double>() < 0.05);
  CHECK((*jump)["excess"].get<double>() == Approx(2000).epsilon(0.1));
  CHECK((*jump)["sources"].get<std::uint64_t>() >= 5);
  const std::string sentence = (*jump)["sentence"];
  CHECK(sentence.find("Packets to 22/TCP from JP at domestic sensors jumped on 2022-06-16") == 0);
  CHECK(sentence.find("none of the change was Mirai-type") != std::string::npos);
  CHECK(events.begin() == jump);  // the strongest change of the quarter: ranked first
  CHECK(md.out.find("## Notable changes\n\n1. **2022-06-16** " + sentence) != std::string::npos);
  CHECK(md.out.find("## Notable changes") < md.out.find("## 1."));  // said first
  CHECK(csv.out.find("events,#1,2022-06-16,sentence,\"" + sentence + "\"\n") != std::string::npos);
  CHECK(page.find("<ol id=\"events\"><li data-kind=\"spike\" data-day=\"2022-06-16\" "
                  "data-destination=\"22/TCP\">") != std::string::npos);
  CHECK(page.find("<g class=\"mark\" data-mark=\"1\">") != std::string::npos);
  std::vector<std::string> events_argv = report_cmd(n, {"--quarter", "2022Q2", "--format", "json"});
  events_argv[1] = "events";
  const RunResult ev = run(events_argv, n.dir);
  INFO(ev.err);
  REQUIRE(ev.exit_code == 0);
  CHECK(nlohmann::json::parse(ev.out) == events);
  const RunResult without = run(report_cmd(n, {"--quarter", "2022Q2", "--events", "no"}), n.dir);
  REQUIRE(without.exit_code == 0);
  CHECK(without.out.find("No notable changes began in this range.") != std::string::npos);

  // Refusals are explained.
  const RunResult bad = run(report_cmd(n, {"--quarter", "2022Q2", "--tz", "UTC"}), n.dir);
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("cuts days in Asia/Tokyo") != std::string::npos);
}

TEST_CASE("simulated sensors feed the dashboard, and Chromium shows the API numbers",
          "[report][once]") {
  Network n;
  // With one labelled change put in: a spike of 445/TCP on 2022-05-20 at every sensor.
  write_file(n.dir / "events.json",
             R"([{"kind": "spike", "proto": "tcp", "port": 445, "start": "2022-05-20", )"
             R"("days": 1, "size": 6}])");
  const std::vector<std::string> sim = {"--domestic", "2",
                                        "--overseas", "1",
                                        "--months",   "3",
                                        "--start",    "2022-04",
                                        "--width",    "86400",
                                        "--seed",     "3",
                                        "--events",   n.dir / "events.json",
                                        "--labels",   n.dir / "labels.json"};
  std::vector<std::string> argv = {teitenctl_path(), "simulate", "--print-registry"};
  argv.insert(argv.end(), sim.begin(), sim.end());
  RunResult reg = run(argv, n.dir);
  REQUIRE(reg.exit_code == 0);
  n.extra_sensors = reg.out.substr(reg.out.find('\n') + 1);  // entries after "sensors:"
  auto collector = n.start_collector();
  argv = {teitenctl_path(), "simulate", "--collector", "localhost:" + std::to_string(n.port),
          "--pki",          n.pki()};
  argv.insert(argv.end(), sim.begin(), sim.end());
  const RunResult first = run(argv, n.dir);
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  // 3 sensors x 91 daily buckets, less the days the simulation takes a sensor down.
  std::smatch counted;
  REQUIRE(std::regex_search(first.out, counted,
                            std::regex("(\\d+) buckets \\((\\d+) stored, 0 already there\\)")));
  const std::string buckets = counted[1];
  CHECK(counted[2] == buckets);
  CHECK(std::stoi(buckets) > 260);
  CHECK(std::stoi(buckets) <= 273);
  // Deterministic: the same run again brings only buckets the collector already has.
  const RunResult again = run(argv, n.dir);
  REQUIRE(again.exit_code == 0);
  CHECK(again.out.find(buckets + " buckets (0 stored, " + buckets + " already there)") !=
        std::string::npos);
  CHECK(again.out.substr(again.out.rfind(", ")) == first.out.substr(first.out.rfind(", ")));

  const auto api = n.request("operator-op", "GET", "/v1/report?from=2022-04-01&to=2022-06-30");
  REQUIRE(api.status == 200);
  const auto rep = nlohmann::json::parse(api.body);
  REQUIRE(rep["ports"].size() == 5);
  REQUIRE(rep["sensors"].size() == 6);  // the fixture's three and the simulated three
  // The change put in is the quarter's notable change, found by the collector.
  CHECK(nlohmann::json::parse(read_file(n.dir / "labels.json"))[0]["start"] == "2022-05-20");
  const auto& events = rep["events"];
  INFO(events.dump(1));
  const auto spike = std::find_if(events.begin(), events.end(), [](const nlohmann::json& e) {
    return e["destination"] == "445/TCP" && e["day"] == "2022-05-20" && e["kind"] == "spike";
  });
  REQUIRE(spike != events.end());
  CHECK((*spike)["scope"] == "both");

  // The dashboard asks for an operator's certificate: none, or a sensor's, sees nothing.
  {
    const std::string port = std::to_string(n.dashboard_port);
    auto anon = tls::make_client_tls({n.pki() + "/ca.pem", "", ""}, tls::Role::collector);
    CHECK_THROWS(http::https_request_sync(anon, "localhost", port, "GET", "/api/report.json", "",
                                          std::chrono::seconds(20)));
    auto sensor = tls::make_client_tls(
        {n.pki() + "/ca.pem", n.pki() + "/sensor-gen-1.pem", n.pki() + "/sensor-gen-1.key"},
        tls::Role::collector);
    const auto refused = http::https_request_sync(sensor, "localhost", port, "GET",
                                                  "/api/report.json", "", std::chrono::seconds(20));
    CHECK(refused.status == 403);
    CHECK(refused.body.find("certificate of sensor 'gen-1' cannot see the dashboard") !=
          std::string::npos);
  }
  // The dashboard only reads, and bounds what a page costs.
  {
    auto ctx = tls::make_client_tls(
        {n.pki() + "/ca.pem", n.pki() + "/operator-op.pem", n.pki() + "/operator-op.key"},
        tls::Role::collector);
    const std::string port = std::to_string(n.dashboard_port);
    CHECK(http::https_request_sync(ctx, "localhost", port, "POST", "/api/report.json", "x",
                                   std::chrono::seconds(20))
              .status == 405);
    const auto wide = http::https_request_sync(ctx, "localhost", port, "GET",
                                               "/api/report.json?from=2020-01-01&to=2022-06-30", "",
                                               std::chrono::seconds(20));
    CHECK(wide.status == 400);
    CHECK(wide.body.find("at most 400 days") != std::string::npos);
    const auto same = http::https_request_sync(ctx, "localhost", port, "GET",
                                               "/api/report.json?from=2022-04-01&to=2022-06-30", "",
                                               std::chrono::seconds(20));
    REQUIRE(same.status == 200);
    CHECK(nlohmann::json::parse(same.body) == rep);
  }

  if (!std::filesystem::exists("/usr/bin/chromium")) {
    WARN("skipped the browser part: /usr/bin/chromium is not installed (scripts/install-deps.sh)");
    return;
  }
  // Headless Chromium presents a client certificate only by a machine-wide policy: the
  // browser part runs against the same database with dashboard.client_certificate: none
  // (the operator's explicit choice for a dashboard on a trusted network).
  collector.reset();
  collector = n.start_collector("  client_certificate: none\n");
  {
    // A page does not make the collector find a range's notable changes: it says they
    // are being found (and asks the live thread to); a report over the API finds them.
    auto anyone = tls::make_client_tls({n.pki() + "/ca.pem", "", ""}, tls::Role::collector);
    const auto early = http::https_request_sync(
        anyone, "localhost", std::to_string(n.dashboard_port), "GET",
        "/api/report.json?from=2022-04-01&to=2022-06-30", "", std::chrono::seconds(20));
    REQUIRE(early.status == 200);
    const auto j = nlohmann::json::parse(early.body);
    CHECK(j["events"].empty());
    CHECK(j["events_note"].get<std::string>().find("being found") != std::string::npos);
    REQUIRE(n.request("operator-op", "GET", "/v1/report?from=2022-04-01&to=2022-06-30").status ==
            200);
  }
  const auto browse = [&](const std::string& url) {
    return run(
        {"timeout", "120", "chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--ignore-certificate-errors", "--user-data-dir=" + (n.dir / "chromium"),
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", url},
        n.dir);
  };
  // The console check can fail: a page with an error shows up in Chromium's log.
  const RunResult control = browse("data:text/html,<script>console.error('teiten-probe')</script>");
  REQUIRE(control.err.find(":CONSOLE") != std::string::npos);

  const RunResult page = browse("https://127.0.0.1:" + std::to_string(n.dashboard_port) +
                                "/?from=2022-04-01&to=2022-06-30");
  REQUIRE(page.exit_code == 0);
  std::string console;
  for (std::istringstream in(page.err); std::getline(in, console);)
    CHECK(console.find(":CONSOLE") == std::string::npos);
  const auto shown = html_cells(page.out);
  // The dashboard lists the range's notable changes beside the figures.
  CHECK(page.out.find("<h2>Notable changes</h2>") != std::string::npos);
  for (const auto& e : events)
    CHECK(page.out.find("data-destination=\"" + e["destination"].get<std::string>() + "\"><b>" +
                        e["day"].get<std::string>() + "</b> " + e["sentence"].get<std::string>() +
                        "</li>") != std::string::npos);
  for (const auto& p : rep["ports"]) {
    const std::string label = p["destination"];
    CHECK(shown.at("ports/" + label + "/all") == std::to_string(p["all"].get<std::uint64_t>()));
    CHECK(shown.at("ports/" + label + "/fingerprinted") ==
          std::to_string(p["fingerprinted"].get<std::uint64_t>()));
    CHECK(shown.at("ports/" + label + "/unique_hosts_all") ==
          std::to_string(p["unique_hosts_all"].get<std::uint64_t>()));
  }
  for (const auto& s : rep["sensors"]) {
    int rank = 0;
    for (const auto& t : s["top"]) {
      const std::string k =
          "sensors/" + s["sensor"].get<std::string>() + "/" + std::to_string(++rank);
      CHECK(shown.at(k + "/destination") == t["destination"].get<std::string>());
      CHECK(shown.at(k + "/packets") == std::to_string(t["packets"].get<std::uint64_t>()));
    }
  }
  for (const auto& m : rep["months"]) {
    const auto& d = m["domestic"];
    char avg[32];
    std::snprintf(avg, sizeof avg, "%.1f", d["average"].get<double>());
    CHECK(shown.at("months/" + m["month"].get<std::string>() + "/domestic") ==
          std::string{avg} + (d["complete"].get<bool>() ? "" : "*"));
  }
  // The health panel is filled by the page's script from the API: it ran, without errors.
  for (const auto& h : rep["health"]) {
    const std::string k = "health/" + h["sensor"].get<std::string>() + "/";
    CHECK(shown.at(k + "observed_packets") ==
          std::to_string(h["observed_packets"].get<std::uint64_t>()));
    CHECK(shown.at(k + "last_bucket_end") ==
          (h["last_bucket_end"].is_null() ? "never" : h["last_bucket_end"].get<std::string>()));
  }
  // The charts rendered: a line per port over the 91 days, bars per month, weekly graphs.
  const std::regex line(
      "<polyline class=\"series\" data-series=\"([^\"]+)\"[^>]*points=\"([^\"]*)\"");
  std::size_t lines = 0;
  for (auto it = std::sregex_iterator(page.out.begin(), page.out.end(), line);
       it != std::sregex_iterator(); ++it) {
    ++lines;
    const std::string pts = (*it)[2];
    CHECK(std::count(pts.begin(), pts.end(), ',') >= 13);  // at least 13 weeks of points
  }
  CHECK(lines == 2 * 5 + 2 * 5);  // Figures 1 and 2, and ALL/Mirai-type per weekly port
  CHECK(page.out.find("data-chart=\"monthly-domestic\"") != std::string::npos);
}

// SPDX-License-Identifier: Apache-2.0
// teitenctl: the Teiten operator's command-line tool.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "common/bucket/bucket_json.h"
#include "common/version.h"
#include "ctl/commands.h"
#include "ctl/gen/traffic_gen.h"
#include "ctl/summary.h"

namespace {

using namespace teiten;

constexpr const char* kUsage = R"(Usage: teitenctl COMMAND [options]

Commands:
  generate   write a synthetic darknet capture (pcap) and its ground truth
  summary    print a summary of sealed buckets (JSON lines from teiten-sensord)
  pki        create the CA and the collector, sensor and operator certificates
  query      totals from a collector (mutual TLS)
  report     the quarterly analyses from a collector (mutual TLS)
  events     the notable changes a collector found (mutual TLS)
  simulate   push a simulated sensor network's buckets to a collector (mutual TLS)
  db         copy a collector's SQLite store into PostgreSQL
  status     a sensor's state from its control server (mutual TLS)
  pull       a sensor's recent buckets and its open one (mutual TLS)
  help       this text

teitenctl generate --out CAPTURE.pcap [--truth TRUTH.json] [--prefixes PREFIXES.tsv]
                   [--packets N] [--seed N] [--start RFC3339] [--duration SECONDS]
                   [--width SECONDS] [--sensor-v4 ADDR] [--sensor-v6 ADDR] [--plan PLAN]
  Deterministic: the same options always write the same bytes. The ground truth is what
  the capture holds by construction, per bucket of --width seconds (default 60).
  --plan adds exactly planned packets, one entry per line: "COUNTRY tcp|udp PORT
  mirai|none PACKETS HOSTS [YYYY-MM-DD]" (docs/generator.md); the --packets others then
  come from countries the plan does not name.
  --prefixes writes the generator's source prefixes and countries (tab-separated), from
  which tests build a GeoIP database (tests/tools/write_mmdb.pl).

teitenctl pki init --dir DIR [--days N]
teitenctl pki collector --dir DIR --name HOST [--dns NAME]... [--ip ADDR]... [--days N]
teitenctl pki sensor --dir DIR --id SENSOR_ID [--dns NAME]... [--ip ADDR]... [--days N]
teitenctl pki operator --dir DIR --name NAME [--days N]
teitenctl pki monitor --dir DIR --name NAME [--days N]
  EC P-256 keys (mode 0600) and certificates signed by DIR/ca.pem, each for one use:
  collector.pem (TLS server), sensor-ID.pem (the sensor's uploads: TLS client) and
  sensor-ID-control.pem (its control server: TLS server), operator-NAME.pem (queries,
  reports, dashboard, control servers: TLS client), monitor-NAME.pem (/metrics only).
  The role and id are written as a subjectAltName URI urn:teiten:ROLE:ID; every peer
  checks the role it needs from there (a name grants nothing; docs/security.md).
  --not-before/--not-after RFC3339 set the validity explicitly.

teitenctl query --collector HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
                [--from T] [--to T] [--sensor ID] [--proto P] [--port N] [--country CC]
                [--fingerprint F] [--kind K] [--group-by proto,port] [--json]
  Totals per group over bucket starts in [from, to), with the buckets' accounting.

teitenctl report --collector HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
                 (--quarter 2022Q2 | --from YYYY-MM-DD --to YYYY-MM-DD) [--country JP]
                 [--rank mirai|all|masscan|zmap] [--top 5] [--sensor-top 10] [--sensors ID,ID]
                 [--format markdown|csv|json|html] [--output FILE] [--events yes|no]
  TOP-N destination ports of a source country (ALL vs Mirai-type, ratio, unique hosts),
  their daily series, each month's average packets per sensor-day (domestic vs overseas,
  and a year earlier), per-sensor TOP10, weekly series per port, sensor coverage. Days
  are cut in the collector's reports.time_zone; --to is the last day included.
  The report opens with its notable changes (--events no: without them).

teitenctl events --collector HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
                 (--quarter 2022Q2 | --from YYYY-MM-DD --to YYYY-MM-DD) [--country JP]
                 [--sensors ID,ID] [--limit 200] [--format markdown|csv|json]
  The notable changes that began in the range, ranked: spikes, level shifts, emergence,
  fingerprint shifts, seen at domestic or overseas sensors or both (docs/notable-changes.md).

teitenctl simulate --collector HOST:PORT --pki DIR [--domestic 3] [--overseas 3]
                   [--months 15] [--start 2022-01] [--seed 1] [--width 3600|86400]
                   [--packets-per-day 10000] [--events FILE | --random-events N
                   [--events-seed 1]] [--labels FILE]
teitenctl simulate --print-registry [same options]
  Deterministic buckets of simulated sensors (sim-d01..., sim-o01...) posted through the
  ingest API, each with its own certificate (issued into DIR from DIR/ca.pem if absent).
  --print-registry prints the collector registry entries of those sensors.
  --events puts the labelled changes of a JSON file into the traffic (spike, level_shift,
  emergence, fingerprint_shift; size, start, days, region, country, fingerprint:
  docs/notable-changes.md); --random-events N puts in N seeded ones of every kind;
  --labels writes the changes put in, as JSON, beside the data.

teitenctl db copy --sqlite FILE --postgresql CONNINFO
  Moves a collector's embedded SQLite store into an empty PostgreSQL database (created
  schema, same time zone) as it is: every bucket record with its detail, the hourly and
  daily rollups, coverage and pruning marks, in one transaction (all or nothing; a target
  that holds buckets is refused). Stop the collector first; then point its storage: at
  PostgreSQL and start it (and more collectors). Sensors go on delivering from their
  spools: nothing is sent again. docs/scale.md.

teitenctl status --sensor HOST:PORT --ca CA.pem --cert OP.pem --key OP.key [--json]
teitenctl pull --sensor HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
               [--since RFC3339] [--json]
  From a sensor's control server (control: in sensor.yaml): an operator certificate
  whose id is in control.allowed. pull: buckets sealed since --since (default: the
  last hour), then the open bucket.

teitenctl dead-letter list (--sensor HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
                            | --state-dir DIR) [--json]
teitenctl dead-letter resend (--sensor HOST:PORT --ca CA.pem --cert OP.pem --key OP.key
                              | --state-dir DIR)
  Buckets the collector refused with a verdict of their own (outside the registry
  period, dated in the future, malformed), kept by the sensor in state.dir/dead-letter
  with the collector's reason. After fixing the cause (the registry, the clock), resend
  queues them: a running sensor (--sensor) sends them at once, a stopped one
  (--state-dir, e.g. after --read --upload) at its next start.

teitenctl summary [--top N] FILE.jsonl|-
  Totals and accounting, TOP-N destinations with ALL vs Mirai-type, top source
  countries, and loss counters.
)";

using ctl::fail_usage;

bool parse_u64(const std::string& s, std::uint64_t& out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
    return false;
  out = std::stoull(s);
  return true;
}

int cmd_generate(const std::vector<std::string>& args) {
  gen::GenOptions o;
  std::string out, truth_path, prefixes_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return fail_usage(a + " needs a value");
    const std::string& v = args[++i];
    std::uint64_t n = 0;
    if (a == "--out") {
      out = v;
    } else if (a == "--truth") {
      truth_path = v;
    } else if (a == "--prefixes") {
      prefixes_path = v;
    } else if (a == "--plan") {
      std::ifstream in(v);
      if (!in) return fail_usage("--plan: cannot read " + v);
      std::stringstream text;
      text << in.rdbuf();
      try {
        o.plan = gen::parse_plan(text.str());
      } catch (const std::invalid_argument& e) {
        std::cerr << "teitenctl generate: " << v << ": " << e.what() << "\n";
        return 2;
      }
    } else if (a == "--sensor-v4") {
      o.sensor_v4 = v;
    } else if (a == "--sensor-v6") {
      o.sensor_v6 = v;
    } else if (a == "--start") {
      const auto t = bucket::parse_rfc3339(v);
      if (!t) return fail_usage("--start: '" + v + "' is not YYYY-MM-DDTHH:MM:SSZ");
      o.start = *t;
    } else if (a == "--packets" || a == "--seed" || a == "--duration" || a == "--width") {
      if (!parse_u64(v, n)) return fail_usage(a + ": '" + v + "' is not a non-negative integer");
      if (a == "--packets") o.packets = n;
      if (a == "--seed") o.seed = n;
      if (a == "--duration") {
        if (n == 0 || n > 366ULL * 86400)
          return fail_usage("--duration: out of range [1, 31622400]");
        o.duration_s = static_cast<std::uint32_t>(n);
      }
      if (a == "--width") {
        if (n == 0 || 86400 % n != 0) return fail_usage("--width: must divide 86400");
        o.bucket_width_s = static_cast<std::uint32_t>(n);
      }
    } else {
      return fail_usage("generate: unknown option '" + a + "'");
    }
  }
  if (out.empty()) return fail_usage("generate: --out is required");
  try {
    const gen::GroundTruth truth = gen::generate(o, out);
    if (!truth_path.empty()) {
      std::ofstream t(truth_path);
      t << truth.to_json() << "\n";
      if (!t) throw std::runtime_error("cannot write " + truth_path);
    }
    if (!prefixes_path.empty()) {
      std::ofstream p(prefixes_path);
      for (const auto& cp : gen::country_prefixes()) p << cp.prefix << "\t" << cp.country << "\n";
      if (!p) throw std::runtime_error("cannot write " + prefixes_path);
    }
  } catch (const std::exception& e) {
    std::cerr << "teitenctl generate: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "teitenctl generate: wrote " << o.packets << " packets"
            << (o.plan.empty() ? "" : " and the plan's") << " to " << out << "\n";
  return 0;
}

int cmd_summary(const std::vector<std::string>& args) {
  std::size_t top = 10;
  std::string path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--top") {
      std::uint64_t n = 0;
      if (i + 1 >= args.size() || !parse_u64(args[i + 1], n) || n == 0 || n > 1000) {
        return fail_usage("--top needs a number in [1, 1000]");
      }
      top = n;
      ++i;
    } else if (path.empty()) {
      path = args[i];
    } else {
      return fail_usage("summary: unexpected argument '" + args[i] + "'");
    }
  }
  if (path.empty()) return fail_usage("summary: a FILE.jsonl (or -) is required");
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) {
      std::cerr << "teitenctl summary: cannot open " << path << "\n";
      return 1;
    }
    in = &file;
  }
  std::vector<bucket::SealedBucket> buckets;
  std::string line, error;
  for (std::size_t n = 1; std::getline(*in, line); ++n) {
    if (line.empty()) continue;
    auto b = bucket::from_json_line(line, error);
    if (!b) {
      std::cerr << path << ":" << n << ": " << error << "\n";
      return 1;
    }
    buckets.push_back(std::move(*b));
  }
  ctl::print_summary(std::cout, buckets, top);
  return 0;
}

}  // namespace

namespace teiten::ctl {
int fail_usage(const std::string& msg) {
  std::cerr << "teitenctl: " << msg << " (see teitenctl help)\n";
  return 2;
}
}  // namespace teiten::ctl

/// The paragraph(s) of kUsage about `cmd` (those whose first line starts "teitenctl cmd").
std::string usage_of(const std::string& cmd) {
  std::istringstream in(kUsage);
  std::string line, out;
  bool in_block = false;
  const std::string head = "teitenctl " + cmd;
  while (std::getline(in, line)) {
    if (line.empty()) {
      in_block = false;
      continue;
    }
    if (!in_block && line.rfind(head, 0) == 0 &&
        (line.size() == head.size() || line[head.size()] == ' ')) {
      in_block = true;
      if (!out.empty()) out += "\n";
    }
    if (in_block) out += line + "\n";
  }
  return out;
}

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version" || args[0] == "-V") {
    std::cout << "teitenctl " << kVersion << "\n";
    return 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    const std::string text = usage_of(cmd);
    if (text.empty()) return fail_usage("unknown command '" + cmd + "'");
    std::cout << text;
    return 0;
  }
  if (cmd == "generate") return cmd_generate(args);
  if (cmd == "summary") return cmd_summary(args);
  if (cmd == "pki") return ctl::cmd_pki(args);
  if (cmd == "query") return ctl::cmd_query(args);
  if (cmd == "report") return ctl::cmd_report(args);
  if (cmd == "events") return ctl::cmd_events(args);
  if (cmd == "simulate") return ctl::cmd_simulate(args);
  if (cmd == "status") return ctl::cmd_status(args);
  if (cmd == "pull") return ctl::cmd_pull(args);
  if (cmd == "dead-letter") return ctl::cmd_dead_letter(args);
  if (cmd == "db") return ctl::cmd_db(args);
  return fail_usage("unknown command '" + cmd + "'");
}

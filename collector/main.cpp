// SPDX-License-Identifier: Apache-2.0
// teiten-collectord: the Teiten central collector (HTTPS ingest with mutual TLS; SQLite or
// PostgreSQL).
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include <systemd/sd-daemon.h>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "collector/api/server.h"
#include "collector/collector_config.h"
#include "collector/maintenance.h"
#include "collector/store/store.h"
#include "common/log/log.h"
#include "common/version.h"

namespace {

using namespace teiten;

constexpr const char* kUsage =
    R"(Usage: teiten-collectord --config FILE [--check-config | --migrate]

Teiten central collector: receives sealed buckets from sensors over HTTPS with mutual TLS
(POST /v1/buckets), stores each exactly once (SQLite, or PostgreSQL shared by several
collectors), and answers operators' queries and reports (GET /v1/query, /v1/report),
/metrics and /v1/healthz. A second listener serves the dashboard (dashboard: in the
configuration). API: docs/collector-api.md, reports: docs/reports.md, scale-out:
docs/scale.md, manual: teiten-collectord(8).

Options:
  -c, --config FILE    collector configuration (YAML), e.g. /etc/teiten/collector.yaml
      --check-config   check the configuration, certificates and database (connects and
                       reads the schema version; creates and changes nothing), then exit
      --migrate        create or migrate the database schema, then exit (a start does it
                       too; run it alone to upgrade before starting several collectors)
  -h, --help           this text
  -V, --version        print the version

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
)";

// Feeds systemd (Type=notify): READY=1 once listening, then WATCHDOG=1 and a STATUS= line
// from the I/O thread, which also runs ingest: a collector whose database calls hang
// stops pinging and is restarted.
class Notifier {
 public:
  Notifier(boost::asio::io_context& io, const collector::Server& server)
      : timer_(io), server_(server) {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) period_ = std::chrono::microseconds(usec / 2);
  }
  void ready() {
    sd_notify(0, ("READY=1\nSTATUS=" + status()).c_str());
    arm();
  }
  void stop() { timer_.cancel(); }
  std::string status() const {
    const auto& st = server_.stats();
    return std::to_string(st.buckets_stored.load()) + " buckets stored, " +
           std::to_string(st.buckets_duplicate.load()) + " duplicate, " +
           std::to_string(st.refused_total()) + " refused, " +
           std::to_string(st.ingest_failures.load()) + " batches failed in storage";
  }

 private:
  void arm() {
    timer_.expires_after(period_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      sd_notify(0, ("WATCHDOG=1\nSTATUS=" + status()).c_str());
      arm();
    });
  }
  boost::asio::steady_timer timer_;
  const collector::Server& server_;
  std::chrono::microseconds period_{std::chrono::seconds(10)};
};

// SIGHUP: certificates, registry, limits.max_clock_skew and log level from the file again;
// connections stay open. Anything else that changed waits for a restart (said so).
void reload(const std::string& path, const collector::CollectorConfig& running,
            collector::Server& server) {
  auto logger = log::get("collectord");
  auto loaded = collector::load_collector_config(path);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    config::log_refused_reload(*errors, path, "collectord");
    return;
  }
  const auto& next = std::get<collector::CollectorConfig>(loaded);
  try {
    server.reload(next);
  } catch (const std::exception& e) {
    logger->error("reload refused: {}; the running configuration stays", e.what());
    return;
  }
  log::set_level(next.log_level);
  const auto& a = running;
  const auto& b = next;
  if (a.listen_address != b.listen_address || a.port != b.port ||
      a.store.backend != b.store.backend || a.store.path != b.store.path ||
      a.store.conninfo != b.store.conninfo || a.store.report_conninfo != b.store.report_conninfo ||
      a.store.time_zone != b.store.time_zone || a.dashboard_enabled != b.dashboard_enabled ||
      a.dashboard_address != b.dashboard_address || a.dashboard_port != b.dashboard_port ||
      a.max_connections != b.max_connections || a.report_workers != b.report_workers ||
      a.detail_retention_s != b.detail_retention_s) {
    logger->warn(
        "reload: listen, storage, reports.time_zone, dashboard, limits or retention "
        "changed: those take effect at the next start");
  }
  logger->info("reloaded {}: {} sensors, certificates read again, log level {}", path,
               next.sensors.size(), next.log_level);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false, migrate = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "-V" || a == "--version") {
      std::cout << "teiten-collectord " << kVersion << "\n";
      return 0;
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--migrate") {
      migrate = true;
    } else {
      std::cerr << "teiten-collectord: unknown or incomplete argument '" << a << "' (see --help)\n";
      return 2;
    }
  }
  if (check && migrate) {
    std::cerr << "teiten-collectord: --check-config and --migrate exclude each other\n";
    return 2;
  }
  if (config_path.empty()) {
    std::cerr << "teiten-collectord: --config FILE is required (see --help)\n";
    return 2;
  }
  auto loaded = collector::load_collector_config(config_path);
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
    for (const auto& e : *errors) std::cerr << e.format() << "\n";
    std::cerr << "teiten-collectord: " << errors->size() << " configuration error"
              << (errors->size() == 1 ? "" : "s") << " in " << config_path << "\n";
    return 2;
  }
  const auto& cfg = std::get<collector::CollectorConfig>(loaded);
  log::setup(cfg.log_level);
  auto logger = log::get("collectord");
  try {
    (void)collector::make_server_tls(cfg);
  } catch (const std::exception& e) {
    std::cerr << config_path << ": " << e.what() << "\n";
    return 2;
  }
  if (check) {
    try {
      const std::string db = collector::check_store(cfg.store);
      std::cout << config_path << ": configuration OK (" << cfg.sensors.size() << " sensors, " << db
                << ")\n";
      return 0;
    } catch (const std::exception& e) {
      std::cerr << config_path << ": " << e.what() << "\n";
      return 1;
    }
  }
  try {
    const auto store = collector::open_store(
        cfg.store, migrate ? collector::OpenMode::migrate : collector::OpenMode::read_write);
    collector::Store& storage = *store;
    if (migrate) {
      std::cout << storage.describe() << ": schema version " << collector::kSchemaVersion << "\n";
      return 0;
    }
    boost::asio::io_context io(1);
    collector::Server server(io, cfg, storage);
    server.start();
    Notifier notifier(io, server);
    boost::asio::signal_set hup(io, SIGHUP);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    // An orderly stop: no new connections, answers in progress finish (a batch being
    // stored is acknowledged), idle connections end; run() returns when nothing is left,
    // and only then is anything destroyed.
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (ec) return;
      logger->info("signal {}: stopping", sig);
      sd_notify(0, "STOPPING=1");
      notifier.stop();
      hup.cancel();
      server.shutdown();  // within its grace period (10 s) every connection is gone
    });
    std::function<void()> on_hup = [&] {
      hup.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        sd_notify(0, "RELOADING=1");
        reload(config_path, cfg, server);
        sd_notify(0, ("READY=1\nSTATUS=" + notifier.status()).c_str());
        on_hup();
      });
    };
    on_hup();
    collector::Maintenance retention(cfg.store, cfg.detail_retention_s, cfg.hourly_retention_s);
    // Each new whole hour judged for spikes (docs/notable-changes.md, "Live").
    std::unique_ptr<collector::events::LiveEvents> live_events;
    if (cfg.live_enabled) {
      live_events = std::make_unique<collector::events::LiveEvents>(
          cfg.store, [&server] { return server.config(); }, std::chrono::seconds(cfg.live_period_s),
          server.events_cache());
      server.set_live_stats(&live_events->stats());
    }
    logger->info("listening address={} port={} sensors={} database={}", cfg.listen_address,
                 server.port(), cfg.sensors.size(), storage.describe());
    if (const auto board = server.dashboard_port())
      logger->info("dashboard address={} port={} url=https://{}:{}/", cfg.dashboard_address, *board,
                   cfg.dashboard_address.find(':') == std::string::npos
                       ? cfg.dashboard_address
                       : "[" + cfg.dashboard_address + "]",
                   *board);
    notifier.ready();
    io.run();
    server.set_live_stats(nullptr);
    const auto& st = server.stats();
    const auto& hs = server.http_stats();
    logger->info(
        "stopped connections={} stored={} duplicate={} refused={} refused_over_cap={} "
        "refused_per_address={} handshake_failures={}",
        hs.connections.load(), st.buckets_stored.load(), st.buckets_duplicate.load(),
        st.refused_total(), hs.refused_over_cap.load(), hs.refused_per_address.load(),
        hs.handshake_failures.load());
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    return 1;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
#include "collector/api/server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "collector/api/worker_pool.h"
#include "collector/events/events.h"
#include "collector/events/live.h"
#include "collector/report/report.h"
#include "common/bucket/batch_simdjson.h"
#include "common/bucket/bucket_json.h"
#include "common/http/server.h"
#include "common/log/log.h"
#include "common/metrics/prometheus.h"
#include "common/tls/pki.h"
#include "common/version.h"

namespace teiten::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

constexpr std::size_t kMaxBatchBuckets = 10000;
const std::string kServerName = std::string{"teiten-collectord/"} + kVersion;

// The dashboard's script: fills the health panel from /api/report.json (the same numbers
// the API gives) and refreshes it every minute.
constexpr const char* kDashboardScript = R"JS("use strict";
async function loadHealth() {
  const res = await fetch("/api/report.json" + window.location.search);
  if (!res.ok) throw new Error("report: HTTP " + res.status);
  const report = await res.json();
  const body = document.getElementById("health");
  body.replaceChildren();
  for (const h of report.health) {
    const tr = document.createElement("tr");
    const cells = [["sensor", h.sensor], ["region", h.region],
                   ["last_bucket_end", h.last_bucket_end === null ? "never" : h.last_bucket_end],
                   ["days_observed", h.days_observed.toFixed(1)],
                   ["observed_packets", String(h.observed_packets)],
                   ["lost_packets", String(h.lost_packets)]];
    for (const [key, value] of cells) {
      const td = document.createElement("td");
      td.dataset.k = "health/" + h.sensor + "/" + key;
      td.textContent = value;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  document.getElementById("health-updated").textContent = new Date().toISOString();
}
loadHealth().catch((e) => console.error(e));
setInterval(() => loadHealth().catch((e) => console.error(e)), 60000);
)JS";

void bump(std::atomic<std::uint64_t>& c) {
  c.fetch_add(1, std::memory_order_relaxed);
}

bhttp::response<bhttp::string_body> json_response(bhttp::status status, const nlohmann::json& body,
                                                  bool keep_alive) {
  return http::json_response(static_cast<unsigned>(status), body.dump(), keep_alive, kServerName);
}

bhttp::response<bhttp::string_body> error_response(bhttp::status status, const std::string& message,
                                                   bool keep_alive) {
  return http::error_response(static_cast<unsigned>(status), message, keep_alive, kServerName);
}

}  // namespace

std::string_view to_string(RefusalReason r) noexcept {
  switch (r) {
    case RefusalReason::malformed:
      return "malformed";
    case RefusalReason::wrong_sensor:
      return "wrong_sensor";
    case RefusalReason::outside_active_period:
      return "outside_active_period";
    case RefusalReason::in_future:
      return "in_future";
    case RefusalReason::count_:
      break;
  }
  return "unknown";
}

asio::ssl::context make_server_tls(const CollectorConfig& config) {
  return tls::make_server_tls({config.tls_ca, config.tls_cert, config.tls_key}, "tls");
}

struct Server::Impl {
  Impl(asio::io_context& io_, const CollectorConfig& c, Store& s, ServerStats& st)
      : io(io_),
        config(c),
        live(std::make_shared<const CollectorConfig>(c)),
        storage(s),
        stats(st),
        http(
            io_, make_server_tls(c),
            http::ServerLimits{.max_body_bytes = c.max_body_bytes,
                               .max_header_bytes = c.max_header_bytes,
                               .io_timeout_s = c.io_timeout_s,
                               .max_connections = c.max_connections,
                               .max_inflight_bytes = c.max_inflight_bytes,
                               .handshake_timeout_s = c.handshake_timeout_s,
                               .max_connections_per_address = c.max_connections_per_address,
                               .reserved_authenticated = c.reserved_authenticated},
            [this](const http::Request& req, const tls::PeerIdentity& who) {
              return handle(req, who);
            },
            kServerName) {}

  // Every endpoint asks first who the peer is (the role in its certificate) and whether
  // that role may use it; a name never grants a role (docs/security.md).
  bhttp::response<bhttp::string_body> refuse(const tls::PeerIdentity& who,
                                             const std::string& action, bool keep) {
    bump(stats.role_refusals);
    return http::role_refusal(who, action, keep, kServerName);
  }

  // Runs `work` on a report worker with that worker's read-only store; 503 when the
  // workers' queue is full (limits.report_queue).
  http::Reply offload(bool keep, std::function<bhttp::response<bhttp::string_body>(Store&)> work) {
    return http::Deferred{[this, keep, work = std::move(work)](http::Finish done) {
      const bool queued = workers->submit([this, work, keep, done](Store& store) {
        const auto t0 = std::chrono::steady_clock::now();
        bhttp::response<bhttp::string_body> res;
        try {
          res = work(store);
        } catch (const std::exception& e) {
          // Every deferred request is answered: its connection waits for it.
          bump(stats.query_failures);
          log::get("collectord")->error("report worker: {}", e.what());
          res = error_response(bhttp::status::service_unavailable,
                               std::string{"failed: "} + e.what(), keep);
        }
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count();
        bump(stats.reports);
        stats.report_seconds_us.fetch_add(static_cast<std::uint64_t>(us));
        done(std::move(res));
      });
      if (!queued) {
        auto res = error_response(bhttp::status::service_unavailable,
                                  "busy: the report workers' queue is full; retry", keep);
        res.set(bhttp::field::retry_after, "5");
        done(std::move(res));
      }
    }};
  }

  http::Reply handle(const bhttp::request<bhttp::string_body>& req, const tls::PeerIdentity& who) {
    using tls::Role;
    const bool keep = req.keep_alive();
    const std::string_view target{req.target().data(), req.target().size()};
    const std::string_view path = target.substr(0, target.find('?'));
    if (path == "/v1/healthz" && req.method() == bhttp::verb::get) {
      if (who.role == Role::none) return refuse(who, "use this collector", keep);
      return json_response(bhttp::status::ok, {{"status", "ok"}, {"version", kVersion}}, keep);
    }
    if (path == "/v1/buckets") {
      if (who.role != Role::sensor) return refuse(who, "upload buckets", keep);
      if (req.method() != bhttp::verb::post)
        return error_response(bhttp::status::method_not_allowed, "use POST", keep);
      const auto cfg = live.load();  // the registry as of now (SIGHUP may replace it)
      const RegisteredSensor* sensor = cfg->find_sensor(who.id);
      if (!sensor) {
        bump(stats.unknown_identity);
        return error_response(bhttp::status::forbidden,
                              "sensor '" + who.id + "' is not in the collector's registry", keep);
      }
      return ingest(req.body(), *sensor, *cfg, keep);
    }
    if (path == "/metrics" && req.method() == bhttp::verb::get) {
      if (who.role != Role::operator_ && who.role != Role::monitor)
        return refuse(who, "read metrics", keep);
      return http::text_response(200, metrics_text(), metrics::PromText::kContentType, keep,
                                 kServerName);
    }
    if (path == "/v1/query") {
      if (who.role != Role::operator_) return refuse(who, "query", keep);
      if (req.method() != bhttp::verb::get)
        return error_response(bhttp::status::method_not_allowed, "use GET", keep);
      return offload(keep, [this, t = std::string{target}, keep](Store& store) {
        return query(store, t, keep);
      });
    }
    if (path == "/v1/report") {
      if (who.role != Role::operator_) return refuse(who, "read reports", keep);
      if (req.method() != bhttp::verb::get)
        return error_response(bhttp::status::method_not_allowed, "use GET", keep);
      return offload(keep, [this, t = std::string{target}, keep](Store& store) {
        return report(store, t, keep, false);
      });
    }
    if (path == "/v1/events") {
      if (who.role != Role::operator_) return refuse(who, "read events", keep);
      if (req.method() != bhttp::verb::get)
        return error_response(bhttp::status::method_not_allowed, "use GET", keep);
      return offload(keep, [this, t = std::string{target}, keep](Store& store) {
        return notable(store, t, keep);
      });
    }
    return error_response(bhttp::status::not_found, "no such endpoint", keep);
  }

  // GET /v1/events?from=&to=|quarter=&country=&sensors=&limit=&format= (json, csv,
  // markdown): the notable changes that began in the range (docs/notable-changes.md).
  bhttp::response<bhttp::string_body> notable(Store& store, std::string_view target, bool keep) {
    const auto params = http::query_params(target);
    std::string format = "json";
    for (const auto& [k, v] : params)
      if (k == "format") format = v;
    if (format != "json" && format != "markdown" && format != "csv")
      return error_response(bhttp::status::bad_request,
                            "format: '" + format + "' is not json, markdown or csv", keep);
    try {
      const auto cfg = live.load();
      const events::EventsRequest rq = events::parse_events_request(params, store, cfg->events);
      const auto found = events_cache->get(store, *cfg, rq);
      if (format == "markdown")
        return http::text_response(200, events::events_markdown(found),
                                   "text/markdown; charset=utf-8", keep, kServerName);
      if (format == "csv")
        return http::text_response(200, events::events_csv(found), "text/csv; charset=utf-8", keep,
                                   kServerName);
      return http::json_response(200, events::events_json(found), keep, kServerName);
    } catch (const std::invalid_argument& e) {
      return error_response(bhttp::status::bad_request, e.what(), keep);
    } catch (const std::exception& e) {
      bump(stats.query_failures);
      log::get("collectord")->error("events failed: {}", e.what());
      return error_response(bhttp::status::service_unavailable,
                            std::string{"events failed: "} + e.what(), keep);
    }
  }

  // GET /v1/report?from=&to=|quarter=&country=&rank=&top=&sensor_top=&format=
  // (json, markdown, csv, html). The dashboard's /api/report.json is the same JSON.
  bhttp::response<bhttp::string_body> report(Store& store, std::string_view target, bool keep,
                                             bool dashboard) {
    auto params = http::query_params(target);
    std::string format = "json";
    for (const auto& [k, v] : params)
      if (k == "format") format = v;
    if (dashboard) {
      // The page opens on the last 91 days of data when no range is given.
      bool has_range = false;
      for (const auto& [k, v] : params)
        has_range = has_range || k == "from" || k == "to" || k == "quarter";
      if (!has_range) {
        // Clamped to real days: a bucket dated far ahead (before the clock-skew bound, or
        // by a sensor whose clock was wrong) must not move everyone's default page.
        const std::int64_t today = store.local_day(std::time(nullptr));
        const std::int64_t last = std::min(store.latest_day().value_or(today), today);
        params.emplace_back("from", day_string(last - 90));
        params.emplace_back("to", day_string(last));
      }
    }
    if (format != "json" && format != "markdown" && format != "csv" && format != "html")
      return error_response(bhttp::status::bad_request,
                            "format: '" + format + "' is not json, markdown, csv or html", keep);
    try {
      ReportRequest rq = parse_report_request(params, store);
      rq.events_cached_only = dashboard;
      // The dashboard may answer anyone who reaches it (dashboard.client_certificate:
      // none): bound what one page may cost.
      if (dashboard && (rq.day_to - rq.day_from >= 400 || rq.top > 20 || rq.sensor_top > 20))
        return error_response(bhttp::status::bad_request,
                              "the dashboard shows at most 400 days and top 20 (use /v1/report)",
                              keep);
      const Report rep = build_report(store, *live.load(), rq, events_cache.get());
      if (dashboard && format == "html")
        return page(report_html(rep, true), "text/html; charset=utf-8", keep);
      if (format == "markdown")
        return http::text_response(200, report_markdown(rep), "text/markdown; charset=utf-8", keep,
                                   kServerName);
      if (format == "csv")
        return http::text_response(200, report_csv(rep), "text/csv; charset=utf-8", keep,
                                   kServerName);
      if (format == "html")
        return http::text_response(200, report_html(rep), "text/html; charset=utf-8", keep,
                                   kServerName);
      return http::json_response(200, report_json(rep), keep, kServerName);
    } catch (const std::invalid_argument& e) {
      return error_response(bhttp::status::bad_request, e.what(), keep);
    } catch (const std::exception& e) {
      // Stored data never turns into a 500: say what failed, count it, keep serving.
      bump(stats.query_failures);
      log::get("collectord")->error("report failed: {}", e.what());
      return error_response(bhttp::status::service_unavailable,
                            std::string{"report failed: "} + e.what(), keep);
    }
  }

  // A dashboard response: no caching, and a policy that allows this origin's script only.
  bhttp::response<bhttp::string_body> page(std::string body, std::string_view type, bool keep) {
    auto res = http::text_response(200, std::move(body), type, keep, kServerName);
    res.set(bhttp::field::cache_control, "no-store");
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
            "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    return res;
  }

  // The dashboard's listener: read-only pages for browsers of operators (or anyone, with
  // dashboard.client_certificate: none), on the dashboard's own thread and connection.
  http::Reply dashboard(const bhttp::request<bhttp::string_body>& req,
                        const tls::PeerIdentity& who) {
    const bool keep = req.keep_alive();
    if (config.dashboard_client_certificate && who.role != tls::Role::operator_)
      return refuse(who, "see the dashboard", keep);
    if (req.method() != bhttp::verb::get)
      return error_response(bhttp::status::method_not_allowed, "use GET", keep);
    const std::string_view target{req.target().data(), req.target().size()};
    const std::string_view path = target.substr(0, target.find('?'));
    const std::string query =
        path.size() < target.size() ? std::string{target.substr(path.size())} : "";
    if (path == "/") {
      return offload(keep, [this, query, keep](Store& store) {
        return report(store,
                      std::string{"/?format=html"} + (query.empty() ? "" : "&" + query.substr(1)),
                      keep, true);
      });
    }
    if (path == "/dashboard.js")
      return page(kDashboardScript, "text/javascript; charset=utf-8", keep);
    if (path == "/api/report.json") {
      return offload(keep, [this, t = std::string{target}, keep](Store& store) {
        auto res = report(store, t, keep, true);
        if (res.result() == bhttp::status::ok) res.set(bhttp::field::cache_control, "no-store");
        return res;
      });
    }
    return error_response(bhttp::status::not_found, "no such page", keep);
  }

  // Why a bucket is refused (a verdict of its own: the rest of the batch goes on).
  std::optional<std::pair<RefusalReason, std::string>> refusal(const bucket::BatchEntry& e,
                                                               const RegisteredSensor& sensor,
                                                               const CollectorConfig& cfg,
                                                               std::int64_t now) const {
    if (!e.bucket) return std::pair{RefusalReason::malformed, e.error};
    const auto& b = *e.bucket;
    // The boot id is stored as text: a NUL or another control byte would fail the whole
    // batch in PostgreSQL (and read oddly everywhere), so it is this bucket's refusal.
    for (const char ch : b.boot_id) {
      if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
        return std::pair{RefusalReason::malformed, std::string{"boot_id holds a control byte"}};
    }
    if (b.sensor_id != sensor.id)
      return std::pair{RefusalReason::wrong_sensor, "a bucket of sensor '" + b.sensor_id +
                                                        "', but the certificate is sensor '" +
                                                        sensor.id + "'s"};
    // The registry says when a sensor observed for the network; buckets from outside that
    // period (a box tested before it was commissioned, a clock that starts in 1970 before
    // NTP, a box still running after it was retired) would distort every report.
    if (b.start < sensor.active_from || (sensor.active_to && b.start >= *sensor.active_to)) {
      return std::pair{RefusalReason::outside_active_period,
                       "bucket starts at " + bucket::format_rfc3339(b.start) +
                           ", outside sensor '" + sensor.id + "''s active period from " +
                           bucket::format_rfc3339(sensor.active_from) +
                           (sensor.active_to ? " to " + bucket::format_rfc3339(*sensor.active_to)
                                             : std::string{" on"}) +
                           " (registry dates are 00:00 UTC)"};
    }
    const auto latest = now + static_cast<std::int64_t>(cfg.max_clock_skew_s);
    if (b.start > latest) {
      return std::pair{RefusalReason::in_future,
                       "bucket starts at " + bucket::format_rfc3339(b.start) +
                           ", later than the collector's clock allows (" +
                           bucket::format_rfc3339(latest) + ", limits.max_clock_skew " +
                           std::to_string(cfg.max_clock_skew_s) + " s)"};
    }
    return std::nullopt;
  }

  bhttp::response<bhttp::string_body> ingest(const std::string& body,
                                             const RegisteredSensor& sensor,
                                             const CollectorConfig& cfg, bool keep) {
    std::string error;
    auto entries = bucket::decode_batch(body, kMaxBatchBuckets, error);
    if (!entries) {
      bump(stats.bad_batches);
      return error_response(bhttp::status::bad_request, error, keep);
    }
    // Each bucket gets a verdict: stored, already stored (both acknowledged), or refused
    // with a reason; one bad bucket never holds back the others.
    const std::int64_t now = std::time(nullptr);
    std::vector<bucket::SealedBucket> good;
    std::vector<std::size_t> good_index;
    nlohmann::json refused = nlohmann::json::array();
    for (std::size_t i = 0; i < entries->size(); ++i) {
      auto& e = (*entries)[i];
      if (auto why = refusal(e, sensor, cfg, now)) {
        bump(stats.refused[static_cast<std::size_t>(why->first)]);
        nlohmann::json r = {
            {"index", i}, {"reason", to_string(why->first)}, {"message", why->second}};
        r["boot_id"] = e.boot_id;
        r["seq"] = e.seq ? nlohmann::json(*e.seq) : nlohmann::json(nullptr);
        refused.push_back(std::move(r));
        continue;
      }
      good.push_back(std::move(*e.bucket));
      good_index.push_back(i);
    }
    if (!refused.empty()) {
      log::get("collectord")
          ->warn("refused {} of {} buckets sensor={}: {}", refused.size(), entries->size(),
                 sensor.id, refused[0]["message"].get<std::string>());
    }
    std::vector<IngestResult> results;
    try {
      if (!good.empty()) {
        const auto t0 = std::chrono::steady_clock::now();
        results = storage.ingest(good);
        const auto us =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::steady_clock::now() - t0)
                                           .count());
        bump(stats.ingest_batches);
        stats.ingest_seconds_us.fetch_add(us);
        if (us > stats.ingest_max_us.load()) stats.ingest_max_us.store(us);  // this thread only
      }
    } catch (const std::exception& e) {
      bump(stats.ingest_failures);
      log::get("collectord")->error("ingest failed sensor={}: {}", sensor.id, e.what());
      return error_response(bhttp::status::service_unavailable, "storage unavailable; retry", keep);
    }
    nlohmann::json stored = nlohmann::json::array(), duplicate = nlohmann::json::array();
    for (std::size_t i = 0; i < results.size(); ++i) {
      nlohmann::json id = {
          {"index", good_index[i]}, {"boot_id", good[i].boot_id}, {"seq", good[i].seq}};
      if (results[i] == IngestResult::stored) {
        bump(stats.buckets_stored);
        stored.push_back(std::move(id));
      } else {
        bump(stats.buckets_duplicate);
        duplicate.push_back(std::move(id));
      }
    }
    return json_response(bhttp::status::ok,
                         {{"stored", stored}, {"duplicate", duplicate}, {"refused", refused}},
                         keep);
  }

  bhttp::response<bhttp::string_body> query(Store& store, std::string_view target, bool keep) {
    Query q;
    for (const auto& [k, v] : http::query_params(target)) {
      auto time_of = [&](std::int64_t& out) -> bool {
        const auto t = bucket::parse_rfc3339(v);
        if (!t) return false;
        out = *t;
        return true;
      };
      if (k == "from" || k == "to") {
        if (!time_of(k == "from" ? q.from : q.to)) {
          return error_response(bhttp::status::bad_request, k + ": expected YYYY-MM-DDTHH:MM:SSZ",
                                keep);
        }
      } else if (k == "sensor") {
        q.sensors.push_back(v);
      } else if (k == "proto") {
        q.proto = v;
      } else if (k == "country") {
        q.country = v;
      } else if (k == "fingerprint") {
        q.fingerprint = v;
      } else if (k == "kind") {
        q.kind = v;
      } else if (k == "port") {
        int port = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
        if (ec != std::errc{} || end != v.data() + v.size() || port < -1 || port > 65535) {
          return error_response(bhttp::status::bad_request, "port: expected -1 or 0..65535", keep);
        }
        q.port = port;
      } else if (k == "group_by") {
        std::string_view rest = v;
        while (!rest.empty()) {
          const auto comma = rest.find(',');
          q.group_by.emplace_back(rest.substr(0, comma));
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      } else {
        return error_response(bhttp::status::bad_request, "unknown parameter '" + k + "'", keep);
      }
    }
    try {
      Tier tier = Tier::detail;
      const auto rows = store.query(q, &tier);
      const Accounting a = store.accounting(q);
      nlohmann::json out_rows = nlohmann::json::array();
      for (const auto& r : rows) {
        nlohmann::json row;
        for (std::size_t i = 0; i < q.group_by.size(); ++i) {
          if (q.group_by[i] == "port") {
            // As in sealed buckets: a number, or null for packets without a port.
            const int port = std::atoi(r.group[i].c_str());
            row["port"] = port < 0 ? nlohmann::json(nullptr) : nlohmann::json(port);
          } else {
            row[q.group_by[i]] = r.group[i];
          }
        }
        row["packets"] = r.packets;
        row["bytes"] = r.bytes;
        out_rows.push_back(std::move(row));
      }
      return json_response(bhttp::status::ok,
                           {{"source", to_string(tier)},
                            {"rows", out_rows},
                            {"accounting",
                             {{"buckets", a.buckets},
                              {"observed_packets", a.observed_packets},
                              {"not_for_sensor", a.not_for_sensor},
                              {"self_traffic", a.self_traffic},
                              {"malformed", a.malformed},
                              {"ring_drops", a.ring_drops},
                              {"kernel_drops", a.kernel_drops},
                              {"interface_drops", a.interface_drops},
                              {"overflow_packets", a.overflow_packets},
                              {"spool_dropped", a.spool_dropped}}}},
                           keep);
    } catch (const std::invalid_argument& e) {
      return error_response(bhttp::status::bad_request, e.what(), keep);
    } catch (const std::exception& e) {
      bump(stats.query_failures);
      log::get("collectord")->error("query failed: {}", e.what());
      return error_response(bhttp::status::service_unavailable,
                            std::string{"query failed: "} + e.what(), keep);
    }
  }

  std::string metrics_text() const {
    metrics::PromText m;
    m.gauge("build_info", "Version of teiten-collectord.", 1,
            std::string{"version=\""} + kVersion + "\"");
    m.gauge("collector_sensors_registered", "Sensors in the registry.",
            static_cast<double>(live.load()->sensors.size()));
    m.counter("collector_buckets_stored_total", "Buckets stored.", stats.buckets_stored.load());
    m.counter("collector_buckets_duplicate_total", "Buckets received again (acknowledged).",
              stats.buckets_duplicate.load());
    m.counter("collector_batches_refused_total", "Batches refused as malformed.",
              stats.bad_batches.load());
    std::vector<std::pair<std::string, std::uint64_t>> refused;
    for (std::size_t i = 0; i < stats.refused.size(); ++i)
      refused.emplace_back(
          "reason=\"" + std::string{to_string(static_cast<RefusalReason>(i))} + "\"",
          stats.refused[i].load());
    m.counters("collector_buckets_refused_total",
               "Buckets refused with a verdict of their own, by reason.", refused);
    m.counter("collector_unknown_identity_total",
              "Uploads refused: a sensor certificate whose id is not in the registry.",
              stats.unknown_identity.load());
    m.counter("collector_role_refusals_total",
              "Requests refused: the certificate's role may not use the endpoint.",
              stats.role_refusals.load());
    m.counter("collector_query_failures_total", "Queries and reports that failed in storage.",
              stats.query_failures.load());
    m.counter("collector_ingest_failures_total",
              "Batches answered 503 because the database failed (the sensor retries).",
              stats.ingest_failures.load());
    m.counter("collector_ingest_transactions_total", "Batches stored, one transaction each.",
              stats.ingest_batches.load());
    m.counter_seconds("collector_ingest_seconds_total", "Time spent in ingest transactions.",
                      static_cast<double>(stats.ingest_seconds_us.load()) / 1e6);
    m.gauge("collector_ingest_max_seconds", "The longest ingest transaction since the start.",
            static_cast<double>(stats.ingest_max_us.load()) / 1e6);
    m.counter("collector_reports_total", "Reports, queries and dashboard pages answered.",
              stats.reports.load());
    m.counter_seconds("collector_report_seconds_total", "Time the report workers spent on them.",
                      static_cast<double>(stats.report_seconds_us.load()) / 1e6);
    m.gauge("collector_report_workers", "Report workers.", static_cast<double>(workers->threads()));
    m.gauge("collector_report_workers_busy", "Report workers busy now.",
            static_cast<double>(workers->busy()));
    m.gauge("collector_report_queue", "Reports and queries waiting for a worker.",
            static_cast<double>(workers->queued()));
    m.counter("collector_report_queue_full_total",
              "Reports and queries refused (503): the workers' queue was full.",
              workers->rejected());
    m.gauge("collector_storage_info", "The storage backend.", 1,
            "backend=\"" + std::string{storage.backend()} + "\"");
    if (const events::LiveStats* ls = live_stats.load()) {
      m.counter("collector_live_evaluations_total", "Whole hours the live evaluation judged.",
                ls->hours.load());
      m.counter("collector_live_events_total", "Live notable changes found (spikes of an hour).",
                ls->spikes.load());
      m.gauge("collector_live_last_event_timestamp_seconds",
              "When the last live notable change was found (0: none yet).",
              static_cast<double>(ls->last_event.load()));
      m.counter("collector_live_failures_total", "Live evaluations that failed in storage.",
                ls->failures.load());
      m.counter("collector_webhook_posts_total", "Live events posted to events.webhook.",
                ls->webhook_posts.load());
      m.counter("collector_webhook_failures_total",
                "Live events events.webhook did not take (unreachable, refused, not 2xx).",
                ls->webhook_failures.load());
      // The last day's events, for an alert's text: bounded (20), labelled by what changed.
      std::vector<std::pair<std::string, double>> recent;
      for (const auto& e : ls->recent())
        recent.emplace_back("destination=\"" + e.dest.label() + "\",scope=\"" + e.scope +
                                "\",fingerprint=\"" +
                                (e.fingerprint.empty() ? std::string{"all"} : e.fingerprint) +
                                "\",hour=\"" + bucket::format_rfc3339(*e.hour) + "\"",
                            e.score);
      m.gauges("collector_live_event_score",
               "Live notable changes of the last 24 hours, by their score (robust deviations).",
               recent);
    }
    const auto& h = http.stats();
    m.counter("http_connections_total", "Connections accepted.", h.connections.load());
    m.counter("http_refused_over_cap_total", "Connections closed over the cap.",
              h.refused_over_cap.load());
    m.counter("http_handshake_failures_total", "TLS handshakes that failed.",
              h.handshake_failures.load());
    m.counter("http_requests_total", "Requests answered.", h.requests.load());
    m.counter("http_bad_requests_total", "Malformed or oversized requests.", h.bad_requests.load());
    m.counter("http_timeouts_total", "Requests cut off at the deadline.", h.timeouts.load());
    m.counter("http_refused_busy_total", "Requests refused: bodies in memory at the bound.",
              h.refused_busy.load());
    m.counter("http_refused_per_address_total",
              "Connections closed: their address held limits.max_connections_per_address.",
              h.refused_per_address.load());
    m.counter("http_handshakes_evicted_total",
              "Connections still in their handshake ended to admit a newer one.",
              h.handshakes_evicted.load());
    m.counter("http_handshake_timeouts_total", "Handshakes not done in limits.handshake_timeout.",
              h.handshake_timeouts.load());
    m.gauge("http_open_connections", "Connections open now.",
            static_cast<double>(h.open_connections.load()));
    m.gauge("http_open_handshakes", "Connections still in their TLS handshake now.",
            static_cast<double>(h.open_handshakes.load()));
    return m.text();
  }

  asio::io_context& io;
  const CollectorConfig& config;  // as started: what only a restart changes
  // What SIGHUP replaces (registry, clock skew; certificates live in the TLS contexts):
  // read by the I/O threads and the report workers.
  std::atomic<std::shared_ptr<const CollectorConfig>> live;
  std::atomic<const events::LiveStats*> live_stats{nullptr};
  std::shared_ptr<events::EventsCache> events_cache = std::make_shared<events::EventsCache>();
  Store& storage;  // ingest's, on the I/O thread
  ServerStats& stats;
  http::HttpsServer http;
  // The dashboard: its own thread and io_context.
  asio::io_context board_io{1};
  std::unique_ptr<http::HttpsServer> board;
  std::thread board_thread;

  // Asks the dashboard's thread to shut its server down; the thread then ends by itself.
  void stop_dashboard() {
    if (board) asio::post(board_io, [b = board.get()] { b->shutdown(); });
  }
  // Last: destroyed first, so no worker runs while the rest goes.
  std::unique_ptr<WorkerPool> workers;
};

Server::Server(asio::io_context& io, const CollectorConfig& config, Store& store)
    : impl_(std::make_unique<Impl>(io, config, store, stats_)) {
  impl_->workers =
      std::make_unique<WorkerPool>(config.store, config.report_workers, config.report_queue);
}

void Server::start() {
  impl_->http.listen(impl_->config.listen_address, impl_->config.port);
  const CollectorConfig& c = impl_->config;
  if (!c.dashboard_enabled) return;
  if (!c.dashboard_client_certificate) {
    log::get("collectord")
        ->warn("dashboard.client_certificate is none: anyone who reaches {} sees the dashboard",
               c.dashboard_address);
  }
  impl_->board = std::make_unique<http::HttpsServer>(
      impl_->board_io,
      tls::make_server_tls({c.tls_ca, c.tls_cert, c.tls_key}, "tls",
                           c.dashboard_client_certificate),
      http::ServerLimits{.max_body_bytes = 64 * 1024,
                         .max_header_bytes = c.max_header_bytes,
                         .io_timeout_s = c.io_timeout_s,
                         .max_connections = c.dashboard_max_connections,
                         .max_inflight_bytes = 1 << 20,
                         .handshake_timeout_s = c.handshake_timeout_s,
                         .max_connections_per_address =
                             std::min(c.max_connections_per_address, c.dashboard_max_connections),
                         .reserved_authenticated = c.dashboard_max_connections / 4},
      [impl = impl_.get()](const http::Request& req, const tls::PeerIdentity& who) {
        return impl->dashboard(req, who);
      },
      kServerName);
  impl_->board->listen(c.dashboard_address, c.dashboard_port);
  impl_->board_thread = std::thread([io = &impl_->board_io] {
    try {
      io->run();
    } catch (const std::exception& e) {
      log::get("collectord")->error("dashboard thread stopped: {}", e.what());
    }
  });
}

void Server::shutdown() {
  impl_->http.shutdown();
  impl_->stop_dashboard();  // its thread is joined by ~Server
}

Server::~Server() {
  impl_->stop_dashboard();
  if (impl_->board_thread.joinable()) impl_->board_thread.join();
}

void Server::reload(const CollectorConfig& next) {
  const CollectorConfig& c = impl_->config;
  // The API's context first: a certificate that does not load refuses the whole reload
  // (thrown before anything changed).
  impl_->http.reload_tls({next.tls_ca, next.tls_cert, next.tls_key}, "tls");
  if (impl_->board) {
    // The dashboard's server belongs to its thread.
    asio::post(impl_->board_io,
               [b = impl_->board.get(), next, cert = c.dashboard_client_certificate] {
                 try {
                   b->reload_tls({next.tls_ca, next.tls_cert, next.tls_key}, "tls", cert);
                 } catch (const std::exception& e) {
                   log::get("collectord")->error("dashboard kept its certificates: {}", e.what());
                 }
               });
  }
  impl_->live.store(std::make_shared<const CollectorConfig>(next));
}

std::optional<std::uint16_t> Server::dashboard_port() const {
  if (!impl_->board) return std::nullopt;
  return impl_->board->port();
}

void Server::set_live_stats(const events::LiveStats* stats) {
  impl_->live_stats.store(stats);
}

std::shared_ptr<events::EventsCache> Server::events_cache() const {
  return impl_->events_cache;
}

std::shared_ptr<const CollectorConfig> Server::config() const {
  return impl_->live.load();
}

std::uint16_t Server::port() const {
  return impl_->http.port();
}

const http::HttpServerStats& Server::http_stats() const {
  return impl_->http.stats();
}

}  // namespace teiten::collector

// SPDX-License-Identifier: Apache-2.0
#include <utility>  // before Asio (Boost 1.74 with C++20)

#include "collector/events/live.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <set>

#include <date/date.h>

#include "collector/report/destination.h"
#include "common/http/client.h"
#include "common/log/log.h"
#include "common/tls/context.h"

namespace teiten::collector::events {

namespace {

constexpr std::array<const char*, 3> kFingerprints = {"mirai", "masscan", "zmap"};
constexpr std::size_t kRecent = 20;

int region_of(const CollectorConfig& cfg, const std::string& sensor) {
  const RegisteredSensor* s = cfg.find_sensor(sensor);
  if (!s) return -1;
  return s->region == "domestic" ? 0 : 1;
}

std::int64_t parse_port(const std::string& s) {
  std::int64_t v = -1;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() ? v : -1;
}

}  // namespace

std::vector<Event> LiveStats::recent() const {
  std::lock_guard lock(mu_);
  return recent_;
}

void LiveStats::remember(const std::vector<Event>& found, std::int64_t now) {
  std::lock_guard lock(mu_);
  recent_.insert(recent_.end(), found.begin(), found.end());
  std::erase_if(recent_, [&](const Event& e) { return e.hour && *e.hour < now - 86400; });
  std::stable_sort(recent_.begin(), recent_.end(),
                   [](const Event& a, const Event& b) { return a.score > b.score; });
  if (recent_.size() > kRecent) recent_.resize(kRecent);
}

std::optional<Webhook> parse_webhook(const std::string& url) {
  constexpr std::string_view scheme = "https://";
  if (url.size() > 2048 || url.rfind(scheme, 0) != 0) return std::nullopt;
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  Webhook w;
  if (slash != std::string::npos) w.path = rest.substr(slash);
  const auto colon = authority.rfind(':');
  w.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    w.port = authority.substr(colon + 1);
    const auto p = parse_port(w.port);
    if (p < 1 || p > 65535) return std::nullopt;
  }
  if (w.host.empty() || w.host.find_first_of("@ ?#[]") != std::string::npos ||
      w.path.find_first_of(" \r\n") != std::string::npos)
    return std::nullopt;
  return w;
}

LiveEvents::LiveEvents(const StoreConfig& store, ConfigSource config, std::chrono::seconds period,
                       std::shared_ptr<EventsCache> cache)
    : store_config_(store), config_(std::move(config)), period_(period), cache_(std::move(cache)) {
  if (period_.count() > 0) thread_ = std::thread([this] { loop(); });
}

LiveEvents::~LiveEvents() {
  stop_requested_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LiveEvents::loop() {
  auto logger = log::get("collectord");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    try {
      const std::int64_t now = std::time(nullptr);
      evaluate(now);
      if (cache_) warm(now, *config_());
    } catch (const std::exception& e) {
      stats_.failures.fetch_add(1, std::memory_order_relaxed);
      store_.reset();  // a new connection at the next pass
      logger->error("live events: {}", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, period_, [this] { return stopping_; });
  }
}

LiveEvents::Hour LiveEvents::fetch(std::int64_t hour, const CollectorConfig& cfg) {
  Query q;
  q.from = hour * 3600;
  q.to = q.from + 3600;
  q.group_by = {"sensor", "proto", "port", "fingerprint"};
  Hour h;
  for (const QueryRow& row : store_->query(q)) {
    const int r = region_of(cfg, row.group.at(0));
    if (r < 0) continue;
    h.delivered[static_cast<std::size_t>(r)].insert(row.group[0]);
    const std::uint32_t code = destination_code(row.group.at(1), parse_port(row.group.at(2)));
    auto& m = h.packets[static_cast<std::size_t>(r)];
    m[std::uint64_t{code} << 3] += static_cast<double>(row.packets);
    for (std::size_t f = 0; f < kFingerprints.size(); ++f)
      if (row.group.at(3) == kFingerprints[f])
        m[std::uint64_t{code} << 3 | (f + 1)] += static_cast<double>(row.packets);
  }
  return h;
}

std::vector<Event> LiveEvents::evaluate(std::int64_t now) {
  const auto cfg = config_();
  if (!store_) store_ = open_store(store_config_, OpenMode::read_only);
  // Hours summed with another registry's regions are read again.
  const std::uint64_t registry = cfg->regions_hash();
  if (registry != registry_) {
    hours_.clear();
    registry_ = registry;
  }
  const std::int64_t ready = (now - static_cast<std::int64_t>(cfg->live_grace_s)) / 3600 - 1;
  if (!last_) last_ = ready - 1;  // from the latest whole hour on
  std::vector<Event> found;
  auto logger = log::get("collectord");
  while (*last_ < ready && !stop_requested_) {
    const std::int64_t hour = *last_ + 1;
    const auto more = judge(hour, *cfg);
    last_ = hour;
    stats_.hours.fetch_add(1, std::memory_order_relaxed);
    if (more.empty()) continue;
    stats_.spikes.fetch_add(more.size(), std::memory_order_relaxed);
    stats_.last_event.store(now, std::memory_order_relaxed);
    stats_.remember(more, now);
    for (const Event& e : more) logger->warn("notable change: {}", e.sentence);
    post(more, *cfg);
    found.insert(found.end(), more.begin(), more.end());
  }
  return found;
}

std::vector<Event> LiveEvents::judge(std::int64_t hour, const CollectorConfig& cfg) {
  Settings st = cfg.events;
  st.baseline_days = static_cast<int>(cfg.live_baseline_hours);
  st.min_baseline_days = std::min(st.baseline_days, std::max(6, st.baseline_days / 6));
  st.weekly = false;
  const std::int64_t first = hour - st.baseline_days;
  // The hours of the window: those already read stay (the two latest are read again: a
  // late bucket may have added to them), those before it go.
  hours_.erase(hours_.begin(), hours_.lower_bound(first));
  for (std::int64_t h = first; h <= hour; ++h)
    if (!hours_.contains(h) || h >= hour - 1) hours_[h] = fetch(h, cfg);
  // Sensors joining or leaving a region are breaks, as in the daily events: a new sensor's
  // ports are not a change of the traffic. A sensor's first hour in the window is a join.
  // An absence is leaving only once it lasted `away` hours (before that it is a coverage
  // gap, a late bucket or a short outage, which the exposure and coverage_min deal with):
  // then the hour it began is a break, and so is the hour the sensor came back, if it did.
  const std::int64_t away = st.min_baseline_days;
  std::array<std::vector<std::int64_t>, 2> breaks;
  for (std::size_t r = 0; r < 2; ++r) {
    std::map<std::string, std::int64_t> latest;  // the last hour each sensor delivered
    for (std::int64_t h = first; h <= hour; ++h)
      for (const auto& id : hours_.at(h).delivered[r]) {
        const auto [it, joined] = latest.try_emplace(id, h);
        if (joined && h > first) {
          breaks[r].push_back(h);
        } else if (!joined && h - it->second - 1 >= away) {
          breaks[r].push_back(it->second + 1);
          breaks[r].push_back(h);
        }
        it->second = h;
      }
    for (const auto& [id, last] : latest)
      if (hour - (last + 1) >= away) breaks[r].push_back(last + 1);
  }
  const auto series = [&](std::size_t region, std::uint64_t key) {
    Series s;
    s.first_day = first;
    s.breaks = breaks[region];
    for (std::int64_t h = first; h <= hour; ++h) {
      const Hour& x = hours_.at(h);
      const auto it = x.packets[region].find(key);
      s.packets.push_back(it == x.packets[region].end() ? 0.0 : it->second);
      s.exposure.push_back(static_cast<double>(x.delivered[region].size()));
    }
    return s;
  };
  // Spikes of this hour, per destination: ALL first, a fingerprint only when ALL did not.
  std::map<std::uint32_t, std::array<std::optional<std::pair<std::uint64_t, Change>>, 2>> spikes;
  const Hour& now = hours_.at(hour);
  for (std::size_t r = 0; r < 2; ++r) {
    for (const auto& [key, packets] : now.packets[r]) {
      (void)packets;
      for (const Change& c : count_changes(series(r, key), st)) {
        if (c.kind != Kind::spike || c.day != hour) continue;
        auto& slot = spikes[static_cast<std::uint32_t>(key >> 3)][r];
        if (!slot || (key & 7) < (slot->first & 7)) slot = std::make_pair(key, c);
      }
    }
  }
  std::vector<Event> out;
  for (const auto& [code, per_region] : spikes) {
    // Both regions: the same series spiked in each (else the stronger region's speaks).
    const bool both =
        per_region[0] && per_region[1] && per_region[0]->first == per_region[1]->first;
    const std::size_t r = per_region[0] && (!per_region[1] || per_region[0]->second.score >=
                                                                  per_region[1]->second.score)
                              ? 0
                              : 1;
    const auto& [key, c] = *per_region[r];
    Event e;
    e.kind = Kind::spike;
    e.hour = hour * 3600;
    e.day = e.last_day = e.detected_on = store_->local_day(hour * 3600);
    e.dest = destination_of(code);
    const auto part = static_cast<std::size_t>(key & 7);
    e.fingerprint = part == 0 ? "" : kFingerprints[part - 1];
    e.before = c.before;
    e.after = c.after;
    e.excess = c.excess;
    e.score = c.score;
    e.scope = both ? "both" : r == 0 ? "domestic" : "overseas";
    if (!per_region[1 - r]) {  // the other region did not spike (in any series): did it move?
      const auto moved = log_change_at(series(1 - r, key), hour, 1, st);
      const double own = std::log1p(e.after) - std::log1p(e.before);
      e.divergence = moved && *moved * own < 0.5 * own * own;
    }
    if (part == 0) {
      const auto fp = excess_over(series(r, key | 1), hour, hour, st);
      if (fp && e.excess > 0) e.fingerprinted_share = std::clamp(*fp / e.excess, 0.0, 1.0);
    }
    e.sentence = sentence_of(e);
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(),
            [](const Event& a, const Event& b) { return a.score > b.score; });
  return out;
}

void LiveEvents::warm(std::int64_t now, const CollectorConfig& cfg) {
  if (!store_) store_ = open_store(store_config_, OpenMode::read_only);
  const std::int64_t today = store_->local_day(now);
  const auto latest = store_->latest_day();
  if (!latest) return;
  const std::int64_t last = std::min(*latest, today);
  const date::year_month_day ymd{date::sys_days{date::days{last}}};
  const unsigned q0 = (static_cast<unsigned>(ymd.month()) - 1) / 3 * 3 + 1;
  const date::year_month_day quarter{ymd.year(), date::month{q0}, date::day{1}};
  const auto day_of = [](date::year_month_day d) {
    return static_cast<std::int64_t>(date::sys_days{d}.time_since_epoch().count());
  };
  const std::int64_t this_q = day_of(quarter);
  const std::int64_t prev_q = day_of(quarter - date::months{3});
  const std::int64_t next_q = day_of(quarter + date::months{3});
  // The ranges people look at (the dashboard's default, this and the last quarter as
  // quarter= asks them), then those the dashboard asked for and did not find.
  std::vector<EventsRequest> ranges;
  for (const auto& [from, to] :
       {std::pair{last - 90, last}, std::pair{this_q, next_q - 1}, std::pair{prev_q, this_q - 1}}) {
    EventsRequest r;
    r.settings = cfg.events;
    r.day_from = from;
    r.day_to = to;
    r.limit = 20;
    ranges.push_back(r);
  }
  for (auto& r : cache_->wanted()) ranges.push_back(std::move(r));
  for (const auto& r : ranges) {
    if (stop_requested_) return;
    try {
      cache_->refresh(*store_, cfg, r, std::chrono::minutes(5));
    } catch (const std::invalid_argument&) {
      // a sensor the request named left the registry: nothing to find
    }
  }
}

void LiveEvents::post(const std::vector<Event>& found, const CollectorConfig& cfg) {
  if (cfg.webhook.empty()) return;
  auto logger = log::get("collectord");
  const auto hook = parse_webhook(cfg.webhook);
  if (!hook) return;  // the configuration checked it
  std::optional<boost::asio::ssl::context> ctx;
  try {
    ctx.emplace(tls::make_client_tls({cfg.webhook_ca.empty() ? cfg.tls_ca : cfg.webhook_ca, "", ""},
                                     tls::Role::none));
  } catch (const std::exception& e) {
    stats_.webhook_failures.fetch_add(found.size(), std::memory_order_relaxed);
    logger->error("webhook {}: {}", cfg.webhook, e.what());
    return;
  }
  // One post per event, each on its own (10 s at most), the strongest first; at most
  // kMaxPosts an hour (the rest are counted as failures and stay in /metrics and the log).
  constexpr std::size_t kMaxPosts = 20;
  for (std::size_t i = 0; i < found.size(); ++i) {
    if (i >= kMaxPosts || stop_requested_) {
      stats_.webhook_failures.fetch_add(found.size() - i, std::memory_order_relaxed);
      logger->error("webhook {}: {} events not posted (at most {} an hour, or stopping)",
                    cfg.webhook, found.size() - i, kMaxPosts);
      return;
    }
    try {
      const nlohmann::json body = {{"source", "teiten-collectord"},
                                   {"event", events_array({found[i]}).at(0)}};
      const auto res = http::https_request_sync(*ctx, hook->host, hook->port, "POST", hook->path,
                                                body.dump(), std::chrono::seconds(10));
      if (res.status >= 200 && res.status < 300) {
        stats_.webhook_posts.fetch_add(1, std::memory_order_relaxed);
      } else {
        stats_.webhook_failures.fetch_add(1, std::memory_order_relaxed);
        logger->error("webhook {} answered {}", cfg.webhook, res.status);
      }
    } catch (const std::exception& e) {
      stats_.webhook_failures.fetch_add(1, std::memory_order_relaxed);
      logger->error("webhook {}: {}", cfg.webhook, e.what());
    }
  }
}

}  // namespace teiten::collector::events

// SPDX-License-Identifier: Apache-2.0
#include "daemon/upload/uploader.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/bucket/bucket_json.h"
#include "common/log/log.h"

namespace teiten::sensor {

namespace asio = boost::asio;
using asio::use_awaitable;

std::vector<Endpoint> parse_endpoints(const std::string& list) {
  std::vector<Endpoint> out;
  for (std::size_t p = 0; p <= list.size();) {
    const auto comma = std::min(list.find(',', p), list.size());
    const std::string s = list.substr(p, comma - p);
    const auto colon = s.rfind(':');
    if (colon != std::string::npos) out.push_back({s.substr(0, colon), s.substr(colon + 1)});
    p = comma + 1;
  }
  return out;
}

Uploader::Uploader(asio::io_context& io, Spool& spool, DeadLetterStore& dead, UploadOptions options)
    : io_(io),
      spool_(spool),
      dead_(dead),
      options_(std::move(options)),
      batch_(options_.batch),
      wake_(io),
      rng_(std::random_device{}()) {}

void Uploader::start() {
  asio::co_spawn(io_, loop(), asio::detached);
}

void Uploader::notify() {
  asio::post(io_, [this] { wake_.cancel(); });
}

void Uploader::stop() {
  stopping_ = true;
  asio::post(io_, [this] { wake_.cancel(); });
}

asio::awaitable<void> Uploader::loop() {
  auto logger = log::get("upload");
  auto backoff = options_.backoff_min;
  bool failing = false;
  std::size_t failed_in_row = 0;  // attempts that failed since the last success
  while (!stopping_) {
    bool sent = false;
    std::string failure;
    try {
      sent = co_await send_once();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      stats_.failures.fetch_add(1, std::memory_order_relaxed);
      const Endpoint failed = collector();
      const std::size_t n = options_.collectors.size();
      ++failed_in_row;
      if (n > 1) {
        // Another collector at once; back off only once each failed in a row.
        std::size_t next = (current_ + 1) % n;
        if (options_.random_failover) {
          std::uniform_int_distribution<std::size_t> pick(1, n - 1);
          next = (current_ + pick(rng_)) % n;
        }
        current_ = next;
        stats_.failovers.fetch_add(1, std::memory_order_relaxed);
        logger->warn("upload failed host={}: {}; trying {}", failed.label(), failure,
                     collector().label());
        if (failed_in_row < n) continue;
      } else if (!failing) {
        // One line when delivery starts failing, then quiet until it recovers (the
        // failures counter keeps counting).
        logger->warn("upload failed host={}: {}", failed.label(), failure);
      }
      failing = true;
      failed_in_row = 0;
      // Full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
      const auto cap = std::min(backoff * 2, options_.backoff_max);
      backoff = cap;
      std::uniform_int_distribution<std::int64_t> d(options_.backoff_min.count(), cap.count());
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(d(rng_));
      // notify() cancels the timer; a wake-up must not cut the backoff short.
      while (!stopping_ && std::chrono::steady_clock::now() < until) {
        wake_.expires_at(until);
        boost::system::error_code ec;
        co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
      }
      continue;
    }
    failed_in_row = 0;
    if (failing) logger->info("upload recovered host={}", collector().label());
    failing = false;
    backoff = options_.backoff_min;
    if (!sent) {
      wake_.expires_after(std::chrono::seconds(1));
      boost::system::error_code ec;
      co_await wake_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }
}

asio::awaitable<bool> Uploader::send_once() {
  // The spool first, in order, as its stored lines (nothing parsed or encoded again);
  // then dead letters an operator queued to be sent again.
  auto batch = spool_.peek_lines(batch_);
  const bool resend = batch.empty();
  if (resend) {
    for (const auto& b : dead_.queued(batch_))
      batch.push_back({b.boot_id, b.seq, bucket::to_json_line(b)});
  }
  if (batch.empty()) co_return false;
  // Re-read: renewed certificates apply. Only a collector may take the buckets.
  auto ctx = tls::make_client_tls(options_.tls, tls::Role::collector);
  std::size_t size = 16;
  for (const auto& b : batch) size += b.line.size() + 1;
  std::string request;
  request.reserve(size);
  request = "{\"buckets\":[";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i) request += ',';
    request += batch[i].line;
  }
  request += "]}";
  const std::size_t body_bytes = request.size();
  const auto res =
      co_await http::https_request(ctx, collector().host, collector().port, "POST", "/v1/buckets",
                                   std::move(request), options_.deadline);
  if (res.status == 413 && batch_ > 1) {
    // The collector's body limit is smaller than this batch: send fewer at a time.
    batch_ = std::max<std::size_t>(1, batch_ / 2);
    log::get("upload")->warn("collector refused a batch as too large; batches of {} buckets now",
                             batch_);
    co_return true;  // retry at once with the smaller batch
  }
  if (res.status == 413) {
    // Kept and retried: nothing is dropped for a limit an operator can raise.
    throw std::runtime_error("collector refused one bucket of " + std::to_string(body_bytes) +
                             " bytes as too large; raise its limits.max_body_bytes");
  }
  if (res.status != 200) {
    throw std::runtime_error("collector answered " + std::to_string(res.status) + ": " +
                             res.body.substr(0, 300));
  }
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("stored") ||
      !body.contains("duplicate") || !body["stored"].is_array() || !body["duplicate"].is_array()) {
    throw std::runtime_error("collector's answer is not an acknowledgement");
  }
  std::vector<std::pair<std::string, std::uint64_t>> acked;
  for (const char* field : {"stored", "duplicate"}) {
    for (const auto& id : body[field]) {
      if (!id.is_object() || !id.contains("boot_id") || !id.contains("seq") ||
          !id["boot_id"].is_string() || !id["seq"].is_number_unsigned()) {
        throw std::runtime_error("collector's acknowledgement is malformed");
      }
      acked.emplace_back(id["boot_id"].get<std::string>(), id["seq"].get<std::uint64_t>());
    }
  }
  // Refused buckets: kept in the dead-letter area (durably, before the spool lets them
  // go), counted, and never again in the way of the ones behind them.
  std::size_t refused = 0;
  std::string first_reason;
  if (const auto r = body.find("refused"); r != body.end() && r->is_array()) {
    for (const auto& v : *r) {
      if (!v.is_object() || !v.contains("index") || !v["index"].is_number_unsigned() ||
          v["index"].get<std::uint64_t>() >= batch.size()) {
        throw std::runtime_error("collector's verdicts are malformed");
      }
      const auto& stored = batch[v["index"].get<std::size_t>()];
      std::string error;
      const auto b = bucket::from_json_line(stored.line, error);
      if (!b) {
        // Read back as written (CRC): cannot happen unless this build reads its own lines
        // differently; kept in the spool, and said so.
        throw std::runtime_error("bucket seq " + std::to_string(stored.seq) +
                                 " refused, and its stored line does not parse: " + error);
      }
      const std::string reason = v.value("reason", std::string{"refused"});
      const std::string message = v.value("message", std::string{});
      if (!dead_.put(*b, reason, message)) {
        throw std::runtime_error("cannot write the dead-letter area for bucket seq " +
                                 std::to_string(b->seq) + " (kept in the spool)");
      }
      if (first_reason.empty()) first_reason = reason + ": " + message;
      acked.emplace_back(b->boot_id, b->seq);
      ++refused;
    }
  }
  if (resend) {
    for (const auto& [boot, seq] : acked) dead_.delivered(boot, seq);
  } else {
    spool_.ack(acked);
  }
  if (refused) {
    stats_.buckets_refused.fetch_add(refused, std::memory_order_relaxed);
    log::get("upload")->warn("collector refused {} of {} buckets, kept in the dead-letter area: {}",
                             refused, batch.size(), first_reason);
  }
  stats_.batches_ok.fetch_add(1, std::memory_order_relaxed);
  stats_.buckets_acked.fetch_add(acked.size() - refused, std::memory_order_relaxed);
  stats_.last_success.store(std::time(nullptr), std::memory_order_relaxed);
  co_return true;
}

}  // namespace teiten::sensor

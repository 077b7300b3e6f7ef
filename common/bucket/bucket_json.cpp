// SPDX-License-Identifier: Apache-2.0
#include "common/bucket/bucket_json.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <nlohmann/json.hpp>
#include <span>

namespace teiten::bucket {
namespace {

using classify::Fingerprint;
using classify::Kind;
using classify::Proto;

template <typename E>
std::optional<E> enum_from_string(std::string_view s) {
  for (std::size_t i = 0; i < static_cast<std::size_t>(E::count_); ++i) {
    if (to_string(static_cast<E>(i)) == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

// nlohmann::json parses recursively: refuse deep nesting before it can exhaust the stack.
bool nesting_within(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

struct Reader {
  std::string& error;
  bool ok = true;

  const nlohmann::json* field(const nlohmann::json& obj, const char* name, const char* where) {
    if (!ok) return nullptr;
    const auto it = obj.find(name);
    if (it == obj.end()) {
      fail(std::string{where} + name + ": missing");
      return nullptr;
    }
    return &*it;
  }
  std::uint64_t u64(const nlohmann::json& obj, const char* name, const char* where,
                    std::uint64_t max = UINT64_MAX) {
    const auto* v = field(obj, name, where);
    if (!v) return 0;
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() > max) {
      fail(std::string{where} + name + ": expected an unsigned integer up to " +
           std::to_string(max));
      return 0;
    }
    return v->get<std::uint64_t>();
  }
  std::string str(const nlohmann::json& obj, const char* name, const char* where,
                  std::size_t max_len = 256) {
    const auto* v = field(obj, name, where);
    if (!v) return {};
    if (!v->is_string() || v->get_ref<const std::string&>().size() > max_len) {
      fail(std::string{where} + name + ": expected a string of at most " + std::to_string(max_len) +
           " bytes");
      return {};
    }
    return v->get<std::string>();
  }
  bool boolean(const nlohmann::json& obj, const char* name, const char* where) {
    const auto* v = field(obj, name, where);
    if (!v) return false;
    if (!v->is_boolean()) {
      fail(std::string{where} + name + ": expected true or false");
      return false;
    }
    return v->get<bool>();
  }
  void fail(std::string msg) {
    if (ok) error = std::move(msg);
    ok = false;
  }
};

}  // namespace

std::string format_rfc3339(std::int64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (!gmtime_r(&t, &tm)) return "invalid-time";
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

std::optional<std::int64_t> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return std::nullopt;
  }
  auto num = [&](std::size_t pos, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  const int year = num(0, 4), mon = num(5, 2), day = num(8, 2);
  const int hour = num(11, 2), min = num(14, 2), sec = num(17, 2);
  if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
      min < 0 || min > 59 || sec < 0 || sec > 59) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  if (format_rfc3339(t) != s) return std::nullopt;  // rejects 31 February and the like
  return static_cast<std::int64_t>(t);
}

namespace {

// The encoder writes JSON by hand: nlohmann::ordered_json built a tree per row and was
// 15-20% of the whole replay's CPU time with 10,000-row buckets (bench/pipeline_bench,
// perf). Decoding untrusted input stays with nlohmann::json.
class LineWriter {
 public:
  explicit LineWriter(std::size_t reserve) { s_.reserve(reserve); }
  LineWriter& raw(std::string_view v) {
    s_ += v;
    return *this;
  }
  LineWriter& num(std::uint64_t v) {
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, end);
    return *this;
  }
  LineWriter& str(std::string_view v) {
    s_ += '"';
    for (const char c : v) {
      switch (c) {
        case '"':
          s_ += "\\\"";
          break;
        case '\\':
          s_ += "\\\\";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            s_ += "\\u00";
            s_ += kHex[(c >> 4) & 0xF];
            s_ += kHex[c & 0xF];
          } else {
            s_ += c;
          }
      }
    }
    s_ += '"';
    return *this;
  }
  LineWriter& base64(const sketch::HostSketch& s) {
    s.append_base64(s_);
    return *this;
  }
  std::string take() { return std::move(s_); }

 private:
  std::string s_;
};

}  // namespace

std::string to_json_line(const SealedBucket& b) {
  return to_json_line(b, b.loss.spool_dropped);
}

std::string to_json_line(const SealedBucket& b, std::uint64_t spool_dropped) {
  std::size_t reserve = 512 + b.rows.size() * 110;
  for (const auto& r : b.rows) reserve += r.hosts.empty() ? 0 : 12 + r.hosts.base64_size_bound();
  LineWriter w(reserve);
  w.raw("{\"sensor\":").str(b.sensor_id);
  w.raw(",\"boot_id\":").str(b.boot_id);
  w.raw(",\"seq\":").num(b.seq);
  w.raw(",\"start\":").str(format_rfc3339(b.start));
  w.raw(",\"width_s\":").num(b.width_s);
  w.raw(",\"rows\":[");
  bool first = true;
  for (const auto& r : b.rows) {
    w.raw(first ? "{\"proto\":\"" : ",{\"proto\":\"").raw(to_string(r.key.proto));
    first = false;
    w.raw("\",\"port\":");
    if (r.key.has_port) {
      w.num(r.key.port);
    } else {
      w.raw("null");
    }
    w.raw(",\"country\":\"").raw(classify::country_to_string(r.key.country));
    w.raw("\",\"fingerprint\":\"").raw(to_string(r.key.fingerprint));
    w.raw("\",\"kind\":\"").raw(to_string(r.key.kind));
    w.raw("\",\"packets\":").num(r.packets).raw(",\"bytes\":").num(r.bytes);
    if (!r.hosts.empty()) w.raw(",\"hosts\":\"").base64(r.hosts).raw("\"");
    w.raw("}");
  }
  w.raw("],\"observed\":{\"packets\":").num(b.observed_packets());
  w.raw(",\"bytes\":").num(b.observed_bytes()).raw("}");
  w.raw(",\"not_for_sensor\":").num(b.not_for_sensor);
  w.raw(",\"self_traffic\":").num(b.self_traffic);
  w.raw(",\"late_packets\":").num(b.late_packets);
  w.raw(",\"hosts_unrecorded\":").num(b.hosts_unrecorded);
  w.raw(",\"loss\":{\"ring_drops\":").num(b.loss.ring_drops);
  w.raw(",\"kernel_drops\":").num(b.loss.kernel_drops);
  w.raw(",\"interface_drops\":").num(b.loss.interface_drops);
  w.raw(",\"spool_dropped\":").num(spool_dropped);
  w.raw(",\"malformed\":{");
  first = true;
  for (std::size_t i = 1; i < decode::kDecodeStatusCount; ++i) {
    if (b.loss.malformed[i] == 0) continue;
    w.raw(first ? "" : ",").str(to_string(static_cast<decode::DecodeStatus>(i))).raw(":");
    w.num(b.loss.malformed[i]);
    first = false;
  }
  w.raw("},\"overflow\":{\"packets\":").num(b.loss.overflow_packets);
  w.raw(",\"bytes\":").num(b.loss.overflow_bytes).raw("}}");
  w.raw(",\"provenance\":{\"software\":").str(b.provenance.software_version);
  w.raw(",\"config_sha256\":").str(b.provenance.config_hash);
  w.raw(",\"geoip_build_epoch\":").num(b.provenance.geoip_build_epoch);
  w.raw(",\"clock_synced\":").raw(b.provenance.clock_synced ? "true" : "false").raw("}}");
  return w.take();
}

namespace {

std::optional<SealedBucket> decode_object(const nlohmann::json& j, std::string& error) {
  if (j.is_discarded() || !j.is_object()) {
    error = "bucket is not a JSON object";
    return std::nullopt;
  }
  Reader rd{error};
  SealedBucket b;
  b.sensor_id = rd.str(j, "sensor", "");
  b.boot_id = rd.str(j, "boot_id", "");
  b.seq = rd.u64(j, "seq", "", kMaxCount);
  const std::string start = rd.str(j, "start", "", 32);
  b.width_s = static_cast<std::uint32_t>(rd.u64(j, "width_s", "", 86400));
  if (!rd.ok) return std::nullopt;
  // Every count is bounded by what the bucket's width could hold, and so is every sum:
  // a count of 2^63 would overflow the collector's sums, two of them would wrap the
  // rows-add-up check below.
  const std::uint64_t max_packets =
      std::min<std::uint64_t>(kMaxCount, b.width_s * kMaxPacketsPerSecond);
  const std::uint64_t max_bytes =
      std::min<std::uint64_t>(kMaxCount, b.width_s * kMaxBytesPerSecond);
  std::uint64_t sum_packets = 0, sum_bytes = 0;
  auto add_bounded = [&](std::uint64_t& sum, std::uint64_t v, std::uint64_t max, const char* what) {
    // v <= max <= 2^53 and sum <= max: no overflow.
    sum += v;
    if (sum > max)
      rd.fail(std::string{what} + ": the bucket's counts add up to more than " +
              std::to_string(max) + " in " + std::to_string(b.width_s) + " s");
  };
  const auto t = parse_rfc3339(start);
  if (!t) {
    error = "start: '" + start + "' is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)";
    return std::nullopt;
  }
  b.start = *t;
  if (b.width_s == 0 || b.start % b.width_s != 0) {
    error = "start: not aligned to width_s";
    return std::nullopt;
  }
  const auto* rows = rd.field(j, "rows", "");
  if (!rows) return std::nullopt;
  if (!rows->is_array()) {
    error = "rows: expected an array";
    return std::nullopt;
  }
  b.rows.reserve(rows->size());
  std::uint64_t prev = 0;
  for (const auto& r : *rows) {
    if (!r.is_object()) {
      error = "rows[]: expected an object";
      return std::nullopt;
    }
    Row row;
    const auto proto = enum_from_string<Proto>(rd.str(r, "proto", "rows[].", 16));
    const auto fp = enum_from_string<Fingerprint>(rd.str(r, "fingerprint", "rows[].", 16));
    const auto kind = enum_from_string<Kind>(rd.str(r, "kind", "rows[].", 16));
    const std::string country = rd.str(r, "country", "rows[].", 2);
    const auto* port = rd.field(r, "port", "rows[].");
    row.packets = rd.u64(r, "packets", "rows[].", max_packets);
    row.bytes = rd.u64(r, "bytes", "rows[].", max_bytes);
    if (rd.ok) add_bounded(sum_packets, row.packets, max_packets, "rows[].packets");
    if (rd.ok) add_bounded(sum_bytes, row.bytes, max_bytes, "rows[].bytes");
    if (!rd.ok) return std::nullopt;
    if (!proto || !fp || !kind) {
      error = "rows[]: unknown proto, fingerprint or kind";
      return std::nullopt;
    }
    row.key.proto = *proto;
    row.key.fingerprint = *fp;
    row.key.kind = *kind;
    row.key.country = classify::country_from_string(country);
    if (row.key.country == classify::kUnknownCountry && country != "--") {
      error = "rows[].country: '" + country + "' is not a two-letter code or '--'";
      return std::nullopt;
    }
    if (port->is_null()) {
      row.key.has_port = false;
    } else if (port->is_number_unsigned() && port->get<std::uint64_t>() <= 65535) {
      row.key.has_port = true;
      row.key.port = static_cast<std::uint16_t>(port->get<std::uint64_t>());
    } else {
      error = "rows[].port: expected null or an integer in [0, 65535]";
      return std::nullopt;
    }
    // Absent in buckets of sensors older than unique-host sketches (and in empty rows).
    if (const auto h = r.find("hosts"); h != r.end()) {
      std::string why;
      std::optional<sketch::HostSketch> sk;
      if (h->is_string())
        sk = sketch::HostSketch::from_base64(h->get_ref<const std::string&>(), &why);
      if (!sk) {
        error = "rows[].hosts: " + (h->is_string() ? why : std::string{"expected a string"});
        return std::nullopt;
      }
      row.hosts = std::move(*sk);
    }
    const std::uint64_t packed = row.key.pack();
    if (packed <= prev) {
      error = "rows: not sorted by key, or a key repeats";
      return std::nullopt;
    }
    prev = packed;
    b.rows.push_back(std::move(row));
  }
  b.not_for_sensor = rd.u64(j, "not_for_sensor", "", max_packets);
  // Absent in buckets of sensors older than self-traffic recognition: none counted then.
  if (j.contains("self_traffic")) b.self_traffic = rd.u64(j, "self_traffic", "", max_packets);
  b.late_packets = rd.u64(j, "late_packets", "", max_packets);
  if (j.contains("hosts_unrecorded"))
    b.hosts_unrecorded = rd.u64(j, "hosts_unrecorded", "", max_packets);
  const auto* loss = rd.field(j, "loss", "");
  if (!loss || !loss->is_object()) {
    if (rd.ok) error = "loss: expected an object";
    return std::nullopt;
  }
  b.loss.ring_drops = rd.u64(*loss, "ring_drops", "loss.", max_packets);
  b.loss.kernel_drops = rd.u64(*loss, "kernel_drops", "loss.", max_packets);
  b.loss.interface_drops = rd.u64(*loss, "interface_drops", "loss.", max_packets);
  b.loss.spool_dropped = rd.u64(*loss, "spool_dropped", "loss.", max_packets);
  const auto* malformed = rd.field(*loss, "malformed", "loss.");
  const auto* overflow = rd.field(*loss, "overflow", "loss.");
  if (!rd.ok) return std::nullopt;
  if (!malformed->is_object() || !overflow->is_object()) {
    error = "loss.malformed and loss.overflow must be objects";
    return std::nullopt;
  }
  for (const auto& [name, value] : malformed->items()) {
    const auto reason = enum_from_string<decode::DecodeStatus>(name);
    if (!reason || *reason == decode::DecodeStatus::ok || !value.is_number_unsigned() ||
        value.get<std::uint64_t>() > max_packets) {
      error = "loss.malformed: unknown reason '" + name + "' or a count that is not an " +
              "unsigned integer up to " + std::to_string(max_packets);
      return std::nullopt;
    }
    b.loss.malformed[static_cast<std::size_t>(*reason)] = value.get<std::uint64_t>();
  }
  b.loss.overflow_packets = rd.u64(*overflow, "packets", "loss.overflow.", max_packets);
  b.loss.overflow_bytes = rd.u64(*overflow, "bytes", "loss.overflow.", max_bytes);
  if (rd.ok)
    add_bounded(sum_packets, b.loss.overflow_packets, max_packets, "loss.overflow.packets");
  if (rd.ok) add_bounded(sum_bytes, b.loss.overflow_bytes, max_bytes, "loss.overflow.bytes");
  const auto* prov = rd.field(j, "provenance", "");
  if (!prov || !prov->is_object()) {
    if (rd.ok) error = "provenance: expected an object";
    return std::nullopt;
  }
  b.provenance.software_version = rd.str(*prov, "software", "provenance.");
  b.provenance.config_hash = rd.str(*prov, "config_sha256", "provenance.", 64);
  b.provenance.geoip_build_epoch = rd.u64(*prov, "geoip_build_epoch", "provenance.", kMaxCount);
  b.provenance.clock_synced = rd.boolean(*prov, "clock_synced", "provenance.");
  if (!rd.ok) return std::nullopt;
  // The redundant totals must agree with the rows (they are there for people and jq).
  const auto* observed = rd.field(j, "observed", "");
  if (!observed) return std::nullopt;
  if (!observed->is_object() || rd.u64(*observed, "packets", "observed.") != b.observed_packets() ||
      rd.u64(*observed, "bytes", "observed.") != b.observed_bytes()) {
    if (rd.ok) error = "observed: totals disagree with the rows and overflow";
    return std::nullopt;
  }
  return b;
}

}  // namespace

std::optional<SealedBucket> from_json_line(std::string_view line, std::string& error) {
  if (line.size() > kMaxBucketLineBytes) {
    error = "bucket line of " + std::to_string(line.size()) + " bytes exceeds the limit";
    return std::nullopt;
  }
  if (!nesting_within(line, 8)) {
    error = "bucket JSON nested too deeply";
    return std::nullopt;
  }
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  return decode_object(j, error);
}

std::string to_batch_json(const std::vector<SealedBucket>& batch) {
  std::string out = "{\"buckets\":[";
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i) out += ',';
    out += to_json_line(batch[i]);
  }
  out += "]}";
  return out;
}

namespace {

// The batch decoder's fast path: nlohmann's SAX lexer straight into buckets, without the
// DOM (the DOM parse was 75 of the collector's 100 us per bucket of 50 rows, its bare SAX
// lexer 39: collector_bench --decode-only 1). It accepts only a well-formed batch, with
// every check of decode_object() made; at anything else (a syntax error, a wrong type, a
// repeated key, a value out of range) it gives up and the DOM decoder below reads the body
// again, so every refusal and its message stay that decoder's. Keys it does not know are
// skipped, as the DOM decoder ignores them.
class FastBatch final : public detail::BatchEvents {
 public:
  using json = nlohmann::json;

  explicit FastBatch(std::size_t max_buckets) : max_buckets_(max_buckets) {}

  /// The buckets, when the whole body was a well-formed batch.
  std::optional<std::vector<BatchEntry>> take() {
    if (!done_) return std::nullopt;
    return std::move(out_);
  }

  // The parse's events (json::sax_parse, or another parser's through BatchEvents).
  // Returning false stops the parse.
  bool null() override {
    if (skipping_) return skip_scalar();
    if (top() != Ctx::row || field_ != F::port) return false;
    row_.key.has_port = false;
    return true;
  }
  bool boolean(bool v) override {
    if (skipping_) return skip_scalar();
    if (top() != Ctx::provenance || field_ != F::clock_synced) return false;
    b_.provenance.clock_synced = v;
    return true;
  }
  bool number_integer(std::int64_t) override { return skipping_ && skip_scalar(); }
  bool number_float(double, const std::string&) override { return skipping_ && skip_scalar(); }
  bool binary(json::binary_t&) { return false; }
  bool number_unsigned(std::uint64_t v) override;
  bool string(std::string& v) override;
  bool key(std::string& k) override;
  bool start_object(std::size_t) override;
  bool end_object() override;
  bool start_array(std::size_t) override;
  bool end_array() override;
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return false;
  }

 private:
  enum class Ctx : std::uint8_t {
    root,
    top,
    buckets,
    bucket,
    rows,
    row,
    observed,
    loss,
    malformed,
    overflow,
    provenance
  };
  enum class F : std::uint8_t {
    none,
    buckets,
    sensor,
    boot_id,
    seq,
    start,
    width_s,
    rows,
    observed,
    not_for_sensor,
    self_traffic,
    late_packets,
    hosts_unrecorded,
    loss,
    provenance,
    proto,
    port,
    country,
    fingerprint,
    kind,
    packets,
    bytes,
    hosts,
    ring_drops,
    kernel_drops,
    interface_drops,
    spool_dropped,
    malformed,
    overflow,
    software,
    config_sha256,
    geoip_build_epoch,
    clock_synced
  };
  static constexpr std::uint64_t bit(F f) { return 1ULL << static_cast<unsigned>(f); }
  struct Name {
    std::string_view name;
    F field;
  };
  static constexpr Name kTop[] = {{"buckets", F::buckets}};
  static constexpr Name kBucket[] = {{"sensor", F::sensor},
                                     {"boot_id", F::boot_id},
                                     {"seq", F::seq},
                                     {"start", F::start},
                                     {"width_s", F::width_s},
                                     {"rows", F::rows},
                                     {"observed", F::observed},
                                     {"not_for_sensor", F::not_for_sensor},
                                     {"self_traffic", F::self_traffic},
                                     {"late_packets", F::late_packets},
                                     {"hosts_unrecorded", F::hosts_unrecorded},
                                     {"loss", F::loss},
                                     {"provenance", F::provenance}};
  static constexpr Name kRow[] = {{"proto", F::proto},     {"port", F::port},
                                  {"country", F::country}, {"fingerprint", F::fingerprint},
                                  {"kind", F::kind},       {"packets", F::packets},
                                  {"bytes", F::bytes},     {"hosts", F::hosts}};
  static constexpr Name kTotals[] = {{"packets", F::packets}, {"bytes", F::bytes}};
  static constexpr Name kLoss[] = {{"ring_drops", F::ring_drops},
                                   {"kernel_drops", F::kernel_drops},
                                   {"interface_drops", F::interface_drops},
                                   {"spool_dropped", F::spool_dropped},
                                   {"malformed", F::malformed},
                                   {"overflow", F::overflow}};
  static constexpr Name kProvenance[] = {{"software", F::software},
                                         {"config_sha256", F::config_sha256},
                                         {"geoip_build_epoch", F::geoip_build_epoch},
                                         {"clock_synced", F::clock_synced}};

  Ctx top() const { return stack_[depth_]; }
  bool push(Ctx c) {
    if (depth_ + 1 >= stack_.size()) return false;
    stack_[++depth_] = c;
    seen_[depth_] = 0;
    return true;
  }
  bool has(std::uint64_t mask) const { return (seen_[depth_] & mask) == mask; }
  bool skip_scalar() {
    if (skip_depth_ == 0) skipping_ = false;
    return true;
  }
  // A string value of at most `max` bytes (Reader::str's bound).
  static bool take_str(std::string& to, const json::string_t& v, std::size_t max) {
    if (v.size() > max) return false;
    to = v;
    return true;
  }
  template <typename E>
  static bool take_enum(E& to, const json::string_t& v) {
    const auto e = v.size() <= 16 ? enum_from_string<E>(v) : std::nullopt;
    if (e) to = *e;
    return e.has_value();
  }
  bool finish_row();
  bool finish_bucket();

  std::size_t max_buckets_;
  std::vector<BatchEntry> out_;
  bool done_ = false;
  std::array<Ctx, 8> stack_{Ctx::root};
  std::array<std::uint64_t, 8> seen_{};
  std::size_t depth_ = 0;
  F field_ = F::none;
  decode::DecodeStatus reason_ = decode::DecodeStatus::ok;
  bool skipping_ = false;
  int skip_depth_ = 0;

  SealedBucket b_;
  std::string start_;
  std::uint64_t observed_packets_ = 0, observed_bytes_ = 0;
  Row row_;
  std::string country_;
};

bool FastBatch::number_unsigned(std::uint64_t v) {
  if (skipping_) return skip_scalar();
  switch (top()) {
    case Ctx::bucket:
      switch (field_) {
        case F::seq:
          b_.seq = v;
          return v <= kMaxCount;
        case F::width_s:
          b_.width_s = static_cast<std::uint32_t>(v);
          return v <= 86400;
        case F::not_for_sensor:
          b_.not_for_sensor = v;
          return true;
        case F::self_traffic:
          b_.self_traffic = v;
          return true;
        case F::late_packets:
          b_.late_packets = v;
          return true;
        case F::hosts_unrecorded:
          b_.hosts_unrecorded = v;
          return true;
        default:
          return false;
      }
    case Ctx::row:
      switch (field_) {
        case F::port:
          row_.key.has_port = true;
          row_.key.port = static_cast<std::uint16_t>(v);
          return v <= 65535;
        case F::packets:
          row_.packets = v;
          return true;
        case F::bytes:
          row_.bytes = v;
          return true;
        default:
          return false;
      }
    case Ctx::observed:
      (field_ == F::packets ? observed_packets_ : observed_bytes_) = v;
      return true;
    case Ctx::overflow:
      (field_ == F::packets ? b_.loss.overflow_packets : b_.loss.overflow_bytes) = v;
      return true;
    case Ctx::malformed:
      b_.loss.malformed[static_cast<std::size_t>(reason_)] = v;
      return true;
    case Ctx::loss:
      switch (field_) {
        case F::ring_drops:
          b_.loss.ring_drops = v;
          return true;
        case F::kernel_drops:
          b_.loss.kernel_drops = v;
          return true;
        case F::interface_drops:
          b_.loss.interface_drops = v;
          return true;
        case F::spool_dropped:
          b_.loss.spool_dropped = v;
          return true;
        default:
          return false;
      }
    case Ctx::provenance:
      b_.provenance.geoip_build_epoch = v;
      return field_ == F::geoip_build_epoch && v <= kMaxCount;
    default:
      return false;
  }
}

bool FastBatch::string(std::string& v) {
  if (skipping_) return skip_scalar();
  switch (top()) {
    case Ctx::bucket:
      switch (field_) {
        case F::sensor:
          return take_str(b_.sensor_id, v, 256);
        case F::boot_id:
          return take_str(b_.boot_id, v, 256);
        case F::start:
          return take_str(start_, v, 32);
        default:
          return false;
      }
    case Ctx::row:
      switch (field_) {
        case F::proto:
          return take_enum(row_.key.proto, v);
        case F::fingerprint:
          return take_enum(row_.key.fingerprint, v);
        case F::kind:
          return take_enum(row_.key.kind, v);
        case F::country:
          return take_str(country_, v, 2);
        case F::hosts: {
          auto sk = sketch::HostSketch::from_base64(v, nullptr);
          if (!sk) return false;
          row_.hosts = std::move(*sk);
          return true;
        }
        default:
          return false;
      }
    case Ctx::provenance:
      switch (field_) {
        case F::software:
          return take_str(b_.provenance.software_version, v, 256);
        case F::config_sha256:
          return take_str(b_.provenance.config_hash, v, 64);
        default:
          return false;
      }
    default:
      return false;
  }
}

bool FastBatch::key(std::string& k) {
  if (skipping_) return true;
  std::span<const Name> names;
  switch (top()) {
    case Ctx::top:
      names = kTop;
      break;
    case Ctx::bucket:
      names = kBucket;
      break;
    case Ctx::row:
      names = kRow;
      break;
    case Ctx::observed:
    case Ctx::overflow:
      names = kTotals;
      break;
    case Ctx::loss:
      names = kLoss;
      break;
    case Ctx::provenance:
      names = kProvenance;
      break;
    case Ctx::malformed: {
      static_assert(decode::kDecodeStatusCount <= 64, "one bit per reason");
      // A reason's name; a repeated or unknown one (or "ok") is the DOM decoder's to refuse.
      const auto r = enum_from_string<decode::DecodeStatus>(k);
      if (!r || *r == decode::DecodeStatus::ok) return false;
      const std::uint64_t b = 1ULL << static_cast<unsigned>(*r);
      if (seen_[depth_] & b) return false;
      seen_[depth_] |= b;
      reason_ = *r;
      return true;
    }
    default:
      return false;
  }
  for (const auto& n : names) {
    if (n.name != k) continue;
    if (seen_[depth_] & bit(n.field)) return false;  // repeated: the DOM keeps the last
    seen_[depth_] |= bit(n.field);
    field_ = n.field;
    return true;
  }
  skipping_ = true;  // not ours: its value is skipped, however nested
  skip_depth_ = 0;
  return true;
}

bool FastBatch::start_object(std::size_t) {
  if (skipping_) return ++skip_depth_, true;
  switch (top()) {
    case Ctx::root:
      return push(Ctx::top);
    case Ctx::buckets:
      if (out_.size() >= max_buckets_) return false;
      b_ = SealedBucket{};
      start_.clear();
      observed_packets_ = observed_bytes_ = 0;
      return push(Ctx::bucket);
    case Ctx::rows:
      row_ = Row{};
      country_.clear();
      return push(Ctx::row);
    case Ctx::bucket:
      if (field_ == F::observed) return push(Ctx::observed);
      if (field_ == F::loss) return push(Ctx::loss);
      if (field_ == F::provenance) return push(Ctx::provenance);
      return false;
    case Ctx::loss:
      if (field_ == F::malformed) return push(Ctx::malformed);
      if (field_ == F::overflow) return push(Ctx::overflow);
      return false;
    default:
      return false;
  }
}

bool FastBatch::end_object() {
  if (skipping_) {
    if (--skip_depth_ == 0) skipping_ = false;
    return true;
  }
  bool ok = true;
  switch (top()) {
    case Ctx::top:
      ok = has(bit(F::buckets));
      done_ = ok;
      break;
    case Ctx::bucket:
      ok = finish_bucket();
      break;
    case Ctx::row:
      ok = finish_row();
      break;
    case Ctx::observed:
    case Ctx::overflow:
      ok = has(bit(F::packets) | bit(F::bytes));
      break;
    case Ctx::loss:
      ok = has(bit(F::ring_drops) | bit(F::kernel_drops) | bit(F::interface_drops) |
               bit(F::spool_dropped) | bit(F::malformed) | bit(F::overflow));
      break;
    case Ctx::provenance:
      ok = has(bit(F::software) | bit(F::config_sha256) | bit(F::geoip_build_epoch) |
               bit(F::clock_synced));
      break;
    case Ctx::malformed:
      break;
    default:
      return false;
  }
  --depth_;
  return ok;
}

bool FastBatch::start_array(std::size_t) {
  if (skipping_) return ++skip_depth_, true;
  if (top() == Ctx::top && field_ == F::buckets) return push(Ctx::buckets);
  if (top() == Ctx::bucket && field_ == F::rows) return push(Ctx::rows);
  return false;
}

bool FastBatch::end_array() {
  if (skipping_) {
    if (--skip_depth_ == 0) skipping_ = false;
    return true;
  }
  if (top() != Ctx::buckets && top() != Ctx::rows) return false;
  --depth_;
  return true;
}

bool FastBatch::finish_row() {
  if (!has(bit(F::proto) | bit(F::port) | bit(F::country) | bit(F::fingerprint) | bit(F::kind) |
           bit(F::packets) | bit(F::bytes)))
    return false;
  row_.key.country = classify::country_from_string(country_);
  if (row_.key.country == classify::kUnknownCountry && country_ != "--") return false;
  b_.rows.push_back(std::move(row_));
  return true;
}

// decode_object()'s checks, on what was read.
bool FastBatch::finish_bucket() {
  if (!has(bit(F::sensor) | bit(F::boot_id) | bit(F::seq) | bit(F::start) | bit(F::width_s) |
           bit(F::rows) | bit(F::observed) | bit(F::not_for_sensor) | bit(F::late_packets) |
           bit(F::loss) | bit(F::provenance)))
    return false;
  const auto t = parse_rfc3339(start_);
  if (!t || b_.width_s == 0 || *t % b_.width_s != 0) return false;
  b_.start = *t;
  const std::uint64_t max_packets =
      std::min<std::uint64_t>(kMaxCount, b_.width_s * kMaxPacketsPerSecond);
  const std::uint64_t max_bytes =
      std::min<std::uint64_t>(kMaxCount, b_.width_s * kMaxBytesPerSecond);
  // Each value is checked before it is added: no sum can wrap.
  std::uint64_t packets = 0, bytes = 0, prev = 0;
  const auto add = [](std::uint64_t& sum, std::uint64_t v, std::uint64_t max) {
    if (v > max) return false;
    sum += v;
    return sum <= max;
  };
  for (const auto& r : b_.rows) {
    if (!add(packets, r.packets, max_packets) || !add(bytes, r.bytes, max_bytes)) return false;
    const std::uint64_t packed = r.key.pack();
    if (packed <= prev) return false;
    prev = packed;
  }
  if (!add(packets, b_.loss.overflow_packets, max_packets) ||
      !add(bytes, b_.loss.overflow_bytes, max_bytes))
    return false;
  for (const std::uint64_t v :
       {b_.not_for_sensor, b_.self_traffic, b_.late_packets, b_.hosts_unrecorded,
        b_.loss.ring_drops, b_.loss.kernel_drops, b_.loss.interface_drops, b_.loss.spool_dropped})
    if (v > max_packets) return false;
  for (const std::uint64_t v : b_.loss.malformed)
    if (v > max_packets) return false;
  if (observed_packets_ != packets || observed_bytes_ != bytes) return false;
  BatchEntry& e = out_.emplace_back();
  e.boot_id = b_.boot_id;
  e.seq = b_.seq;
  e.bucket = std::move(b_);
  return true;
}

}  // namespace

std::optional<std::vector<BatchEntry>> from_batch_json_entries(std::string_view body,
                                                               std::size_t max_buckets,
                                                               std::string& error) {
  if (auto entries = detail::from_batch_json_entries_fast(body, max_buckets)) return entries;
  return detail::from_batch_json_entries_dom(body, max_buckets, error);
}

std::optional<std::vector<BatchEntry>> detail::from_batch_json_entries_fast(
    std::string_view body, std::size_t max_buckets) {
  if (!nesting_within(body, detail::kMaxBatchNesting)) return std::nullopt;
  FastBatch fast(max_buckets);
  if (!nlohmann::json::sax_parse(body.data(), body.data() + body.size(), &fast))
    return std::nullopt;
  return fast.take();
}

std::optional<std::vector<BatchEntry>> detail::from_batch_events(
    std::string_view body, std::size_t max_buckets, bool (*parse)(std::string_view, BatchEvents&)) {
  FastBatch fast(max_buckets);
  if (!parse(body, fast)) return std::nullopt;
  return fast.take();
}

std::optional<std::vector<BatchEntry>> detail::from_batch_json_entries_dom(std::string_view body,
                                                                           std::size_t max_buckets,
                                                                           std::string& error) {
  if (!nesting_within(body, detail::kMaxBatchNesting)) {
    error = "batch JSON nested too deeply";
    return std::nullopt;
  }
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("buckets") || !j["buckets"].is_array()) {
    error = "batch is not a JSON object with a \"buckets\" array";
    return std::nullopt;
  }
  const auto& arr = j["buckets"];
  if (arr.size() > max_buckets) {
    error = "batch of " + std::to_string(arr.size()) + " buckets exceeds the limit of " +
            std::to_string(max_buckets);
    return std::nullopt;
  }
  std::vector<BatchEntry> out(arr.size());
  for (std::size_t i = 0; i < arr.size(); ++i) {
    BatchEntry& e = out[i];
    e.bucket = decode_object(arr[i], e.error);
    if (e.bucket) {
      e.boot_id = e.bucket->boot_id;
      e.seq = e.bucket->seq;
      continue;
    }
    // Which bucket it was, if that much can be read, so the sender can set it aside.
    if (arr[i].is_object()) {
      const auto b = arr[i].find("boot_id");
      const auto q = arr[i].find("seq");
      if (b != arr[i].end() && b->is_string() && b->get_ref<const std::string&>().size() <= 256)
        e.boot_id = b->get<std::string>();
      if (q != arr[i].end() && q->is_number_unsigned()) e.seq = q->get<std::uint64_t>();
    }
  }
  return out;
}

std::optional<std::vector<SealedBucket>> from_batch_json(std::string_view body,
                                                         std::size_t max_buckets,
                                                         std::string& error) {
  auto entries = from_batch_json_entries(body, max_buckets, error);
  if (!entries) return std::nullopt;
  std::vector<SealedBucket> out;
  out.reserve(entries->size());
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto& e = (*entries)[i];
    if (!e.bucket) {
      error = "buckets[" + std::to_string(i) + "]: " + e.error;
      return std::nullopt;
    }
    out.push_back(std::move(*e.bucket));
  }
  return out;
}

}  // namespace teiten::bucket

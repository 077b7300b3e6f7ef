// SPDX-License-Identifier: Apache-2.0
#include "common/bucket/bucket_json.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/bucket/batch_simdjson.h"

using namespace teiten;
using namespace teiten::bucket;

namespace {
SealedBucket sample() {
  SealedBucket b;
  b.sensor_id = "tokyo-1";
  b.boot_id = "0f0e";
  b.seq = 42;
  b.start = 1656633600;
  b.width_s = 60;
  b.rows.push_back({classify::Key{classify::Proto::tcp, true, 23, classify::make_country('J', 'P'),
                                  classify::Fingerprint::mirai, classify::Kind::scan},
                    10, 400});
  b.rows.push_back({classify::Key{classify::Proto::udp, false, 0, classify::kUnknownCountry,
                                  classify::Fingerprint::none, classify::Kind::other},
                    1, 84});
  b.not_for_sensor = 3;
  b.self_traffic = 6;
  b.loss.ring_drops = 2;
  b.loss.malformed[static_cast<std::size_t>(decode::DecodeStatus::tcp_truncated)] = 4;
  b.loss.overflow_packets = 5;
  b.loss.overflow_bytes = 200;
  b.provenance = {"teiten 0.1.0", std::string(64, 'a'), 1700000000, false};
  return b;
}
}  // namespace

TEST_CASE("a bucket encodes to the documented JSON line", "[bucket][json]") {
  CHECK(
      to_json_line(sample()) ==
      R"({"sensor":"tokyo-1","boot_id":"0f0e","seq":42,"start":"2022-07-01T00:00:00Z","width_s":60,)"
      R"("rows":[{"proto":"tcp","port":23,"country":"JP","fingerprint":"mirai","kind":"scan","packets":10,"bytes":400},)"
      R"({"proto":"udp","port":null,"country":"--","fingerprint":"none","kind":"other","packets":1,"bytes":84}],)"
      R"("observed":{"packets":16,"bytes":684},"not_for_sensor":3,"self_traffic":6,"late_packets":0,"hosts_unrecorded":0,)"
      R"("loss":{"ring_drops":2,"kernel_drops":0,"interface_drops":0,"spool_dropped":0,"malformed":{"tcp_truncated":4},)"
      R"("overflow":{"packets":5,"bytes":200}},)"
      R"("provenance":{"software":"teiten 0.1.0","config_sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",)"
      R"("geoip_build_epoch":1700000000,"clock_synced":false}})");
}

TEST_CASE("a bucket survives encode and decode unchanged", "[bucket][json]") {
  std::string error;
  const auto b = from_json_line(to_json_line(sample()), error);
  REQUIRE(b);
  CHECK(*b == sample());
}

TEST_CASE("malformed bucket lines are refused with a reason", "[bucket][json]") {
  std::string error;
  const std::string good = to_json_line(sample());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return s;
  };
  CHECK_FALSE(from_json_line("not json", error));
  CHECK(error == "bucket is not a JSON object");
  CHECK_FALSE(from_json_line(replace("\"seq\":42", "\"seq\":-1"), error));
  CHECK(error == "seq: expected an unsigned integer up to 9007199254740992");
  CHECK_FALSE(from_json_line(replace("2022-07-01T00:00:00Z", "2022-02-30T00:00:00Z"), error));
  CHECK(error ==
        "start: '2022-02-30T00:00:00Z' is not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)");
  CHECK_FALSE(from_json_line(replace("\"port\":23", "\"port\":70000"), error));
  CHECK(error == "rows[].port: expected null or an integer in [0, 65535]");
  CHECK_FALSE(from_json_line(replace("\"country\":\"JP\"", "\"country\":\"jp\""), error));
  CHECK(error == "rows[].country: 'jp' is not a two-letter code or '--'");
  CHECK_FALSE(from_json_line(replace("\"packets\":16", "\"packets\":17"), error));
  CHECK(error == "observed: totals disagree with the rows and overflow");
  CHECK_FALSE(from_json_line(replace("tcp_truncated", "cosmic_rays"), error));
  CHECK(error ==
        "loss.malformed: unknown reason 'cosmic_rays' or a count that is not an unsigned integer "
        "up to 16106127360");
  CHECK_FALSE(from_json_line(std::string(100, '[') + std::string(100, ']'), error));
  CHECK(error == "bucket JSON nested too deeply");
  CHECK_FALSE(from_json_line(replace("\"width_s\":60", "\"width_s\":7"), error));
  CHECK(error == "start: not aligned to width_s");
}

TEST_CASE("RFC 3339 formatting and strict parsing", "[bucket][time]") {
  CHECK(format_rfc3339(0) == "1970-01-01T00:00:00Z");
  CHECK(parse_rfc3339("2022-07-01T00:00:00Z") == 1656633600);
  CHECK_FALSE(parse_rfc3339("2022-07-01 00:00:00Z"));
  CHECK_FALSE(parse_rfc3339("2022-07-01T00:00:00+09:00"));
  CHECK_FALSE(parse_rfc3339("2022-13-01T00:00:00Z"));
}

TEST_CASE("strings are escaped and survive a round trip", "[bucket][json]") {
  SealedBucket b = sample();
  b.boot_id = "a\"b\\c\x01";
  const std::string line = to_json_line(b);
  CHECK(line.find(R"("boot_id":"a\"b\\c\u0001")") != std::string::npos);
  std::string error;
  const auto back = from_json_line(line, error);
  REQUIRE(back);
  CHECK(back->boot_id == b.boot_id);
}

TEST_CASE("rows carry their unique-source sketches through JSON", "[bucket][json]") {
  SealedBucket b = sample();
  for (std::uint32_t i = 0; i < 7; ++i) b.rows[0].hosts.add(sketch::hash_ipv4(0x7E000000u + i));
  for (std::uint32_t i = 0; i < 3000; ++i) b.rows[1].hosts.add(sketch::hash_ipv4(i));
  b.hosts_unrecorded = 2;
  std::string error;
  const std::string line = to_json_line(b);
  CHECK(line.find("\"hosts_unrecorded\":2") != std::string::npos);
  const auto back = from_json_line(line, error);
  INFO(error);
  REQUIRE(back);
  CHECK(*back == b);
  CHECK(back->rows[0].hosts.count() == 7);

  // A sketch that does not decode refuses the bucket, naming why.
  std::string bad = line;
  const auto at = bad.find("\"hosts\":\"") + 9;
  bad[at] = 'B';  // version byte 1 -> 5
  CHECK_FALSE(from_json_line(bad, error));
  CHECK(error == "rows[].hosts: unknown sketch version");
  bad = line;
  bad.replace(bad.find("\"hosts\":\""), 9, "\"hosts\":7,\"x\":\"");
  CHECK_FALSE(from_json_line(bad, error));
  CHECK(error == "rows[].hosts: expected a string");
}

TEST_CASE("counts are bounded by the bucket's width, and so are their sums", "[bucket][json]") {
  std::string error;
  const std::string good = to_json_line(sample());
  auto replace = [&](std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    s.replace(at, from.size(), to);
    return s;
  };
  // 60 s at 2^28 packets/s is the most one bucket can hold.
  const std::uint64_t max = 60 * kMaxPacketsPerSecond;
  // A count of 2^63 (which overflowed the collector's sums) is refused.
  std::string line = replace(good, "\"packets\":10,", "\"packets\":9223372036854775808,");
  CHECK_FALSE(from_json_line(line, error));
  CHECK(error == "rows[].packets: expected an unsigned integer up to " + std::to_string(max));
  // Two rows each within the bound whose sum is not (with totals that agree, wrapped or not).
  line = replace(good, "\"packets\":10,", "\"packets\":" + std::to_string(max) + ",");
  line = replace(line, "\"packets\":1,", "\"packets\":" + std::to_string(max) + ",");
  line = replace(line, "\"observed\":{\"packets\":16",
                 "\"observed\":{\"packets\":" + std::to_string(2 * max + 5));
  CHECK_FALSE(from_json_line(line, error));
  CHECK(error == "rows[].packets: the bucket's counts add up to more than " + std::to_string(max) +
                     " in 60 s");
  // Losses too.
  line = replace(good, "\"ring_drops\":2", "\"ring_drops\":" + std::to_string(max + 1));
  CHECK_FALSE(from_json_line(line, error));
  CHECK(error == "loss.ring_drops: expected an unsigned integer up to " + std::to_string(max));
  // At the bound itself a bucket is accepted.
  line = replace(good, "\"ring_drops\":2", "\"ring_drops\":" + std::to_string(max));
  CHECK(from_json_line(line, error));
}

TEST_CASE("a batch decodes bucket by bucket: one malformed bucket spoils no other",
          "[bucket][json]") {
  const std::string good = to_json_line(sample());
  std::string bad = good;
  bad.replace(bad.find("\"port\":23"), 9, "\"port\":70000");
  std::string error;
  const auto entries =
      from_batch_json_entries("{\"buckets\":[" + good + "," + bad + ",{\"x\":1}]}", 10, error);
  REQUIRE(entries);
  REQUIRE(entries->size() == 3);
  CHECK((*entries)[0].bucket == sample());
  CHECK_FALSE((*entries)[1].bucket);
  CHECK((*entries)[1].error == "rows[].port: expected null or an integer in [0, 65535]");
  CHECK((*entries)[1].boot_id == "0f0e");
  CHECK((*entries)[1].seq == 42u);
  CHECK_FALSE((*entries)[2].bucket);
  CHECK_FALSE((*entries)[2].seq);
  // The all-or-nothing form still refuses the batch, naming the bucket.
  CHECK_FALSE(from_batch_json("{\"buckets\":[" + good + "," + bad + "]}", 10, error));
  CHECK(error == "buckets[1]: rows[].port: expected null or an integer in [0, 65535]");
  CHECK_FALSE(from_batch_json_entries("[1,2]", 10, error));
  CHECK(error == "batch is not a JSON object with a \"buckets\" array");
}

namespace {
// The streaming decoder on one body: what it accepts, the DOM decoder it falls back to
// decodes to the same entries, every one a bucket. Whether it accepted.
bool fast_agrees_with_dom(const std::string& body) {
  INFO(body);
  const auto fast = detail::from_batch_json_entries_fast(body, 3);
  // The collector's decoder on simdjson: what it accepts, it decodes as the DOM decoder
  // does; whatever the body, it answers exactly as from_batch_json_entries().
  if (const auto simd = detail::from_batch_json_entries_simdjson(body, 3)) {
    std::string error;
    CHECK(detail::from_batch_json_entries_dom(body, 3, error) == simd);
    if (fast) CHECK(*fast == *simd);
  }
  std::string e1, e2;
  CHECK(decode_batch(body, 3, e1) == from_batch_json_entries(body, 3, e2));
  CHECK(e1 == e2);
  if (!fast) return false;
  std::string error;
  const auto dom = detail::from_batch_json_entries_dom(body, 3, error);
  INFO(body);
  REQUIRE(dom);
  CHECK(*fast == *dom);
  for (const auto& e : *fast) {
    CHECK(e.bucket);
    CHECK(e.error.empty());
  }
  return true;
}
}  // namespace

// [single-threaded]: the slowest unit test under the sanitizers (every mutated body through
// four decoders), and it starts no thread; ThreadSanitizer's build leaves it out.
TEST_CASE("the streaming batch decoder agrees with the DOM decoder on any body",
          "[bucket][json][single-threaded]") {
  SealedBucket with_hosts = sample();
  with_hosts.seq = 43;
  for (std::uint32_t i = 0; i < 40; ++i) with_hosts.rows[0].hosts.add(sketch::hash_ipv4(i));
  with_hosts.hosts_unrecorded = 1;
  const std::string good = to_batch_json({sample(), with_hosts});
  std::string error;
  const auto decoded = detail::from_batch_json_entries_fast(good, 3);
  REQUIRE(decoded);
  REQUIRE(decoded->size() == 2);
  CHECK((*decoded)[0].bucket == sample());
  CHECK((*decoded)[1].bucket == with_hosts);
  CHECK((*decoded)[1].seq == 43u);
  CHECK((*decoded)[1].boot_id == "0f0e");
  CHECK(from_batch_json_entries(good, 3, error) == decoded);
  CHECK(detail::from_batch_json_entries_simdjson(good, 3) == decoded);

  // The same batch with every object's keys in another order (nlohmann sorts them), and
  // with keys the decoders do not know (skipped however nested).
  const std::string sorted = nlohmann::json::parse(good).dump();
  REQUIRE(sorted != good);
  CHECK(detail::from_batch_json_entries_fast(sorted, 3) == decoded);
  std::string unknown = good;
  unknown.replace(unknown.find("\"seq\":42"), 8,
                  "\"later\":{\"a\":[1,{\"b\":null}],\"c\":-1.5},\"seq\":42,\"x\":[]");
  unknown.insert(1, "\"version\":2,");
  CHECK(detail::from_batch_json_entries_fast(unknown, 3) == decoded);
  for (const std::string& body : {good, sorted, unknown}) CHECK(fast_agrees_with_dom(body));

  // The optional counts left out read as 0 (buckets of older sensors).
  std::string no_optional = to_batch_json({with_hosts});
  no_optional.replace(no_optional.find(",\"self_traffic\":6"), 17, "");
  no_optional.replace(no_optional.find(",\"hosts_unrecorded\":1"), 21, "");
  const auto without = detail::from_batch_json_entries_fast(no_optional, 3);
  REQUIRE(without);
  CHECK((*without)[0].bucket->self_traffic == 0);
  CHECK((*without)[0].bucket->hosts_unrecorded == 0);
  CHECK(fast_agrees_with_dom(no_optional));

  // As many buckets as allowed, and one more (the DOM decoder names the limit).
  CHECK(fast_agrees_with_dom(to_batch_json({sample(), sample(), sample()})));
  const std::string four = to_batch_json({sample(), sample(), sample(), sample()});
  CHECK_FALSE(detail::from_batch_json_entries_fast(four, 3));
  CHECK_FALSE(from_batch_json_entries(four, 3, error));
  CHECK(error == "batch of 4 buckets exceeds the limit of 3");

  // Given up on, left to the DOM decoder: not a batch, trailing bytes, a repeated key (the
  // DOM keeps the last), a malformed bucket.
  std::string repeated = good;
  repeated.replace(repeated.find("\"seq\":42"), 8, "\"seq\":41,\"seq\":42");
  std::string bad_port = good;
  bad_port.replace(bad_port.find("\"port\":23"), 9, "\"port\":70000");
  const std::vector<std::string> refused = {"[1,2]",
                                            "{}",
                                            "{\"buckets\":{}}",
                                            "{\"buckets\":[]}x",
                                            "{\"buckets\":[1]}",
                                            "{\"buckets\":[[]]}",
                                            "{\"buckets\":[]," + good.substr(1),
                                            repeated,
                                            bad_port};
  // Numbers nlohmann reads as negative or as floats (given up on by both fast decoders).
  std::string minus_zero = good, float_seq = good, exponent = good, huge = good;
  minus_zero.replace(minus_zero.find("\"seq\":42"), 8, "\"seq\":-0");
  float_seq.replace(float_seq.find("\"seq\":42"), 8, "\"seq\":42.0");
  exponent.replace(exponent.find("\"seq\":42"), 8, "\"seq\":4e1");
  huge.replace(huge.find("\"seq\":42"), 8, "\"seq\":18446744073709551616");
  for (const auto& body : {minus_zero, float_seq, exponent, huge}) {
    CHECK_FALSE(fast_agrees_with_dom(body));
    CHECK_FALSE(detail::from_batch_json_entries_simdjson(body, 3));
  }
  // Nesting, in a field neither decoder knows: up to 9 levels in all a well-formed batch,
  // deeper refused, by every decoder alike (simdjson counts depth on its own).
  for (int extra = 4; extra <= 8; ++extra) {
    std::string nested = good;
    nested.insert(nested.find("\"seq\":42"),
                  "\"later\":" + std::string(static_cast<std::size_t>(extra), '[') +
                      std::string(static_cast<std::size_t>(extra), ']') + ",");
    INFO("nesting " << 3 + extra);  // the batch, its array, the bucket, then these
    const bool within = 3 + extra <= detail::kMaxBatchNesting;
    CHECK(fast_agrees_with_dom(nested) == within);
    CHECK(detail::from_batch_json_entries_simdjson(nested, 3).has_value() == within);
  }
  for (const auto& body : refused) {
    INFO(body);
    CHECK_FALSE(detail::from_batch_json_entries_fast(body, 3));
    CHECK_FALSE(detail::from_batch_json_entries_simdjson(body, 3));
  }
  const auto last = from_batch_json_entries(repeated, 3, error);
  REQUIRE(last);
  CHECK((*last)[0].seq == 42u);
  CHECK(fast_agrees_with_dom("{\"buckets\":[]}"));

  // Every byte of the good batch deleted, or replaced by bytes that change a type, a
  // number, a name or the structure: whatever the streaming decoder still accepts, the
  // DOM decoder decodes the same (it accepts some: names and strings may change).
  int accepted = 0, tried = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string cut = good;
    cut.erase(i, 1);
    accepted += fast_agrees_with_dom(cut);
    ++tried;
    for (const char c : {'9', '"', '}', '-', 'x', '.'}) {
      if (good[i] == c) continue;
      std::string changed = good;
      changed[i] = c;
      accepted += fast_agrees_with_dom(changed);
      ++tried;
    }
  }
  CHECK(accepted > 0);
  CHECK(accepted < tried);
}

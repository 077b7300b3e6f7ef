// SPDX-License-Identifier: Apache-2.0
#include "common/bucket/batch_simdjson.h"

#include <simdjson.h>

namespace teiten::bucket {
namespace {

namespace dom = simdjson::dom;

// Hands an element and everything in it to `h`, as nlohmann's SAX parser would: the same
// events in the same order, integers of 0 and more as unsigned, negative ones as integers.
bool walk(dom::element e, detail::BatchEvents& h) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      if (!h.start_object(0)) return false;
      std::string k;
      for (const dom::key_value_pair field : dom::object(e)) {
        k.assign(field.key);
        if (!h.key(k) || !walk(field.value, h)) return false;
      }
      return h.end_object();
    }
    case dom::element_type::ARRAY: {
      if (!h.start_array(0)) return false;
      for (const dom::element v : dom::array(e))
        if (!walk(v, h)) return false;
      return h.end_array();
    }
    case dom::element_type::STRING: {
      std::string v{std::string_view(e)};
      return h.string(v);
    }
    case dom::element_type::INT64: {
      const auto v = std::int64_t(e);
      return v < 0 ? h.number_integer(v) : h.number_unsigned(static_cast<std::uint64_t>(v));
    }
    case dom::element_type::UINT64:
      return h.number_unsigned(std::uint64_t(e));
    case dom::element_type::DOUBLE:
      return h.number_float(double(e), "");
    case dom::element_type::BOOL:
      return h.boolean(bool(e));
    case dom::element_type::NULL_VALUE:
      return h.null();
  }
  return false;
}

// Whether the body may hold the number -0: a '-' then '0' where a value starts (after ':',
// '[' or ',', and blanks). simdjson reads it as the integer 0, where nlohmann (and so the
// DOM decoder) sees a negative integer; such a body is left to the DOM decoder. A match
// inside a string only costs that body the slower decoder.
bool may_hold_minus_zero(std::string_view body) {
  for (std::size_t at = body.find("-0"); at != std::string_view::npos;
       at = body.find("-0", at + 1)) {
    std::size_t i = at;
    while (i > 0 && (body[i - 1] == ' ' || body[i - 1] == '\t' || body[i - 1] == '\n' ||
                     body[i - 1] == '\r'))
      --i;
    if (i > 0 && (body[i - 1] == ':' || body[i - 1] == '[' || body[i - 1] == ',')) return true;
  }
  return false;
}

// A parser that refuses a document nested deeper than a batch may be (its own check, kept
// as it grows), exactly where the DOM decoder's check does (tested). Should the
// allocation fail, its depth is not that one, and parse() leaves every body to the DOM
// decoder.
dom::parser new_parser() {
  dom::parser p;
  if (p.allocate(std::size_t{1} << 16, detail::kMaxBatchNesting) != simdjson::SUCCESS)
    return dom::parser{};
  return p;
}

bool parse(std::string_view body, detail::BatchEvents& h) {
  if (may_hold_minus_zero(body)) return false;
  // simdjson reads past the end of its input (SIMDJSON_PADDING bytes): the body is copied
  // into a padded buffer of this thread's, kept for the next batch unless it grew large.
  constexpr std::size_t kKeep = std::size_t{8} << 20;
  thread_local std::string buffer;
  thread_local dom::parser parser = new_parser();
  buffer.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  buffer.assign(body);
  if (parser.max_depth() != static_cast<std::size_t>(detail::kMaxBatchNesting)) return false;
  dom::element root;
  const bool ok = !parser.parse(buffer.data(), buffer.size(), false).get(root) && walk(root, h);
  if (buffer.capacity() > kKeep) {
    std::string{}.swap(buffer);
    parser = new_parser();
  }
  return ok;
}

}  // namespace

std::optional<std::vector<BatchEntry>> detail::from_batch_json_entries_simdjson(
    std::string_view body, std::size_t max_buckets) {
  return from_batch_events(body, max_buckets, &parse);
}

std::optional<std::vector<BatchEntry>> decode_batch(std::string_view body, std::size_t max_buckets,
                                                    std::string& error) {
  if (auto entries = detail::from_batch_json_entries_simdjson(body, max_buckets)) return entries;
  return detail::from_batch_json_entries_dom(body, max_buckets, error);
}

}  // namespace teiten::bucket

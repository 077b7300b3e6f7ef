// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bucket/sealed_bucket.h"

namespace teiten::bucket {

/// Encodes a sealed bucket as one line of JSON (no trailing newline). Deterministic: the
/// same bucket always yields the same bytes. Schema: docs/bucket-format.md.
std::string to_json_line(const SealedBucket& b);
/// The same with `spool_dropped` as its loss.spool_dropped (the spool adds the packets of
/// buckets it dropped, without copying the bucket).
std::string to_json_line(const SealedBucket& b, std::uint64_t spool_dropped);

/// Decodes one JSON line produced by to_json_line(). Untrusted input: sizes, nesting,
/// types and ranges are checked. Returns nullopt and sets `error` when malformed.
std::optional<SealedBucket> from_json_line(std::string_view line, std::string& error);

/// Encodes a batch for the collector: {"buckets":[<bucket>,...]} (docs/collector-api.md).
std::string to_batch_json(const std::vector<SealedBucket>& batch);

/// Decodes a batch; untrusted input, checked like from_json_line(). At most `max_buckets`.
/// Fails as a whole when any bucket is malformed.
std::optional<std::vector<SealedBucket>> from_batch_json(std::string_view body,
                                                         std::size_t max_buckets,
                                                         std::string& error);

/// One element of a batch, decoded on its own: the bucket, or why it is malformed, with
/// the boot id and seq when they could be read (so the sender can tell which it was).
struct BatchEntry {
  std::optional<SealedBucket> bucket;
  std::string error;
  std::string boot_id;
  std::optional<std::uint64_t> seq;
  friend bool operator==(const BatchEntry&, const BatchEntry&) = default;
};

/// Decodes a batch element by element: a malformed bucket does not spoil the others.
/// nullopt (and `error`) only when the body is not a batch at all or holds more than
/// `max_buckets`.
std::optional<std::vector<BatchEntry>> from_batch_json_entries(std::string_view body,
                                                               std::size_t max_buckets,
                                                               std::string& error);

namespace detail {
/// The two halves of from_batch_json_entries(), for the tests and the fuzzer, which check
/// that they agree. The fast one streams a well-formed batch (every bucket valid, at most
/// `max_buckets`) straight into buckets; on anything else it gives up (nullopt) and
/// from_batch_json_entries() reads the body again with the DOM one, which names what is
/// wrong.
std::optional<std::vector<BatchEntry>> from_batch_json_entries_fast(std::string_view body,
                                                                    std::size_t max_buckets);
std::optional<std::vector<BatchEntry>> from_batch_json_entries_dom(std::string_view body,
                                                                   std::size_t max_buckets,
                                                                   std::string& error);

/// The events of a JSON document, depth first, as a SAX parser gives them: what the fast
/// decoder reads. A call returning false stops the parse (the body is not a well-formed
/// batch).
class BatchEvents {
 public:
  virtual ~BatchEvents() = default;
  virtual bool null() = 0;
  virtual bool boolean(bool v) = 0;
  virtual bool number_unsigned(std::uint64_t v) = 0;
  virtual bool number_integer(std::int64_t v) = 0;  ///< negative integers
  virtual bool number_float(double v, const std::string& text) = 0;
  virtual bool string(std::string& v) = 0;
  virtual bool key(std::string& k) = 0;
  virtual bool start_object(std::size_t elements) = 0;
  virtual bool end_object() = 0;
  virtual bool start_array(std::size_t elements) = 0;
  virtual bool end_array() = 0;
};

/// How deep a batch may nest (objects and arrays): a body nested deeper is refused.
inline constexpr int kMaxBatchNesting = 9;

/// The fast decoder fed by another JSON parser: `parse` hands the body's events to the
/// handler and says whether it got through the whole body (a parse error, or the handler
/// stopping, is false). `parse` must refuse a body nested deeper than kMaxBatchNesting
/// (the DOM decoder refuses it).
std::optional<std::vector<BatchEntry>> from_batch_events(
    std::string_view body, std::size_t max_buckets, bool (*parse)(std::string_view, BatchEvents&));
}  // namespace detail

/// Bounds on a bucket's numbers (docs/bucket-format.md): no count or sum of counts in a
/// bucket exceeds its width times these (beyond 100 Gbit/s of minimum-size frames), and
/// never 2^53, so sums over many buckets stay exact and far from overflowing.
inline constexpr std::uint64_t kMaxPacketsPerSecond = 1ULL << 28;
inline constexpr std::uint64_t kMaxBytesPerSecond = 1ULL << 35;
inline constexpr std::uint64_t kMaxCount = 1ULL << 53;

/// "2026-11-25T21:40:00Z" for seconds since 1970.
std::string format_rfc3339(std::int64_t unix_seconds);
/// Parses exactly "YYYY-MM-DDTHH:MM:SSZ"; nullopt otherwise.
std::optional<std::int64_t> parse_rfc3339(std::string_view s);

/// Largest JSON line from_json_line() accepts.
inline constexpr std::size_t kMaxBucketLineBytes = 64 * 1024 * 1024;

}  // namespace teiten::bucket

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

/// Decodes one JSON line produced by to_json_line(). Untrusted input: sizes, nesting,
/// types and ranges are checked. Returns nullopt and sets `error` when malformed.
std::optional<SealedBucket> from_json_line(std::string_view line, std::string& error);

/// Encodes a batch for the collector: {"buckets":[<bucket>,...]} (docs/collector-api.md).
std::string to_batch_json(const std::vector<SealedBucket>& batch);

/// Decodes a batch; untrusted input, checked like from_json_line(). At most `max_buckets`.
std::optional<std::vector<SealedBucket>> from_batch_json(std::string_view body,
                                                         std::size_t max_buckets,
                                                         std::string& error);

/// "2026-11-25T21:40:00Z" for seconds since 1970.
std::string format_rfc3339(std::int64_t unix_seconds);
/// Parses exactly "YYYY-MM-DDTHH:MM:SSZ"; nullopt otherwise.
std::optional<std::int64_t> parse_rfc3339(std::string_view s);

/// Largest JSON line from_json_line() accepts.
inline constexpr std::size_t kMaxBucketLineBytes = 64 * 1024 * 1024;

}  // namespace teiten::bucket

// SPDX-License-Identifier: Apache-2.0
#pragma once
// The collector's batch decoder on simdjson (Debian's libsimdjson-dev): the streaming
// decoder of bucket_json.h fed by simdjson's On-Demand parser instead of nlohmann's lexer,
// which was most of the collectors' own CPU (docs/scale.md). Anything but a well-formed
// batch is read again by the DOM decoder, which names what is wrong: refusals and their
// messages are those of from_batch_json_entries(). Its own library (teiten_batch), so that
// only the collector links simdjson.
#include "common/bucket/bucket_json.h"

namespace teiten::bucket {

/// Decodes a batch as from_batch_json_entries() does (the same entries, refusals and
/// messages), faster.
std::optional<std::vector<BatchEntry>> decode_batch(std::string_view body, std::size_t max_buckets,
                                                    std::string& error);

namespace detail {
/// The fast half of decode_batch(), for the tests and the fuzzer: nullopt unless the body
/// is a well-formed batch of at most `max_buckets` valid buckets.
std::optional<std::vector<BatchEntry>> from_batch_json_entries_simdjson(std::string_view body,
                                                                        std::size_t max_buckets);
}  // namespace detail

}  // namespace teiten::bucket

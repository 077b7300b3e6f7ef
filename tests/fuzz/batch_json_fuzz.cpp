// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the collector's batch decoder (POST /v1/buckets bodies are untrusted).
// Whatever decodes must encode again and decode to the same buckets, and the streaming
// decoders (nlohmann's SAX and simdjson's) must agree with the DOM decoder they fall back to
// (buckets, refusals, messages).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/bucket/batch_simdjson.h"
#include "common/bucket/bucket_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  // What the streaming decoder accepts, the DOM decoder decodes to the same entries, every
  // one a bucket.
  if (const auto fast = teiten::bucket::detail::from_batch_json_entries_fast(body, 100)) {
    const auto dom = teiten::bucket::detail::from_batch_json_entries_dom(body, 100, error);
    if (!dom || *dom != *fast) std::abort();
    for (const auto& e : *fast)
      if (!e.bucket || !e.error.empty()) std::abort();
  }
  // The same of the simdjson decoder (the collector's), and the collector's answer is
  // from_batch_json_entries()'s whatever the body.
  if (const auto simd = teiten::bucket::detail::from_batch_json_entries_simdjson(body, 100)) {
    const auto dom = teiten::bucket::detail::from_batch_json_entries_dom(body, 100, error);
    if (!dom || *dom != *simd) std::abort();
  }
  std::string error_a, error_b;
  if (teiten::bucket::decode_batch(body, 100, error_a) !=
          teiten::bucket::from_batch_json_entries(body, 100, error_b) ||
      error_a != error_b)
    std::abort();
  const auto batch = teiten::bucket::from_batch_json(body, 100, error);
  if (!batch) return 0;
  const auto again =
      teiten::bucket::from_batch_json(teiten::bucket::to_batch_json(*batch), 100, error);
  if (!again || *again != *batch) std::abort();
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the collector's batch decoder (POST /v1/buckets bodies are untrusted).
// Whatever decodes must encode again and decode to the same buckets.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/bucket/bucket_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto batch = teiten::bucket::from_batch_json(body, 100, error);
  if (!batch) return 0;
  const auto again =
      teiten::bucket::from_batch_json(teiten::bucket::to_batch_json(*batch), 100, error);
  if (!again || *again != *batch) std::abort();
  return 0;
}

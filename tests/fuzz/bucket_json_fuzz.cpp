// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the sealed-bucket JSON decoder (untrusted input on the collector side).
// Whatever decodes must encode again and decode to the same bucket.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/bucket/bucket_json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto b = teiten::bucket::from_json_line(line, error);
  if (!b) return 0;
  const auto again = teiten::bucket::from_json_line(teiten::bucket::to_json_line(*b), error);
  if (!again || !(*again == *b)) std::abort();
  return 0;
}

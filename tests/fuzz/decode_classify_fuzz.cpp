// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: decode + classify + count one packet. The first input byte picks the
// link type; the rest is the captured frame, copied into a buffer of exactly its size so
// that AddressSanitizer sees any read past the captured length.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/classify/classifier.h"
#include "common/classify/fingerprint.h"
#include "common/counters/bucket_roller.h"
#include "common/decode/decode.h"

using namespace teiten;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static constexpr decode::LinkType kLinks[] = {
      decode::LinkType::ethernet, decode::LinkType::linux_sll, decode::LinkType::linux_sll2,
      decode::LinkType::raw,      decode::LinkType::ipv4,      decode::LinkType::ipv6,
      decode::LinkType::null_bsd, decode::LinkType::loop};
  static classify::Classifier* classifier = [] {
    classify::AddressSet all;
    (void)all.add("0.0.0.0/0");
    (void)all.add("::/0");
    return new classify::Classifier(all, nullptr, 64);
  }();
  static std::uint64_t sealed = 0;
  static counters::BucketRoller* roller = new counters::BucketRoller(
      counters::RollerOptions{"fuzz", "0", 0, 60, 64, 4, 1 << 20, false, {}},
      [](bucket::SealedBucket&&) { ++sealed; });

  const decode::LinkType link = kLinks[data[0] % 8];
  const std::vector<std::uint8_t> frame(data + 1, data + size);
  // The wire length may exceed what was captured (snap length): vary it with the input.
  const std::size_t wire_len = frame.size() + (data[0] >> 3) * 97;
  decode::DecodedPacket p;
  const decode::DecodeStatus st =
      decode::decode_packet(link, frame.data(), frame.size(), wire_len, p);
  const std::int64_t ts = static_cast<std::int64_t>(size % 300);
  if (st != decode::DecodeStatus::ok) {
    roller->add_malformed(ts, st);
    return 0;
  }
  classify::Key key;
  if (classifier->classify(p, key)) {
    roller->add(ts, key, p.ip_length, sketch::hash_source(p));
  } else {
    roller->add_not_for_sensor(ts);
  }
  return 0;
}

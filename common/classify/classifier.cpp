// SPDX-License-Identifier: Apache-2.0
#include "common/classify/classifier.h"

#include "common/classify/fingerprint.h"

namespace teiten::classify {

Classifier::Classifier(AddressSet own, std::shared_ptr<const GeoIpDatabase> db,
                       std::size_t cache_entries)
    : own_(std::move(own)), cache_(cache_entries) {
  cache_.reset(std::move(db));
}

bool Classifier::classify(const decode::DecodedPacket& p, Key& key) noexcept {
  const bool v4 = p.ip_version == 4;
  if (v4 ? !own_.contains_v4(p.dst4) : !own_.contains_v6(p.dst6)) return false;

  key.proto = proto_of(p);
  key.has_port = false;
  key.port = 0;
  if (p.has_transport) {
    switch (key.proto) {
      case Proto::tcp:
      case Proto::udp:
        key.has_port = true;
        key.port = p.dport;
        break;
      case Proto::icmp:
      case Proto::icmpv6:
        key.has_port = true;
        key.port = p.icmp_type;
        break;
      case Proto::other:
      case Proto::count_:
        break;
    }
  }
  key.country = v4 ? cache_.lookup_v4(p.src4) : cache_.lookup_v6(p.src6);
  key.fingerprint = fingerprint_of(p);
  key.kind = kind_of(p);
  return true;
}

}  // namespace teiten::classify

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <memory>

#include "common/classify/address_set.h"
#include "common/classify/geoip.h"
#include "common/classify/key.h"
#include "common/decode/packet.h"

namespace teiten::classify {

/// Turns a decoded packet into its counter key. Owns a country cache, so one Classifier
/// per thread (the classifier thread). noexcept and allocation-free per packet.
class Classifier {
 public:
  /// `own` are the sensor's addresses; `db` may be null (every country unknown).
  Classifier(AddressSet own, std::shared_ptr<const GeoIpDatabase> db, std::size_t cache_entries);

  /// Fills `key` and returns true when the packet is addressed to the sensor; returns
  /// false (key untouched) when it is not (counted as not_for_sensor by the caller).
  bool classify(const decode::DecodedPacket& p, Key& key) noexcept;
  /// What classify(p) reads first that is likely not in cache, or nullptr: a batch
  /// prefetches it for every packet first, so that their cache misses overlap.
  const void* probe_address(const decode::DecodedPacket& p) const noexcept {
    return p.ip_version == 4 ? cache_.probe_address_v4(p.src4) : nullptr;
  }

  /// Swaps the GeoIP database (e.g. on reload); clears the cache.
  void set_database(std::shared_ptr<const GeoIpDatabase> db) { cache_.reset(std::move(db)); }

  const CountryCache::Stats& geoip_stats() const noexcept { return cache_.stats(); }
  const GeoIpDatabase* database() const noexcept { return cache_.database(); }

 private:
  AddressSet own_;
  CountryCache cache_;
};

}  // namespace teiten::classify

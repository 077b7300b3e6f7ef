// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "common/bucket/sealed_bucket.h"
#include "common/classify/key.h"

namespace teiten::ctl {

/// Report label of a destination: "23/TCP", "5060/UDP", "ICMP" (every ICMP type is one
/// entry, as in the quarterly report), "ICMPv6", "other", or "TCP (fragment)".
std::string destination_label(const classify::Key& k);

/// Prints a summary a person can read of sealed buckets: accounting, TOP destinations with
/// ALL vs Mirai-type, top source countries, loss counters. `top` rows per table.
void print_summary(std::ostream& out, const std::vector<bucket::SealedBucket>& buckets,
                   std::size_t top);

}  // namespace teiten::ctl

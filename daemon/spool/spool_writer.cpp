// SPDX-License-Identifier: Apache-2.0
#include "daemon/spool/spool_writer.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <thread>

#include "common/log/log.h"

namespace teiten::sensor {

SpoolWriter::SpoolWriter(Spool& spool, const std::atomic<bool>& stopping,
                         std::function<void()> spooled,
                         std::function<void(const bucket::SealedBucket&)> lost,
                         std::size_t max_group, std::size_t idle_min)
    : spool_(spool),
      stopping_(stopping),
      spooled_(std::move(spooled)),
      lost_(std::move(lost)),
      max_group_(std::max<std::size_t>(max_group, 1)),
      idle_min_(std::clamp<std::size_t>(idle_min, 1, max_group_)) {}

void SpoolWriter::add(bucket::SealedBucket&& b, std::uint64_t resume_token) {
  kept_.emplace_back(std::move(b), resume_token);
  if (kept_.size() >= max_group_) flush();
}

void SpoolWriter::flush() {
  if (kept_.empty()) return;
  std::vector<Spool::Appending> group;
  group.reserve(kept_.size());
  for (const auto& [b, token] : kept_) group.push_back({b, token});
  std::size_t done = 0;
  if (!abandoned_) {
    auto logger = log::get("sensord");
    bool logged = false;
    for (;;) {
      const std::size_t n = spool_.append_group(std::span{group}.subspan(done));
      done += n;
      if (done == group.size()) break;
      // A full disk: what did fit goes to delivery now, which frees the space.
      if (n && spooled_) spooled_();
      if (!logged)
        logger->error("spool write failed (disk full?) seq={}: retrying", group[done].bucket.seq);
      logged = true;
      if (stopping_.load()) {
        abandoned_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    if (logged && !abandoned_)
      logger->info("spool write recovered seq={}", group.back().bucket.seq);
  }
  if (done && spooled_) spooled_();
  if (lost_)
    for (std::size_t i = done; i < group.size(); ++i) lost_(group[i].bucket);
  kept_.clear();
}

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

namespace teiten::sensor {

/// Started as root: changes to `user` (its uid, gid and no supplementary groups) keeping
/// exactly CAP_NET_RAW (permitted and effective; every other capability also leaves the
/// bounding set), so the capture can still be re-opened. `own` are folders (the state
/// folder) created if missing and handed to that user first (the folder itself, not what
/// is in it). Returns "" or what failed. Call before any thread
/// is started: capabilities and ids are per thread on Linux.
std::string drop_privileges(const std::string& user, const std::vector<std::string>& own);

/// "uid=… gid=… caps=…" of the calling process, for the log.
std::string describe_privileges();

}  // namespace teiten::sensor

// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace teiten::log {

/// Configures logging for the process: everything to stderr; without timestamps when
/// journald reads stderr (JOURNAL_STREAM set), since journald adds its own. Call once
/// from main() before starting threads. Returns false if `level` is not a level name.
bool setup(const std::string& level);

/// The logger of one module ("capture", "classifier", "config", ...), created on first
/// use and sharing the process-wide sink. Thread-safe.
std::shared_ptr<spdlog::logger> get(const std::string& module);

/// Changes the level of every logger (SIGHUP reload).
bool set_level(const std::string& level);

}  // namespace teiten::log

// SPDX-License-Identifier: Apache-2.0
#include "common/log/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <mutex>

namespace teiten::log {
namespace {

std::mutex g_mutex;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr sink_locked() {
  if (!g_sink) {
    g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    const bool journald = std::getenv("JOURNAL_STREAM") != nullptr;
    g_sink->set_pattern(journald ? "%n: %v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v");
  }
  return g_sink;
}

bool parse_level(const std::string& name, spdlog::level::level_enum& out) {
  const auto l = spdlog::level::from_str(name);
  if (l == spdlog::level::off && name != "off") return false;
  out = l;
  return true;
}

}  // namespace

bool setup(const std::string& level) {
  std::lock_guard lock(g_mutex);
  if (!parse_level(level, g_level)) return false;
  sink_locked();
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(g_level); });
  return true;
}

std::shared_ptr<spdlog::logger> get(const std::string& module) {
  std::lock_guard lock(g_mutex);
  if (auto existing = spdlog::get(module)) return existing;
  auto logger = std::make_shared<spdlog::logger>(module, sink_locked());
  logger->set_level(g_level);
  spdlog::register_logger(logger);
  return logger;
}

bool set_level(const std::string& level) {
  return setup(level);
}

}  // namespace teiten::log

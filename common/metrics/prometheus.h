// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace teiten::metrics {

/// Builds a Prometheus text exposition (format 0.0.4): each metric with its HELP and TYPE
/// lines. Names get the `teiten_` prefix. Labels are fixed strings chosen by the caller
/// (never a source address: one series per address would grow without bound).
class PromText {
 public:
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  /// A counter of seconds (or another unit with fractions).
  void counter_seconds(std::string_view name, std::string_view help, double value);
  /// One counter with a series per fixed label set (`reason="malformed"`, ...).
  void counters(std::string_view name, std::string_view help,
                const std::vector<std::pair<std::string, std::uint64_t>>& series);
  void gauge(std::string_view name, std::string_view help, double value,
             std::string_view labels = {});
  /// One gauge with a series per label set (none: only the HELP and TYPE lines).
  void gauges(std::string_view name, std::string_view help,
              const std::vector<std::pair<std::string, double>>& series);
  const std::string& text() const noexcept { return out_; }

  /// The Content-Type of the format.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void head(std::string_view name, std::string_view help, std::string_view type);
  std::string out_;
};

}  // namespace teiten::metrics

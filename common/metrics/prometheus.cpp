// SPDX-License-Identifier: Apache-2.0
#include "common/metrics/prometheus.h"

#include <cmath>
#include <cstdio>

namespace teiten::metrics {

void PromText::head(std::string_view name, std::string_view help, std::string_view type) {
  out_ += "# HELP teiten_";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE teiten_";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromText::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  head(name, help, "counter");
  out_ += "teiten_";
  out_ += name;
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PromText::counter_seconds(std::string_view name, std::string_view help, double value) {
  head(name, help, "counter");
  out_ += "teiten_";
  out_ += name;
  char buf[64];
  std::snprintf(buf, sizeof buf, " %.6f\n", value);
  out_ += buf;
}

void PromText::counters(std::string_view name, std::string_view help,
                        const std::vector<std::pair<std::string, std::uint64_t>>& series) {
  head(name, help, "counter");
  for (const auto& [labels, value] : series) {
    out_ += "teiten_";
    out_ += name;
    out_ += '{';
    out_ += labels;
    out_ += "} ";
    out_ += std::to_string(value);
    out_ += '\n';
  }
}

namespace {
void append_value(std::string& out, double value) {
  char buf[64];
  if (std::floor(value) == value && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, " %.0f\n", value);
  } else {
    std::snprintf(buf, sizeof buf, " %.6g\n", value);
  }
  out += buf;
}
}  // namespace

void PromText::gauge(std::string_view name, std::string_view help, double value,
                     std::string_view labels) {
  head(name, help, "gauge");
  out_ += "teiten_";
  out_ += name;
  if (!labels.empty()) {
    out_ += '{';
    out_ += labels;
    out_ += '}';
  }
  append_value(out_, value);
}

void PromText::gauges(std::string_view name, std::string_view help,
                      const std::vector<std::pair<std::string, double>>& series) {
  head(name, help, "gauge");
  for (const auto& [labels, value] : series) {
    out_ += "teiten_";
    out_ += name;
    out_ += '{';
    out_ += labels;
    out_ += '}';
    append_value(out_, value);
  }
}

}  // namespace teiten::metrics

// SPDX-License-Identifier: Apache-2.0
#pragma once

// The reports' inline SVG charts (no script, no external resources).

#include <string>
#include <vector>

namespace teiten::collector::svg {

/// Text escaped for HTML and SVG (& < > " ').
std::string esc(const std::string& s);

struct Series {
  std::string name;
  std::vector<double> values;
};

/// A line chart (bars = false) or grouped bar chart of the series over the x labels.
std::string chart(const std::string& id, const std::string& title,
                  const std::vector<std::string>& x, const std::vector<Series>& series, bool bars);

}  // namespace teiten::collector::svg

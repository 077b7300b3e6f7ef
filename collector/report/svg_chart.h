// SPDX-License-Identifier: Apache-2.0
#pragma once

// The reports' inline SVG charts (no script, no external resources).

#include <cstddef>
#include <string>
#include <vector>

namespace teiten::collector::svg {

/// Text escaped for HTML and SVG (& < > " ').
std::string esc(const std::string& s);

struct Series {
  std::string name;
  std::vector<double> values;
};

/// A mark on a chart: a dashed line at x index `at`, labelled (a notable change's rank)
/// and titled (its sentence).
struct Mark {
  std::size_t at = 0;
  std::string label, title;
};

/// A line chart (bars = false) or grouped bar chart of the series over the x labels, with
/// the marks given.
std::string chart(const std::string& id, const std::string& title,
                  const std::vector<std::string>& x, const std::vector<Series>& series, bool bars,
                  const std::vector<Mark>& marks = {});

}  // namespace teiten::collector::svg

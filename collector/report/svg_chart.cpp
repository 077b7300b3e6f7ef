// SPDX-License-Identifier: Apache-2.0
#include "collector/report/svg_chart.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace teiten::collector::svg {

std::string esc(const std::string& s) {
  std::string o;
  for (const char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

namespace {

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string axis_label(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof buf, "%.0fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

std::string chart(const std::string& id, const std::string& title,
                  const std::vector<std::string>& x, const std::vector<Series>& series, bool bars,
                  const std::vector<Mark>& marks) {
  constexpr double W = 760, H = 280, L = 60, R = 150, T = 30, B = 40;
  double max = 0;
  for (const auto& s : series)
    for (const double v : s.values) max = std::max(max, v);
  if (max <= 0) max = 1;
  const double pw = W - L - R, ph = H - T - B;
  const std::size_t n = std::max<std::size_t>(x.size(), 1);
  const double nd = static_cast<double>(n);
  auto d = [](std::size_t v) { return static_cast<double>(v); };
  auto ypos = [&](double v) { return T + ph - v / max * ph; };
  std::ostringstream o;
  o << "<figure><svg class=\"chart\" id=\"" << esc(id) << "\" data-chart=\"" << esc(id)
    << "\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\"><title>" << esc(title) << "</title>";
  o << "<text x=\"" << L << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << esc(title)
    << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double v = max * i / 4.0, y = ypos(v);
    o << "<line x1=\"" << L << "\" x2=\"" << L + pw << "\" y1=\"" << num(y) << "\" y2=\"" << num(y)
      << "\" stroke=\"#ddd\"/><text x=\"" << L - 6 << "\" y=\"" << num(y + 4)
      << "\" font-size=\"11\" text-anchor=\"end\">" << axis_label(v) << "</text>";
  }
  const std::size_t step = std::max<std::size_t>(1, n / 6);
  for (std::size_t i = 0; i < x.size(); i += step) {
    const double cx = L + (bars ? (d(i) + 0.5) * pw / nd : (n > 1 ? d(i) * pw / (nd - 1) : pw / 2));
    o << "<text x=\"" << num(cx) << "\" y=\"" << H - B + 16
      << "\" font-size=\"11\" text-anchor=\"middle\">" << esc(x[i]) << "</text>";
  }
  for (std::size_t k = 0; k < series.size(); ++k) {
    const char* color = kColors[k % std::size(kColors)];
    const auto& s = series[k];
    if (bars) {
      const double group = pw / nd, bw = group * 0.8 / d(series.size());
      o << "<g class=\"series\" data-series=\"" << esc(s.name) << "\" fill=\"" << color << "\">";
      for (std::size_t i = 0; i < s.values.size(); ++i) {
        const double bx = L + d(i) * group + group * 0.1 + d(k) * bw;
        o << "<rect x=\"" << num(bx) << "\" y=\"" << num(ypos(s.values[i])) << "\" width=\""
          << num(bw) << "\" height=\"" << num(T + ph - ypos(s.values[i])) << "\" data-value=\""
          << num(s.values[i]) << "\"><title>" << esc(s.name) << " " << esc(x[i]) << ": "
          << num(s.values[i]) << "</title></rect>";
      }
      o << "</g>";
    } else {
      o << "<polyline class=\"series\" data-series=\"" << esc(s.name)
        << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
      for (std::size_t i = 0; i < s.values.size(); ++i)
        o << (i ? " " : "") << num(L + (n > 1 ? d(i) * pw / (nd - 1) : pw / 2)) << ","
          << num(ypos(s.values[i]));
      o << "\"/>";
    }
    o << "<rect x=\"" << W - R + 10 << "\" y=\"" << T + d(k) * 18
      << "\" width=\"12\" height=\"12\" fill=\"" << color << "\"/><text x=\"" << W - R + 28
      << "\" y=\"" << T + d(k) * 18 + 10 << "\" font-size=\"12\">" << esc(s.name) << "</text>";
  }
  for (const Mark& m : marks) {
    if (m.at >= n) continue;
    const double mx =
        L + (bars ? (d(m.at) + 0.5) * pw / nd : (n > 1 ? d(m.at) * pw / (nd - 1) : pw / 2));
    o << "<g class=\"mark\" data-mark=\"" << esc(m.label) << "\"><title>" << esc(m.title)
      << "</title><line x1=\"" << num(mx) << "\" x2=\"" << num(mx) << "\" y1=\"" << T << "\" y2=\""
      << T + ph << "\" stroke=\"#555\" stroke-dasharray=\"3,3\"/><text x=\"" << num(mx + 3)
      << "\" y=\"" << T + 10 << "\" font-size=\"11\">" << esc(m.label) << "</text></g>";
  }
  o << "</svg></figure>\n";
  return o.str();
}

}  // namespace teiten::collector::svg

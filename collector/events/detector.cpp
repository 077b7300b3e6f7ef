// SPDX-License-Identifier: Apache-2.0
#include "collector/events/detector.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

namespace teiten::collector::events {

std::string_view to_string(Kind k) noexcept {
  switch (k) {
    case Kind::spike:
      return "spike";
    case Kind::level_shift:
      return "level_shift";
    case Kind::emergence:
      return "emergence";
    case Kind::fingerprint_shift:
      return "fingerprint_shift";
  }
  return "spike";
}

namespace {

constexpr double kMadToSd = 1.4826;   // MAD of a normal sample, to its standard deviation
constexpr double kMedianCost = 1.25;  // a median's standard error over a mean's
constexpr double kHeldShare = 0.8;    // days of a shift window on the shifted side

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const std::size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  return (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid)) + hi) / 2;
}

double mad_sd(const std::vector<double>& v) {
  const double m = median(v);
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - m));
  return kMadToSd * median(std::move(dev));
}

// Days with enough coverage: some, and at least coverage_min of the usual (the median of
// the covered days in the trailing baseline window, this one included).
std::vector<char> covered_days(const Series& s, const Settings& st) {
  const std::size_t n = std::min(s.packets.size(), s.exposure.size());
  std::vector<char> ok(n, 0);
  std::vector<double> window;
  for (std::size_t t = 0; t < n; ++t) {
    if (!(s.exposure[t] > 0)) continue;
    window.clear();
    const std::size_t lo =
        t >= static_cast<std::size_t>(st.baseline_days) ? t - st.baseline_days : 0;
    for (std::size_t i = lo; i <= t; ++i)
      if (s.exposure[i] > 0) window.push_back(s.exposure[i]);
    ok[t] = s.exposure[t] >= st.coverage_min * median(window) ? 1 : 0;
  }
  return ok;
}

// A robust baseline of values y over the usable days of [lo, hi): their median, a weekly
// profile (each weekday's median residual, shrunk towards none when it has few days) and
// the robust spread of what is left.
struct Baseline {
  double level = 0;
  std::array<double, 7> week{};
  double sigma = 0;
  double counting = 0;  // the part of sigma a count's own (Poisson) noise explains
  int n = 0;
  double expected(std::int64_t day) const { return level + week[weekday_of(day)]; }
};

// The Poisson noise of a count of rate exp(y) - 1 over `exposure`, on the log scale.
double counting_sd(double y, double exposure) {
  const double lambda = std::expm1(y) * exposure;
  return std::sqrt(lambda + 1) / (exposure + lambda);
}

std::optional<Baseline> baseline_of(const std::vector<double>& y, const std::vector<char>& usable,
                                    const std::vector<double>& exposure, std::int64_t first_day,
                                    std::size_t lo, std::size_t hi, const Settings& st,
                                    bool weekly) {
  std::vector<double> v;
  std::vector<std::size_t> idx;
  for (std::size_t i = lo; i < hi; ++i)
    if (usable[i]) {
      v.push_back(y[i]);
      idx.push_back(i);
    }
  if (static_cast<int>(v.size()) < st.min_baseline_days) return std::nullopt;
  Baseline b;
  b.n = static_cast<int>(v.size());
  b.level = median(v);
  if (weekly) {
    std::array<std::vector<double>, 7> per;
    for (std::size_t k = 0; k < idx.size(); ++k)
      per[weekday_of(first_day + static_cast<std::int64_t>(idx[k]))].push_back(v[k] - b.level);
    for (int w = 0; w < 7; ++w) {
      const auto c = static_cast<double>(per[w].size());
      if (c >= 2) b.week[w] = median(per[w]) * c / (c + 2);
    }
  }
  std::vector<double> resid;
  for (std::size_t k = 0; k < idx.size(); ++k)
    resid.push_back(v[k] - b.expected(first_day + static_cast<std::int64_t>(idx[k])));
  b.sigma = mad_sd(resid);
  // The spread's counting part: the median day's Poisson variance (the rest is the traffic's
  // own variation, which a quiet series' noise must not be counted on top of).
  std::vector<double> var;
  for (std::size_t k = 0; k < idx.size(); ++k)
    var.push_back(std::pow(counting_sd(v[k], exposure[idx[k]]), 2));
  b.counting = std::sqrt(median(std::move(var)));
  return b;
}

struct LogSeries {
  std::vector<char> ok;
  std::vector<double> y;  // log(1 + packets per sensor-day)
};

LogSeries log_series(const Series& s, const Settings& st) {
  LogSeries l;
  l.ok = covered_days(s, st);
  l.y.assign(l.ok.size(), 0.0);
  for (std::size_t i = 0; i < l.ok.size(); ++i)
    if (l.ok[i]) l.y[i] = std::log1p(std::max(0.0, s.packets[i]) / s.exposure[i]);
  return l;
}

// The deviation of one day's log rate: the traffic's own variation (the baseline's spread
// less the counting noise it already holds) and the Poisson noise of the day's expected
// count, together.
double day_sd(const Baseline& b, double expected_log, double exposure) {
  const double poisson = counting_sd(expected_log, exposure);
  const double traffic = std::max(0.0, b.sigma * b.sigma - b.counting * b.counting);
  return std::sqrt(traffic + poisson * poisson + 0.02 * 0.02);
}

// The next `want` usable days from t (within twice as many calendar days, and before
// `end`: the next break).
std::vector<std::size_t> window_from(const std::vector<char>& ok, std::size_t t, int want,
                                     std::size_t end = SIZE_MAX) {
  std::vector<std::size_t> out;
  const std::size_t limit = std::min({ok.size(), t + 2 * static_cast<std::size_t>(want), end});
  for (std::size_t j = t; j < limit && static_cast<int>(out.size()) < want; ++j)
    if (ok[j]) out.push_back(j);
  return out;
}

std::size_t lower(std::size_t t, std::size_t seg, int days) {
  return std::max(seg, t >= static_cast<std::size_t>(days) ? t - days : std::size_t{0});
}

// The breaks of a series of n days as indices: the latest at or before each day (0 if
// none), and the first after it (n if none).
struct Breaks {
  std::vector<std::size_t> last, next;
};
Breaks breaks_of(const Series& s, std::size_t n) {
  Breaks b;
  b.last.assign(n, 0);
  b.next.assign(n, n);
  std::vector<char> at(n, 0);
  for (std::int64_t d : s.breaks)
    if (d >= s.first_day && d - s.first_day < static_cast<std::int64_t>(n))
      at[static_cast<std::size_t>(d - s.first_day)] = 1;
  for (std::size_t i = 0; i < n; ++i) b.last[i] = at[i] ? i : (i ? b.last[i - 1] : 0);
  for (std::size_t i = n; i-- > 0;) b.next[i] = i + 1 < n ? (at[i + 1] ? i + 1 : b.next[i + 1]) : n;
  return b;
}

}  // namespace

std::vector<Change> count_changes(const Series& s, const Settings& st) {
  const LogSeries l = log_series(s, st);
  const std::size_t n = l.ok.size();
  std::vector<char> usable = l.ok;  // spike days leave the baselines
  std::vector<Change> out;
  const auto day = [&](std::size_t i) { return s.first_day + static_cast<std::int64_t>(i); };
  const Breaks br = breaks_of(s, n);
  std::size_t seg = 0;
  for (std::size_t t = 0; t < n; ++t) {
    seg = std::max(seg, br.last[t]);
    if (!l.ok[t]) continue;
    const auto b = baseline_of(l.y, usable, s.exposure, s.first_day,
                               lower(t, seg, st.baseline_days), t, st, st.weekly);
    if (!b) continue;
    const double rate_before = std::expm1(b->level);
    // A level shift: the next shift_days observed days held on one side of the baseline.
    const auto after = window_from(l.ok, t, st.shift_days, br.next[t]);
    if (static_cast<int>(after.size()) == st.shift_days) {
      std::vector<double> a, rates, exposures;
      for (std::size_t j : after) {
        a.push_back(l.y[j] - b->expected(day(j)));
        rates.push_back(std::expm1(l.y[j]));
        exposures.push_back(s.exposure[j]);
      }
      const double med = median(a);
      const double dir = med >= 0 ? 1.0 : -1.0;
      const int held = static_cast<int>(std::count_if(
          a.begin(), a.end(), [&](double x) { return x * dir >= 0.5 * std::fabs(med); }));
      const double rate_after = median(rates);
      const double exposure = median(exposures);
      const double sd = day_sd(*b, b->level, exposure) * kMedianCost *
                        std::sqrt(1.0 / st.shift_days + 1.0 / b->n);
      const bool emergence =
          dir > 0 && rate_before <= st.emergence_floor && rate_after >= st.emergence_level;
      const bool big = std::max(rate_before, rate_after) * exposure >= st.min_packets;
      if (held >= static_cast<int>(std::ceil(kHeldShare * st.shift_days)) &&
          std::fabs(med) >= std::log(st.shift_ratio) && std::fabs(med) >= st.shift_z * sd &&
          (emergence || big)) {
        std::size_t c = after.front();
        for (std::size_t k = 0; k < a.size(); ++k)
          if (a[k] * dir >= 0.5 * std::fabs(med)) {
            c = after[k];
            break;
          }
        out.push_back(Change{emergence ? Kind::emergence : Kind::level_shift, day(c), day(c),
                             day(after.back()), rate_before, rate_after,
                             (rate_after - rate_before) * exposure, std::fabs(med) / sd});
        seg = c;
        t = c;
        continue;
      }
    }
    // A spike: this day far above its baseline, for as long as the following days stay so.
    // Not on a silent destination: one day of a port nobody scans is the long tail.
    if (rate_before <= st.emergence_floor) continue;
    const auto spike_at = [&](std::size_t j, double* excess) {
      const double e = b->expected(day(j));
      const double sd = day_sd(*b, e, s.exposure[j]);
      const double threshold = std::max(std::log(st.spike_ratio), st.spike_z * sd);
      *excess = s.packets[j] - std::expm1(e) * s.exposure[j];
      return l.y[j] - e >= threshold && s.packets[j] >= st.min_packets;
    };
    double excess = 0;
    if (!spike_at(t, &excess)) continue;
    const double e = b->expected(day(t));
    Change c{Kind::spike,   day(t),
             day(t),        day(t),
             std::expm1(e), std::expm1(l.y[t]),
             excess,        (l.y[t] - e) / day_sd(*b, e, s.exposure[t])};
    usable[t] = 0;
    std::size_t last = t;
    for (std::size_t j = t + 1; j < n && j < t + static_cast<std::size_t>(st.shift_days); ++j) {
      if (!l.ok[j]) continue;
      double more = 0;
      if (!spike_at(j, &more)) break;
      usable[j] = 0;
      last = j;
      c.excess += more;
      c.after = std::max(c.after, std::expm1(l.y[j]));
    }
    c.last_day = day(last);
    out.push_back(c);
    t = last;
  }
  return out;
}

std::vector<Change> share_changes(const Series& all, const Series& part, const Settings& st) {
  std::vector<char> ok = covered_days(all, st);
  const std::size_t n = std::min(ok.size(), part.packets.size());
  ok.resize(n);
  std::vector<double> p(n, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    if (!(all.packets[i] > 0) || all.packets[i] < st.min_packets) ok[i] = 0;
    if (ok[i]) p[i] = std::clamp(part.packets[i] / all.packets[i], 0.0, 1.0);
  }
  const auto day = [&](std::size_t i) { return all.first_day + static_cast<std::int64_t>(i); };
  std::vector<Change> out;
  const Breaks br = breaks_of(all, n);
  std::size_t seg = 0;
  for (std::size_t t = 0; t < n; ++t) {
    seg = std::max(seg, br.last[t]);
    if (!ok[t]) continue;
    std::vector<double> shares, totals;
    for (std::size_t i = lower(t, seg, st.baseline_days); i < t; ++i) {
      if (!ok[i]) continue;
      shares.push_back(p[i]);
      totals.push_back(all.packets[i]);
    }
    if (static_cast<int>(shares.size()) < st.min_baseline_days) continue;
    const auto after = window_from(ok, t, st.shift_days, br.next[t]);
    if (static_cast<int>(after.size()) < st.shift_days) continue;
    // The baseline share: the median day's (a spike of other packets on one day would
    // pull a pooled share down, and the next ordinary days would read as a rise).
    const double p0 = median(shares);
    const double binomial = std::sqrt(p0 * (1 - p0) / std::max(1.0, median(totals)));
    const double spread = std::max({mad_sd(shares), binomial, 0.005});
    std::vector<double> d, after_totals;
    for (std::size_t j : after) {
      d.push_back(p[j] - p0);
      after_totals.push_back(all.packets[j]);
    }
    const double med = median(d);
    const double dir = med >= 0 ? 1.0 : -1.0;
    const int held = static_cast<int>(std::count_if(
        d.begin(), d.end(), [&](double x) { return x * dir >= 0.5 * std::fabs(med); }));
    const double sd = spread * kMedianCost *
                      std::sqrt(1.0 / st.shift_days + 1.0 / static_cast<double>(shares.size()));
    if (held < static_cast<int>(std::ceil(kHeldShare * st.shift_days)) ||
        std::fabs(med) < st.share_change || std::fabs(med) < st.share_z * sd)
      continue;
    std::size_t c = after.front();
    for (std::size_t k = 0; k < d.size(); ++k)
      if (d[k] * dir >= 0.5 * std::fabs(med)) {
        c = after[k];
        break;
      }
    out.push_back(Change{Kind::fingerprint_shift, day(c), day(c), day(after.back()), p0, p0 + med,
                         med * median(after_totals), std::fabs(med) / sd});
    seg = c;
    t = c;
  }
  return out;
}

std::optional<double> log_change_at(const Series& s, std::int64_t first, int days,
                                    const Settings& st) {
  const LogSeries l = log_series(s, st);
  if (first < s.first_day) return std::nullopt;
  const auto t = static_cast<std::size_t>(first - s.first_day);
  if (t >= l.ok.size() || (days == 1 && !l.ok[t])) return std::nullopt;
  const auto b =
      baseline_of(l.y, l.ok, s.exposure, s.first_day,
                  lower(t, breaks_of(s, l.ok.size()).last[t], st.baseline_days), t, st, st.weekly);
  if (!b) return std::nullopt;
  const auto after = window_from(l.ok, t, days);
  if (after.empty() || (days > 1 && static_cast<int>(after.size()) * 2 < days)) return std::nullopt;
  std::vector<double> a;
  for (std::size_t j : after)
    a.push_back(l.y[j] - b->expected(s.first_day + static_cast<std::int64_t>(j)));
  return median(a);
}

std::optional<double> excess_over(const Series& s, std::int64_t first, std::int64_t last,
                                  const Settings& st) {
  const LogSeries l = log_series(s, st);
  if (first < s.first_day || last < first) return std::nullopt;
  const auto t = static_cast<std::size_t>(first - s.first_day);
  if (t >= l.ok.size()) return std::nullopt;
  const auto b =
      baseline_of(l.y, l.ok, s.exposure, s.first_day,
                  lower(t, breaks_of(s, l.ok.size()).last[t], st.baseline_days), t, st, st.weekly);
  if (!b) return std::nullopt;
  double excess = 0;
  for (std::size_t j = t; j < l.ok.size() && s.first_day + static_cast<std::int64_t>(j) <= last;
       ++j)
    if (l.ok[j])
      excess += s.packets[j] -
                std::expm1(b->expected(s.first_day + static_cast<std::int64_t>(j))) * s.exposure[j];
  return excess;
}

std::optional<double> share_change_at(const Series& all, const Series& part, std::int64_t day,
                                      int days, const Settings& st) {
  const std::vector<char> ok = covered_days(all, st);
  if (day < all.first_day) return std::nullopt;
  const auto t = static_cast<std::size_t>(day - all.first_day);
  const std::size_t n = std::min(ok.size(), part.packets.size());
  if (t >= n) return std::nullopt;
  const auto usable = [&](std::size_t i) {
    return ok[i] && all.packets[i] > 0 && all.packets[i] >= st.min_packets;
  };
  std::vector<double> before;
  for (std::size_t i = lower(t, breaks_of(all, n).last[t], st.baseline_days); i < t; ++i)
    if (usable(i)) before.push_back(part.packets[i] / all.packets[i]);
  if (static_cast<int>(before.size()) < st.min_baseline_days) return std::nullopt;
  std::vector<double> shares;
  for (std::size_t j = t; j < n && static_cast<int>(shares.size()) < days; ++j)
    if (usable(j)) shares.push_back(part.packets[j] / all.packets[j]);
  if (static_cast<int>(shares.size()) * 2 < days || shares.empty()) return std::nullopt;
  return median(shares) - median(std::move(before));
}

}  // namespace teiten::collector::events

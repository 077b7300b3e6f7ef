// SPDX-License-Identifier: Apache-2.0
#pragma once

// Helpers the report builder and its renderers share (collector/report/ only).

#include <date/date.h>

#include <cstdint>
#include <string>

#include "collector/report/report.h"

namespace teiten::collector::report_format {

/// Days since 1970 of a calendar date, and back.
std::int64_t days_of(date::year_month_day ymd);
date::year_month_day ymd_of(std::int64_t day);
/// "Mirai-type" for "mirai", and so on.
std::string fingerprint_name(const std::string& fp);
/// One decimal: "12.5".
std::string fmt_avg(double v);
/// "2022-06".
std::string month_string(int y, unsigned m);
/// "2022-04-01 to 2022-06-30 (Asia/Tokyo)".
std::string range_title(const Report& r);
/// A region's monthly average, "*" marked when its coverage is incomplete ("-": no data).
std::string avg_cell(const RegionMonth& m);
/// "observed/expected" sensor-days.
std::string coverage(const RegionMonth& m);
/// "2022-06-16T03:00:00Z".
std::string time_string(std::int64_t t);
/// Whether any month of the report (or its year-before comparison) is incomplete: the
/// footnote about incomplete coverage is printed only then.
bool any_incomplete(const Report& r);

}  // namespace teiten::collector::report_format

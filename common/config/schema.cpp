// SPDX-License-Identifier: Apache-2.0
#include "common/config/schema.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <ctime>
#include <fstream>

#include <sys/stat.h>

#include "common/config/schema_loader.h"
#include "common/log/log.h"

namespace teiten::config {

std::string ConfigError::format() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + key + ": " +
         message;
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

bool parse_u64(std::string_view s, std::uint64_t& v) {
  if (s.empty() || s.size() > 20) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc{} && end == s.data() + s.size();
}

std::string range_text(std::uint64_t min, std::uint64_t max) {
  return "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

}  // namespace

std::string closest_name(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string best;
  std::size_t best_d = 3;
  for (const auto c : candidates) {
    std::size_t d = edit_distance(word, c);
    // A prefix of a longer key ("adress" for "addresses") is also a likely slip.
    if (d >= 3 && c.size() > word.size() && word.size() >= 4 &&
        edit_distance(word, c.substr(0, word.size() + 1)) <= 1) {
      d = 2;
    }
    if (d < best_d) {
      best_d = d;
      best = std::string{c};
    }
  }
  return best;
}

std::string parse_scalar(FieldType type, std::string_view text, std::uint64_t min,
                         std::uint64_t max, const std::vector<std::string_view>& choices,
                         Value& out) {
  const std::string quoted = "'" + std::string{text} + "'";
  switch (type) {
    case FieldType::string:
    case FieldType::file_path:
      out = std::string{text};
      return {};
    case FieldType::boolean:
      if (text == "true") {
        out = true;
      } else if (text == "false") {
        out = false;
      } else {
        return quoted + " is not a boolean (expected true or false)";
      }
      return {};
    case FieldType::uint: {
      std::uint64_t v = 0;
      if (!parse_u64(text, v)) return quoted + " is not a non-negative integer";
      if (v < min || v > max) return std::string{text} + " is out of range " + range_text(min, max);
      out = v;
      return {};
    }
    case FieldType::duration: {
      std::uint64_t mult = 1;
      std::string_view num = text;
      if (!text.empty()) {
        switch (text.back()) {
          case 's':
            mult = 1;
            num.remove_suffix(1);
            break;
          case 'm':
            mult = 60;
            num.remove_suffix(1);
            break;
          case 'h':
            mult = 3600;
            num.remove_suffix(1);
            break;
          case 'd':
            mult = 86400;
            num.remove_suffix(1);
            break;
          default:
            break;
        }
      }
      std::uint64_t v = 0;
      if (!parse_u64(num, v) || v > UINT64_MAX / mult) {
        return quoted + " is not a duration (expected seconds, e.g. 60, 60s, 5m, 1h)";
      }
      v *= mult;
      if (v < min || v > max) {
        return std::string{text} + " is out of range " + range_text(min, max) + " seconds";
      }
      out = v;
      return {};
    }
    case FieldType::choice:
      for (const auto c : choices) {
        if (c == text) {
          out = std::string{text};
          return {};
        }
      }
      {
        std::string list;
        for (const auto c : choices) list += (list.empty() ? "" : ", ") + std::string{c};
        return quoted + " is not one of: " + list;
      }
    case FieldType::date: {
      // YYYY-MM-DD, UTC midnight.
      const std::string t{text};
      std::tm tm{};
      if (t.size() != 10 || t[4] != '-' || t[7] != '-')
        return quoted + " is not a date (YYYY-MM-DD)";
      for (std::size_t i : {0u, 1u, 2u, 3u, 5u, 6u, 8u, 9u}) {
        if (t[i] < '0' || t[i] > '9') return quoted + " is not a date (YYYY-MM-DD)";
      }
      tm.tm_year = std::stoi(t.substr(0, 4)) - 1900;
      tm.tm_mon = std::stoi(t.substr(5, 2)) - 1;
      tm.tm_mday = std::stoi(t.substr(8, 2));
      const std::time_t when = timegm(&tm);
      std::tm back{};
      gmtime_r(&when, &back);
      if (tm.tm_year < 70 || back.tm_mday != std::stoi(t.substr(8, 2)) ||
          back.tm_mon != tm.tm_mon) {
        return quoted + " is not a date (YYYY-MM-DD)";
      }
      out = static_cast<std::uint64_t>(when);
      return {};
    }
    case FieldType::string_list:
      return "expected a list";
    case FieldType::record_list:
      return "expected a list of entries";
  }
  return "unsupported type";
}

std::string resolve_file_path(const std::string& config_path, std::string& file) {
  if (file.empty()) return {};
  if (file.front() != '/') {
    const auto slash = config_path.rfind('/');
    if (slash != std::string::npos) file = config_path.substr(0, slash + 1) + file;
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return "cannot read '" + file + "': " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "'" + file + "' is not a regular file";
  if (::access(file.c_str(), R_OK) != 0) {
    return "cannot read '" + file + "': " + std::strerror(errno);
  }
  return {};
}

bool read_config_file(const std::string& path, std::string& text, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open configuration file: " + std::strerror(errno);
    return false;
  }
  text.assign(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    error = path + ": configuration file larger than " + std::to_string(kMaxConfigBytes) + " bytes";
    return false;
  }
  return true;
}

void log_refused_reload(const std::vector<ConfigError>& errors, const std::string& path,
                        const std::string& logger) {
  auto l = log::get(logger);
  for (const auto& e : errors) l->error("reload: {}", e.format());
  l->error("reload refused: {} configuration error(s) in {}; the running configuration stays",
           errors.size(), path);
}

}  // namespace teiten::config

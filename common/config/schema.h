// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace teiten::config {

/// One configuration problem, printed in compiler format: `file:line:col: key: problem`.
struct ConfigError {
  std::string file;
  int line = 1;     ///< 1-based
  int column = 1;   ///< 1-based
  std::string key;  ///< "section.key", or the section, or "yaml"
  std::string message;
  std::string format() const;
};

/// Type of a configuration value.
enum class FieldType {
  string,       ///< any scalar text, checked by `pattern_check` if set
  uint,         ///< decimal integer in [min, max]
  duration,     ///< seconds: 60, "60s", "5m", "1h", "1d"; in [min, max]
  boolean,      ///< exactly true or false
  choice,       ///< one of `choices`
  string_list,  ///< a YAML sequence of scalars (at least `min` entries)
  file_path,    ///< a path that must name a readable file ("" allowed if not required)
  date,         ///< YYYY-MM-DD, UTC midnight, as seconds since 1970
  record_list,  ///< a YAML sequence of mappings, each checked against `subfields`
};

/// One parsed scalar.
using Scalar = std::variant<std::string, std::uint64_t, bool>;
/// One entry of a record list: key -> value (absent optional keys are absent).
using Record = std::map<std::string, Scalar>;
/// A parsed value, handed to a field's `apply`.
using Value =
    std::variant<std::string, std::uint64_t, bool, std::vector<std::string>, std::vector<Record>>;

/// One key of the records of a record_list field.
struct SubField {
  std::string_view key;
  FieldType type;
  bool required = false;
  std::uint64_t min = 0;
  std::uint64_t max = UINT64_MAX;
  std::vector<std::string_view> choices;
  std::function<std::string(const Scalar&)> check;
};

/// When a changed value takes effect: at the next start, or at a reload (SIGHUP).
enum class Reload : std::uint8_t { restart, live };

/// One key of one section: drives parsing, checks, defaults and the example file.
/// `check` may refine a value: it returns an error text (without position) or "".
template <typename Target>
struct Field {
  std::string_view section;
  std::string_view key;
  FieldType type;
  std::string_view default_text;  ///< YAML text of the default ("" and !required: none)
  bool required = false;
  std::uint64_t min = 0;
  std::uint64_t max = UINT64_MAX;
  std::vector<std::string_view> choices;
  std::string_view description;
  std::function<void(Target&, const Value&)> apply;
  std::function<std::string(const Value&)> check;
  std::vector<SubField> subfields;  ///< record_list only
  Reload reload = Reload::restart;  ///< whether a reload applies a change of this key
};

/// The `log.level` key that every Teiten program's configuration has.
template <typename Target>
Field<Target> log_level_field(std::string Target::*member) {
  return {"log",
          "level",
          FieldType::choice,
          "info",
          false,
          0,
          0,
          {"trace", "debug", "info", "warn", "error", "critical", "off"},
          "Log level.",
          [member](Target& c, const Value& v) { c.*member = std::get<std::string>(v); },
          {},
          {},
          Reload::live};
}

/// Logs, to the logger named `logger`, why a reload of `path` is refused: each error,
/// then that the running configuration stays.
void log_refused_reload(const std::vector<ConfigError>& errors, const std::string& path,
                        const std::string& logger);

/// Closest candidate within edit distance 2 (for "did you mean"), or "".
std::string closest_name(std::string_view word, const std::vector<std::string_view>& candidates);

/// Parses `text` (YAML) as one value of `type`. Returns an error text or "".
std::string parse_scalar(FieldType type, std::string_view text, std::uint64_t min,
                         std::uint64_t max, const std::vector<std::string_view>& choices,
                         Value& out);

/// Most bytes of configuration file read.
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

}  // namespace teiten::config

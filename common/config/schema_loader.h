// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/config/schema.h"

namespace teiten::config {

/// Makes a relative `file` relative to the directory of `config_path` and checks that it
/// can be read. "" is left alone. Returns an error text or "".
std::string resolve_file_path(const std::string& config_path, std::string& file);

/// Reads a whole configuration file (at most kMaxConfigBytes). Returns false with an
/// error message naming the file when it cannot be read.
bool read_config_file(const std::string& path, std::string& text, std::string& error);

/// Parses a sequence of mappings against `subfields`; appends errors. Returns false if
/// any entry was wrong.
inline bool parse_records(const std::string& path, const std::string& name, const YAML::Node& node,
                          const std::vector<SubField>& subfields, std::vector<Record>& out,
                          std::vector<ConfigError>& errors) {
  auto error_at = [&](const YAML::Mark& m, std::string key, std::string msg) {
    errors.push_back(ConfigError{path, m.line >= 0 ? m.line + 1 : 1,
                                 m.column >= 0 ? m.column + 1 : 1, std::move(key), std::move(msg)});
  };
  if (!node.IsSequence()) {
    error_at(node.Mark(), name, "expected a list of entries");
    return false;
  }
  bool ok = true;
  std::size_t index = 0;
  for (const auto& item : node) {
    const std::string where = name + "[" + std::to_string(index++) + "]";
    if (!item.IsMap()) {
      error_at(item.Mark(), where, "expected a mapping of keys");
      ok = false;
      continue;
    }
    std::vector<std::string_view> keys;
    for (const auto& sf : subfields) keys.push_back(sf.key);
    Record rec;
    for (const auto& kv : item) {
      const std::string key = kv.first.Scalar();
      const SubField* sf = nullptr;
      for (const auto& candidate : subfields) {
        if (candidate.key == key) sf = &candidate;
      }
      if (!sf) {
        const std::string hint = closest_name(key, keys);
        error_at(
            kv.first.Mark(), where,
            "unknown key '" + key + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        ok = false;
        continue;
      }
      if (rec.count(key)) {
        error_at(kv.first.Mark(), where + "." + key, "key given twice");
        ok = false;
        continue;
      }
      if (kv.second.IsNull()) continue;  // `key:` or `key: ~`: treated as absent
      if (!kv.second.IsScalar()) {
        error_at(kv.second.Mark(), where + "." + key, "expected a single value");
        ok = false;
        continue;
      }
      Value v;
      std::string problem =
          parse_scalar(sf->type, kv.second.Scalar(), sf->min, sf->max, sf->choices, v);
      Scalar sv;
      if (problem.empty()) {
        if (auto* s = std::get_if<std::string>(&v)) sv = *s;
        if (auto* u = std::get_if<std::uint64_t>(&v)) sv = *u;
        if (auto* b = std::get_if<bool>(&v)) sv = *b;
        if (sf->check) problem = sf->check(sv);
      }
      if (!problem.empty()) {
        error_at(kv.second.Mark(), where + "." + key, problem);
        ok = false;
        continue;
      }
      rec[key] = sv;
    }
    for (const auto& sf : subfields) {
      if (sf.required && !rec.count(std::string{sf.key})) {
        error_at(item.Mark(), where + "." + std::string{sf.key}, "required key is missing");
        ok = false;
      }
    }
    out.push_back(std::move(rec));
  }
  return ok;
}

/// A target with a `values` map (key -> Value) keeps each key's value as applied, so that
/// a reload can tell which keys changed (Field::reload).
template <typename Target>
void remember(Target& target, const std::string& key, const Value& value) {
  if constexpr (requires { target.values[key] = value; }) target.values[key] = value;
}

/// Reads a YAML file against a schema: every known key is parsed, range-checked and
/// applied to `target`; defaults are applied for absent keys; unknown keys, duplicate keys,
/// missing required keys and bad values are all collected. Only this loader touches
/// YAML::Node. Returns the errors (empty: `target` is complete).
template <typename Target>
std::vector<ConfigError> load_yaml(const std::string& path, const std::string& text,
                                   const std::vector<Field<Target>>& schema, Target& target) {
  std::vector<ConfigError> errors;
  auto error_at = [&](const YAML::Mark& m, std::string key, std::string msg) {
    errors.push_back(ConfigError{path, m.line >= 0 ? m.line + 1 : 1,
                                 m.column >= 0 ? m.column + 1 : 1, std::move(key), std::move(msg)});
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error_at(e.mark, "yaml", e.msg);
    return errors;
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) {
    error_at(root.Mark(), "yaml", "the top level must be a mapping of sections");
    return errors;
  }

  std::vector<std::string_view> sections;
  for (const auto& f : schema) {
    if (std::find(sections.begin(), sections.end(), f.section) == sections.end()) {
      sections.push_back(f.section);
    }
  }
  std::set<std::string> seen_sections;
  std::set<std::string> given;  // "section.key" present in the file
  for (const auto& sec : root) {
    const std::string name = sec.first.Scalar();
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      const std::string hint = closest_name(name, sections);
      error_at(sec.first.Mark(), name,
               "unknown section" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      continue;
    }
    if (!seen_sections.insert(name).second) {
      error_at(sec.first.Mark(), name, "section given twice");
      continue;
    }
    const Field<Target>* list_field = nullptr;
    for (const auto& f : schema) {
      if (f.section == name && f.key.empty() && f.type == FieldType::record_list) list_field = &f;
    }
    if (list_field) {
      given.insert(name + ".");
      std::vector<Record> records;
      if (!parse_records(path, name, sec.second, list_field->subfields, records, errors)) continue;
      Value value = std::move(records);
      if (list_field->check) {
        const std::string problem = list_field->check(value);
        if (!problem.empty()) {
          error_at(sec.second.Mark(), name, problem);
          continue;
        }
      }
      list_field->apply(target, value);
      remember(target, name + ".", value);
      continue;
    }
    if (sec.second.IsNull()) continue;
    if (!sec.second.IsMap()) {
      error_at(sec.second.Mark(), name, "expected a mapping of keys");
      continue;
    }
    std::vector<std::string_view> keys;
    for (const auto& f : schema) {
      if (f.section == name) keys.push_back(f.key);
    }
    for (const auto& kv : sec.second) {
      const std::string key = kv.first.Scalar();
      const std::string full = name + "." + key;
      const Field<Target>* field = nullptr;
      for (const auto& f : schema) {
        if (f.section == name && f.key == key) field = &f;
      }
      if (!field) {
        const std::string hint = closest_name(key, keys);
        error_at(
            kv.first.Mark(), name,
            "unknown key '" + key + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        continue;
      }
      if (!given.insert(full).second) {
        error_at(kv.first.Mark(), full, "key given twice");
        continue;
      }
      const YAML::Node& node = kv.second;
      Value value;
      std::string problem;
      if (field->type == FieldType::string_list) {
        if (!node.IsSequence()) {
          problem = "expected a list";
        } else {
          std::vector<std::string> items;
          for (const auto& item : node) {
            if (!item.IsScalar()) {
              error_at(item.Mark(), full, "list entries must be scalars");
              continue;
            }
            items.push_back(item.Scalar());
          }
          if (items.size() < field->min) {
            problem = "expected at least " + std::to_string(field->min) + " entr" +
                      (field->min == 1 ? "y" : "ies");
          }
          value = std::move(items);
        }
      } else if (!node.IsScalar()) {
        problem = "expected a single value";
      } else {
        problem =
            parse_scalar(field->type, node.Scalar(), field->min, field->max, field->choices, value);
      }
      if (problem.empty() && field->type == FieldType::file_path) {
        problem = resolve_file_path(path, std::get<std::string>(value));
      }
      if (problem.empty() && field->check) problem = field->check(value);
      if (!problem.empty()) {
        error_at(node.Mark(), full, problem);
        continue;
      }
      field->apply(target, value);
      remember(target, full, value);
    }
  }

  // Defaults and required keys.
  for (const auto& f : schema) {
    const std::string full = std::string{f.section} + "." + std::string{f.key};
    if (given.count(full)) continue;
    if (f.type == FieldType::record_list) {
      if (f.required) error_at(root.Mark(), std::string{f.section}, "required section is missing");
      continue;
    }
    if (f.required) {
      YAML::Mark m = root.Mark();
      if (root[std::string{f.section}]) m = root[std::string{f.section}].Mark();
      error_at(m, full, "required key is missing");
      continue;
    }
    if (f.default_text.empty() && f.type != FieldType::string && f.type != FieldType::file_path &&
        f.type != FieldType::string_list) {
      continue;
    }
    Value value;
    if (f.type == FieldType::string_list) {
      value = std::vector<std::string>{};
    } else if (f.type == FieldType::string || f.type == FieldType::file_path) {
      value = std::string{f.default_text};
    } else {
      parse_scalar(f.type, f.default_text, f.min, f.max, f.choices, value);
    }
    f.apply(target, value);
    remember(target, full, value);
  }
  return errors;
}

}  // namespace teiten::config

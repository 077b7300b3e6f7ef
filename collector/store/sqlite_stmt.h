// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace teiten::collector {

/// A prepared SQLite statement (RAII); errors throw std::runtime_error with SQLite's text.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string{"sqlite prepare: "} + sqlite3_errmsg(db));
    }
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  void bind(int i, std::int64_t v) { sqlite3_bind_int64(s, i, v); }
  void bind(int i, std::uint64_t v) { sqlite3_bind_int64(s, i, static_cast<std::int64_t>(v)); }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  /// Binds a blob, or NULL when empty.
  void bind_blob(int i, const std::string& v) {
    if (v.empty()) {
      sqlite3_bind_null(s, i);
    } else {
      sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
  }
  int step(sqlite3* db) {
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      throw std::runtime_error(std::string{"sqlite step: "} + sqlite3_errmsg(db));
    }
    return rc;
  }
  std::int64_t i64(int col) const { return sqlite3_column_int64(s, col); }
  std::string text(int col) const {
    const unsigned char* t = sqlite3_column_text(s, col);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  std::string_view blob(int col) const {
    const void* p = sqlite3_column_blob(s, col);
    const int n = sqlite3_column_bytes(s, col);
    return p ? std::string_view{static_cast<const char*>(p), static_cast<std::size_t>(n)}
             : std::string_view{};
  }
  void reset() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
};

}  // namespace teiten::collector

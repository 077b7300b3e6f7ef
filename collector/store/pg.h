// SPDX-License-Identifier: Apache-2.0
#pragma once

// A thin RAII layer over libpq for the PostgreSQL store (collector/store/ only).

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace teiten::collector::pg {

/// A failed statement or connection: the server's message, and its SQLSTATE ("" when the
/// connection failed before the server answered).
struct Error : std::runtime_error {
  Error(const std::string& what, std::string state)
      : std::runtime_error(what), sqlstate(std::move(state)) {}
  std::string sqlstate;
  /// Deadlock or serialization failure: the transaction may simply be run again.
  bool retryable() const { return sqlstate == "40P01" || sqlstate == "40001"; }
};

/// A query result. Results are in binary form: integers of any width read with i64,
/// text and bytea as bytes.
class Result {
 public:
  explicit Result(PGresult* r = nullptr) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(Result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Result& operator=(Result&& o) noexcept {
    std::swap(r_, o.r_);
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;

  int rows() const { return PQntuples(r_); }
  bool null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  /// A bigint, integer, smallint or boolean column (binary form, checked).
  std::int64_t i64(int row, int col) const;
  /// A text or bytea column's bytes ("" when NULL).
  std::string_view bytes(int row, int col) const {
    return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
  }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

/// Parameters of a statement, in text form (nullopt: NULL).
using Params = std::vector<std::optional<std::string>>;

/// One connection (one thread at a time).
class Conn {
 public:
  /// Connects. Throws Error naming the server (never the password) when it cannot.
  explicit Conn(const std::string& conninfo);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  /// Runs a statement; rows come back in binary form. Throws Error.
  Result exec(const std::string& sql, const Params& params = {});
  /// Runs one or more statements without parameters (schema, BEGIN, COMMIT). Throws Error.
  void run(const std::string& sql);
  /// COPY ... FROM STDIN with `data` in COPY's text format. Throws Error.
  void copy_in(const std::string& sql, const std::string& data);
  /// Runs a query and hands each row (result, row index) to `row`, fetched through a
  /// cursor in blocks: a result of millions of rows is never held whole. Inside the
  /// transaction in progress, or one of its own. Throws Error.
  void stream(const std::string& sql, const Params& params,
              const std::function<void(const Result&, int)>& row);
  /// Whether the connection is up (as far as libpq knows).
  bool ok() const { return PQstatus(c_) == CONNECTION_OK; }
  /// Connects again (session settings are lost with the old connection). Returns whether
  /// it worked.
  bool reset();
  /// host:port/dbname, for messages (no password).
  std::string describe() const;

 private:
  [[noreturn]] void fail(const std::string& what, PGresult* r);
  PGconn* c_ = nullptr;
};

/// Rows handed to one statement as one array parameter per column (text form), read back
/// as rows by unnest(): a set of rows inserted or upserted in one statement, with no
/// staging table (whose emptying at every commit cost more than the statement).
class Columns {
 public:
  /// The columns' SQL types ("text", "bigint", "bytea").
  explicit Columns(std::vector<std::string> types);
  /// The next field of the current row (columns in order, row after row).
  void text(std::string_view v);
  void integer(std::int64_t v);
  void bytea(std::string_view bytes);  ///< empty: NULL
  std::size_t rows() const { return fields_ / types_.size(); }
  /// The arrays, one parameter each.
  Params params() const;
  /// "unnest($first::text[], $first+1::bigint[], ...)".
  std::string unnest(std::size_t first = 1) const;

 private:
  std::string& next();
  std::vector<std::string> types_;
  std::vector<std::string> arrays_;
  std::size_t fields_ = 0;
};

/// Appends `v` as a field of COPY's text format (backslash, tab, newline, CR escaped).
void copy_text(std::string& out, std::string_view v);
/// Appends bytes as a bytea field of COPY's text format (hex), or \N when empty.
void copy_bytea(std::string& out, std::string_view bytes);
/// Appends an integer field.
void copy_int(std::string& out, std::int64_t v);

}  // namespace teiten::collector::pg

// SPDX-License-Identifier: Apache-2.0
#include "collector/store/pg.h"

#include <charconv>
#include <cstring>

namespace teiten::collector::pg {

namespace {

std::string message_of(PGconn* c, PGresult* r) {
  std::string m = r ? PQresultErrorMessage(r) : (c ? PQerrorMessage(c) : "out of memory");
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m.empty() ? "unknown error" : m;
}

}  // namespace

std::int64_t Result::i64(int row, int col) const {
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col));
  const int n = PQgetlength(r_, row, col);
  if (PQgetisnull(r_, row, col)) return 0;
  if (n != 1 && n != 2 && n != 4 && n != 8)
    throw Error(
        "unexpected integer width " + std::to_string(n) + " in column " + std::to_string(col), "");
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n < 8 && n > 1 && (p[0] & 0x80)) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
  return static_cast<std::int64_t>(v);
}

Conn::Conn(const std::string& conninfo) {
  c_ = PQconnectdb(conninfo.c_str());
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    const std::string m = message_of(c_, nullptr);
    PQfinish(c_);
    c_ = nullptr;
    throw Error("cannot connect to PostgreSQL: " + m, "");
  }
  // Messages and numbers the same whatever the server's defaults.
  run("SET client_min_messages = warning; SET TIME ZONE 'UTC'");
}

Conn::~Conn() {
  PQfinish(c_);
}

std::string Conn::describe() const {
  if (!c_) return "postgresql (not connected)";
  const char* host = PQhost(c_);
  const std::string h = host ? host : "";
  return "postgresql " + (h.empty() || h[0] == '/' ? "socket " + h : h) + ":" + PQport(c_) + "/" +
         PQdb(c_);
}

void Conn::fail(const std::string& what, PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  Error e(what + ": " + message_of(c_, r), state ? state : "");
  PQclear(r);
  throw e;
}

bool Conn::reset() {
  PQreset(c_);
  if (PQstatus(c_) != CONNECTION_OK) return false;
  PQclear(PQexec(c_, "SET client_min_messages = warning; SET TIME ZONE 'UTC'"));
  return true;
}

Result Conn::exec(const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  PGresult* r = PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 1);
  const auto st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) fail("postgresql", r);
  return Result(r);
}

void Conn::run(const std::string& sql) {
  PGresult* r = PQexec(c_, sql.c_str());
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail("postgresql", r);
  PQclear(r);
}

void Conn::copy_in(const std::string& sql, const std::string& data) {
  PGresult* r = PQexec(c_, sql.c_str());
  if (PQresultStatus(r) != PGRES_COPY_IN) fail("postgresql copy", r);
  PQclear(r);
  constexpr std::size_t kChunk = 1 << 20;
  bool ok = true;
  for (std::size_t off = 0; ok && off < data.size(); off += kChunk) {
    const auto n = std::min(kChunk, data.size() - off);
    ok = PQputCopyData(c_, data.data() + off, static_cast<int>(n)) == 1;
  }
  if (PQputCopyEnd(c_, ok ? nullptr : "client failed to send") != 1)
    fail("postgresql copy", nullptr);
  r = PQgetResult(c_);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    // Drain what is left before the connection takes another command.
    while (PGresult* more = PQgetResult(c_)) PQclear(more);
    fail("postgresql copy", r);
  }
  PQclear(r);
  while (PGresult* more = PQgetResult(c_)) PQclear(more);
}

void Conn::stream(const std::string& sql, const Params& params,
                  const std::function<void(const Result&, int)>& row) {
  // A cursor fetched in blocks: one result per 10,000 rows (single-row mode costs a result
  // per row), never the whole answer in memory.
  const bool own = PQtransactionStatus(c_) == PQTRANS_IDLE;
  if (own) run("BEGIN");
  try {
    exec("DECLARE teiten_stream NO SCROLL CURSOR FOR " + sql, params);
    for (;;) {
      const Result r = exec("FETCH 10000 FROM teiten_stream");
      for (int i = 0; i < r.rows(); ++i) row(r, i);
      if (r.rows() < 10000) break;
    }
    run("CLOSE teiten_stream");
    if (own) run("COMMIT");
  } catch (...) {
    if (own && ok()) {
      PGresult* r = PQexec(c_, "ROLLBACK");
      PQclear(r);
    }
    throw;
  }
}

Columns::Columns(std::vector<std::string> types)
    : types_(std::move(types)), arrays_(types_.size()) {}

std::string& Columns::next() {
  std::string& a = arrays_[fields_ % types_.size()];
  ++fields_;
  a += a.empty() ? '{' : ',';
  return a;
}

void Columns::text(std::string_view v) {
  std::string& a = next();
  a += '"';
  for (const char ch : v) {
    if (ch == '"' || ch == '\\') a += '\\';
    a += ch;
  }
  a += '"';
}

void Columns::integer(std::int64_t v) {
  next() += std::to_string(v);
}

void Columns::bytea(std::string_view bytes) {
  std::string& a = next();
  if (bytes.empty()) {
    a += "NULL";
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  a += "\"\\\\x";  // "\\x: the element \x..., its backslash escaped
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    a += kHex[b >> 4];
    a += kHex[b & 15];
  }
  a += '"';
}

Params Columns::params() const {
  Params out;
  for (const auto& a : arrays_) out.emplace_back(a.empty() ? "{}" : a + "}");
  return out;
}

std::string Columns::unnest(std::size_t first) const {
  std::string out = "unnest(";
  for (std::size_t i = 0; i < types_.size(); ++i)
    out += (i ? ", $" : "$") + std::to_string(first + i) + "::" + types_[i] + "[]";
  return out + ")";
}

void copy_text(std::string& out, std::string_view v) {
  for (const char ch : v) {
    switch (ch) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += ch;
    }
  }
}

void copy_bytea(std::string& out, std::string_view bytes) {
  if (bytes.empty()) {
    out += "\\N";
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += "\\\\x";
  for (const char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
}

void copy_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace teiten::collector::pg

// SPDX-License-Identifier: Apache-2.0
#pragma once

// The tests' PostgreSQL: a real server (Debian's postgresql-15) on a Unix socket in a
// temporary folder, started by the ctest fixture "postgresql: start"
// (tests/tools/pg-fixture.sh), or by the test program itself when it runs outside ctest.

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>

#include "tests/unit/test_paths.h"

namespace teiten::test {

namespace detail {

struct PgServer {
  std::string dir;
  std::string own_state;  ///< set when this process started the server
  ~PgServer() {
    if (!own_state.empty())
      (void)!std::system(
          ("'" + source_dir() + "/tests/tools/pg-fixture.sh' stop '" + own_state + "'").c_str());
  }
};

inline const std::string& pg_dir() {
  static PgServer server;
  static std::mutex mu;
  std::lock_guard lock(mu);
  if (!server.dir.empty()) return server.dir;
  std::ifstream in(pg_fixture_state());
  std::string dir;
  if (in >> dir && std::filesystem::exists(dir + "/.s.PGSQL.5432")) {
    server.dir = dir;
    return server.dir;
  }
  // Outside ctest: a server of this process, stopped when it exits.
  const std::string state = "/tmp/teiten-pg-state-" + std::to_string(::getpid());
  const std::string cmd =
      "'" + source_dir() + "/tests/tools/pg-fixture.sh' start '" + state + "' >/dev/null";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("cannot start the test PostgreSQL server (tests/tools/pg-fixture.sh)");
  server.own_state = state;
  std::ifstream again(state);
  again >> server.dir;
  return server.dir;
}

}  // namespace detail

/// The connection string of the test server's maintenance database.
inline std::string postgres_admin_conninfo() {
  return "host=" + detail::pg_dir() + " user=teiten dbname=postgres";
}

/// Runs one SQL statement on a database of the test server.
inline void postgres_exec(const std::string& conninfo, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    const std::string m = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("test PostgreSQL: " + m);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  const std::string m = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) throw std::runtime_error("test PostgreSQL: " + sql + ": " + m);
}

/// Runs one SQL statement on the test server's maintenance database.
inline void postgres_admin(const std::string& sql) {
  postgres_exec(postgres_admin_conninfo(), sql);
}

/// A new, empty database on the test server; its connection string.
inline std::string fresh_postgres_database() {
  static std::atomic<int> n{0};
  const std::string name =
      "teiten_" + std::to_string(::getpid()) + "_" + std::to_string(n.fetch_add(1));
  postgres_admin("CREATE DATABASE " + name + " TEMPLATE template0");
  return "host=" + detail::pg_dir() + " user=teiten dbname=" + name;
}

}  // namespace teiten::test

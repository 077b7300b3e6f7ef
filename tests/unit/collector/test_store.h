// SPDX-License-Identifier: Apache-2.0
#pragma once

// The storage and report tests run against both backends: each TEST_CASE generates
// "sqlite" and "postgresql" and opens its store through TestStore.

#include <sqlite3.h>
#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>
#include <string>

#include "collector/store/store.h"
#include "tests/integration/test_support.h"
#include "tests/support/postgres.h"

namespace teiten::test {

/// Both backends, one after the other, in the TEST_CASE that uses it.
#define TEITEN_EACH_BACKEND() GENERATE(as<std::string>{}, "sqlite", "postgresql")

/// A store of the backend under test: a SQLite file in `dir`, or a new database on the
/// test PostgreSQL server; open() gives another connection to the same data.
struct TestStore {
  TestStore(const std::string& backend, const TempDir& dir,
            const std::string& time_zone = "Asia/Tokyo") {
    config.backend = backend;
    config.time_zone = time_zone;
    if (backend == "sqlite") {
      config.path = dir / "c.sqlite";
    } else {
      config.conninfo = fresh_postgres_database();
    }
    store = open();
    REQUIRE(store->backend() == backend);
  }
  std::unique_ptr<collector::Store> open(
      collector::OpenMode mode = collector::OpenMode::read_write) const {
    return collector::open_store(config, mode);
  }
  /// The same data, with days cut in another time zone.
  std::unique_ptr<collector::Store> open_in(
      const std::string& time_zone, collector::OpenMode mode = collector::OpenMode::migrate) const {
    auto c = config;
    c.time_zone = time_zone;
    return collector::open_store(c, mode);
  }
  /// Runs one SQL statement on the store's database behind its back (white-box tests).
  void exec_sql(const std::string& sql) const {
    if (config.backend != "sqlite") return postgres_exec(config.conninfo, sql);
    sqlite3* db = nullptr;
    char* err = nullptr;
    const bool ok = sqlite3_open(config.path.c_str(), &db) == SQLITE_OK &&
                    sqlite3_busy_timeout(db, 5000) == SQLITE_OK &&
                    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK;
    const std::string why = err ? err : (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_free(err);
    sqlite3_close(db);
    if (!ok) throw std::runtime_error("test SQLite: " + sql + ": " + why);
  }
  collector::Store& operator*() const { return *store; }
  collector::Store* operator->() const { return store.get(); }
  collector::StoreConfig config;
  std::unique_ptr<collector::Store> store;
};

}  // namespace teiten::test

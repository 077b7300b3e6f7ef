// SPDX-License-Identifier: Apache-2.0
#pragma once

// The storage and report tests run against both backends: each TEST_CASE generates
// "sqlite" and "postgresql" and opens its store through TestStore.

#include <catch2/catch.hpp>

#include <memory>
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
  collector::Store& operator*() const { return *store; }
  collector::Store* operator->() const { return store.get(); }
  collector::StoreConfig config;
  std::unique_ptr<collector::Store> store;
};

}  // namespace teiten::test

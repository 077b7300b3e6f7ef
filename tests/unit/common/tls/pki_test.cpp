// SPDX-License-Identifier: Apache-2.0
#include "common/tls/pki.h"

#include <openssl/x509_vfy.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <ctime>

#include "tests/integration/test_support.h"

using namespace teiten::tls;

namespace {
bool verifies(X509* ca, X509* leaf) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  const bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}
}  // namespace

TEST_CASE("a CA issues sensor certificates that chain to it, keys written 0600", "[tls][pki]") {
  teiten::test::TempDir dir;
  const std::int64_t now = std::time(nullptr);
  CertSpec ca_spec{"Test CA", CertRole::ca, {}, {}, now - 60, now + 86400};
  const Credential ca = make_ca(ca_spec);
  CertSpec s{"tokyo-1", CertRole::client, {}, {}, now - 60, now + 3600};
  const Credential sensor = issue(ca, s);
  write_credential(sensor, dir / "s.pem", dir / "s.key");
  struct stat st {};
  REQUIRE(::stat((dir / "s.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir / "s.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  const X509Ptr back = read_certificate(dir / "s.pem");
  CHECK(common_name(back.get()) == "tokyo-1");
  CHECK(not_after(back.get()) == now + 3600);
  CHECK(verifies(ca.cert.get(), back.get()));
  const Credential other = make_ca(ca_spec);
  CHECK_FALSE(verifies(other.cert.get(), back.get()));
  CHECK(read_private_key(dir / "s.key") != nullptr);
  CHECK_THROWS_WITH(read_certificate(dir / "missing.pem"),
                    Catch::Matchers::StartsWith("cannot read certificate " + dir / "missing.pem"));
}

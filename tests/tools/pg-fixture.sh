#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A throwaway PostgreSQL server for the tests: initdb and pg_ctl from Debian's
# postgresql-15, run as an unprivileged user (postgres when started as root), listening
# on a Unix socket in a temporary folder only (no TCP).
#
#   pg-fixture.sh start STATEFILE   starts one; writes its folder to STATEFILE
#   pg-fixture.sh stop STATEFILE    stops it (immediately) and removes the folder
#   pg-fixture.sh restart STATEFILE [SECONDS]
#                                   stops it (fast: sessions are cut), waits, starts it again
#   pg-fixture.sh replica PRIMARY_STATEFILE STATEFILE
#                                   starts a streaming replica (hot standby) of a running
#                                   one: pg_basebackup over the primary's socket, then its
#                                   own server on its own socket folder
#
# Tests connect with "host=<folder> user=teiten dbname=postgres" (tests/support/postgres.h).
set -euo pipefail
cmd="${1:-}"
state="${2:-}"
[[ -n "$cmd" && -n "$state" ]] || { echo "usage: $0 start|stop|restart|replica ... STATEFILE" >&2; exit 2; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do [[ -x "$d/pg_ctl" ]] && bindir="$d"; done
if [[ -z "$bindir" ]]; then
  echo "pg-fixture: no PostgreSQL server programs (install postgresql-15: scripts/install-deps.sh)" >&2
  exit 1
fi

as_user() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stop() {
  local dir="$1"
  [[ -d "$dir/data" ]] && as_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

run_server() {
  local dir="$1"
  # Durability is not under test in the tests; benchmarks (PG_FIXTURE_DURABLE=1) run with
  # the server's defaults (fsync, synchronous_commit, full_page_writes on).
  local fast="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [[ "${PG_FIXTURE_DURABLE:-0}" == 1 ]] && fast=""
  as_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-k $dir -c listen_addresses= $fast -c max_connections=300 ${PG_FIXTURE_OPTIONS:-}" start >/dev/null
}

# serve STATEFILE MAKE: stops the server STATEFILE names, if any; in a new folder, the
# function MAKE (given the folder) makes the data directory, and a server starts on it;
# the folder goes to STATEFILE.
serve() {
  local state="$1" make="$2" dir
  [[ -f "$state" ]] && stop "$(cat "$state")"
  dir="$(mktemp -d /tmp/teiten-pg-XXXXXX)"
  [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
  chmod 700 "$dir"
  if ! "$make" "$dir" >"$dir/$make.log" 2>&1; then
    cat "$dir/$make.log" >&2; rm -rf "$dir"; exit 1
  fi
  if ! run_server "$dir"; then
    cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1
  fi
  chmod 755 "$dir"  # the socket, for a test run by another user than the server's
  echo "$dir" >"$state"
}

fresh_cluster() {
  as_user "$bindir/initdb" -D "$1/data" -U teiten --auth=trust --no-sync -E UTF8 --locale=C
}

# -R writes standby.signal and primary_conninfo: the copy starts as a hot standby that
# streams the primary's WAL (initdb's pg_hba trusts local replication connections).
copy_of_primary() {
  as_user "$bindir/pg_basebackup" -h "$primary" -U teiten -D "$1/data" -R -X stream --no-sync
}

case "$cmd" in
  start)
    serve "$state" fresh_cluster
    echo "pg-fixture: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on $(cat "$state")"
    ;;
  stop)
    [[ -f "$state" ]] && stop "$(cat "$state")"
    rm -f "$state"
    ;;
  replica)
    primary="$(cat "$state")"
    serve "${3:?usage: $0 replica PRIMARY_STATEFILE STATEFILE}" copy_of_primary
    ;;
  restart)
    dir="$(cat "$state")"
    as_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    sleep "${3:-1}"
    run_server "$dir" || { cat "$dir/server.log" >&2; exit 1; }
    ;;
  *) echo "usage: $0 start|stop|restart|replica ... STATEFILE" >&2; exit 2 ;;
esac

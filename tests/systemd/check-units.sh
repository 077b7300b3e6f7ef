#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Checks the systemd units in systemd/:
#   1. `systemd-analyze verify` prints nothing (it reports most problems, such as an
#      unknown directive, only by printing, so any output is a failure);
#   2. `systemd-analyze security --offline=yes` gives an overall exposure level of at
#      most 2.0 (the score is printed for each unit).
#
# Usage: check-units.sh --sensord PATH --collectord PATH [--threshold N]
#   PATH: the built daemons. verify requires every Exec*= binary to exist and be
#   executable, and /usr/sbin/teiten-* does not exist on a build machine, so each unit is
#   copied into a temporary folder and /usr/sbin/teiten-<name> is rewritten to a symlink
#   in that folder pointing at PATH (the symlink keeps PATH out of the unit text, so a
#   build folder with spaces or '%' in its name needs no quoting). Nothing else in the
#   unit is touched: every other line is checked as shipped. The security review reads
#   the unit as shipped (it does not look at the binaries).
# User=teiten need not exist: verify does not resolve users. The units' dependencies
# (network-online.target, ...) come from the host's systemd unit folders.
#
# Exit: 0 pass, 1 fail, 2 usage, 77 skipped (no systemd-analyze; ctest SKIP_RETURN_CODE).
set -euo pipefail

usage() {
  echo "usage: $0 --sensord PATH --collectord PATH [--threshold N]" >&2
  exit 2
}

sensord=""
collectord=""
threshold="2.0"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sensord) [[ $# -ge 2 ]] || usage; sensord="$2"; shift 2 ;;
    --collectord) [[ $# -ge 2 ]] || usage; collectord="$2"; shift 2 ;;
    --threshold) [[ $# -ge 2 ]] || usage; threshold="$2"; shift 2 ;;
    *) usage ;;
  esac
done
[[ -n "$sensord" && -n "$collectord" ]] || usage
[[ "$threshold" =~ ^[0-9]+(\.[0-9]+)?$ ]] || usage

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "SKIPPED: systemd-analyze not installed"
  exit 77
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
unit_dir="$(cd "$here/../../systemd" && pwd)"

for bin in "$sensord" "$collectord"; do
  if [[ ! -x "$bin" || -d "$bin" ]]; then
    echo "FAIL: $bin is not an executable file"
    exit 1
  fi
done

# mktemp under /tmp, not $TMPDIR: the folder's path goes into Exec*= lines unquoted.
tmp="$(mktemp -d /tmp/teiten-units.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/units"
ln -s "$(realpath "$sensord")" "$tmp/bin/teiten-sensord"
ln -s "$(realpath "$collectord")" "$tmp/bin/teiten-collectord"

failed=0

check_unit() {
  local name="$1" src="$unit_dir/$1" copy="$tmp/units/$1" out score
  if [[ ! -f "$src" ]]; then
    echo "FAIL: $src missing"
    failed=1
    return
  fi

  # 1. verify, on a copy whose /usr/sbin/teiten-* point at the built binaries.
  sed -e "s#/usr/sbin/teiten-\(sensord\|collectord\)\b#$tmp/bin/teiten-\1#g" "$src" >"$copy"
  if ! grep -q "$tmp/bin/teiten-" "$copy"; then
    echo "FAIL: $name: no /usr/sbin/teiten-* command to rewrite"
    failed=1
  fi
  if out="$(systemd-analyze verify --man=no "$copy" 2>&1)" && [[ -z "$out" ]]; then
    echo "ok: $name: systemd-analyze verify printed nothing"
  else
    echo "FAIL: $name: systemd-analyze verify:"
    printf '%s\n' "$out" | sed -e "s#$tmp/bin/#/usr/bin/#g" -e "s#$tmp/units/#$unit_dir/#g" -e 's/^/    /'
    failed=1
  fi

  # 2. security review of the unit as shipped.
  if ! out="$(systemd-analyze security --offline=yes "$src" 2>&1)"; then
    echo "FAIL: $name: systemd-analyze security failed:"
    printf '%s\n' "$out" | sed -e 's/^/    /'
    failed=1
    return
  fi
  score="$(printf '%s\n' "$out" | sed -n -e 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\(\.[0-9]*\)\?\).*/\1/p' | head -n 1)"
  if [[ -z "$score" ]]; then
    echo "FAIL: $name: no \"Overall exposure level\" in systemd-analyze security output:"
    printf '%s\n' "$out" | sed -e 's/^/    /'
    failed=1
  elif awk -v s="$score" -v t="$threshold" 'BEGIN { exit !(s + 0 <= t + 0) }'; then
    echo "ok: $name: exposure $score <= $threshold"
  else
    echo "FAIL: $name: exposure $score > $threshold; what counts:"
    printf '%s\n' "$out" | grep -E '[0-9]\.[0-9]+[[:space:]]*$' | grep -v 'Overall exposure' | sed -e 's/^/    /'
    failed=1
  fi
}

check_unit teiten-sensord.service
check_unit teiten-collectord.service

if [[ $failed -ne 0 ]]; then
  echo "FAILED: systemd units"
  exit 1
fi
echo "PASSED: systemd units"

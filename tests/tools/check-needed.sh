#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Each program links only the libraries it uses (issue 14): the shared libraries a program
# needs (its ELF NEEDED entries, from which the Debian packages' Depends are computed) must
# not include one it has no use for.
#   check-needed.sh PROGRAM FORBIDDEN-SONAME-PREFIX...
set -euo pipefail
program="$1"
shift
needed="$(readelf -d "$program" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"
[[ -n "$needed" ]] || { echo "$program: no NEEDED entries read" >&2; exit 1; }
bad=0
for lib in "$@"; do
  if grep -q "^$lib" <<<"$needed"; then
    echo "$(basename "$program") needs $lib, which it has no use for" >&2
    bad=1
  fi
done
echo "$(basename "$program") needs: $(tr '\n' ' ' <<<"$needed")"
exit "$bad"

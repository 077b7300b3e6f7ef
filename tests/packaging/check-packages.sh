#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian packages from a finished build tree (cpack), checks them with lintian
# and hardening-check, then installs them on this machine, checks the installation, puts
# a PKI in place, reinstalls over itself with a locally modified conffile (which must be
# kept) and purges (configuration and state must go).
#   check-packages.sh --build-dir DIR
# Exits 77 (skipped, with the reason) when not root, without dpkg, or when Teiten packages
# are installed already (a real box: the test would replace and purge them). It changes
# the machine's package database, which only a throwaway root machine (CI) should allow;
# it leaves the machine as it found it (packages purged, a user it created deleted).
set -euo pipefail

build=""
while (($#)); do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    *) echo "usage: $0 --build-dir DIR" >&2; exit 2 ;;
  esac
done
[[ -n "$build" ]] || { echo "usage: $0 --build-dir DIR" >&2; exit 2; }
build="$(cd "$build" && pwd)"
if [[ "$(id -u)" != 0 ]]; then
  echo "SKIPPED: installing packages needs root"
  exit 77
fi
for tool in dpkg dpkg-deb apt-get cpack lintian hardening-check; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIPPED: $tool is missing (scripts/install-deps.sh installs it)"
    exit 77
  fi
done

packages=(teiten-sensor teiten-collector teitenctl)
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]'; then
    echo "SKIPPED: $p is installed on this machine; the test would replace and purge it"
    exit 77
  fi
done
user_existed=0
getent passwd teiten >/dev/null && user_existed=1

fail() { echo "FAIL: $*" >&2; exit 1; }
check() { # description, command...
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; else fail "$what"; fi
}
purge_all() { dpkg --purge "${packages[@]}" >/dev/null 2>&1 || true; }
cleanup() {
  purge_all
  if ((!user_existed)) && getent passwd teiten >/dev/null; then
    userdel teiten >/dev/null 2>&1 || true
    groupdel teiten >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
work="$(mktemp -d)"
trap cleanup EXIT

# 1. Build the packages.
rm -rf "$build/packages"
(cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
debs=()
for p in "${packages[@]}"; do
  f="$(ls "$build"/packages/"${p}"_*.deb)"
  debs+=("$f")
  echo "built $(basename "$f") ($(du -k "$f" | cut -f1) KiB)"
done

# 2. lintian: no errors, no warnings (overrides, if any, ship in the packages and say why).
if ! lintian --fail-on error,warning --info --no-tag-display-limit "${debs[@]}" >"$work/lintian" 2>&1; then
  cat "$work/lintian"
  fail "lintian reports errors or warnings"
fi
echo "ok: lintian ($(grep -c '^[EW]:' "$work/lintian" || true) errors/warnings," \
  "$(grep -c '^[IPX]:' "$work/lintian" || true) info/pedantic/experimental tags)"

# 3. hardening-check on the packaged programs (PIE, stack protector, fortify, RELRO, BIND_NOW).
# Control-flow protection is not required: the code is built with -fcf-protection, but
# Debian 12's glibc start files (Scrt1.o, crti.o) carry no IBT/SHSTK property, so no
# program linked on Debian 12 gets the note hardening-check looks for.
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$work/root"; done
for prog in usr/sbin/teiten-sensord usr/sbin/teiten-collectord usr/bin/teitenctl; do
  if ! hardening-check --nocfprotection "$work/root/$prog" >"$work/hardening" 2>&1; then
    cat "$work/hardening"
    fail "hardening-check $prog"
  fi
done
echo "ok: hardening-check (PIE, stack protector, fortify, RELRO, BIND_NOW) on the three programs"

# 4. Install on this machine.
purge_all
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${debs[@]}" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "apt-get install of the packages"; }
for p in "${packages[@]}"; do
  check "$p is installed" bash -c "dpkg-query -W -f='\${Status}' $p | grep -qx 'install ok installed'"
done
check "system user teiten" bash -c 'uid="$(getent passwd teiten | cut -d: -f3)"
  [[ -n "$uid" && "$uid" -lt 1000 ]]'
check "/var/lib/teiten/sensor is teiten:teiten 0750" \
  bash -c '[[ "$(stat -c %U:%G:%a /var/lib/teiten/sensor)" == teiten:teiten:750 ]]'
check "/var/lib/teiten/collector is teiten:teiten 0750" \
  bash -c '[[ "$(stat -c %U:%G:%a /var/lib/teiten/collector)" == teiten:teiten:750 ]]'
for unit in teiten-sensord teiten-collectord; do
  check "$unit.service enabled" test -L "/etc/systemd/system/multi-user.target.wants/$unit.service"
done
check "sensor.yaml is a conffile" bash -c \
  "dpkg-query -W -f='\${Conffiles}' teiten-sensor | grep -q '/etc/teiten/sensor.yaml'"
check "the shipped sensor configuration is valid" \
  /usr/sbin/teiten-sensord --config /etc/teiten/sensor.yaml --check-config
for p in "${packages[@]}"; do
  check "$p's copyright file states Teiten's licence, Apache-2.0" \
    grep -qx 'License: Apache-2.0' "/usr/share/doc/$p/copyright"
done
check "the Prometheus alert rules are shipped and load" \
  bash -c 'cd /usr/share/teiten/prometheus && promtool check rules teiten-alerts.yml >/dev/null'
check "man pages installed" test -f /usr/share/man/man8/teiten-sensord.8.gz -a \
  -f /usr/share/man/man8/teiten-collectord.8.gz -a -f /usr/share/man/man1/teitenctl.1.gz

# A PKI as the operator would make it; the collector's configuration is then valid too.
/usr/bin/teitenctl pki init --dir /etc/teiten/pki >/dev/null
/usr/bin/teitenctl pki collector --dir /etc/teiten/pki --name collector.example >/dev/null
check "the shipped collector configuration is valid with a PKI in place" \
  /usr/sbin/teiten-collectord --config /etc/teiten/collector.yaml --check-config

# 5. Reinstall over itself with a locally modified conffile.
echo "# changed by the operator" >>/etc/teiten/sensor.yaml
dpkg -i "${debs[@]}" >"$work/reinstall.log" 2>&1 || { cat "$work/reinstall.log"; fail "reinstall"; }
check "the modified conffile is kept" grep -q '^# changed by the operator$' /etc/teiten/sensor.yaml
check "no conffile copies left beside it" \
  bash -c '! ls /etc/teiten/sensor.yaml.dpkg-* >/dev/null 2>&1'
check "the collector's key is root:teiten 0640 after configure, the CA's key untouched" \
  bash -c '[[ "$(stat -c %U:%G:%a /etc/teiten/pki/collector.key)" == root:teiten:640 &&
             "$(stat -c %U:%G:%a /etc/teiten/pki/ca.key)" == root:root:600 ]]'
check "the sensor configuration is still valid" \
  /usr/sbin/teiten-sensord --config /etc/teiten/sensor.yaml --check-config

# 6. Purge: configuration and state go; the user stays (Debian keeps system users).
dpkg --purge "${packages[@]}" >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
for p in "${packages[@]}"; do
  check "$p is gone" bash -c "! dpkg-query -W -f='\${db:Status-Abbrev}' $p 2>/dev/null | grep -q '^.[^n]'"
done
check "/etc/teiten is gone" test ! -e /etc/teiten
check "/var/lib/teiten is gone" test ! -e /var/lib/teiten
check "the programs are gone" test ! -e /usr/sbin/teiten-sensord -a ! -e /usr/bin/teitenctl
for unit in teiten-sensord teiten-collectord; do
  check "$unit.service no longer enabled" \
    test ! -e "/etc/systemd/system/multi-user.target.wants/$unit.service"
done
echo "packages: built, lintian-clean, hardened, installed, reinstalled, purged"

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# arm64 (aarch64) build on an x86-64 Debian 12 machine, as root: makes an arm64 Debian 12
# sysroot (scripts/make-arm64-sysroot.sh), cross-compiles with Debian's
# g++-aarch64-linux-gnu against it (cmake/toolchain-aarch64-linux-gnu.cmake), runs the
# unit tests under qemu-aarch64-static user emulation, and builds the arm64 packages
# (their library dependencies are those dpkg-shlibdeps finds for the native packages:
# the same sonames in the same Debian release), checked with lintian.
# Not part of .ci/run (it would take the suite over its time budget); its last result
# is recorded in the README.
#   scripts/cross-arm64.sh [--sysroot DIR]   (default /var/cache/teiten/sysroot-arm64)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
sysroot=/var/cache/teiten/sysroot-arm64
[[ "${1:-}" == "--sysroot" ]] && sysroot="$2"
jobs="$(nproc)"
start=$SECONDS

bash scripts/install-deps.sh
bash scripts/make-arm64-sysroot.sh "$sysroot"

echo "== native packages (for their library dependencies) =="
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
(cd build/release && rm -rf packages && cpack -G DEB >/dev/null)
lib_depends() { # the Depends of a native package, less what is not a shared library's
  dpkg-deb -f build/release/packages/"$1"_*_amd64.deb Depends | tr ',' '\n' |
    sed 's/^ *//' | grep -Ev '^(adduser|init-system-helpers)( |$)' | paste -sd, | sed 's/,/, /g'
}

echo "== arm64 build =="
cmake -S . -B build/arm64 -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DTEITEN_SYSROOT="$sysroot" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTEITEN_WERROR=ON \
  -DTEITEN_BUILD_TESTS=ON -DTEITEN_BUILD_BENCH=OFF -DTEITEN_DEB_SHLIBDEPS=OFF \
  -DTEITEN_DEB_LIB_DEPENDS_SENSOR="$(lib_depends teiten-sensor)" \
  -DTEITEN_DEB_LIB_DEPENDS_COLLECTOR="$(lib_depends teiten-collector)" \
  -DTEITEN_DEB_LIB_DEPENDS_CTL="$(lib_depends teitenctl)" >/dev/null
cmake --build build/arm64 -j "$jobs"
file build/arm64/daemon/teiten-sensord

echo "== unit tests under qemu-aarch64-static =="
(cd build/arm64 && ctest -L unit -j "$jobs" --output-on-failure |
  grep -E 'tests passed|tests failed|Total Test time|Failed|\*\*\*')

echo "== arm64 packages =="
(cd build/arm64 && rm -rf packages && cpack -G DEB >/dev/null)
for deb in build/arm64/packages/*.deb; do
  echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Architecture), Depends: $(dpkg-deb -f "$deb" Depends)"
done
lintian --fail-on error,warning build/arm64/packages/*.deb
echo "lintian: no errors or warnings on the arm64 packages"
# hardening-check reads the arm64 ELF notes with the host's tools (control-flow
# protection: see tests/packaging/check-packages.sh).
rm -rf build/arm64/unpacked
for deb in build/arm64/packages/*.deb; do dpkg-deb -x "$deb" build/arm64/unpacked; done
hardening-check --nocfprotection build/arm64/unpacked/usr/sbin/teiten-sensord \
  build/arm64/unpacked/usr/sbin/teiten-collectord build/arm64/unpacked/usr/bin/teitenctl 2>/dev/null
echo "hardening-check: PIE, stack protector, fortify, RELRO, BIND_NOW on the arm64 programs"
echo "cross-arm64: done in $((SECONDS - start)) s"

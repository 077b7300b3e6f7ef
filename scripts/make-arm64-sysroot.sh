#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Makes the arm64 Debian 12 sysroot for the cross build (as root):
#   scripts/make-arm64-sysroot.sh DIR
#   cmake -B build/arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake \
#         -DTEITEN_SYSROOT=DIR ...
# Installs the host tools (cross g++, qemu, mmdebstrap), then extracts the arm64 -dev
# packages Teiten builds against into DIR. A sysroot, not multiarch: some arm64 -dev
# packages cannot be installed beside their amd64 twins (yaml-cpp's).
# Idempotent: a DIR whose stamp names the same packages and sources is kept.
set -euo pipefail
dir="${1:?usage: $0 DIR}"
dir="$(realpath -m "$dir")"

host_tools=(mmdebstrap debian-archive-keyring g++-aarch64-linux-gnu qemu-user-static
            pkg-config)
# What CMakeLists.txt finds (and scripts/install-deps.sh installs natively). apt resolves
# their dependencies even for --variant=extract, so the runtime libraries behind them
# (libfmt, libdbus, libzstd, liblzma, libgcrypt, ...) come along.
packages=(
  libc6-dev libstdc++-12-dev linux-libc-dev libgcc-s1 libstdc++6
  libpcap-dev libmaxminddb-dev libsystemd-dev libcap-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libssl-dev libsqlite3-dev libpq-dev libboost-dev libboost-system-dev
  catch2 libhowardhinnant-date-dev libsimdjson-dev
)
# The host's sources (bookworm with its updates), so that the arm64 libraries are the
# same versions as the amd64 ones the native packages' dependencies come from.
sources=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
stamp_name=.teiten-sysroot-stamp
stamp="$(printf '%s\n' arm64 "${packages[@]}" "${sources[@]}")"

missing=()
for p in "${host_tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "make-arm64-sysroot: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ -f "$dir/$stamp_name" && "$(cat "$dir/$stamp_name")" == "$stamp" ]]; then
  echo "make-arm64-sysroot: $dir is up to date" >&2
  exit 0
fi

# Built beside DIR and moved into place at the end: an interrupted run leaves no
# half-made sysroot behind a stamp.
mkdir -p "$(dirname "$dir")"
tmp="$dir.new"
rm -rf "$tmp"
include="$(IFS=,; echo "${packages[*]}")"
# merged-usr hook: /lib, /bin, /sbin -> usr/, as on an installed bookworm system, so that
# libc.so's absolute paths (/lib/aarch64-linux-gnu/...) and the interpreter
# /lib/ld-linux-aarch64.so.1 resolve in the sysroot. extract leaves no dpkg database: the
# extract hook lists what went in, for the record ($1 there is the hook's: the new root).
# shellcheck disable=SC2016
mmdebstrap --arch=arm64 --variant=extract --include="$include" \
  --setup-hook=/usr/share/mmdebstrap/hooks/merged-usr/setup00.sh \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --extract-hook='for d in "$1"/var/cache/apt/archives/*.deb; do
                    dpkg-deb -W --showformat="\${Package} \${Version}\n" "$d"
                  done > "$1/.teiten-sysroot-packages"' \
  bookworm "$tmp" "${sources[@]}"

# Absolute symlinks (libm.so, libcap.so, libdbus-1.so -> /lib/aarch64-linux-gnu/...)
# would point at the host: the linker would skip them and silently take the static
# libm.a or libcap.a instead. Made relative, they point into the sysroot.
while IFS= read -r -d '' link; do
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$tmp$(readlink "$link")")" "$link"
done < <(find "$tmp/usr" -type l -lname '/*' -print0)

# Every library in the sysroot must find the libraries it needs there, or the link of
# the programs (and running them under qemu) fails far from the cause.
libdir="$tmp/usr/lib/aarch64-linux-gnu"
unresolved=0
dangling="$(find "$tmp/usr/lib" "$tmp/usr/include" -xtype l)"
if [[ -n "$dangling" ]]; then
  echo "make-arm64-sysroot: dangling symlinks:"$'\n'"$dangling" >&2
  unresolved=1
fi
while IFS= read -r -d '' so; do
  for need in $(aarch64-linux-gnu-readelf -d "$so" 2>/dev/null \
                  | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    if [[ ! -e "$libdir/$need" && ! -e "$tmp/usr/lib/$need" ]]; then
      echo "make-arm64-sysroot: ${so#"$tmp"} needs $need, not in the sysroot" >&2
      unresolved=1
    fi
  done
done < <(find "$libdir" -maxdepth 1 -name '*.so*' -type f -print0)
((unresolved == 0)) || exit 1
# The arm64 libc run under qemu prints its version: loader and emulator work.
qemu-aarch64-static -L "$tmp" "$libdir/libc.so.6" | head -n1 >&2

printf '%s\n' "$stamp" > "$tmp/$stamp_name"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "make-arm64-sysroot: $dir ready ($(du -sh "$dir" | cut -f1))" >&2

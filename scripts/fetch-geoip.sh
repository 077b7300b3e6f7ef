#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Fetches the default country database, a CC0 MMDB published on the npm registry,
# at a pinned version, into data/geoip/ (not tracked by git).
#
# Attribution: "ip-location-db" by sapics (package licence CC0-1.0); the underlying
# WHOIS/ASN data is by the Number Resource Organization (nro.net), CC BY 4.0.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
pkg="@ip-location-db/geo-whois-asn-country-mmdb"
version="2.3.2026061719"
sha1="d83ce8ab70533e271d7e96bc50d8d816cf4f4470"
dest="${TEITEN_GEOIP_DIR:-$root/data/geoip}"
db="$dest/geo-whois-asn-country.mmdb"

if [[ -s "$db" && -f "$dest/VERSION" && "$(cat "$dest/VERSION")" == "$version" ]]; then
  exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$pkg@$version" >/dev/null)
tarball="$(ls "$tmp"/*.tgz)"
got="$(sha1sum "$tarball" | cut -d' ' -f1)"
if [[ "$got" != "$sha1" ]]; then
  echo "fetch-geoip: checksum mismatch for $pkg@$version: got $got, want $sha1" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"
cp "$tmp/package/geo-whois-asn-country.mmdb" "$db.tmp"
mv "$db.tmp" "$db"
cp "$tmp/package/NRO_LICENSE" "$dest/NRO_LICENSE"
cat > "$dest/ATTRIBUTION" <<TXT
geo-whois-asn-country.mmdb from $pkg@$version (ip-location-db by sapics, CC0-1.0).
Underlying data: WHOIS and ASN statistics of the five RIRs, (c) Number Resource
Organization (https://www.nro.net/), licensed CC BY 4.0.
TXT
echo "$version" > "$dest/VERSION"
echo "fetch-geoip: $db ($version)" >&2

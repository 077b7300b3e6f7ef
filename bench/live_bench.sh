#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live capture over veth: the highest tcpreplay rate at which teiten-sensord records no
# ring drop (with the kernel's and the interface's drop counts at each rate), and its
# steady-state RSS and CPU at 1,000 packets/s. Needs root (network namespaces) and
# tcpreplay; builds the release preset.
# Usage: bench/live_bench.sh [--packets N]   (packets per rate step, default 200000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
packets=200000
[[ "${1:-}" == "--packets" ]] && packets="$2"
[[ $EUID -eq 0 ]] || { echo "live_bench: needs root (network namespaces)" >&2; exit 77; }
command -v tcpreplay >/dev/null || { echo "live_bench: tcpreplay is not installed" >&2; exit 77; }
if [[ "${TEITEN_BENCH_NO_BUILD:-}" != 1 ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target teiten-sensord teitenctl >/dev/null
fi
sensord="$root/build/release/daemon/teiten-sensord"
ctl="$root/build/release/ctl/teitenctl"
work="$(mktemp -d /tmp/teiten-live-bench.XXXXXX)"
sns="teiten-bs$$" pns="teiten-bp$$" sif="tbs$$" pif="tbp$$"
cleanup() {
  [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null || true
  ip netns del "$sns" 2>/dev/null || true
  ip netns del "$pns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$sns"
ip netns add "$pns"
ip -n "$sns" link add "$sif" type veth peer name "$pif" netns "$pns"
ip -n "$sns" addr add 203.0.113.7/24 dev "$sif"
ip -n "$sns" link set "$sif" up
ip -n "$pns" link set "$pif" up

"$ctl" generate --out "$work/in.pcap" --packets "$packets" --duration 600 >/dev/null
cat >"$work/sensor.yaml" <<YAML
sensor:
  id: bench-1
  addresses: [203.0.113.7, "2001:db8:7::7"]
geoip:
  database: "$root/data/geoip/geo-whois-asn-country.mmdb"
capture:
  interface: $sif
YAML

# One run: start the sensor, replay at $1 packets/s (0: as fast as tcpreplay goes), stop
# it, and print the rate reached and what the buckets say.
run_at() {
  local pps="$1" out="$work/out-$1.jsonl"
  ip netns exec "$sns" "$sensord" -c "$work/sensor.yaml" -o "$out" --log-level warn &
  pid=$!
  sleep 1
  local speed=(--topspeed)
  [[ "$pps" != 0 ]] && speed=(--pps="$pps")
  local rated
  rated="$(ip netns exec "$pns" tcpreplay "${speed[@]}" -i "$pif" "$work/in.pcap" 2>&1 |
    sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' | head -1)"
  sleep 2
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  local summary
  summary="$("$ctl" summary "$out")"
  local line
  line="$(grep -o 'packets .*' <<<"$summary" | head -1)"
  local ring kernel iface total
  total="$(sed -n 's/^  packets     \([0-9]*\) = .*/\1/p' <<<"$summary")"
  ring="$(grep -o 'ring drops [0-9]*' <<<"$line" | grep -o '[0-9]*$')"
  kernel="$(grep -o 'kernel drops [0-9]*' <<<"$line" | grep -o '[0-9]*$')"
  iface="$(grep -o 'interface drops [0-9]*' <<<"$line" | grep -o '[0-9]*$')"
  printf '%10s pps asked %12s pps sent   accounted %8s (of %s sent; the rest is not for the sensor, filtered by BPF)   ring drops %6s   kernel drops %8s   interface drops %6s\n' \
    "$pps" "${rated:-?}" "$total" "$packets" "$ring" "$kernel" "$iface"
  [[ "$ring" == 0 && "$kernel" == 0 ]]
}

echo "== rate steps ($packets packets each) =="
best=0
for pps in ${TEITEN_BENCH_RATES:-20000 50000 100000 200000 400000 0}; do
  if run_at "$pps"; then best="$pps"; else break; fi
done
echo "highest asked rate without ring or kernel drops: ${best} pps (0 = top speed)"

# Steady state: RSS and CPU over 40 s after a 10 s warm-up, at each rate.
steady_at() {
  local pps="$1"
  echo "== steady state at $pps packets/s =="
  ip netns exec "$sns" "$sensord" -c "$work/sensor.yaml" -o "$work/steady.jsonl" --log-level warn &
  pid=$!
  sleep 2
  ip netns exec "$pns" tcpreplay --pps="$pps" --limit=$((pps * 55)) --loop=0 -i "$pif" \
    "$work/in.pcap" >/dev/null 2>&1 &
  replay=$!
  sleep 10  # warm-up
  t0="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  s0="$(date +%s.%N)"
  sleep 40
  t1="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
  s1="$(date +%s.%N)"
  rss="$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
  hwm="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
  wait "$replay" || true
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  hz="$(getconf CLK_TCK)"
  awk -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v hz="$hz" -v rss="$rss" -v hwm="$hwm" \
    'BEGIN { printf "RSS %.1f MiB (peak %.1f MiB), CPU %.2f%% of one core\n", rss/1024, hwm/1024, 100*(t1-t0)/hz/(s1-s0) }'
}
for pps in ${TEITEN_BENCH_STEADY:-1000 10000}; do steady_at "$pps"; done

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job on embedded defaults, the whole system on one machine: installs what is
# needed, builds, then
#   1. starts teiten-collectord (mutual TLS API on 127.0.0.1:8443, dashboard on :8444);
#   2. pushes 15 months of six simulated sensors (domestic 1-3, overseas 1-3) through
#      the ingest API (teitenctl simulate);
#   3. generates a quarter of darknet traffic (April-June 2022, Japan time) whose
#      Japan-sourced part has the seed report's Table 1 counts, and replays it through
#      teiten-sensord, which delivers its buckets to the collector over mutual TLS;
#   4. prints the quarterly report and the dashboard's address.
# The collector keeps running for the dashboard; the last line says how to stop it.
# TEITEN_DEMO_API_PORT / TEITEN_DEMO_DASHBOARD_PORT change the ports.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"

bin=build/release
api_port="${TEITEN_DEMO_API_PORT:-8443}"
board_port="${TEITEN_DEMO_DASHBOARD_PORT:-8444}"
demo=out/demo
if [[ -f $demo/collector.pid ]] && kill -0 "$(cat $demo/collector.pid)" 2>/dev/null; then
  kill "$(cat $demo/collector.pid)"  # the previous run's collector
  sleep 1
fi
rm -rf "$demo"
mkdir -p "$demo"
ctl="$bin/ctl/teitenctl"
sim=(--domestic 3 --overseas 3 --months 15 --start 2021-04 --width 86400 --seed 1)

"$ctl" pki init --dir "$demo/pki" >/dev/null
"$ctl" pki collector --dir "$demo/pki" --name localhost --ip 127.0.0.1 >/dev/null
"$ctl" pki sensor --dir "$demo/pki" --id demo-tokyo-1 >/dev/null
"$ctl" pki operator --dir "$demo/pki" --name operator >/dev/null

cat >"$demo/collector.yaml" <<YAML
collector:
  listen: 127.0.0.1
  port: $api_port
  database: collector.sqlite
tls:
  ca: pki/ca.pem
  cert: pki/collector.pem
  key: pki/collector.key
reports:
  time_zone: Asia/Tokyo
dashboard:
  listen: 127.0.0.1
  port: $board_port
  # On loopback for this demo only: a browser without an operator certificate sees it.
  client_certificate: none
sensors:
  - id: demo-tokyo-1
    region: domestic
    label: Demo Tokyo (replayed capture)
    active_from: 2022-03-31  # registry dates are UTC; the quarter starts 2022-04-01 in Japan
YAML
"$ctl" simulate --print-registry "${sim[@]}" | tail -n +2 >>"$demo/collector.yaml"

cat >"$demo/sensor.yaml" <<YAML
sensor:
  id: demo-tokyo-1
  addresses: [203.0.113.7, "2001:db8:7::7"]
geoip:
  database: $root/data/geoip/geo-whois-asn-country.mmdb
buckets:
  width: 3600
state:
  dir: sensor-state
upload:
  collector: localhost:$api_port
  ca: pki/ca.pem
  cert: pki/sensor-demo-tokyo-1.pem
  key: pki/sensor-demo-tokyo-1.key
YAML

nohup "$bin/collector/teiten-collectord" --config "$demo/collector.yaml" >"$demo/collector.log" 2>&1 &
echo $! >"$demo/collector.pid"
for _ in $(seq 50); do
  grep -q "dashboard address" "$demo/collector.log" && break
  kill -0 "$(cat $demo/collector.pid)" 2>/dev/null || { cat "$demo/collector.log"; exit 1; }
  sleep 0.2
done

echo "== simulated sensors through the ingest API"
"$ctl" simulate --collector "localhost:$api_port" --pki "$demo/pki" "${sim[@]}" 2>/dev/null | tail -n 1

echo "== a generated quarter replayed through teiten-sensord, delivered over mutual TLS"
"$ctl" generate --out "$demo/quarter.pcap" --truth "$demo/quarter-truth.json" \
  --plan tests/data/seed-2022q2.plan --packets "${TEITEN_DEMO_PACKETS:-300000}" \
  --start 2022-03-31T15:00:00Z --duration 7862400 --width 3600 --seed 1
"$bin/daemon/teiten-sensord" --config "$demo/sensor.yaml" --read "$demo/quarter.pcap" --upload \
  2>"$demo/sensor.log"
tail -n 3 "$demo/sensor.log"

op=(--collector "localhost:$api_port" --ca "$demo/pki/ca.pem" --cert "$demo/pki/operator-operator.pem"
  --key "$demo/pki/operator-operator.key" --quarter 2022Q2)
"$ctl" report "${op[@]}" --format html --output "$demo/report-2022Q2.html"
"$ctl" report "${op[@]}" --format csv --output "$demo/report-2022Q2.csv"
"$ctl" report "${op[@]}" --output "$demo/report-2022Q2.md"
"$ctl" report "${op[@]}" --sensors demo-tokyo-1 --output "$demo/report-2022Q2-demo-tokyo-1.md"
echo
echo "== the replayed sensor alone: the seed's Table 1 (teitenctl report --sensors demo-tokyo-1)"
sed -n '/^## 1\./,/^## 2\./p' "$demo/report-2022Q2-demo-tokyo-1.md" | sed '$d'
echo "== the whole network"
sed -n '/^## Notable changes/,/^## 1\./p' "$demo/report-2022Q2.md" | sed '$d' | head -n 12
sed -n '/^## 3\./,/^## 5\./p' "$demo/report-2022Q2.md" | sed '$d'
echo "Full reports: $demo/report-2022Q2.{md,html,csv} (and -demo-tokyo-1.md)"
echo "Dashboard:   https://127.0.0.1:$board_port/?quarter=2022Q2  (certificate: $demo/pki/ca.pem)"
echo "The collector keeps running for it (pid $(cat $demo/collector.pid)): kill \$(cat $demo/collector.pid)"

#!/usr/bin/env bash
# The main job on embedded defaults: installs what is needed, builds, generates a sample
# darknet capture (one hour, one million packets), replays it through teiten-sensord with
# config/demo-sensor.yaml, and prints a summary a person can read.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
mkdir -p out
build/release/ctl/teitenctl generate --out out/demo.pcap --truth out/demo-truth.json \
  --packets "${TEITEN_DEMO_PACKETS:-1000000}" --duration 3600 --seed 1
build/release/daemon/teiten-sensord --config config/demo-sensor.yaml --read out/demo.pcap \
  --output out/demo-buckets.jsonl
echo
build/release/ctl/teitenctl summary out/demo-buckets.jsonl
echo
echo "Sealed buckets: out/demo-buckets.jsonl (schema: docs/bucket-format.md)"

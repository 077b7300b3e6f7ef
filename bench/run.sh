#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the release preset and runs the benchmarks, printing their figures.
# Usage: bench/run.sh [--packets N]   (default 10 million; the capture is kept in /tmp)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake --preset release -DTEITEN_BUILD_BENCH=ON >/dev/null
cmake --build --preset release -j "$(nproc)" --target pipeline_bench ring_bench collector_bench report_bench sparse_bench teiten-sensord teiten-collectord
build/release/bench/ring_bench
build/release/bench/pipeline_bench "$@"
build/release/bench/collector_bench
build/release/bench/report_bench
build/release/bench/sparse_bench

#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite, as CI runs it (.ci/run): installs what is needed, then builds and
# tests under three configurations and replays/fuzzes the fuzz targets.
#   1. dev (RelWithDebInfo, -Werror): unit, integration, fuzz-corpus tests
#   2. asan-ubsan: the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. tsan: the same suite under ThreadSanitizer (ring, pipeline threads)
#   4. fuzz (clang, libFuzzer): each target runs briefly from its corpus
#   5. clang-format: the tree is formatted; every source file carries its SPDX licence line
# Set TEITEN_TEST_PRESETS (e.g. "dev") to run fewer stages while developing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh

presets="${TEITEN_TEST_PRESETS:-dev asan-ubsan tsan fuzz format}"
jobs="$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"

stage() { printf '\n=== %s ===\n' "$*"; }
passed=0

for preset in $presets; do
  case "$preset" in
    dev|asan-ubsan|tsan)
      stage "build and test: $preset"
      cmake --preset "$preset" >/dev/null
      cmake --build --preset "$preset" -j "$jobs"
      runner=()
      # ThreadSanitizer needs a mapping layout that recent kernels' ASLR can break.
      [[ "$preset" == tsan ]] && command -v setarch >/dev/null && runner=(setarch "$(uname -m)" -R)
      out="$(mktemp)"
      "${runner[@]}" ctest --preset "$preset" -j "$jobs" | tee "$out"
      n="$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' "$out")"
      passed=$((passed + ${n:-0}))
      rm -f "$out"
      ;;
    fuzz)
      stage "libFuzzer: short runs from the committed corpora"
      cmake --preset fuzz >/dev/null
      cmake --build --preset fuzz -j "$jobs" --target fuzz_decode_classify fuzz_bucket_json fuzz_batch_json
      for target in decode_classify bucket_json batch_json; do
        work="$(mktemp -d)"
        cp -r "tests/fuzz/corpus/$target/." "$work/"
        "build/fuzz/tests/fuzz_$target" -max_total_time="${TEITEN_FUZZ_SECONDS:-20}" \
          -print_final_stats=1 "$work" 2>&1 | tail -n 12
        rm -rf "$work"
      done
      ;;
    format)
      stage "clang-format"
      mapfile -t files < <(git ls-files '*.cpp' '*.h')
      clang-format --dry-run --Werror "${files[@]}"
      echo "clang-format: ${#files[@]} files formatted"
      stage "licence headers"
      # Teiten's own code is Apache-2.0 (LICENSE): every source file says so in its first
      # lines (SPDX), so that a file copied elsewhere still carries its licence.
      mapfile -t sources < <(git ls-files '*.cpp' '*.h' '*.h.in' '*.sh' '*.cmake' \
        'CMakeLists.txt' '*/CMakeLists.txt' .ci/run)
      missing=0
      for f in "${sources[@]}"; do
        if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
          echo "$f: no 'SPDX-License-Identifier: Apache-2.0' in its first 3 lines" >&2
          missing=1
        fi
      done
      [[ $missing == 0 ]] || exit 1
      echo "licence headers: ${#sources[@]} files"
      ;;
    *)
      echo "test.sh: unknown preset '$preset'" >&2
      exit 2
      ;;
  esac
done
stage "all stages passed: $presets"
# One closing line for the whole suite (every ctest run above, added up).
echo "$passed passed, 0 failed"

#!/usr/bin/env bash
# Builds everything and runs all tests. This is the README's test command and what CI runs.
#   scripts/test.sh           # what CI runs: format check, ASan+UBSan build + every test,
#                             # ThreadSanitizer build + the concurrency tests (thread pool,
#                             # scheduler, server), Release build + every test
#   scripts/test.sh release   # one stage only: release | asan | tsan | format
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-all}"
scripts/install-deps.sh
scripts/install-node-deps.sh

run_preset() {  # preset [targets...]: without targets, builds everything
  local preset="$1"
  shift
  echo "== test.sh: $preset build and tests ==" >&2
  cmake --preset "$preset" >/dev/null
  if [[ $# -gt 0 ]]; then
    cmake --build --preset "$preset" --target "$@"
  else
    cmake --build --preset "$preset"
  fi
  ctest --preset "$preset" -j "$(nproc)"
}

# The TSan stage runs only the concurrency tests (CMakePresets.json's filter), so it builds only
# what they need: the two test programs and the hearth binary the CLI/server tests start.
run_tsan() { run_preset tsan hearth_tests hearth_net_tests hearth; }

case "$stage" in
  all)
    scripts/check-format.sh
    run_preset asan
    run_tsan
    # Release last: its ctest summary is the run's closing line.
    run_preset release
    ;;
  release | asan) run_preset "$stage" ;;
  tsan) run_tsan ;;
  format) scripts/check-format.sh ;;
  *)
    echo "test.sh: unknown stage '$stage' (all, release, asan, tsan, format)" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Builds everything and runs all tests. This is the README's test command and what CI runs.
#   scripts/test.sh           # what CI runs: format check, ASan+UBSan build + every test,
#                             # Release build + every test
#   scripts/test.sh tsan      # ThreadSanitizer build + the concurrency tests (not yet in CI:
#                             # see the README's "Status and limitations")
#   scripts/test.sh release   # one stage only: release | asan | tsan | format
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-all}"
scripts/install-deps.sh
scripts/install-node-deps.sh

run_preset() {
  echo "== test.sh: $1 build and tests ==" >&2
  cmake --preset "$1" >/dev/null
  cmake --build --preset "$1"
  ctest --preset "$1" -j "$(nproc)"
}

case "$stage" in
  all)
    scripts/check-format.sh
    run_preset asan
    # Release last: its ctest summary is the run's closing line.
    run_preset release
    ;;
  release | asan | tsan) run_preset "$stage" ;;
  format) scripts/check-format.sh ;;
  *)
    echo "test.sh: unknown stage '$stage' (all, release, asan, tsan, format)" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Builds everything and runs all tests. This is the README's test command and what CI runs.
#   scripts/test.sh           # what CI runs: format check; ASan+UBSan build + every test;
#                             # ThreadSanitizer build + the concurrency tests (thread pool,
#                             # scheduler, server); AArch64 cross build + its kernel/model tests
#                             # under qemu-user; Release build of the hearth binary + the tests
#                             # that exercise it as a user does (the README walk, the npm clients)
#   scripts/test.sh release   # one stage only: release | asan | tsan | neon | format (release: every
#                             # target and every test in the Release build)
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${1:-all}"
scripts/install-deps.sh
scripts/install-node-deps.sh

run_preset() {  # preset [ctest args...] [-- targets...]: without targets, builds everything
  local preset="$1"
  shift
  local ctest_args=() targets=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do ctest_args+=("$1"); shift; done
  [[ $# -gt 0 ]] && shift && targets=("$@")
  echo "== test.sh: $preset build and tests ==" >&2
  local t0=$SECONDS
  cmake --preset "$preset" >/dev/null
  if [[ ${#targets[@]} -gt 0 ]]; then
    cmake --build --preset "$preset" --target "${targets[@]}"
  else
    cmake --build --preset "$preset"
  fi
  local t1=$SECONDS
  ctest --preset "$preset" -j "$(nproc)" "${ctest_args[@]}"
  echo "== test.sh: $preset: build $((t1 - t0)) s, tests $((SECONDS - t1)) s ==" >&2
}

# The TSan stage runs only the concurrency tests (CMakePresets.json's filter), so it builds only
# what they need: their two test programs and the hearth binary the CLI/server tests start.
run_tsan() { run_preset tsan -- hearth_mt_tests hearth_net_tests hearth; }
# AArch64: libhearth and its kernel/model tests cross-compiled, run under qemu-user (x86-64 hosts;
# skipped where the cross tools are not installed, e.g. on an AArch64 host, whose native build
# runs the NEON kernels in every other stage).
run_neon() {
  if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
    echo "== test.sh: neon: no cross compiler / qemu-user here; skipped ==" >&2
    return 0
  fi
  run_preset neon
}
# In CI every test has run under ASan+UBSan already; the Release stage checks the binary users
# run, through the README's examples and the official npm clients.
run_release_binary() { run_preset release -R '^(readme|clients|webui)$' -- hearth; }

case "$stage" in
  all)
    scripts/check-format.sh
    run_preset asan
    run_tsan
    run_neon
    # Release last: its ctest summary is the run's closing line.
    run_release_binary
    ;;
  release | asan) run_preset "$stage" ;;
  tsan) run_tsan ;;
  neon) run_neon ;;
  format) scripts/check-format.sh ;;
  *)
    echo "test.sh: unknown stage '$stage' (all, release, asan, tsan, neon, format)" >&2
    exit 2
    ;;
esac

#!/bin/sh
# Long fuzz runs under ASan+UBSan: configures build/fuzz (HEARTH_FUZZ=ON, HEARTH_SANITIZE=ON,
# no tests or benchmarks), builds every fuzz target and runs each for SECONDS (default 60) over
# its seed corpus in fuzz/corpus/<target>/ (the Jinja target also reads ../shared/templates).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 jinja gbnf
#
# Environment: FUZZ_SEED (default: the time), FUZZ_JOBS (build jobs, default 2), HEARTH_SHARED.
# A crash stops the script with exit 1; its input is left in build/fuzz/fuzz-crash-<target>.bin
# (replay it: build/fuzz/fuzz/<target>_fuzz_standalone build/fuzz/fuzz-crash-<target>.bin).
# See docs/FUZZ.md.
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-"gguf jinja gbnf json_schema modelfile hf_tokenizer http_head"}
SEED=${FUZZ_SEED:-$(date +%s)}
SHARED=${HEARTH_SHARED:-$(pwd)/../shared}
B=build/fuzz

cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS=-O1 \
  -DHEARTH_FUZZ=ON -DHEARTH_SANITIZE=ON -DHEARTH_BUILD_TESTS=OFF -DHEARTH_BUILD_BENCH=OFF -DCMAKE_UNITY_BUILD=ON \
  -DHEARTH_SHARED_DIR="$SHARED" >/dev/null
bins=""
for t in $TARGETS; do bins="$bins ${t}_fuzz_standalone"; done
nice cmake --build "$B" -j"${FUZZ_JOBS:-2}" --target $bins

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export HEARTH_FUZZ_CRASH_DIR="$B"
for t in $TARGETS; do
  extra=""
  [ "$t" = jinja ] && extra="$SHARED/templates tests/data/templates tests/data/jinja_features"
  echo "== $t: ${SECONDS_EACH}s, seed $SEED"
  # shellcheck disable=SC2086
  if ! "$B/fuzz/${t}_fuzz_standalone" --mutate "$SECONDS_EACH" "$SEED" "fuzz/corpus/$t" $extra; then
    echo "fuzz target $t crashed (seed $SEED); input: $B/fuzz-crash-$t.bin" >&2
    exit 1
  fi
done

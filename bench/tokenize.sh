#!/usr/bin/env bash
# Tokenizer speed, hearth vs llama.cpp, on all of War and Peace (3.2 MB):
#   bench/tokenize.sh [--hearth PATH] [--reps N]
# Vocabularies: Llama-2 SPM (shared/models/llama2-tiny-random.gguf) and Llama 3 byte-level BPE
# (a vocab-only GGUF built with shared/tools/synth_gguf.py --bpe-dir). hearth is timed with
# `hearth tokenize -f` (whole process: load, tokenize, print the JSON), llama.cpp with
# bench/peer_tokenize.mjs (tokenize call only); best of N runs each.
set -euo pipefail
cd "$(dirname "$0")/.."
HEARTH=build/release/hearth
REPS=3
while (($#)); do
  case "$1" in
    --hearth) HEARTH="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
SHARED="${HEARTH_SHARED:-$(pwd)/../shared}"
TEXT="$SHARED/data/war-and-peace.txt"
OUT=bench/out
mkdir -p "$OUT/models"
[[ -d bench/node_modules/node-llama-cpp ]] || (cd bench && (npm ci --ignore-scripts || npm install --no-save --ignore-scripts)) >&2
LLAMA3="$OUT/models/tiny-llama3-f32.gguf"
[[ -f "$LLAMA3" ]] || /usr/bin/python3 "$SHARED/tools/synth_gguf.py" --shape tiny --ftype f32 \
  --bpe-dir "$SHARED/tokenizers/llama3.2" -o "$LLAMA3" >&2
bytes=$(stat -c %s "$TEXT")
printf '| vocabulary | engine | tokens | seconds (best of %s) | MB/s | hearth / llama.cpp |\n|---|---|---:|---:|---:|---:|\n' "$REPS"
for pair in "llama2-spm:$SHARED/models/llama2-tiny-random.gguf" "llama3-bpe:$LLAMA3"; do
  name="${pair%%:*}"; model="${pair#*:}"
  best=""
  for ((r = 0; r < REPS; r++)); do
    s=$(date +%s.%N)
    n=$("$HEARTH" tokenize "$model" -f "$TEXT" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    e=$(date +%s.%N)
    t=$(python3 -c "print($e - $s)")
    best=$(python3 -c "print(min(float('$t'), float('${best:-1e9}')))")
  done
  peer=$(node bench/peer_tokenize.mjs "$model" "$TEXT" "$REPS")
  pn=$(python3 -c "import json; print(json.loads('$peer')['tokens'])")
  pt=$(python3 -c "import json; print(json.loads('$peer')['seconds'])")
  python3 - "$name" "$n" "$best" "$pn" "$pt" "$bytes" <<'PY'
import sys
name, n, t, pn, pt, b = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
print(f"| {name} | hearth | {n} | {t:.3f} | {b / t / 1e6:.1f} | {pt / t:.2f}x |")
print(f"| {name} | llama.cpp | {pn} | {pt:.3f} | {b / pt / 1e6:.1f} | |")
PY
done

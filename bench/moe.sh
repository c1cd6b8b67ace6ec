#!/usr/bin/env bash
# Side-by-side MoE CPU benchmark: hearth vs llama.cpp (node-llama-cpp 3.22.1) on random-weight GGUF
# files at real MoE shapes (bench/synth_moe.py). See docs/BENCHMARKS.md, section "MoE".
#
#   bench/moe.sh [--threads N] [--reps R] [-p 512] [-n 64] [--models gpt-oss-20b,qwen3moe-a3b-half]
#                [--skip-peer] [--hearth PATH] [--membw-mib 2048] [--timeout S] [--note TEXT]
#
# Env: HEARTH_SHARED = shared data folder holding tools/synth_gguf.py and tokenizers/llama3.2
#      (default: <repo>/../shared).
# Writes bench/out/: models/<model>.gguf (made once, ~12 GB and ~9.4 GB), moe-<stamp>.{md,json},
# moe-latest.{md,json}, logs/moe-<stamp>-* (stdout/stderr of every run).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

physical_cores() {
  local n=""
  if command -v lscpu >/dev/null 2>&1; then
    n=$(lscpu -p=core,socket 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
  fi
  [[ -n "$n" && "$n" -gt 0 ]] || n=$(nproc)
  echo "$n"
}

threads=""
reps=3
n_prompt=512
n_gen=64
models="gpt-oss-20b,qwen3moe-a3b-half"
skip_peer=0
hearth="build/release/hearth"
membw_mib=2048
run_timeout=3600
note=""

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads|-t) threads="$2"; shift 2 ;;
    --reps|-r) reps="$2"; shift 2 ;;
    -p) n_prompt="$2"; shift 2 ;;
    -n) n_gen="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --skip-peer) skip_peer=1; shift ;;
    --hearth) hearth="$2"; shift 2 ;;
    --membw-mib) membw_mib="$2"; shift 2 ;;
    --timeout) run_timeout="$2"; shift 2 ;;
    --note) note="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "moe.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

[[ -n "$threads" ]] || threads=$(physical_cores)
export HEARTH_SHARED="${HEARTH_SHARED:-$root/../shared}"
[[ "$hearth" = /* ]] || hearth="$root/$hearth"
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3

out="$here/out"
models_dir="$out/models"
logs="$out/logs"
mkdir -p "$models_dir" "$logs"

[[ -x "$hearth" ]] || { echo "moe.sh: no hearth binary at $hearth (build it, or pass --hearth PATH)" >&2; exit 1; }

log() { echo "moe.sh: $*" >&2; }

stamp=$(date -u +%Y%m%d-%H%M%S)
raw="$out/moe-raw-$stamp.jsonl"
meta="$out/moe-meta-$stamp.json"
: > "$raw"
IFS=',' read -r -a model_list <<< "$models"

# 1. Synthetic models, cached by name (a file is only renamed into place once complete).
for m in "${model_list[@]}"; do
  f="$models_dir/$m.gguf"
  [[ -s "$f" ]] && continue
  log "synthesizing $m -> $f (one time; ~1 minute per 10 GB on a quiet disk)"
  if ! nice -n 10 "$py" "$here/synth_moe.py" --shape "$m" -o "$f.tmp" >"$logs/synth-$m.log" 2>&1; then
    log "synth_moe.py failed for $m (see $logs/synth-$m.log)"
    rm -f "$f.tmp"
    continue
  fi
  mv "$f.tmp" "$f"
done

# 2. Memory read bandwidth with the benchmark's thread count (bench/membw.cpp; the CMake build's
#    binary if there is one, else compiled here as bench/run.sh does).
membw_bin="$root/build/release/bench/membw"
if [[ ! -x "$membw_bin" ]]; then
  membw_bin="$out/membw"
  if [[ ! -x "$membw_bin" || "$here/membw.cpp" -nt "$membw_bin" ]]; then
    cxx="${CXX:-g++}"
    command -v "$cxx" >/dev/null 2>&1 || cxx=c++
    "$cxx" -O2 -march=native -pthread -o "$membw_bin" "$here/membw.cpp"
  fi
fi
log "measuring memory bandwidth ($threads threads, $membw_mib MiB)"
membw_json=$("$membw_bin" "$threads" "$membw_mib" 9)
log "bandwidth: $membw_json"

# 3. Peer (llama.cpp via node-llama-cpp) dependencies, as bench/run.sh installs them.
peer_desc="skipped"
if [[ $skip_peer -eq 0 ]]; then
  if [[ ! -d "$here/node_modules/node-llama-cpp" ]]; then
    log "installing node-llama-cpp (npm ci)"
    if ! (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts); then
      log "npm ci failed; falling back to npm install --no-save"
      (cd "$here" && npm install --no-audit --no-fund --ignore-scripts --no-save)
    fi
  fi
  peer_ver=$(node -e "console.log(require('$here/node_modules/node-llama-cpp/package.json').version)" 2>/dev/null || echo "?")
  peer_desc="node-llama-cpp $peer_ver (prebuilt CPU binaries)"
  [[ "$peer_ver" == "3.22.1" ]] || log "warning: node-llama-cpp is $peer_ver, not the pinned 3.22.1"
fi

# 4. Metadata + per-model byte counts (bytes read per decoded token: active experts only).
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
hearth_version=$("$hearth" --version 2>/dev/null | head -1 || true)
hearth_version="${hearth_version:-hearth} @ $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]]; then hearth_version+=" (dirty tree)"; fi
models_json="{"
first=1
for m in "${model_list[@]}"; do
  f="$models_dir/$m.gguf"
  [[ -s "$f" ]] || continue
  info=$("$py" "$here/moe_util.py" info "$f")
  [[ $first -eq 1 ]] || models_json+=","
  models_json+="\"$m\":$info"
  first=0
done
models_json+="}"
B_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" B_CPU="$cpu" B_CORES="$(physical_cores)" B_LOGICAL="$(nproc)" \
B_THREADS="$threads" B_REPS="$reps" B_NP="$n_prompt" B_NG="$n_gen" B_MEMBW="$membw_json" B_HEARTH="$hearth" \
B_HVER="$hearth_version" B_PEER="$peer_desc" B_NOTE="$note" B_MODELS="$models_json" \
"$py" - "$meta" <<'EOF'
import json, os, sys
e = os.environ
meta = {
  "date": e["B_DATE"], "cpu": e["B_CPU"], "cores": int(e["B_CORES"]), "logical": int(e["B_LOGICAL"]),
  "threads": int(e["B_THREADS"]), "reps": int(e["B_REPS"]), "n_prompt": int(e["B_NP"]),
  "n_gen": int(e["B_NG"]), "membw": json.loads(e["B_MEMBW"]), "hearth": e["B_HEARTH"],
  "hearth_version": e["B_HVER"], "peer": e["B_PEER"], "note": e["B_NOTE"],
  "models": json.loads(e["B_MODELS"]),
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF

# 5. Runs, back to back per model (hearth, then llama.cpp). A failure is recorded as n/a.
type_of() {  # the file type's label, for the logs and the JSON
  case "$1" in
    gpt-oss-*) echo mxfp4_moe ;;
    qwen3moe-*|qwen35-*) echo q4_k_m ;;
    *) echo moe ;;
  esac
}

run_one() {  # engine model file cmd...
  local engine="$1" m="$2" f="$3"; shift 3
  local base="$logs/moe-$stamp-$engine-$m"
  local rc=0
  timeout "$run_timeout" "$@" >"$base.out" 2>"$base.err" || rc=$?
  "$py" "$here/bench_util.py" record --raw "$raw" --shape "$m" --type "$(type_of "$m")" --engine "$engine" \
    --model "$f" --rc "$rc" --stdout "$base.out" --stderr "$base.err"
}

for m in "${model_list[@]}"; do
  f="$models_dir/$m.gguf"
  if [[ ! -s "$f" ]]; then
    echo "synth failed" > "$logs/moe-$stamp-missing.err"
    engines=(hearth)
    [[ $skip_peer -eq 1 ]] || engines+=(llama.cpp)
    for e in "${engines[@]}"; do
      "$py" "$here/bench_util.py" record --raw "$raw" --shape "$m" --type "$(type_of "$m")" --engine "$e" \
        --model "$f" --rc 1 --stdout /dev/null --stderr "$logs/moe-$stamp-missing.err"
    done
    continue
  fi
  log "bench $m"
  run_one hearth "$m" "$f" "$hearth" bench "$f" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" --json
  if [[ $skip_peer -eq 0 ]]; then
    vocab=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['models'].get(sys.argv[2],{}).get('n_vocab',0))" "$meta" "$m")
    run_one llama.cpp "$m" "$f" node "$here/peer_bench.mjs" --model "$f" --threads "$threads" \
      --reps "$reps" -p "$n_prompt" -n "$n_gen" --vocab "$vocab"
  fi
done

# 6. Report.
"$py" "$here/moe_util.py" report --raw "$raw" --meta "$meta" --md "$out/moe-$stamp.md" --json "$out/moe-$stamp.json"
cp "$out/moe-$stamp.md" "$out/moe-latest.md"
cp "$out/moe-$stamp.json" "$out/moe-latest.json"
log "wrote $out/moe-$stamp.md and .json (also moe-latest.md / moe-latest.json)"

#!/usr/bin/env bash
# Side-by-side CPU benchmark: hearth vs llama.cpp (node-llama-cpp 3.22.1) on synthetic GGUF models
# at real shapes. See docs/BENCHMARKS.md.
#
#   bench/run.sh [--threads N] [--reps R] [--types q4_k_m,q8_0,q4_0] [--big] [--skip-peer]
#                [--hearth PATH] [-p 512] [-n 128] [--membw-mib 2048] [--timeout S] [--note TEXT]
#                [--isa avx2|avxvnni]
#
# --isa avx2 measures both engines at the AVX2 level on a newer CPU: hearth with HEARTH_CPU=avx2,
# llama.cpp from a hard-linked copy of its prebuilt package holding only the haswell CPU variant
# (avxvnni: hearth HEARTH_CPU=avxvnni, llama.cpp's alderlake variant).
#
# Env: HEARTH_SHARED = shared data folder holding tools/synth_gguf.py and
#      models/llama2-tiny-random.gguf (default: <repo>/../shared).
# Writes bench/out/: models/ (cached synthetic models), results-<stamp>.{md,json}, latest.{md,json},
# logs/ (stdout/stderr of every run).
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
types="q4_k_m,q8_0,q4_0"
big=0
skip_peer=0
hearth="build/release/hearth"
n_prompt=512
n_gen=128
membw_mib=2048
run_timeout=3600
note=""
isa=""

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads|-t) threads="$2"; shift 2 ;;
    --reps|-r) reps="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --big) big=1; shift ;;
    --skip-peer) skip_peer=1; shift ;;
    --hearth) hearth="$2"; shift 2 ;;
    -p) n_prompt="$2"; shift 2 ;;
    -n) n_gen="$2"; shift 2 ;;
    --membw-mib) membw_mib="$2"; shift 2 ;;
    --timeout) run_timeout="$2"; shift 2 ;;
    --note) note="$2"; shift 2 ;;
    --isa) isa="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

[[ -n "$threads" ]] || threads=$(physical_cores)
shared="${HEARTH_SHARED:-$root/../shared}"
[[ "$hearth" = /* ]] || hearth="$root/$hearth"
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3

synth="$shared/tools/synth_gguf.py"
donor="$shared/models/llama2-tiny-random.gguf"
out="$here/out"
models_dir="$out/models"
logs="$out/logs"
mkdir -p "$models_dir" "$logs"

[[ -x "$hearth" ]] || { echo "run.sh: no hearth binary at $hearth (build it, or pass --hearth PATH)" >&2; exit 1; }

stamp=$(date -u +%Y%m%d-%H%M%S)
raw="$out/raw-$stamp.jsonl"
meta="$out/meta-$stamp.json"
: > "$raw"

shapes=(tinyllama)
[[ $big -eq 1 ]] && shapes+=(llama2-7b)
IFS=',' read -r -a type_list <<< "$types"

log() { echo "run.sh: $*" >&2; }

# 1. Synthetic models, cached by shape + type.
model_path() { echo "$models_dir/$1-$2.gguf"; }
for shape in "${shapes[@]}"; do
  for t in "${type_list[@]}"; do
    m=$(model_path "$shape" "$t")
    [[ -s "$m" ]] && continue
    [[ -f "$synth" && -f "$donor" ]] || { log "need $synth and $donor (set HEARTH_SHARED)"; exit 1; }
    log "synthesizing $shape $t -> $m"
    case "$t" in
      iq4_xs|iq4_nl)
        # synth_gguf.py writes no i-quants: an F16 model (cached) requantized by hearth, whose
        # quantizer is byte-identical to llama-quantize.
        f16=$(model_path "$shape" f16)
        if [[ ! -s "$f16" ]]; then
          "$py" "$synth" --shape "$shape" --ftype f16 --vocab-from "$donor" -o "$f16.tmp" >"$logs/synth-$shape-f16.log" 2>&1 \
            && mv "$f16.tmp" "$f16"
        fi
        synth_cmd=("$hearth" quantize "$f16" "$m.tmp" "${t^^}")
        ;;
      iq1_*|iq2_*|iq3_*|tq1_0|tq2_0)
        # The codebook / ternary types: random blocks through tools/goldens/synth_iq.py.
        synth_cmd=("$py" "$root/tools/goldens/synth_iq.py" "$synth" --shape "$shape" --ftype "$t" --vocab-from "$donor" -o "$m.tmp")
        ;;
      *) synth_cmd=("$py" "$synth" --shape "$shape" --ftype "$t" --vocab-from "$donor" -o "$m.tmp") ;;
    esac
    if ! "${synth_cmd[@]}" >"$logs/synth-$shape-$t.log" 2>&1; then
      log "synth_gguf.py failed for $shape $t (see $logs/synth-$shape-$t.log)"
      rm -f "$m.tmp"
      continue
    fi
    mv "$m.tmp" "$m"
  done
done

# 2. Memory read bandwidth with the benchmark's thread count.
membw_bin="$out/membw"
if [[ ! -x "$membw_bin" || "$here/membw.cpp" -nt "$membw_bin" ]]; then
  cxx="${CXX:-g++}"
  command -v "$cxx" >/dev/null 2>&1 || cxx=c++
  "$cxx" -O2 -march=native -pthread -o "$membw_bin" "$here/membw.cpp"
fi
log "measuring memory bandwidth ($threads threads, $membw_mib MiB)"
membw_json=$("$membw_bin" "$threads" "$membw_mib" 9)
log "bandwidth: $membw_json"

# 3. Peer (llama.cpp via node-llama-cpp) dependencies.
peer_desc="skipped"
peer_script="$here/peer_bench.mjs"
[[ -z "$isa" ]] || export HEARTH_CPU="$isa"
if [[ $skip_peer -eq 0 ]]; then
  if [[ ! -d "$here/node_modules/node-llama-cpp" ]]; then
    log "installing node-llama-cpp (npm ci)"
    # The prebuilt CPU binaries ship in the package; its postinstall (download/build of llama.cpp)
    # is not needed because peer_bench.mjs calls getLlama({build: "never"}).
    if ! (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts); then
      # `npm ci` refuses a lock file that lacks per-platform optional packages a registry mirror
      # does not carry; fall back to an install that keeps the locked versions and the lock file.
      log "npm ci failed; falling back to npm install --no-save"
      (cd "$here" && npm install --no-audit --no-fund --ignore-scripts --no-save)
    fi
  fi
  if [[ -n "$isa" ]]; then
    # shellcheck source=bench/peer_isa.sh
    source "$here/peer_isa.sh"
    peer_isa_setup "$isa" "$here" "$out" || exit 2
    peer_script="$peer_dir/peer_bench.mjs"
  fi
  peer_ver=$(node -e "console.log(require('$here/node_modules/node-llama-cpp/package.json').version)" 2>/dev/null || echo "?")
  peer_desc="node-llama-cpp $peer_ver (prebuilt CPU binaries${isa:+, $peer_variant variant only})"
  [[ "$peer_ver" == "3.22.1" ]] || log "warning: node-llama-cpp is $peer_ver, not the pinned 3.22.1"
fi

# 4. Metadata + per-model byte counts.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
hearth_version=$("$hearth" --version 2>/dev/null | head -1 || true)
hearth_version="${hearth_version:-hearth} @ $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
if [[ -n "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]]; then hearth_version+=" (dirty tree)"; fi
models_json="{"
first=1
for shape in "${shapes[@]}"; do
  for t in "${type_list[@]}"; do
    m=$(model_path "$shape" "$t")
    [[ -s "$m" ]] || continue
    info=$("$py" "$here/bench_util.py" gguf "$m")
    [[ $first -eq 1 ]] || models_json+=","
    models_json+="\"$shape-$t\":$info"
    first=0
  done
done
models_json+="}"
B_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" B_CPU="$cpu" B_CORES="$(physical_cores)" B_LOGICAL="$(nproc)" \
B_THREADS="$threads" B_REPS="$reps" B_NP="$n_prompt" B_NG="$n_gen" B_MEMBW="$membw_json" B_HEARTH="$hearth" \
B_HVER="$hearth_version${isa:+ (HEARTH_CPU=$isa)}" B_PEER="$peer_desc" B_NOTE="$note" B_MODELS="$models_json" \
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

# 5. Runs. An engine that fails on a model (e.g. an unsupported quant type) is recorded as n/a.
run_one() {  # engine shape type model cmd...
  local engine="$1" shape="$2" t="$3" m="$4"; shift 4
  local base="$logs/$stamp-$engine-$shape-$t"
  local rc=0
  timeout "$run_timeout" "$@" >"$base.out" 2>"$base.err" || rc=$?
  "$py" "$here/bench_util.py" record --raw "$raw" --shape "$shape" --type "$t" --engine "$engine" \
    --model "$m" --rc "$rc" --stdout "$base.out" --stderr "$base.err"
}

for shape in "${shapes[@]}"; do
  for t in "${type_list[@]}"; do
    m=$(model_path "$shape" "$t")
    if [[ ! -s "$m" ]]; then
      echo "synth failed" > "$logs/$stamp-missing.err"
      for e in hearth llama.cpp; do
        "$py" "$here/bench_util.py" record --raw "$raw" --shape "$shape" --type "$t" --engine "$e" \
          --model "$m" --rc 1 --stdout /dev/null --stderr "$logs/$stamp-missing.err"
      done
      continue
    fi
    log "bench $shape $t"
    run_one hearth "$shape" "$t" "$m" "$hearth" bench "$m" -p "$n_prompt" -n "$n_gen" -t "$threads" -r "$reps" --json
    if [[ $skip_peer -eq 0 ]]; then
      vocab=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['models'].get(sys.argv[2],{}).get('n_vocab',0))" "$meta" "$shape-$t")
      run_one llama.cpp "$shape" "$t" "$m" node "$peer_script" --model "$m" --threads "$threads" \
        --reps "$reps" -p "$n_prompt" -n "$n_gen" --vocab "$vocab"
    fi
  done
done

# 6. Report.
"$py" "$here/bench_util.py" report --raw "$raw" --meta "$meta" --md "$out/results-$stamp.md" --json "$out/results-$stamp.json"
cp "$out/results-$stamp.md" "$out/latest.md"
cp "$out/results-$stamp.json" "$out/latest.json"
log "wrote $out/results-$stamp.md and .json (also latest.md / latest.json)"

#!/usr/bin/env bash
# Serving benchmark: `hearth serve` (continuous batching over HTTP) vs llama.cpp (node-llama-cpp
# 3.22.1, one context with N sequences) at N concurrent streams. See docs/BENCHMARKS.md, "Serving".
#
#   bench/serve.sh [--streams 1,4,16] [--threads 2] [--reps 3] [--words 63] [--gen 64] [--ctx 256]
#                  [--model PATH] [--hearth PATH] [--skip-peer] [--timeout S] [--note TEXT]
#                  [--isa avx2|avxvnni]
#
# --isa: both engines at one instruction-set level, as bench/run.sh --isa (bench/peer_isa.sh).
#
# Env: HEARTH_SHARED = shared data folder with tools/synth_gguf.py and
#      models/llama2-tiny-random.gguf (default: <repo>/../shared), used only when the TinyLlama-shape
#      Q4_K_M model is not yet in bench/out/models/ (bench/run.sh makes the same file).
# Writes bench/out/serve-<stamp>.{jsonl,md}, serve-latest.md and logs/serve-<stamp>-*.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

streams="1,4,16"
threads=2
reps=3
words=63
gen=64
ctx=256
model=""
hearth="build/release/hearth"
skip_peer=0
isa=""
run_timeout=1800
note=""

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --streams) streams="$2"; shift 2 ;;
    --threads|-t) threads="$2"; shift 2 ;;
    --reps|-r) reps="$2"; shift 2 ;;
    --words) words="$2"; shift 2 ;;
    --gen|-n) gen="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --hearth) hearth="$2"; shift 2 ;;
    --skip-peer) skip_peer=1; shift ;;
    --isa) isa="$2"; shift 2 ;;
    --timeout) run_timeout="$2"; shift 2 ;;
    --note) note="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "serve.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { echo "serve.sh: $*" >&2; }
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3
[[ "$hearth" = /* ]] || hearth="$root/$hearth"
[[ -x "$hearth" ]] || { log "no hearth binary at $hearth (build it, or pass --hearth PATH)"; exit 1; }
out="$here/out"
logs="$out/logs"
mkdir -p "$out/models" "$logs"

# 1. The model: the same cached file bench/run.sh uses.
if [[ -z "$model" ]]; then
  model="$out/models/tinyllama-q4_k_m.gguf"
  if [[ ! -s "$model" ]]; then
    shared="${HEARTH_SHARED:-$root/../shared}"
    synth="$shared/tools/synth_gguf.py"
    donor="$shared/models/llama2-tiny-random.gguf"
    [[ -f "$synth" && -f "$donor" ]] || { log "need $synth and $donor (set HEARTH_SHARED)"; exit 1; }
    log "synthesizing tinyllama q4_k_m -> $model"
    "$py" "$synth" --shape tinyllama --ftype q4_k_m --vocab-from "$donor" -o "$model.tmp" >"$logs/synth-tinyllama-q4_k_m.log" 2>&1
    mv "$model.tmp" "$model"
  fi
fi
[[ -s "$model" ]] || { log "no model at $model"; exit 1; }

# 2. Peer dependencies (as bench/run.sh).
if [[ $skip_peer -eq 0 && ! -d "$here/node_modules/node-llama-cpp" ]]; then
  log "installing node-llama-cpp"
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts) ||
    (cd "$here" && npm install --no-audit --no-fund --ignore-scripts --no-save)
fi

peer_script_dir="$here"
if [[ -n "$isa" ]]; then
  # shellcheck source=bench/peer_isa.sh
  source "$here/peer_isa.sh"
  peer_isa_setup "$isa" "$here" "$out" || exit 2
  peer_script_dir="$peer_dir"
  note="${note:+$note; }HEARTH_CPU=$isa, llama.cpp $peer_variant variant only"
fi

stamp=$(date -u +%Y%m%d-%H%M%S)
raw="$out/serve-$stamp.jsonl"
: > "$raw"
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

# Appends one result line: the engine's JSON plus the load average before and after the run.
record() {  # engine streams load_before outfile rc
  "$py" - "$raw" "$1" "$2" "$3" "$(loadavg)" "$4" "$5" <<'PYEOF'
import json, sys
raw, engine, n, before, after, outfile, rc = sys.argv[1:8]
rec = None
for line in reversed(open(outfile, encoding="utf-8", errors="replace").read().splitlines()):
    if line.strip().startswith("{"):
        try:
            rec = json.loads(line); break
        except json.JSONDecodeError:
            pass
if rec is None or rc != "0":
    rec = {"engine": engine, "streams": int(n), "error": f"exit {rc}, see {outfile} and its .err"}
rec["loadavg_before"], rec["loadavg_after"] = before, after
open(raw, "a").write(json.dumps(rec) + "\n")
PYEOF
}

IFS=',' read -r -a stream_list <<< "$streams"
for n in "${stream_list[@]}"; do
  # hearth: a fresh server per N (its --parallel is fixed at start).
  base="$logs/serve-$stamp-hearth-$n"
  "$hearth" serve --model "bench=$model" --port 0 --parallel "$n" --threads "$threads" --ctx "$ctx" \
    --max-queue $((n > 64 ? n : 64)) >"$base.server.log" 2>&1 &
  server_pid=$!
  url=""
  for _ in $(seq 600); do
    url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$base.server.log" | head -1 || true)
    [[ -n "$url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    log "hearth serve did not start (see $base.server.log)"
    echo "{}" > "$base.out"
    record hearth "$n" "$(loadavg)" "$base.out" 1
    stop_server
  else
    la=$(loadavg)
    log "hearth, $n streams ($url), load $la"
    rc=0
    timeout "$run_timeout" node "$here/serve_load.mjs" --url "$url" --streams "$n" --reps "$reps" \
      --words "$words" --gen "$gen" >"$base.out" 2>"$base.err" || rc=$?
    stop_server
    record hearth "$n" "$la" "$base.out" "$rc"
  fi

  if [[ $skip_peer -eq 0 ]]; then
    base="$logs/serve-$stamp-llama.cpp-$n"
    la=$(loadavg)
    log "llama.cpp, $n streams, load $la"
    rc=0
    timeout "$run_timeout" node "$peer_script_dir/peer_serve.mjs" --model "$model" --streams "$n" --threads "$threads" \
      --ctx "$ctx" --reps "$reps" --words "$words" --gen "$gen" >"$base.out" 2>"$base.err" || rc=$?
    record llama.cpp "$n" "$la" "$base.out" "$rc"
  fi
done

# 3. Report.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
hver=$("$hearth" --version 2>/dev/null | head -1 || true)
hver="${hver:-hearth} @ $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
[[ -z "$(git -C "$root" status --porcelain 2>/dev/null | head -1)" ]] || hver+=" (dirty tree)"
S_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" S_CPU="$cpu" S_CORES="$(nproc)" S_THREADS="$threads" \
S_REPS="$reps" S_WORDS="$words" S_GEN="$gen" S_CTX="$ctx" S_HVER="$hver" S_NOTE="$note" \
S_MODEL="$model" "$py" - "$raw" "$out/serve-$stamp.md" <<'PYEOF'
import json, os, sys
e = os.environ
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {(r["engine"], r["streams"]): r for r in recs}
ns = sorted({r["streams"] for r in recs})
ptoks = sorted({round(r["prompt_tokens_mean"]) for r in recs if "prompt_tokens_mean" in r})
L = []
L.append(f"Date: {e['S_DATE']}  ")
L.append(f"CPU: {e['S_CPU']} ({e['S_CORES']} logical CPUs)  ")
L.append(f"Model: {os.path.basename(e['S_MODEL'])} (TinyLlama-1.1B shape, Q4_K_M, random weights)  ")
L.append(f"Threads: {e['S_THREADS']}  Prompt: {e['S_WORDS']} words = {', '.join(map(str, ptoks))} tokens "
         f"(BOS included), different per stream and run  Generated: {e['S_GEN']} tokens per stream, greedy  "
         f"Context per sequence: {e['S_CTX']}  ")
L.append(f"Runs: {e['S_REPS']} (median, after 1 warm-up)  hearth: {e['S_HVER']}; llama.cpp: node-llama-cpp 3.22.1 (prebuilt CPU)  ")
if e["S_NOTE"]:
    L.append(f"Note: {e['S_NOTE']}  ")
L.append("")
L.append("| streams | engine | aggregate decode tok/s | end-to-end tok/s | p50 TTFT ms | p99 TTFT ms | hearth/llama.cpp decode | hearth/llama.cpp p99 TTFT | load avg (before/after) |")
L.append("|---:|---|---:|---:|---:|---:|---:|---:|---|")
for n in ns:
    h, p = by.get(("hearth", n)), by.get(("llama.cpp", n))
    for name, r in (("hearth", h), ("llama.cpp", p)):
        if r is None:
            continue
        la = f"{r['loadavg_before'].split()[0]} / {r['loadavg_after'].split()[0]}"
        if "error" in r:
            L.append(f"| {n} | {name} | n/a ({r['error']}) | | | | | | {la} |")
            continue
        ratio_d = ratio_t = ""
        if name == "hearth" and p and "error" not in p and "error" not in h:
            ratio_d = f"{h['decode_tps'] / p['decode_tps']:.2f}x" if p["decode_tps"] else ""
            ratio_t = f"{h['ttft_p99_ms'] / p['ttft_p99_ms']:.2f}x" if p["ttft_p99_ms"] else ""
        L.append(f"| {n} | {name} | {r['decode_tps']:.1f} | {r['e2e_tps']:.1f} | {r['ttft_p50_ms']:.0f} | "
                 f"{r['ttft_p99_ms']:.0f} | {ratio_d} | {ratio_t} | {la} |")
L.append("")
L.append("aggregate decode tok/s = tokens that arrived after the last stream's first token / (last token of any "
         "stream - that moment); end-to-end = all generated tokens / (last token - requests sent); "
         "TTFT = request sent -> first token; decode ratio > 1: hearth faster; p99 TTFT ratio < 1: hearth better.")
md = "\n".join(L) + "\n"
open(sys.argv[2], "w").write(md)
print(md)
PYEOF
cp "$out/serve-$stamp.md" "$out/serve-latest.md"
log "wrote $out/serve-$stamp.md (also serve-latest.md) and $raw"

#!/usr/bin/env bash
# Quality of every `hearth quantize` type on one model: perplexity and KL divergence against the
# unquantized model, printed as a markdown table (used for docs/PERPLEXITY.md).
#
#   bench/quant_quality.sh [MODEL [TEXT]]
#
# Defaults: MODEL = ../shared/models/stories260K.gguf (all F32: the base), TEXT =
# ../shared/data/war-and-peace.txt. Env: HEARTH (binary, default build/hearth), CTX (128),
# CHUNKS (100), THREADS (2), KV (f32: the cache adds no error of its own), TYPES (space-separated
# list, default every type), WORK (scratch folder, default a fresh mktemp -d, removed at the end).
#
# Method: `hearth perplexity MODEL --kl-divergence-base base.kld` saves the base's log-probs;
# each TYPE is made with `hearth quantize MODEL OUT TYPE` and compared with
# `hearth perplexity OUT --kl-divergence --kl-divergence-base base.kld --json`. The "fell back"
# column is quantize's own count of tensors whose rows are not a multiple of the type's block
# size (stories260K's 64- and 172-wide rows are not multiples of 256, so K- and IQ4_XS types fall
# back there).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
model="${1:-$repo/../shared/models/stories260K.gguf}"
text="${2:-$repo/../shared/data/war-and-peace.txt}"
hearth="${HEARTH:-$repo/build/hearth}"
ctx="${CTX:-128}"
chunks="${CHUNKS:-100}"
threads="${THREADS:-2}"
kv="${KV:-f32}"
types="${TYPES:-F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS}"

for f in "$model" "$text"; do [[ -f "$f" ]] || { echo "quant_quality: no such file: $f" >&2; exit 1; }; done
[[ -x "$hearth" ]] || { echo "quant_quality: no hearth binary at $hearth (set HEARTH=...)" >&2; exit 1; }
"$hearth" quantize --help >/dev/null 2>&1 || { echo "quant_quality: $hearth has no quantize command" >&2; exit 1; }

if [[ -n "${WORK:-}" ]]; then
  work="$WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi

common=(--ctx "$ctx" --chunks "$chunks" --kv-type "$kv" -t "$threads")
echo "quant_quality: base $(basename "$model"), ctx $ctx, $chunks chunks, $kv KV cache" >&2
"$hearth" perplexity "$model" -f "$text" "${common[@]}" --kl-divergence-base "$work/base.kld" --json \
  >"$work/base.json" 2>"$work/base.err" || { cat "$work/base.err" >&2; exit 1; }

rows="$work/rows.jsonl"
: >"$rows"
for t in $types; do
  echo "quant_quality: $t" >&2
  out="$work/$t.gguf"
  if ! "$hearth" quantize "$model" "$out" "$t" -t "$threads" >"$work/$t.quant.log" 2>&1; then
    printf '{"type": "%s", "error": %s}\n' "$t" "$(tail -1 "$work/$t.quant.log" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')" >>"$rows"
    continue
  fi
  "$hearth" perplexity "$out" -f "$text" "${common[@]}" --kl-divergence --kl-divergence-base "$work/base.kld" --json \
    >"$work/$t.json" 2>"$work/$t.err" || { cat "$work/$t.err" >&2; exit 1; }
  python3 - "$t" "$out" "$work/$t.json" "$work/$t.quant.log" >>"$rows" <<'EOF'
import json, os, re, sys
t, gguf, res, log = sys.argv[1:5]
r = json.load(open(res))
text = open(log, encoding="utf-8", errors="replace").read()
# quantize's summary: "size: A MiB (B bpw) -> C MiB (D bpw)" and "tensors: ... N fell back ..."
m = re.search(r"->\s*([\d.]+) MiB \(([\d.]+) bpw\)", text)
fb = re.search(r"(\d+) fell back", text)
r.update(type=t, file_mib=os.path.getsize(gguf) / 2**20, bpw=float(m.group(2)) if m else None,
         fell_back=int(fb.group(1)) if fb else 0)
print(json.dumps(r))
EOF
  rm -f "$out"
done

python3 - "$work/base.json" "$rows" "$model" "$ctx" "$chunks" "$kv" <<'EOF'
import json, os, sys
base = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
model, ctx, chunks, kv = sys.argv[3:7]
print(f"Base: `{os.path.basename(model)}` (F32), PPL {base['ppl']:.4f} ± {base['ppl_stderr']:.4f} "
      f"over {base['tokens_scored']} tokens (ctx {ctx}, {chunks} chunks, {kv.upper()} KV cache).\n")
print("| type | bpw | PPL | ΔPPL | PPL ratio | mean KLD | median KLD | 99% KLD | max KLD | same top | tensors fell back |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if "error" in r:
        print(f"| {r['type']} | failed: {r['error']} |||||||||| ")
        continue
    bpw = f"{r['bpw']:.2f}" if r.get("bpw") is not None else "?"
    print(f"| {r['type']} | {bpw} | {r['ppl']:.4f} | {r['delta_ppl']:+.4f} | {r['ppl_ratio']:.4f} "
          f"| {r['kld_mean']:.6f} ± {r['kld_stderr']:.6f} | {r['kld_median']:.6f} | {r['kld_p99']:.6f} "
          f"| {r['kld_max']:.6f} | {100 * r['top1_agreement']:.2f}% | {r['fell_back']} |")
EOF

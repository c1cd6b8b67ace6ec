#!/usr/bin/env python3
"""Helpers for bench/moe.sh (standard library only).

  moe_util.py info MODEL
      -> JSON: file bytes, n_vocab, experts (count / used), bytes read per decoded token and its
         breakdown, bytes by tensor type.
  moe_util.py report --raw FILE --meta FILE --md OUT.md --json OUT.json
      -> prints the markdown table and writes it plus the combined raw JSON.
(Per-run records are written by bench_util.py record, as for bench/run.sh.)

Bytes read per decoded token of a MoE model (KV cache left out, as in bench/run.sh):
  * expert tensors (*_exps.weight, 3-D [.., .., n_expert], and their *_exps.bias [.., n_expert]):
    only the k routed experts' slices, i.e. bytes * k / n_expert per layer;
  * token_embd.weight: one row (bytes / n_vocab), if the model has an output.weight (else the
    table is also the LM head and is read in full);
  * everything else in full: attention, router (ffn_gate_inp), norms, biases, sinks, output.
This is the floor for one token: a decode step can read no less.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_util  # noqa: E402  (GGUF reader, type table)

bench_util.GGML_TYPES.setdefault(39, ("mxfp4", 32, 17))


def read_gguf(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        r = bench_util._Reader(f)
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        r.read("<I")
        n_tensors, n_kv = r.read("<Q"), r.read("<Q")
        meta = {}
        for _ in range(n_kv):
            key = r.string()
            meta[key] = r.value(r.read("<I"))  # arrays come back as their length
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            dims = [r.read("<Q") for _ in range(r.read("<I"))]
            tensors.append((name, dims, r.read("<I"), r.read("<Q")))
    return size, meta, tensors


def tensor_bytes(dims, ttype):
    if ttype not in bench_util.GGML_TYPES:
        raise ValueError(f"unknown ggml type {ttype}")
    _, be, bb = bench_util.GGML_TYPES[ttype]
    n = 1
    for d in dims:
        n *= d
    return n // be * bb


def info(path):
    size, meta, tensors = read_gguf(path)
    arch = meta.get("general.architecture", "")
    n_exp = int(meta.get(f"{arch}.expert_count") or 0)
    n_used = int(meta.get(f"{arch}.expert_used_count") or 0)
    names = {t[0] for t in tensors}
    has_output = "output.weight" in names
    embd = next((t for t in tensors if t[0] == "token_embd.weight"), None)
    n_vocab = meta.get(f"{arch}.vocab_size") or meta.get("tokenizer.ggml.tokens") or (
        embd[1][1] if embd is not None and len(embd[1]) > 1 else 0)

    parts = {"experts_active": 0, "attention": 0, "router": 0, "norms_biases_other": 0, "output": 0,
             "token_embd_row": 0}
    by_type, total, expert_total = {}, 0, 0
    for name, dims, ttype, _ in tensors:
        b = tensor_bytes(dims, ttype)
        total += b
        tname = bench_util.GGML_TYPES[ttype][0]
        by_type[tname] = by_type.get(tname, 0) + b
        if "_exps." in name and n_exp and dims[-1] == n_exp:
            expert_total += b
            parts["experts_active"] += b * n_used / n_exp
        elif name == "token_embd.weight":
            parts["token_embd_row" if has_output else "output"] += b / dims[1] if has_output else b
        elif name == "output.weight":
            parts["output"] += b
        elif ".attn_" in name and name.endswith(".weight") and len(dims) >= 2:
            parts["attention"] += b
        elif ".ffn_gate_inp." in name:
            parts["router"] += b
        else:
            parts["norms_biases_other"] += b
    per_token = sum(parts.values())
    return {
        "path": path, "architecture": arch, "file_bytes": size, "n_tensors": len(tensors),
        "weight_bytes": total, "expert_bytes": expert_total, "n_expert": n_exp, "n_expert_used": n_used,
        "n_vocab": n_vocab, "n_layer": meta.get(f"{arch}.block_count"),
        "n_embd": meta.get(f"{arch}.embedding_length"), "file_type": meta.get("general.file_type"),
        "bytes_per_token": round(per_token), "bytes_per_token_parts": {k: round(v) for k, v in parts.items()},
        "bytes_by_type": by_type,
    }


def _f(x, nd=1):
    return f"{x:.{nd}f}"


def report(a):
    meta = json.load(open(a.meta, encoding="utf-8"))
    recs = [json.loads(l) for l in open(a.raw, encoding="utf-8") if l.strip()] if os.path.exists(a.raw) else []
    by = {(r["shape"], r["engine"]): r for r in recs}
    order = []
    for r in recs:
        if r["shape"] not in order:
            order.append(r["shape"])
    mb = meta.get("membw", {})
    bw = (mb.get("gbps") or 0.0) * 1e9
    P = meta["n_prompt"]

    L = []
    L.append(f"Date: {meta['date']}  ")
    L.append(f"CPU: {meta['cpu']} ({meta['cores']} physical cores, {meta['logical']} logical)  ")
    L.append(f"Threads: {meta['threads']}  Reps: {meta['reps']} (median, after 1 warm-up)  "
             f"Prefill: {P} tokens in one batch; decode: {meta['n_gen']} single-token steps  ")
    L.append(f"Memory read bandwidth ({mb.get('threads', '?')} threads, {mb.get('bytes', 0) / 2**20:.0f} MiB buffer, "
             f"best of {mb.get('passes', '?')} passes; median {_f(mb.get('median') or 0.0, 2)}): {_f(bw / 1e9, 2)} GB/s  ")
    L.append(f"hearth: {meta.get('hearth_version', '?')}; llama.cpp: {meta.get('peer', '?')}  ")
    if meta.get("note"):
        L.append(f"Note: {meta['note']}  ")
    L.append("")
    L.append(f"| model | file GB | prefill-{P} tok/s hearth | llama.cpp | hearth/llama.cpp | decode tok/s hearth | "
             "llama.cpp | hearth/llama.cpp | MB read/token | decode BW fraction hearth | llama.cpp |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def cell(r, key, nd):
        if r is None:
            return "-"
        if not r["ok"]:
            return f"n/a ({r['error'].replace('|', '/')})" if key == "prefill_tps" else "n/a"
        return _f(r["result"][key], nd)

    for shape in order:
        mi = meta.get("models", {}).get(shape, {})
        bpt = mi.get("bytes_per_token", 0)
        h, p = by.get((shape, "hearth")), by.get((shape, "llama.cpp"))
        both = h is not None and p is not None and h["ok"] and p["ok"]
        rp = _f(h["result"]["prefill_tps"] / p["result"]["prefill_tps"], 2) + "x" if both else "-"
        rd = _f(h["result"]["decode_tps"] / p["result"]["decode_tps"], 2) + "x" if both else "-"

        def frac(r):
            if r is None or not r["ok"] or not bw or not bpt:
                return "-"
            return _f(100 * r["result"]["decode_tps"] * bpt / bw, 0) + "%"

        L.append(f"| {shape} | {_f(mi.get('file_bytes', 0) / 1e9, 2)} | {cell(h, 'prefill_tps', 1)} | "
                 f"{cell(p, 'prefill_tps', 1)} | {rp} | {cell(h, 'decode_tps', 2)} | {cell(p, 'decode_tps', 2)} | "
                 f"{rd} | {bpt / 1e6:.0f} | {frac(h)} | {frac(p)} |")
    L.append("")
    L.append("MB read/token: the weights one decode step must read: the k routed experts' gate/up/down "
             "(+ biases) of every layer, attention, router, norms, the output matrix and one embedding "
             "row (KV cache left out). decode BW fraction = decode tok/s x MB read/token / bandwidth.")
    for shape in order:
        parts = meta.get("models", {}).get(shape, {}).get("bytes_per_token_parts")
        if parts:
            L.append(f"{shape}: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in parts.items()) + "  ")
    md = "\n".join(L) + "\n"
    print(md)
    with open(a.md, "w", encoding="utf-8") as f:
        f.write(md)
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": recs}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("info")
    g.add_argument("model")
    rp = sub.add_parser("report")
    for k in ("raw", "meta", "md", "json"):
        rp.add_argument("--" + k, required=True)
    a = ap.parse_args()
    if a.cmd == "info":
        print(json.dumps(info(a.model)))
    else:
        report(a)


if __name__ == "__main__":
    main()

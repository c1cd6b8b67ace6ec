#!/usr/bin/env python3
"""Helpers for bench/run.sh (standard library only).

  bench_util.py gguf MODEL
      -> JSON: file bytes, weight bytes, token_embd bytes, bytes read per decoded token, n_vocab,
         tensor-type histogram.
  bench_util.py record --raw FILE --shape S --type T --engine E --model M --rc N --stdout F --stderr F
      -> appends one JSON line (result or error) to FILE.
  bench_util.py report --raw FILE --meta FILE --md OUT.md --json OUT.json
      -> prints the markdown table and writes it plus the combined raw JSON.

Bytes read per decoded token: a decode step reads every weight tensor once, except the token
embedding table, of which it gathers one row. (When the model has no output.weight the embedding
table doubles as the LM head and is read in full, so it is counted.) KV-cache reads are left out:
at the <= 128 positions of the decode test they are well under 1% of the weights.
"""
import argparse
import json
import os
import struct
import sys

# ggml type id -> (block elements, block bytes)
GGML_TYPES = {
    0: ("f32", 1, 4), 1: ("f16", 1, 2), 2: ("q4_0", 32, 18), 3: ("q4_1", 32, 20),
    6: ("q5_0", 32, 22), 7: ("q5_1", 32, 24), 8: ("q8_0", 32, 34), 9: ("q8_1", 32, 36),
    10: ("q2_k", 256, 84), 11: ("q3_k", 256, 110), 12: ("q4_k", 256, 144), 13: ("q5_k", 256, 176),
    14: ("q6_k", 256, 210), 15: ("q8_k", 256, 292), 16: ("iq2_xxs", 256, 66), 17: ("iq2_xs", 256, 74),
    18: ("iq3_xxs", 256, 98), 19: ("iq1_s", 256, 50), 20: ("iq4_nl", 32, 18), 21: ("iq3_s", 256, 110),
    22: ("iq2_s", 256, 82), 23: ("iq4_xs", 256, 136), 24: ("i8", 1, 1), 25: ("i16", 1, 2),
    26: ("i32", 1, 4), 27: ("i64", 1, 8), 28: ("f64", 1, 8), 29: ("iq1_m", 256, 56), 30: ("bf16", 1, 2),
}

# GGUF metadata value types -> struct format (scalars)
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class _Reader:
    def __init__(self, f):
        self.f = f

    def read(self, fmt):
        n = struct.calcsize(fmt)
        b = self.f.read(n)
        if len(b) != n:
            raise ValueError("truncated GGUF")
        return struct.unpack(fmt, b)[0]

    def string(self):
        n = self.read("<Q")
        return self.f.read(n).decode("utf-8", "replace")

    def value(self, vtype, keep_arrays=False):
        if vtype in _SCALAR:
            return self.read(_SCALAR[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, n = self.read("<I"), self.read("<Q")
            if etype in _SCALAR and not keep_arrays:
                self.f.seek(n * struct.calcsize(_SCALAR[etype]), 1)
                return n
            items = [self.value(etype) for _ in range(n)]
            return items if keep_arrays else n
        raise ValueError(f"unknown GGUF value type {vtype}")


def gguf_info(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        r = _Reader(f)
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        version = r.read("<I")
        n_tensors, n_kv = r.read("<Q"), r.read("<Q")
        meta = {}
        for _ in range(n_kv):
            key = r.string()
            vtype = r.read("<I")
            meta[key] = r.value(vtype)  # arrays come back as their length
        tensors = []
        for _ in range(n_tensors):
            name = r.string()
            nd = r.read("<I")
            dims = [r.read("<Q") for _ in range(nd)]
            ttype = r.read("<I")
            offset = r.read("<Q")
            tensors.append((name, dims, ttype, offset))
        align = meta.get("general.alignment", 32)
        data_start = (f.tell() + align - 1) // align * align

    # Tensor sizes from their types; unknown types fall back to the gap to the next tensor.
    order = sorted(range(len(tensors)), key=lambda i: tensors[i][3])
    nbytes = [0] * len(tensors)
    for k, i in enumerate(order):
        name, dims, ttype, offset = tensors[i]
        n = 1
        for d in dims:
            n *= d
        if ttype in GGML_TYPES:
            _, be, bb = GGML_TYPES[ttype]
            nbytes[i] = n // be * bb
        else:
            end = tensors[order[k + 1]][3] if k + 1 < len(order) else size - data_start
            nbytes[i] = end - offset

    weight_bytes = sum(nbytes)
    embd = next((i for i, t in enumerate(tensors) if t[0] == "token_embd.weight"), None)
    has_output = any(t[0] == "output.weight" for t in tensors)
    embd_bytes = nbytes[embd] if embd is not None else 0
    per_token = weight_bytes - (embd_bytes if has_output else 0)
    hist = {}
    for i, t in enumerate(tensors):
        tname = GGML_TYPES.get(t[2], (f"type{t[2]}",))[0]
        hist[tname] = hist.get(tname, 0) + nbytes[i]
    arch = meta.get("general.architecture", "")
    n_vocab = meta.get(f"{arch}.vocab_size") or meta.get("tokenizer.ggml.tokens") or (
        tensors[embd][1][1] if embd is not None and len(tensors[embd][1]) > 1 else 0)
    return {
        "path": path, "gguf_version": version, "architecture": arch, "file_bytes": size,
        "n_tensors": len(tensors), "weight_bytes": weight_bytes, "token_embd_bytes": embd_bytes,
        "tied_output": not has_output, "bytes_per_token": per_token, "n_vocab": n_vocab,
        "n_layer": meta.get(f"{arch}.block_count"), "n_embd": meta.get(f"{arch}.embedding_length"),
        "bytes_by_type": hist,
    }


def _last_line(text, limit=160):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    msg = lines[-1] if lines else "no output"
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def cmd_record(a):
    out = open(a.stdout, encoding="utf-8", errors="replace").read() if os.path.exists(a.stdout) else ""
    err = open(a.stderr, encoding="utf-8", errors="replace").read() if os.path.exists(a.stderr) else ""
    rec = {"shape": a.shape, "type": a.type, "engine": a.engine, "model": a.model, "rc": a.rc}
    result = None
    for line in reversed(out.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                result = json.loads(line)
                break
            except json.JSONDecodeError:
                pass
    if a.rc == 0 and result is not None and result.get("prefill_tps", 0) > 0:
        rec["ok"] = True
        rec["result"] = result
    else:
        rec["ok"] = False
        if a.rc == 124:
            rec["error"] = "timed out"
        else:
            rec["error"] = _last_line(err or out) if (err or out) else f"exit code {a.rc}"
    with open(a.raw, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    status = "ok" if rec["ok"] else "n/a (" + rec["error"] + ")"
    if rec["ok"]:
        status = f"prefill {result['prefill_tps']:.2f} tok/s, decode {result['decode_tps']:.2f} tok/s"
    print(f"  {a.engine:9s} {a.shape}-{a.type}: {status}", file=sys.stderr)


def _fmt(x, nd=1):
    return f"{x:.{nd}f}"


def cmd_report(a):
    meta = json.load(open(a.meta, encoding="utf-8"))
    recs = [json.loads(l) for l in open(a.raw, encoding="utf-8") if l.strip()] if os.path.exists(a.raw) else []
    bw = meta.get("membw", {}).get("gbps") or 0.0
    keys = []
    for r in recs:
        k = (r["shape"], r["type"])
        if k not in keys:
            keys.append(k)
    by = {(r["shape"], r["type"], r["engine"]): r for r in recs}
    models = meta.get("models", {})

    lines = []
    lines.append(f"Date: {meta['date']}  ")
    lines.append(f"CPU: {meta['cpu']} ({meta['cores']} physical cores, {meta['logical']} logical)  ")
    lines.append(f"Threads: {meta['threads']}  Reps: {meta['reps']} (median, after 1 warm-up)  "
                 f"Prefill: {meta['n_prompt']} tokens in one batch; decode: {meta['n_gen']} single-token steps  ")
    mb = meta.get("membw", {})
    lines.append(f"Memory read bandwidth ({mb.get('threads', '?')} threads, "
                 f"{mb.get('bytes', 0) / 2**20:.0f} MiB buffer, best of {mb.get('passes', '?')} passes; "
                 f"median {_fmt(mb.get('median') or 0.0, 2)}): {_fmt(bw, 2)} GB/s  ")
    lines.append(f"hearth: {meta.get('hearth_version', '?')}; llama.cpp: {meta.get('peer', '?')}  ")
    if meta.get("note"):
        lines.append(f"Note: {meta['note']}  ")
    lines.append("")
    lines.append(f"| model | type | engine | prefill-{meta['n_prompt']} tok/s | decode tok/s | hearth/llama.cpp prefill | "
                 "hearth/llama.cpp decode | MB read/token | decode limit tok/s | decode % of BW limit |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for shape, typ in keys:
        info = models.get(f"{shape}-{typ}", {})
        bpt = info.get("bytes_per_token", 0)
        limit = bw * 1e9 / bpt if bpt and bw else 0
        h, p = by.get((shape, typ, "hearth")), by.get((shape, typ, "llama.cpp"))
        for eng, r in (("hearth", h), ("llama.cpp", p)):
            if r is None:
                continue
            if r["ok"]:
                res = r["result"]
                pf, dc = _fmt(res["prefill_tps"], 1), _fmt(res["decode_tps"], 2)
                pct = _fmt(100 * res["decode_tps"] / limit, 0) + "%" if limit else "?"
            else:
                pf, dc = f"n/a ({r['error'].replace('|', '/')})", "n/a"
                pct = "-"
            rp = rd = ""
            if eng == "hearth":
                if h and p and h["ok"] and p["ok"]:
                    rp = _fmt(h["result"]["prefill_tps"] / p["result"]["prefill_tps"], 2) + "x"
                    rd = _fmt(h["result"]["decode_tps"] / p["result"]["decode_tps"], 2) + "x"
                else:
                    rp = rd = "-"
            lines.append(f"| {shape} | {typ} | {eng} | {pf} | {dc} | {rp} | {rd} | "
                         f"{bpt / 1e6:.0f} | {_fmt(limit, 2) if limit else '?'} | {pct} |")
    lines.append("")
    lines.append("decode limit = bandwidth / bytes read per token (all weight tensors except the token-embedding "
                 "table, which decode only row-gathers); % of limit = decode tok/s / decode limit.")
    md = "\n".join(lines) + "\n"
    print(md)
    with open(a.md, "w", encoding="utf-8") as f:
        f.write(md)
    with open(a.json, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "results": recs}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gguf")
    g.add_argument("model")
    rc = sub.add_parser("record")
    for k in ("raw", "shape", "type", "engine", "model", "stdout", "stderr"):
        rc.add_argument("--" + k, required=True)
    rc.add_argument("--rc", type=int, required=True)
    rp = sub.add_parser("report")
    for k in ("raw", "meta", "md", "json"):
        rp.add_argument("--" + k, required=True)
    a = ap.parse_args()
    if a.cmd == "gguf":
        print(json.dumps(gguf_info(a.model)))
    elif a.cmd == "record":
        cmd_record(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()

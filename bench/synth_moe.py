#!/usr/bin/python3
"""Write a random-weight GGUF at a real MoE or hybrid model's shape, fast, for bench/moe.sh.

  synth_moe.py --shape gpt-oss-20b -o gpt-oss-20b.gguf
  synth_moe.py --shape qwen3moe-a3b-half [--layers 24] -o qwen3moe.gguf

Shapes:
  gpt-oss-20b        architecture "gpt-oss" as tools/synth_gguf.py's b_gpt_oss writes it, at
                     gpt-oss-20b's dims (2880 wide, 24 layers, 64/8 heads of 64, 32 experts top-4,
                     expert width 2880, SWA 128 on even layers, YaRN x32 from 4096). Tensor types of
                     ggml-org's gpt-oss-20b-mxfp4.gguf (file type 38, MXFP4 MoE): experts MXFP4,
                     attention / token_embd / output Q8_0, router + every bias / sink / norm F32.
  qwen3moe-a3b-half  architecture "qwen3moe" as b_qwen3moe writes it, with Qwen3-30B-A3B's layer
                     (2048 wide, 32/4 heads of 128, 128 experts top-8, expert width 768) but 24 of its
                     48 layers (--layers N to change). llama.cpp's Q4_K_M recipe (file type 15): Q4_K,
                     with attn_v and ffn_down_exps Q6_K on the use_more_bits layers, output Q6_K,
                     router and norms F32.
  qwen35-2b          architecture "qwen35" as b_qwen35 writes it (Gated DeltaNet + gated attention,
                     3:1), at a Qwen3.5-2B-like shape (2048 wide, 24 layers, 8/2 heads of 256, linear
                     attention 16+16 heads of 128, SwiGLU 6144), Q4_K_M (attn_qkv Q5_K).

Vocabulary: the Llama 3 byte-level BPE (128,256 tokens) built by synth_gguf.py's llama3_vocab from
$HEARTH_SHARED/tokenizers/llama3.2 (the real models have 201,088 / 151,936 tokens, so token_embd and
output are smaller than theirs).

Speed: quantized blocks are raw random bits (SFC64, ~2 GB/s) whose scale fields are then set to
values that give weights a standard deviation of 0.02-0.03; each tensor is generated and written
in turn, so memory stays at the size of the largest tensor (~170 MB). A 12 GB file takes about a
minute on a quiet disk.

Needs numpy (Debian's python3-numpy; run with /usr/bin/python3). Imports Writer / llama3_vocab /
GT from $HEARTH_SHARED/tools/synth_gguf.py (HEARTH_SHARED defaults to <repo>/../shared, then
/work/shared).
"""
import argparse
import os
import struct
import sys
import time

import numpy as np

_here = os.path.dirname(os.path.abspath(__file__))


def _shared_dir():
    env = os.environ.get("HEARTH_SHARED")
    if env:
        return env
    cand = os.path.normpath(os.path.join(_here, "..", "..", "shared"))
    return cand if os.path.isdir(os.path.join(cand, "tools")) else "/work/shared"


SHARED = _shared_dir()
sys.path.insert(0, os.path.join(SHARED, "tools"))
try:
    import synth_gguf as sg  # noqa: E402  (Writer, GT, llama3_vocab)
except ImportError as e:  # pragma: no cover
    sys.exit(f"synth_moe.py: cannot import synth_gguf from {SHARED}/tools ({e}); set HEARTH_SHARED")

# ggml type name -> (type id, block elements, block bytes)
QT = {
    "f32": (0, 1, 4), "f16": (1, 1, 2), "q8_0": (8, 32, 34),
    "q4_k": (12, 256, 144), "q5_k": (13, 256, 176), "q6_k": (14, 256, 210), "mxfp4": (39, 32, 17),
}
FTYPE_Q4_K_M = 15
FTYPE_MXFP4_MOE = 38


def nbytes_of(dims, qtype):
    _, blk, bb = QT[qtype]
    n = int(np.prod(dims))
    assert dims[0] % blk == 0, (dims, qtype)
    return n // blk * bb


def _f16_col(rng, nblocks, lo, hi):
    """nblocks fp16 values uniform in [lo, hi), as a (nblocks, 2) uint8 array."""
    v = (lo + (hi - lo) * rng.random(nblocks, dtype=np.float32)).astype(np.float16)
    return v.view(np.uint8).reshape(nblocks, 2)


def quant_blocks(rng, dims, qtype):
    """Random blocks of a quantized type with sane scales: weights have std ~0.02, mean ~0."""
    _, blk, bb = QT[qtype]
    nblocks = int(np.prod(dims)) // blk
    total = nblocks * bb
    raw = rng.bit_generator.random_raw((total + 7) // 8).view(np.uint8)[:total].reshape(nblocks, bb)
    if qtype == "q8_0":
        # d (fp16) * int8: uniform int8 has std 73.9 -> d ~ 2.7e-4.
        raw[:, 0:2] = _f16_col(rng, nblocks, 2.2e-4, 3.2e-4)
    elif qtype == "q4_k":
        # d * sc * q - dmin * m, with 6-bit sc, m (random codes in scales[12]) and q in 0..15:
        # d ~ 1.2e-4 and dmin ~ 7.5 d (centers the values on 0) -> weight std ~0.03.
        raw[:, 0:2] = _f16_col(rng, nblocks, 1.0e-4, 1.4e-4)
        raw[:, 2:4] = _f16_col(rng, nblocks, 7.5e-4, 1.05e-3)
    elif qtype == "q5_k":
        # as q4_k with 5-bit q (0..31): d ~ 0.6e-4, dmin ~ 15.5 d -> weight std ~0.03.
        raw[:, 0:2] = _f16_col(rng, nblocks, 0.5e-4, 0.7e-4)
        raw[:, 2:4] = _f16_col(rng, nblocks, 7.5e-4, 1.05e-3)
    elif qtype == "q6_k":
        # d * scale(int8, bytes 192..207) * (q - 32), q in 0..63 (std 18.5): scales 1..15, d ~ 1.2e-4.
        raw[:, 192:208] = (rng.bit_generator.random_raw(nblocks * 2).view(np.uint8) % 15 + 1).reshape(nblocks, 16)
        raw[:, 208:210] = _f16_col(rng, nblocks, 1.0e-4, 1.4e-4)
    elif qtype == "mxfp4":
        # value = kvalues_mxfp4[nibble] * 2^(e - 128) (ggml's E8M0 "half" scale; kvalues are the
        # doubled E2M1 values 0, +-1..12, rms 5.85). e = 119 or 120 (a 2^-8 or 2^-7 block scale on
        # the E2M1 values) -> weight std ~0.018.
        raw[:, 0] = 119 + (rng.bit_generator.random_raw((nblocks + 7) // 8).view(np.uint8)[:nblocks] & 1)
    else:
        raise ValueError(qtype)
    return raw


class Tensor:
    __slots__ = ("name", "dims", "qtype", "kind", "std")

    def __init__(self, name, dims, qtype, kind="q", std=0.02):
        self.name, self.dims, self.qtype, self.kind, self.std = name, list(dims), qtype, kind, std

    @property
    def nbytes(self):
        return nbytes_of(self.dims, self.qtype)

    def data(self, rng):
        n = int(np.prod(self.dims))
        if self.kind == "q":
            return quant_blocks(rng, self.dims, self.qtype)
        x = rng.standard_normal(n, dtype=np.float32) * self.std
        if self.kind == "norm":
            x += 1.0
        elif self.kind == "neg":  # strictly negative (SSM A = -exp(A_log))
            x = -(1.0 + np.abs(x))
        return x.astype(np.float16) if self.qtype == "f16" else x


class Model:
    """Metadata + a lazy tensor list; write() streams the tensors out one at a time."""

    def __init__(self, arch):
        self.arch = arch
        self.w = sg.Writer()       # only its key list and value encoders are used
        self.tensors = []

    def add(self, key, t, v):
        self.w.add(key, t, v)

    def key(self, name, t, v):
        self.w.add(f"{self.arch}.{name}", t, v)

    def t(self, name, dims, qtype, kind="q", std=0.02):
        if kind == "q" and qtype in ("f32", "f16"):
            kind = "gauss"
        self.tensors.append(Tensor(name, dims, qtype, kind, std))

    def write(self, path, seed, align=32, log=None):
        rng = np.random.Generator(np.random.SFC64(seed))
        enc = sg.Writer
        with open(path, "wb", buffering=1 << 20) as f:
            f.write(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.w.kv)))
            for k, t, v in self.w.kv:
                f.write(enc._str(k) + struct.pack("<I", t) + self.w._val(t, v))
            off = 0
            for ten in self.tensors:
                f.write(enc._str(ten.name) + struct.pack("<I", len(ten.dims)))
                f.write(b"".join(struct.pack("<Q", d) for d in ten.dims))
                f.write(struct.pack("<IQ", QT[ten.qtype][0], off))
                off += (ten.nbytes + align - 1) // align * align
            f.write(b"\0" * (-f.tell() % align))
            done, t0 = 0, time.time()
            for i, ten in enumerate(self.tensors):
                d = ten.data(rng)
                assert d.nbytes == ten.nbytes, (ten.name, d.nbytes, ten.nbytes)
                f.write(memoryview(np.ascontiguousarray(d)).cast("B"))
                f.write(b"\0" * (-ten.nbytes % align))
                done += ten.nbytes
                if log and (i + 1) % 64 == 0:
                    log(f"  {i + 1}/{len(self.tensors)} tensors, {done / 1e9:.2f} GB, {time.time() - t0:.0f} s")


def vocab_keys():
    donor = sg.llama3_vocab(os.path.join(SHARED, "tokenizers", "llama3.2"))
    n_vocab = len(next(v for k, t, v in donor if k == "tokenizer.ggml.tokens")[1])
    return donor, n_vocab


def base_keys(m, ctx, n_embd, n_layer, n_ff, n_head, n_kv, head_dim, rope_base, rms_eps, n_vocab):
    # Same keys, in the same order, as synth_gguf.py's Arch.base_keys + b_gpt_oss / b_qwen3moe.
    m.key("context_length", "u32", ctx)
    m.key("embedding_length", "u32", n_embd)
    m.key("block_count", "u32", n_layer)
    m.key("feed_forward_length", "u32", n_ff)
    m.key("attention.head_count", "u32", n_head)
    m.key("attention.head_count_kv", "u32", n_kv)
    m.key("rope.freq_base", "f32", rope_base)
    m.key("attention.layer_norm_rms_epsilon", "f32", rms_eps)
    m.key("vocab_size", "u32", n_vocab)
    m.key("attention.key_length", "u32", head_dim)
    m.key("attention.value_length", "u32", head_dim)


def build_gpt_oss_20b(m, n_vocab, n_layer):
    E, H, KV, HD, NE, NU, FE = 2880, 64, 8, 64, 32, 4, 2880
    L = n_layer or 24
    base_keys(m, 131072, E, L, FE, H, KV, HD, 150000.0, 1e-5, n_vocab)
    m.key("attention.sliding_window", "u32", 128)          # pattern 2: even layers SWA, odd full
    m.key("expert_count", "u32", NE)
    m.key("expert_used_count", "u32", NU)
    m.key("expert_feed_forward_length", "u32", FE)
    m.key("rope.scaling.type", "str", "yarn")
    m.key("rope.scaling.factor", "f32", 32.0)
    m.key("rope.scaling.original_context_length", "u32", 4096)
    # ggml-org/gpt-oss-20b-GGUF (gpt-oss-20b-mxfp4.gguf, 11.27 GiB): 289 f32, 98 q8_0, 72 mxfp4
    # tensors = llama-quantize's MXFP4_MOE recipe: 3-D expert tensors MXFP4, every other quantizable
    # matrix (token_embd, output, attn_q/k/v/output) Q8_0; ffn_gate_inp, biases, sinks, norms F32.
    m.t("token_embd.weight", [E, n_vocab], "q8_0")
    m.t("output.weight", [E, n_vocab], "q8_0")
    m.t("output_norm.weight", [E], "f32", "norm")
    for i in range(L):
        p = f"blk.{i}."
        m.t(p + "attn_norm.weight", [E], "f32", "norm")
        m.t(p + "post_attention_norm.weight", [E], "f32", "norm")
        for name, n in (("attn_q", H * HD), ("attn_k", KV * HD), ("attn_v", KV * HD)):
            m.t(p + name + ".weight", [E, n], "q8_0")
            m.t(p + name + ".bias", [n], "f32", "bias")
        m.t(p + "attn_output.weight", [H * HD, E], "q8_0")
        m.t(p + "attn_output.bias", [E], "f32", "bias")
        m.t(p + "attn_sinks.weight", [H], "f32", "bias", std=0.5)
        m.t(p + "ffn_gate_inp.weight", [E, NE], "f32")
        m.t(p + "ffn_gate_inp.bias", [NE], "f32", "bias")
        m.t(p + "ffn_gate_exps.weight", [E, FE, NE], "mxfp4")
        m.t(p + "ffn_up_exps.weight", [E, FE, NE], "mxfp4")
        m.t(p + "ffn_down_exps.weight", [FE, E, NE], "mxfp4")
        m.t(p + "ffn_gate_exps.bias", [FE, NE], "f32", "bias")
        m.t(p + "ffn_up_exps.bias", [FE, NE], "f32", "bias")
        m.t(p + "ffn_down_exps.bias", [E, NE], "f32", "bias")
    return FTYPE_MXFP4_MOE


def use_more_bits(i, n):
    """llama-quant.cpp's use_more_bits(i_layer, n_layers)."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def build_qwen3moe_a3b(m, n_vocab, n_layer):
    E, H, KV, HD, NE, NU, FE = 2048, 32, 4, 128, 128, 8, 768
    L = n_layer or 24
    base_keys(m, 40960, E, L, 6144, H, KV, HD, 1e6, 1e-6, n_vocab)
    m.key("expert_count", "u32", NE)
    m.key("expert_used_count", "u32", NU)
    m.key("expert_feed_forward_length", "u32", FE)
    # llama-quantize Q4_K_M (llama_tensor_get_type_impl, n_expert = 128): default Q4_K; output Q6_K;
    # attn_v and ffn_down(_exps) Q6_K where use_more_bits(layer, n_layer), else Q4_K; attn_k stays
    # Q4_K (its Q8_0 bump is for n_expert == 8 only); ffn_gate_inp is never quantized (the converter
    # writes it F32); norms F32.
    m.t("token_embd.weight", [E, n_vocab], "q4_k")
    m.t("output.weight", [E, n_vocab], "q6_k")
    m.t("output_norm.weight", [E], "f32", "norm")
    for i in range(L):
        p = f"blk.{i}."
        more = "q6_k" if use_more_bits(i, L) else "q4_k"
        m.t(p + "attn_norm.weight", [E], "f32", "norm")
        m.t(p + "attn_q.weight", [E, H * HD], "q4_k")
        m.t(p + "attn_k.weight", [E, KV * HD], "q4_k")
        m.t(p + "attn_v.weight", [E, KV * HD], more)
        m.t(p + "attn_output.weight", [H * HD, E], "q4_k")
        m.t(p + "attn_q_norm.weight", [HD], "f32", "norm")
        m.t(p + "attn_k_norm.weight", [HD], "f32", "norm")
        m.t(p + "ffn_norm.weight", [E], "f32", "norm")
        m.t(p + "ffn_gate_inp.weight", [E, NE], "f32")
        m.t(p + "ffn_gate_exps.weight", [E, FE, NE], "q4_k")
        m.t(p + "ffn_up_exps.weight", [E, FE, NE], "q4_k")
        m.t(p + "ffn_down_exps.weight", [FE, E, NE], more)
    return FTYPE_Q4_K_M


def build_qwen35_2b(m, n_vocab, n_layer):
    # Qwen3.5-2B-like hybrid (dims as llama.cpp's qwen35 loader names a 24-layer, 2048-wide model
    # "2B"; the rest follow Qwen3-Next's layout scaled down): 3 Gated DeltaNet layers then one gated
    # attention layer; 8/2 heads of 256, partial RoPE (64 of 256 dims); linear attention 16 key and
    # 16 value heads of 128, conv kernel 4; SwiGLU 6144.
    E, H, KV, HD, FF = 2048, 8, 2, 256, 6144
    NKH, NVH, DS, DCONV = 16, 16, 128, 4
    L = n_layer or 24
    key_dim, val_dim = NKH * DS, NVH * DS
    conv_dim = 2 * key_dim + val_dim
    base_keys(m, 262144, E, L, FF, H, KV, HD, 1e7, 1e-6, n_vocab)
    m.key("rope.dimension_count", "u32", HD // 4)
    m.key("rope.dimension_sections", "arr", (sg.GT["i32"], [11, 11, 10, 0]))  # interleaved M-RoPE
    m.key("ssm.conv_kernel", "u32", DCONV)
    m.key("ssm.state_size", "u32", DS)
    m.key("ssm.group_count", "u32", NKH)
    m.key("ssm.time_step_rank", "u32", NVH)
    m.key("ssm.inner_size", "u32", val_dim)
    m.key("full_attention_interval", "u32", 4)
    # Q4_K_M as llama-quantize: Q4_K; attn_v / ffn_down Q6_K on use_more_bits layers; the fused
    # attn_qkv Q5_K; output Q6_K; ssm_conv1d, ssm_a, ssm_dt and norms F32.
    m.t("token_embd.weight", [E, n_vocab], "q4_k")
    m.t("output.weight", [E, n_vocab], "q6_k")
    m.t("output_norm.weight", [E], "f32", "norm")
    for i in range(L):
        p = f"blk.{i}."
        more = "q6_k" if use_more_bits(i, L) else "q4_k"
        m.t(p + "attn_norm.weight", [E], "f32", "norm")
        m.t(p + "post_attention_norm.weight", [E], "f32", "norm")
        if (i + 1) % 4 != 0:
            m.t(p + "attn_qkv.weight", [E, conv_dim], "q5_k")
            m.t(p + "attn_gate.weight", [E, val_dim], "q4_k")
            m.t(p + "ssm_conv1d.weight", [DCONV, conv_dim], "f32", "gauss", std=0.2)
            m.t(p + "ssm_dt.bias", [NVH], "f32", "bias", std=0.5)
            m.t(p + "ssm_a", [NVH], "f32", "neg", std=2.0)
            m.t(p + "ssm_beta.weight", [E, NVH], "q4_k")
            m.t(p + "ssm_alpha.weight", [E, NVH], "q4_k")
            m.t(p + "ssm_norm.weight", [DS], "f32", "norm")
            m.t(p + "ssm_out.weight", [val_dim, E], "q4_k")
        else:
            m.t(p + "attn_q.weight", [E, 2 * H * HD], "q4_k")
            m.t(p + "attn_k.weight", [E, KV * HD], "q4_k")
            m.t(p + "attn_v.weight", [E, KV * HD], more)
            m.t(p + "attn_output.weight", [H * HD, E], "q4_k")
            m.t(p + "attn_q_norm.weight", [HD], "f32", "norm")
            m.t(p + "attn_k_norm.weight", [HD], "f32", "norm")
        m.t(p + "ffn_gate.weight", [E, FF], "q4_k")
        m.t(p + "ffn_up.weight", [E, FF], "q4_k")
        m.t(p + "ffn_down.weight", [FF, E], more)
    return FTYPE_Q4_K_M


SHAPES = {
    "gpt-oss-20b": ("gpt-oss", build_gpt_oss_20b),
    "qwen3moe-a3b-half": ("qwen3moe", build_qwen3moe_a3b),
    "qwen35-2b": ("qwen35", build_qwen35_2b),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=list(SHAPES), required=True)
    ap.add_argument("--layers", type=int, default=0, help="number of layers (default: the shape's, 24 for both)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dry-run", action="store_true", help="print the tensor table's size and types, write nothing")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    log = lambda s: print(f"synth_moe: {s}", file=sys.stderr, flush=True)  # noqa: E731

    arch, build = SHAPES[a.shape]
    t0 = time.time()
    donor, n_vocab = vocab_keys()
    m = Model(arch)
    m.add("general.architecture", "str", arch)
    m.add("general.name", "str", f"synthetic-{a.shape}" + (f"-{a.layers}l" if a.layers else ""))
    ftype_slot = len(m.w.kv)
    m.add("general.file_type", "u32", 0)
    m.add("general.quantization_version", "u32", 2)
    ftype = build(m, n_vocab, a.layers)
    m.w.kv[ftype_slot] = ("general.file_type", sg.GT["u32"], ftype)
    for k, t, v in donor:
        m.add(k, t, v)

    by_type = {}
    for ten in m.tensors:
        by_type[ten.qtype] = by_type.get(ten.qtype, 0) + ten.nbytes
    total = sum(by_type.values())
    log(f"{a.shape}: {len(m.tensors)} tensors, {total / 1e9:.2f} GB of weights, n_vocab {n_vocab}, file type {ftype}; "
        + ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in sorted(by_type.items(), key=lambda kv: -kv[1])))
    if a.dry_run:
        return
    m.write(a.out, a.seed, log=log)
    log(f"wrote {a.out}: {os.path.getsize(a.out) / 1e9:.2f} GB in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()

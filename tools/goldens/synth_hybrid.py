#!/usr/bin/python3
"""Random-weight GGUFs of the hybrid architectures the shared synth_gguf.py has no shapes for,
for the cross-engine goldens (tests/golden/archs/, tools/goldens/gen_archs.mjs):

  granitehybrid-tiny   IBM Granite 4.0 H: Mamba-2 + NoPE attention layers, every layer with a
                       softmax-routed MoE FFN plus a shared expert; embedding / residual /
                       attention / logit multipliers
  granitehybrid-dense-tiny  the same with a dense SwiGLU FFN (Granite 4.0 H-Micro)
  lfm2moe-tiny         LFM2-MoE: short-conv / attention hybrid, 2 dense SwiGLU layers, then MoE
                       with sigmoid gating and a selection bias (exp_probs_b), normalised weights
  nemotron_h_moe-tiny  Nemotron 3 Nano: Mamba-2 / attention / MoE blocks; ReLU^2 experts without
                       gate, sigmoid gating with a selection bias, a shared expert, weight scale

The shapes are registered in the shared script's ARCH_SHAPES and written by its own main(), so
the command line, the key and tensor helpers (Arch), the f16/f32 weights and the donor
vocabulary are exactly synth_gguf.py's (every shape of the shared script works here too):

  synth_hybrid.py --shape lfm2moe-tiny --ftype f16 --vocab-from DONOR.gguf --seed 1 -o OUT.gguf

The shared synth_gguf.py is found in $HEARTH_SHARED/tools (else <repo>/../shared/tools). As a
`wrapper` (tests/unit/test_synth.h runs `python3 WRAPPER SHARED_SCRIPT --shape ...`) its first
argument may instead be the path of synth_gguf.py. Needs numpy (Debian's python3-numpy).
"""
import importlib.util
import os
import sys

import numpy as np

_here = os.path.dirname(os.path.abspath(__file__))


def _load_shared():
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") and sys.argv[1].endswith(".py"):
        path = sys.argv.pop(1)  # wrapper convention: the shared script comes first
    else:
        shared = os.environ.get("HEARTH_SHARED") or os.path.normpath(os.path.join(_here, "..", "..", "..", "shared"))
        path = os.path.join(shared, "tools", "synth_gguf.py")
    if not os.path.isfile(path):
        sys.exit(f"synth_hybrid.py: {path} not found; set HEARTH_SHARED to the shared folder")
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("synth_gguf", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sg = _load_shared()


def mamba2(m, p, E, n_head, head_dim, d_state, n_group, d_conv):
    """One Mamba-2 mixer (z|xBC|dt projection, causal conv with bias, A, D, grouped RMSNorm)."""
    d_inner = n_head * head_dim
    conv_ch = d_inner + 2 * n_group * d_state
    m.mat(p + "ssm_in.weight", [E, 2 * d_inner + 2 * n_group * d_state + n_head])
    m.f32(p + "ssm_conv1d.weight", [d_conv, conv_ch], m.gauss([d_conv, conv_ch], 0.2))
    m.bias(p + "ssm_conv1d.bias", conv_ch)
    m.f32(p + "ssm_dt.bias", [n_head], sg.a_inv_softplus(m.rng, n_head))
    m.f32(p + "ssm_a", [1, n_head], -np.exp(m.rng.uniform(0, np.log(16), n_head)))
    m.f32(p + "ssm_d", [1, n_head], np.ones(n_head))
    m.norm(p + "ssm_norm.weight", [d_inner // n_group, n_group])
    m.mat(p + "ssm_out.weight", [d_inner, E])


def mamba_keys(m, d_conv, d_inner, d_state, n_group, n_head):
    m.key("ssm.conv_kernel", "u32", d_conv); m.key("ssm.inner_size", "u32", d_inner)
    m.key("ssm.state_size", "u32", d_state); m.key("ssm.group_count", "u32", n_group)
    m.key("ssm.time_step_rank", "u32", n_head)


def b_granitehybrid(m, moe):
    # Granite 4.0 H layout: "M" Mamba-2, "*" attention (NoPE: rope.scaling.finetuned = false, as the
    # converter writes for hybrid Granite); every layer has ffn_norm + an FFN: MoE (top-2 of 8,
    # softmax) + a SwiGLU shared expert (H-Tiny / H-Small; the expert width is
    # feed_forward_length, as llama.cpp reads it), or dense SwiGLU (H-Micro).
    pattern = "MM*M*"
    E, H, KV, FE, FS, NE, NU, FF = 256, 4, 2, 64, 128, 8, 2, 384
    N_SH, D_STATE, N_G, D_CONV = 8, 32, 1, 4
    L, d_inner = len(pattern), 2 * E                       # llama.cpp supports expand = 2 only
    m.base_keys(4096, E, L, FE if moe else FF, H, [KV if c == "*" else 0 for c in pattern], 10000.0, rms_eps=1e-5)
    # Multipliers that keep the logits as spread as the other shapes' (a KLD test needs that) and
    # attention far from uniform: a softmax scale twice 1/sqrt(head_dim), Q/K weights std 0.05.
    m.key("logit_scale", "f32", 1.25); m.key("residual_scale", "f32", 0.22)
    m.key("embedding_scale", "f32", 12.0); m.key("attention.scale", "f32", 0.25)
    m.key("rope.scaling.finetuned", "bool", False)
    if moe:
        m.key("expert_count", "u32", NE); m.key("expert_used_count", "u32", NU)
        m.key("expert_shared_feed_forward_length", "u32", FS)
    mamba_keys(m, D_CONV, d_inner, D_STATE, N_G, N_SH)
    m.embed(E, tied=True); m.norm("output_norm.weight", E)
    HD = E // H
    for i, c in enumerate(pattern):
        p = f"blk.{i}."
        m.norm(p + "attn_norm.weight", E)
        if c == "M":
            mamba2(m, p, E, N_SH, d_inner // N_SH, D_STATE, N_G, D_CONV)
        else:
            m.mat(p + "attn_q.weight", [E, H * HD], std=0.05); m.mat(p + "attn_k.weight", [E, KV * HD], std=0.05)
            m.mat(p + "attn_v.weight", [E, KV * HD], std=0.06); m.mat(p + "attn_output.weight", [H * HD, E], std=0.06)
        m.norm(p + "ffn_norm.weight", E)
        if moe:
            m.mat(p + "ffn_gate_inp.weight", [E, NE]); m.experts(p, E, FE, NE)
            m.mat(p + "ffn_gate_shexp.weight", [E, FS]); m.mat(p + "ffn_up_shexp.weight", [E, FS])
            m.mat(p + "ffn_down_shexp.weight", [FS, E])
        else:
            m.ffn(p, E, FF)


def b_lfm2moe(m):
    # LFM2-8B-A1B layout: short-conv blocks with attention at layers 2 and 5; layers 0-1 dense
    # SwiGLU (leading_dense_block_count), then top-2 of 8 experts, sigmoid gating + exp_probs_b.
    E, L, H, KV, FF, L_CACHE = 256, 6, 4, 2, 384, 3
    NE, NU, FE, DENSE = 8, 2, 64, 2
    attn = [2, 5]
    m.base_keys(4096, E, L, FF, H, [KV if i in attn else 0 for i in range(L)], 1e6, rms_eps=1e-5)
    m.key("shortconv.l_cache", "u32", L_CACHE)
    m.key("expert_count", "u32", NE); m.key("expert_used_count", "u32", NU)
    m.key("expert_feed_forward_length", "u32", FE); m.key("leading_dense_block_count", "u32", DENSE)
    m.key("expert_gating_func", "u32", 2)                   # sigmoid
    m.embed(E, tied=True)
    m.norm("token_embd_norm.weight", E)                     # LFM2's final norm is stored under this name
    HD = E // H
    for i in range(L):
        p = f"blk.{i}."
        m.norm(p + "attn_norm.weight", E)
        if i in attn:
            m.qkvo(p, E, E, KV * HD)
            m.norm(p + "attn_q_norm.weight", HD); m.norm(p + "attn_k_norm.weight", HD)
        else:
            m.f32(p + "shortconv.conv.weight", [L_CACHE, E], m.gauss([L_CACHE, E], 0.3))
            m.mat(p + "shortconv.in_proj.weight", [E, 3 * E])   # B|C|x
            m.mat(p + "shortconv.out_proj.weight", [E, E])
        m.norm(p + "ffn_norm.weight", E)
        if i < DENSE:
            m.ffn(p, E, FF)
        else:
            m.mat(p + "ffn_gate_inp.weight", [E, NE]); m.bias(p + "exp_probs_b.bias", NE, std=0.5)
            m.experts(p, E, FE, NE)


def b_nemotron_h_moe(m):
    # Nemotron 3 Nano layout: "M" Mamba-2, "*" attention (no positional encoding), "E" MoE: top-2
    # of 8 ReLU^2 experts (up/down, no gate), sigmoid gating with exp_probs_b, weights normalised
    # and scaled by 2.5, plus a ReLU^2 shared expert. feed_forward_length marks the MoE layers.
    pattern = "ME*MEME"
    E, H, KV, HD, FE, FS, NE, NU = 256, 4, 2, 64, 96, 128, 8, 2
    N_SH, SH_DIM, D_STATE, N_G, D_CONV = 8, 32, 32, 2, 4
    L, d_inner = len(pattern), N_SH * SH_DIM
    m.base_keys(4096, E, L, [FE if c == "E" else 0 for c in pattern], H,
                [KV if c == "*" else 0 for c in pattern], 10000.0, rms_eps=1e-5, ln_eps=1e-5)
    m.key("attention.key_length", "u32", HD); m.key("attention.value_length", "u32", HD)
    mamba_keys(m, D_CONV, d_inner, D_STATE, N_G, N_SH)
    m.key("expert_count", "u32", NE); m.key("expert_used_count", "u32", NU)
    m.key("expert_feed_forward_length", "u32", FE); m.key("expert_shared_feed_forward_length", "u32", FS)
    m.key("expert_shared_count", "u32", 1); m.key("expert_group_count", "u32", 1)
    m.key("expert_weights_norm", "bool", True); m.key("expert_weights_scale", "f32", 2.5)
    m.embed(E, tied=False); m.norm("output_norm.weight", E)
    for i, c in enumerate(pattern):
        p = f"blk.{i}."
        m.norm(p + "attn_norm.weight", E)
        if c == "M":
            mamba2(m, p, E, N_SH, SH_DIM, D_STATE, N_G, D_CONV)
        elif c == "*":
            m.qkvo(p, E, H * HD, KV * HD)
        else:
            m.mat(p + "ffn_gate_inp.weight", [E, NE]); m.bias(p + "exp_probs_b.bias", NE, std=0.5)
            m.experts(p, E, FE, NE, gate=False)
            m.mat(p + "ffn_up_shexp.weight", [E, FS]); m.mat(p + "ffn_down_shexp.weight", [FS, E])


SHAPES = {  # shape -> (GGUF architecture, builder, what it exercises), as synth_gguf.ARCH_SHAPES
    "granitehybrid-tiny": ("granitehybrid", lambda m: b_granitehybrid(m, True),
                           "Granite 4.0 H: Mamba-2 / NoPE attention hybrid, softmax MoE + shared expert, "
                           "embedding/residual/attention/logit multipliers"),
    "granitehybrid-dense-tiny": ("granitehybrid", lambda m: b_granitehybrid(m, False),
                                 "Granite 4.0 H-Micro: granitehybrid-tiny with a dense SwiGLU FFN"),
    "lfm2moe-tiny": ("lfm2moe", b_lfm2moe,
                     "LFM2-MoE: short-conv / attention hybrid, leading dense layers, sigmoid MoE with expert bias"),
    "nemotron_h_moe-tiny": ("nemotron_h_moe", b_nemotron_h_moe,
                            "Nemotron 3 Nano: Mamba-2 / attention / ReLU^2 MoE (no gate) with selection bias, "
                            "shared expert, weight norm and scale"),
}

if __name__ == "__main__":
    sg.ARCH_SHAPES.update(SHAPES)
    sg.main()

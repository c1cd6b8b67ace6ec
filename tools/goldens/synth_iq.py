#!/usr/bin/env python3
"""Random-weight GGUFs in the codebook / ternary types synth_gguf.py does not offer (IQ2_XXS,
IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M, TQ1_0, TQ2_0), for the cross-engine goldens
(tests/golden/crossengine_iq/, tools/goldens/gen_crossengine.mjs).

It runs the shared synth_gguf.py with its block table extended: every block is random bytes
(every grid index, sign pattern and scale code is valid) with a small finite f16 d, exactly as
synth_gguf.py makes its legacy and K-quant files. IQ1_M keeps d in the top nibbles of its four
scale words, so those nibbles are set to the f16 of d. Deterministic for a given seed.

  synth_iq.py SYNTH_GGUF_PY --shape tiny --ftype iq2_xxs --vocab-from DONOR.gguf --seed 1 -o OUT.gguf
"""
import importlib.util, sys

import numpy as np

spec = importlib.util.spec_from_file_location("synth_gguf", sys.argv[1])
sg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sg)

# ggml type id, block elements, block bytes, offsets of the f16 d  (ggml-common.h layouts)
NEW = {
    "iq2_xxs": (16, 256, 66, [0]), "iq2_xs": (17, 256, 74, [0]), "iq3_xxs": (18, 256, 98, [0]),
    "iq1_s": (19, 256, 50, [0]), "iq3_s": (21, 256, 110, [0]), "iq2_s": (22, 256, 82, [0]),
    "iq1_m": (29, 256, 56, []), "tq1_0": (34, 256, 54, [52]), "tq2_0": (35, 256, 66, [64]),
}
FTYPES = {"iq2_xxs": 19, "iq2_xs": 20, "iq3_xxs": 23, "iq1_s": 24, "iq3_s": 26, "iq2_s": 28, "iq1_m": 31,
          "tq1_0": 36, "tq2_0": 37}
sg.QTYPES.update(NEW)
sg.FTYPE_ID.update(FTYPES)

base_rand = sg.rand_tensor


def rand_tensor(rng, dims, qtype):
    raw = base_rand(rng, dims, qtype)
    if qtype != "iq1_m":
        return raw
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 56).copy()
    d = (rng.random(len(blocks), dtype=np.float32) * 0.002 + 0.0005).astype(np.float16).view(np.uint16)
    for k in range(4):  # nibble k of d -> bits 12-15 of scale word k (bytes 48 + 2 k, 49 + 2 k)
        nib = ((d >> (4 * k)) & 15).astype(np.uint8)
        blocks[:, 49 + 2 * k] = (blocks[:, 49 + 2 * k] & 0x0F) | (nib << 4)
    return blocks.tobytes()


sg.rand_tensor = rand_tensor
sys.argv = [sys.argv[1]] + sys.argv[2:]
sg.main()

// Writes the cross-engine goldens in tests/golden/crossengine/ (checked by
// tests/unit/test_crossengine.cpp): llama.cpp's next-token logits for synthetic random-weight models
// in every file type that tools/synth_gguf.py (shared folder) offers.
//
// For each ftype: synth_gguf.py --shape tiny --ftype <ftype> --vocab-from models/stories260K.gguf
// --seed 1 writes a GGUF (512-token vocab, 256 wide, 4 layers, n_ff 768) into a temp dir; llama.cpp
// evaluates the same 256 tokens in ONE batch from position 0 and the logits at every position are
// stored as little-endian float16, [256][512] row-major, in <ftype>.bin. index.json holds the rest:
// reference, the synth command, context settings, tokens, and per type the GGUF's size, sha256 and
// FNV-1a 64 (so the test can tell when synth_gguf.py's output changed), the .bin name and
// llama.cpp's argmax per position (taken from the float32 logits, ties to the lowest id), and
// `self_consistency`: llama.cpp's own agreement between F16 and F32 KV caches on the same batch
// (some random-weight files are so ill-conditioned that llama.cpp misses cos 0.999 / top-1 99%
// against itself; the test then bounds hearth by twice llama.cpp's own deviation).
// Context 512 (not 256): with a full context node-llama-cpp shifts it before the last token, which
// made position 255 differ.
//
// Two sets, same model shape, tokens and context: `crossengine/` (every --ftype synth_gguf.py
// offers) and `crossengine_iq/` (the codebook and ternary types IQ2_XXS ... TQ2_0, written by
// tools/goldens/synth_iq.py, which runs synth_gguf.py with those block layouts added).
// `node gen_crossengine.mjs iq` regenerates only the second set, `base` only the first.
//
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU only, prebuilt
// binaries (build: "never"), as in gen_goldens.mjs. Run via tools/goldens/regen.sh.
// Shared data: $HEARTH_SHARED, else <repo>/../shared.
import crypto from "node:crypto";
import {execFileSync} from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, GgmlType} from "node-llama-cpp";
import {fnv1a64} from "./lib/fnv.mjs";
import {makeTokens as makeTokensFrom, toF16, toJson} from "./lib/goldens.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const shared = process.env.HEARTH_SHARED ? path.resolve(process.env.HEARTH_SHARED) : path.resolve(repo, "..", "shared");

const nlcDir = path.join(here, "node_modules", "node-llama-cpp");
const NLC_VERSION = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
const LLAMA_CPP_RELEASE = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "llama.cpp.info.json"), "utf8")).tag;

const SETS = {
  // Every --ftype synth_gguf.py offers.
  base: {
    dir: "crossengine",
    ftypes: ["f32", "f16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"],
    synth: {
      python: "/usr/bin/python3",
      script: "tools/synth_gguf.py",          // relative to the shared folder
      shape: "tiny",
      vocab_from: "models/stories260K.gguf",  // relative to the shared folder
      seed: 1,
    },
  },
  // The types synth_gguf.py lacks: its generator run through tools/goldens/synth_iq.py (repository).
  iq: {
    dir: "crossengine_iq",
    ftypes: ["iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m", "tq1_0", "tq2_0"],
    synth: {
      python: "/usr/bin/python3",
      wrapper: "tools/goldens/synth_iq.py",   // relative to the repository; first argument: the shared script
      script: "tools/synth_gguf.py",
      shape: "tiny",
      vocab_from: "models/stories260K.gguf",
      seed: 1,
    },
  },
};
const N_TOKENS = 256;
const N_VOCAB = 512;
const TOKEN_SEED = 20240601;

const CTX = {
  contextSize: 512,  // > n_tokens: a full context would make node-llama-cpp shift it before the last token
  batchSize: 256,  // == N_TOKENS: all tokens in one llama_decode call
  sequences: 1,
  threads: 1,
  flashAttention: false,
  kvCacheType: "F16",
};

// ---- helpers -------------------------------------------------------------------------------
const makeTokens = () => makeTokensFrom(N_TOKENS, N_VOCAB, TOKEN_SEED);

function argmax(l) {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
  return best;
}


// Per position cosine and argmax agreement of two [n][n_vocab] logit sets.
function compare(a, b) {
  let sum = 0, min = 1, agree = 0;
  for (let i = 0; i < a.length; i++) {
    let d = 0, na = 0, nb = 0;
    for (let v = 0; v < N_VOCAB; v++) { d += a[i][v] * b[i][v]; na += a[i][v] ** 2; nb += b[i][v] ** 2; }
    const c = d / Math.sqrt(na * nb);
    sum += c; min = Math.min(min, c);
    if (argmax(a[i]) === argmax(b[i])) agree++;
  }
  const r6 = (x) => Number(x.toFixed(6));
  return {mean_cos: r6(sum / a.length), min_cos: r6(min), top1_agree: agree};
}

async function evalAll(model, kvType) {
  const ctx = await model.createContext({
    contextSize: CTX.contextSize, batchSize: CTX.batchSize, sequences: CTX.sequences, threads: CTX.threads,
    flashAttention: CTX.flashAttention, experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType,
  });
  try {
    const kvK = GgmlType[ctx.kvCacheKeyType] ?? ctx.kvCacheKeyType;
    const kvV = GgmlType[ctx.kvCacheValueType] ?? ctx.kvCacheValueType;
    if (ctx.contextSize !== CTX.contextSize || ctx.batchSize !== CTX.batchSize || ctx.flashAttention !== CTX.flashAttention ||
        kvK !== kvType || kvV !== kvType || ctx.idealThreads !== CTX.threads)
      throw new Error(`unexpected context: ${JSON.stringify({n_ctx: ctx.contextSize, n_batch: ctx.batchSize,
        fa: ctx.flashAttention, kvK, kvV, threads: ctx.idealThreads})}`);
    const out = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t, {generateNext: RAW}]));
    return out.map((o, i) => {
      const map = o?.next?.logits;
      if (map == null || map.size !== N_VOCAB) throw new Error(`expected ${N_VOCAB} logits at ${i}, got ${map?.size}`);
      const l = new Float64Array(N_VOCAB).fill(NaN);
      for (const [tok, v] of map) l[tok] = v;
      if (l.some(Number.isNaN)) throw new Error(`missing logits at ${i}`);
      const best = argmax(l);
      if (o.next.token !== best && l[o.next.token] !== l[best]) throw new Error(`greedy sampler disagrees at ${i}`);
      return l;
    });
  } finally {
    await ctx.dispose();
  }
}

// ---- run -----------------------------------------------------------------------------------
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});
const RAW = {logits: true, token: true, options: {temperature: 0}};
const tokens = makeTokens();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-crossengine-"));

const only = process.argv[2];
try {
  for (const [setName, set] of Object.entries(SETS)) {
    if (only && only !== setName) continue;
    await generateSet(set);
  }
} finally {
  fs.rmSync(tmp, {recursive: true, force: true});
  await llama.dispose();
}

async function generateSet({dir, ftypes: FTYPES, synth: SYNTH}) {
const outDir = path.join(repo, "tests", "golden", dir);
fs.mkdirSync(outDir, {recursive: true});
const types = {};
  for (const ftype of FTYPES) {
    const gguf = path.join(tmp, `tiny-${ftype}.gguf`);
    const synthArgs = ["--shape", SYNTH.shape, "--ftype", ftype, "--vocab-from", path.join(shared, SYNTH.vocab_from),
      "--seed", String(SYNTH.seed), "-o", gguf];
    const pre = SYNTH.wrapper ? [path.join(repo, SYNTH.wrapper), path.join(shared, SYNTH.script)]
                              : [path.join(shared, SYNTH.script)];
    execFileSync(SYNTH.python, [...pre, ...synthArgs], {stdio: "inherit"});
    const bytes = fs.readFileSync(gguf);

    const model = await llama.loadModel({modelPath: gguf, gpuLayers: 0});
    const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
    if (nVocab !== N_VOCAB) throw new Error(`n_vocab ${nVocab}`);
    const rows = await evalAll(model, CTX.kvCacheType);
    // llama.cpp against itself: the same batch with an F32 KV cache (no F16 rounding of K/V and Q).
    // Random-weight files can be ill-conditioned (see index.json "self_consistency"); this records
    // how far a rounding-level change moves llama.cpp's own logits, which bounds what any engine
    // can be expected to match.
    const rows32 = await evalAll(model, "F32");
    await model.dispose();

    const bin = Buffer.alloc(N_TOKENS * N_VOCAB * 2);
    const top1 = [];
    let maxAbs = 0;
    rows.forEach((l, i) => {
      top1.push(argmax(l));
      for (let v = 0; v < N_VOCAB; v++) {
        maxAbs = Math.max(maxAbs, Math.abs(l[v]));
        bin.writeUInt16LE(toF16(l[v]), (i * N_VOCAB + v) * 2);
      }
    });
    const binName = `${ftype}.bin`;
    fs.writeFileSync(path.join(outDir, binName), bin);
    types[ftype] = {
      gguf_size: bytes.length,
      gguf_sha256: crypto.createHash("sha256").update(bytes).digest("hex"),
      gguf_fnv1a64: fnv1a64(bytes),
      logits_file: binName,
      top1,
      self_consistency: compare(rows, rows32),
    };
    console.log(`crossengine: ${ftype}: gguf ${bytes.length} bytes, max |logit| ${maxAbs.toFixed(3)}, self ${JSON.stringify(types[ftype].self_consistency)}, wrote ${path.relative(repo, path.join(outDir, binName))}`);
  }

const index = {
  reference: {
    engine: "llama.cpp via node-llama-cpp",
    node_llama_cpp: NLC_VERSION,
    llama_cpp_release: LLAMA_CPP_RELEASE,
    backend: "CPU (getLlama({gpu: false, build: 'never'}), prebuilt binaries)",
  },
  synth: {
    command: `${SYNTH.python} ${SYNTH.wrapper ? `<repo>/${SYNTH.wrapper} ` : ""}<shared>/${SYNTH.script} --shape ${SYNTH.shape} --ftype <ftype> --vocab-from <shared>/${SYNTH.vocab_from} --seed ${SYNTH.seed} -o <file>`,
    ...SYNTH,
  },
  context: {
    context_size: CTX.contextSize,
    batch_size: CTX.batchSize,
    ubatch_size: CTX.batchSize,
    sequences: CTX.sequences,
    threads: CTX.threads,
    flash_attention: CTX.flashAttention,
    kv_cache_type_k: CTX.kvCacheType,
    kv_cache_type_v: CTX.kvCacheType,
  },
  evaluation: "all tokens in one llama_decode batch from position 0, raw next-token logits at every position",
  logits_format: "little-endian IEEE float16, [n_tokens][n_vocab] row-major (round to nearest even of the float32 logit)",
  self_consistency: "llama.cpp (this context, F16 KV) against llama.cpp with an F32 KV cache, same batch: mean/min cosine over positions and argmax agreement count; a rounding-level perturbation, so this is the agreement floor for the file",
  top1: "llama.cpp's argmax of the float32 logits at each position, ties to the lowest id",
  hash: "gguf_fnv1a64 = FNV-1a 64 (offset 0xcbf29ce484222325, prime 0x100000001b3) of the whole GGUF file, hex",
  n_tokens: N_TOKENS,
  n_vocab: N_VOCAB,
  token_seed: TOKEN_SEED,
  tokens,
  ftypes: FTYPES,
  types,
};
const indexFile = path.join(outDir, "index.json");
fs.writeFileSync(indexFile, toJson(index) + "\n");
console.log(`crossengine: wrote ${path.relative(repo, indexFile)}`);
}

// Writes the per-architecture cross-engine goldens in tests/golden/archs/ (checked by
// tests/unit/test_archs.cpp): llama.cpp's next-token logits for random-weight models of each
// architecture shape that tools/synth_gguf.py (shared folder) offers and hearth implements.
//
// For each shape: synth_gguf.py --shape <shape> --vocab-from models/stories260K.gguf --seed 1
// writes an F16 GGUF (512-token vocabulary) into a temp dir (shapes the shared script lacks come
// from a script in this repository, SCRIPTS below, run in front of the shared one:
// `python3 <repo>/<script> <shared>/tools/synth_gguf.py --shape ...`, recorded as the shape's
// `script`, which tests/unit/test_archs.cpp runs the same way); llama.cpp evaluates the same 256
// tokens in ONE batch from position 0, and the logits at every position are stored as
// little-endian float16, [256][512] row-major, in <shape>.bin. index.json holds the rest: the
// reference, the synth command, context settings, tokens, and per shape the GGUF's size and
// FNV-1a 64 (so the test can tell when synth_gguf.py's output changed) and `self_kld`:
// llama.cpp's own mean KL divergence between its F16-KV and F32-KV logits on the same batch (the
// size of a rounding-level change on this file).
//
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU only, prebuilt
// binaries (build: "never"). Run via tools/goldens/regen.sh, or `node gen_archs.mjs [shape...]`.
// Shared data: $HEARTH_SHARED, else <repo>/../shared.
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
const outDir = path.join(repo, "tests", "golden", "archs");

const nlcDir = path.join(here, "node_modules", "node-llama-cpp");
const NLC_VERSION = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
const LLAMA_CPP_RELEASE = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "llama.cpp.info.json"), "utf8")).tag;

// The architecture shapes hearth implements (synth_gguf.py --shape names).
const ALL_SHAPES = ["qwen3moe-tiny", "gpt-oss-tiny", "llama4-tiny", "lfm2-tiny", "qwen35-tiny", "qwen35moe-tiny", "nemotron_h-tiny", "deepseek2-tiny",
                    "granitehybrid-tiny", "granitehybrid-dense-tiny", "lfm2moe-tiny", "nemotron_h_moe-tiny"];
const SHAPES = process.argv.length > 2 ? process.argv.slice(2) : ALL_SHAPES;
const SYNTH = {
  python: "/usr/bin/python3",
  script: "tools/synth_gguf.py",          // relative to the shared folder
  ftype: "f16",
  vocab_from: "models/stories260K.gguf",  // relative to the shared folder
  seed: 1,
};
// Shapes written by a repository script (relative to the repo) that takes the shared script as its
// first argument and registers more shapes in it.
const SCRIPTS = {
  "granitehybrid-tiny": "tools/goldens/synth_hybrid.py",
  "granitehybrid-dense-tiny": "tools/goldens/synth_hybrid.py",
  "lfm2moe-tiny": "tools/goldens/synth_hybrid.py",
  "nemotron_h_moe-tiny": "tools/goldens/synth_hybrid.py",
};
const N_TOKENS = 256;
const N_VOCAB = 512;
const TOKEN_SEED = 20240601;
const CTX = {contextSize: 512, batchSize: 256, sequences: 1, threads: 1, flashAttention: false, kvCacheType: "F16"};

const makeTokens = () => makeTokensFrom(N_TOKENS, N_VOCAB, TOKEN_SEED);


// Mean over positions of KL(softmax(a) || softmax(b)), in nats.
function meanKld(a, b) {
  const logSoftmax = (l) => {
    let m = -Infinity;
    for (const v of l) m = Math.max(m, v);
    let s = 0;
    for (const v of l) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    return Array.from(l, (v) => v - lse);
  };
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const la = logSoftmax(a[i]), lb = logSoftmax(b[i]);
    for (let v = 0; v < N_VOCAB; v++) sum += Math.exp(la[v]) * (la[v] - lb[v]);
  }
  return sum / a.length;
}

async function evalAll(model, kvType) {
  const ctx = await model.createContext({
    contextSize: CTX.contextSize, batchSize: CTX.batchSize, sequences: CTX.sequences, threads: CTX.threads,
    flashAttention: CTX.flashAttention, experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType,
  });
  try {
    const kvK = GgmlType[ctx.kvCacheKeyType] ?? ctx.kvCacheKeyType;
    if (ctx.contextSize !== CTX.contextSize || ctx.batchSize !== CTX.batchSize || kvK !== kvType)
      throw new Error(`unexpected context: ${JSON.stringify({n_ctx: ctx.contextSize, n_batch: ctx.batchSize, kvK})}`);
    const out = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t, {generateNext: RAW}]));
    return out.map((o, i) => {
      const map = o?.next?.logits;
      if (map == null || map.size !== N_VOCAB) throw new Error(`expected ${N_VOCAB} logits at ${i}, got ${map?.size}`);
      const l = new Float64Array(N_VOCAB).fill(NaN);
      for (const [tok, v] of map) l[tok] = v;
      if (l.some(Number.isNaN)) throw new Error(`missing logits at ${i}`);
      return l;
    });
  } finally {
    await ctx.dispose();
  }
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});
const RAW = {logits: true, token: true, options: {temperature: 0}};
const tokens = makeTokens();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-archs-"));
fs.mkdirSync(outDir, {recursive: true});
const indexFile = path.join(outDir, "index.json");
const old = fs.existsSync(indexFile) ? JSON.parse(fs.readFileSync(indexFile, "utf8")) : {shapes: {}};
const shapes = {...old.shapes};
try {
  for (const shape of SHAPES) {
    const gguf = path.join(tmp, `${shape}.gguf`);
    const pre = SCRIPTS[shape] ? [path.join(repo, SCRIPTS[shape])] : [];
    execFileSync(SYNTH.python, [...pre, path.join(shared, SYNTH.script), "--shape", shape, "--ftype", SYNTH.ftype,
      "--vocab-from", path.join(shared, SYNTH.vocab_from), "--seed", String(SYNTH.seed), "-o", gguf], {stdio: "inherit"});
    const bytes = fs.readFileSync(gguf);
    const model = await llama.loadModel({modelPath: gguf, gpuLayers: 0});
    const rows = await evalAll(model, CTX.kvCacheType);
    const rows32 = await evalAll(model, "F32");
    await model.dispose();
    const bin = Buffer.alloc(N_TOKENS * N_VOCAB * 2);
    rows.forEach((l, i) => { for (let v = 0; v < N_VOCAB; v++) bin.writeUInt16LE(toF16(l[v]), (i * N_VOCAB + v) * 2); });
    fs.writeFileSync(path.join(outDir, `${shape}.bin`), bin);
    shapes[shape] = {
      ...(SCRIPTS[shape] ? {script: SCRIPTS[shape]} : {}),
      architecture: model.fileInfo?.metadata?.general?.architecture ?? null,
      gguf_size: bytes.length,
      gguf_fnv1a64: fnv1a64(bytes),
      logits_file: `${shape}.bin`,
      self_kld: Number(meanKld(rows, rows32).toExponential(3)),
    };
    console.log(`archs: ${shape}: ${JSON.stringify(shapes[shape])}`);
  }
} finally {
  fs.rmSync(tmp, {recursive: true, force: true});
  await llama.dispose();
}

const index = {
  reference: {engine: "llama.cpp via node-llama-cpp", node_llama_cpp: NLC_VERSION, llama_cpp_release: LLAMA_CPP_RELEASE,
              backend: "CPU (getLlama({gpu: false, build: 'never'}), prebuilt binaries)"},
  synth: {command: `${SYNTH.python} <shared>/${SYNTH.script} --shape <shape> --ftype ${SYNTH.ftype} --vocab-from <shared>/${SYNTH.vocab_from} --seed ${SYNTH.seed} -o <file>`, ...SYNTH},
  shape_script: "a shape's `script` (relative to the repository) runs in front of the shared script: " +
    `${SYNTH.python} <repo>/<script> <shared>/${SYNTH.script} --shape <shape> ...`,
  context: {context_size: CTX.contextSize, batch_size: CTX.batchSize, threads: CTX.threads, flash_attention: CTX.flashAttention,
            kv_cache_type: CTX.kvCacheType},
  evaluation: "all tokens in one llama_decode batch from position 0, raw next-token logits at every position",
  logits_format: "little-endian IEEE float16, [n_tokens][n_vocab] row-major (round to nearest even of the float32 logit)",
  self_kld: "llama.cpp (F16 KV) against llama.cpp with an F32 KV cache, same batch: mean KL divergence in nats",
  n_tokens: N_TOKENS,
  n_vocab: N_VOCAB,
  token_seed: TOKEN_SEED,
  tokens,
  shapes,
};
fs.writeFileSync(indexFile, toJson(index) + "\n");
console.log(`archs: wrote ${path.relative(repo, indexFile)}`);

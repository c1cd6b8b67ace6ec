// Writes tests/golden/perplexity_stories260K.json: llama.cpp's perplexity of stories260K on
// war-and-peace.txt, computed from llama.cpp's own logits with llama-perplexity's chunking
// (tools/perplexity/perplexity.cpp, perplexity()):
//   - the whole text is tokenized once, BOS first when the vocab says so (add_bos_token, default
//     true for SPM vocabs), as common_tokenize(ctx, text, add_special=true) does;
//   - chunk i is tokens [i*n_ctx, (i+1)*n_ctx); its first token is replaced by BOS;
//   - the chunk is evaluated from position 0 in an empty cache; only the logits at positions
//     first = n_ctx/2 .. n_ctx-2 are scored, each against the next token of the chunk
//     (n_ctx - 1 - first tokens per chunk);
//   - nll = -log_softmax(logits)[next]; PPL = exp(mean nll); stderr = PPL * sqrt((mean(nll^2) -
//     mean(nll)^2) / (count - 1)), llama.cpp's "Final estimate: PPL = X +/- Y".
// The log-softmax is computed here in double precision from the float logits.
// Both a F32 and a F16 K/V cache are evaluated (hearth's test compares its F32-cache run).
//
// Also tests/golden/perplexity_random_tiny.json: the same measurement on synth_gguf.py's random
// "tiny" model (F16 weights, stories260K's vocab, head size 32, the crossengine goldens' model),
// whose heads are wide enough for a Q8_0 cache: F16 and Q8_0 K/V with flash attention (llama.cpp
// quantizes V only with flash attention), so the test can bound hearth's Q8_0 cache by llama.cpp's
// own F16 -> Q8_0 delta.
//
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU only, prebuilt
// binaries (build: "never"), 1 thread. Shared data: $HEARTH_SHARED, else <repo>/../shared.
import {execFileSync} from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, GgmlType} from "node-llama-cpp";
import {fnv1a64 as fnv1a64Bytes} from "./lib/fnv.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const shared = process.env.HEARTH_SHARED ? path.resolve(process.env.HEARTH_SHARED) : path.resolve(repo, "..", "shared");
const goldenDir = path.join(repo, "tests", "golden");

const nlcDir = path.join(here, "node_modules", "node-llama-cpp");
const NLC_VERSION = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
const LLAMA_CPP_RELEASE = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "llama.cpp.info.json"), "utf8")).tag;

const MODEL = "models/stories260K.gguf";
const TEXT = "data/war-and-peace.txt";
const N_CTX = 128;     // the model's training context (llama.context_length = 128)
const N_CHUNKS = 100;  // 100 * 63 = 6300 scored tokens
const THREADS = 1;     // see README: ggml's busy-waiting threads crawl on a loaded machine

// FNV-1a 64 over the tokens as little-endian int32 bytes (hearth's test recomputes it).
function fnv1a64(tokens) {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = (1n << 64n) - 1n;
  const bytes = new Uint8Array(Int32Array.from(tokens).buffer);
  for (const b of bytes) h = ((h ^ BigInt(b)) * prime) & mask;
  return "0x" + h.toString(16).padStart(16, "0");
}

function toJson(value, indent = "") {
  const next = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((v) => typeof v === "number")) return "[" + value.map(numStr).join(", ") + "]";
    return "[\n" + value.map((v) => next + toJson(v, next)).join(",\n") + "\n" + indent + "]";
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    return "{\n" + keys.map((k) => next + JSON.stringify(k) + ": " + toJson(value[k], next)).join(",\n") + "\n" + indent + "}";
  }
  if (typeof value === "number") return numStr(value);
  return JSON.stringify(value);
}
function numStr(x) {
  if (!Number.isFinite(x)) throw new Error(`non-finite number in golden: ${x}`);
  return JSON.stringify(x);
}
const round9 = (x) => Number(x.toPrecision(9));

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});

// nCtx: context = chunk size; runSpecs: [[kvType, flashAttention], ...]; extra: fields added to the golden (model provenance).
async function writeGolden(modelPath, modelLabel, nCtx, runSpecs, extra, outName, ctxSize = nCtx) {
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const ggml = model.fileInfo.metadata.tokenizer.ggml;
const addBos = ggml.add_bos_token ?? (ggml.model === "llama");
const bos = model.tokens.bos;

const text = fs.readFileSync(path.join(shared, TEXT), "utf8");
const body = model.tokenize(text);  // specialTokens=false; never adds BOS
const tokens = addBos ? [bos, ...body] : Array.from(body);
if (tokens.length < 2 * nCtx) throw new Error("text too short");
const nChunks = Math.min(N_CHUNKS, Math.floor(tokens.length / nCtx));
const first = nCtx / 2;

const RAW = {logits: true, token: false, options: {temperature: 0}};

function logitsOf(map) {
  if (map == null || map.size !== nVocab) throw new Error(`expected ${nVocab} logits, got ${map?.size}`);
  const out = new Float64Array(nVocab).fill(NaN);
  for (const [tok, v] of map) out[tok] = v;
  if (out.some(Number.isNaN)) throw new Error("missing logits");
  return out;
}

// -log_softmax(logits)[tok] in double precision.
function nllOf(logits, tok) {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return max + Math.log(sum) - logits[tok];
}

async function run(kvType, flashAttention = false) {
  const ctx = await model.createContext({
    contextSize: ctxSize, batchSize: nCtx, sequences: 1, threads: THREADS, flashAttention,
    experimentalKvCacheKeyType: kvType, experimentalKvCacheValueType: kvType,
  });
  const kvK = GgmlType[ctx.kvCacheKeyType] ?? ctx.kvCacheKeyType;
  const kvV = GgmlType[ctx.kvCacheValueType] ?? ctx.kvCacheValueType;
  if (ctx.contextSize !== ctxSize || ctx.batchSize !== nCtx || kvK !== kvType || kvV !== kvType ||
      ctx.flashAttention !== flashAttention)
    throw new Error(`unexpected context: ${JSON.stringify({n_ctx: ctx.contextSize, n_batch: ctx.batchSize, kvK, kvV})}`);
  try {
    const seq = ctx.getSequence();
    let nll = 0, nll2 = 0, count = 0;
    const chunks = [];
    for (let i = 0; i < nChunks; i++) {
      await seq.clearHistory();
      const chunk = tokens.slice(i * nCtx, (i + 1) * nCtx);
      const input = chunk.map((t, k) => {
        const tok = k === 0 && addBos ? bos : t;
        // Logits only where they are scored: positions first .. n_ctx-2.
        return k >= first && k < nCtx - 1 ? [tok, {generateNext: RAW}] : tok;
      });
      const out = await seq.controlledEvaluate(input);
      let chunkNll = 0;
      for (let k = first; k < nCtx - 1; k++) {
        const v = nllOf(logitsOf(out[k]?.next?.logits), chunk[k + 1]);
        chunkNll += v;
        nll += v;
        nll2 += v * v;
        count++;
      }
      chunks.push({nll_sum: round9(chunkNll), running_ppl: round9(Math.exp(nll / count))});
    }
    const mean = nll / count;
    const ppl = Math.exp(mean);
    const var_ = nll2 / count - mean * mean;
    const stderr = ppl * Math.sqrt(var_ / (count - 1));
    return {
      kv_cache_type: kvType,
      flash_attention: flashAttention,
      ppl: round9(ppl),
      ppl_stderr: round9(stderr),
      tokens_scored: count,
      chunks,
    };
  } finally {
    await ctx.dispose();
  }
}

const runs = [];
for (const [kv, fa] of runSpecs) runs.push(await run(kv, fa));
const golden = {
  model: modelLabel,
  ...extra,
  text: TEXT,
  reference: {
    engine: "llama.cpp via node-llama-cpp",
    node_llama_cpp: NLC_VERSION,
    llama_cpp_release: LLAMA_CPP_RELEASE,
    backend: "CPU (getLlama({gpu: false, build: 'never'}), prebuilt binaries), 1 thread, batch = ctx" +
             (ctxSize !== nCtx ? ` (chunks of ${nCtx} in a context of ${ctxSize})` : ""),
  },
  method: "llama-perplexity: BOS + tokenize(text); chunks of n_ctx with BOS as first token; " +
          "score positions n_ctx/2 .. n_ctx-2 against the next token; log-softmax in double",
  n_vocab: nVocab,
  n_ctx: nCtx,
  n_chunks: nChunks,
  add_bos: addBos,
  bos,
  token_count: tokens.length,
  token_fnv1a64: fnv1a64(tokens),
  used_token_fnv1a64: fnv1a64(tokens.slice(0, nChunks * nCtx)),
  first_tokens: tokens.slice(0, 32),
  runs,
};
const file = path.join(goldenDir, outName);
fs.writeFileSync(file, toJson(golden) + "\n");
console.log(`wrote ${path.relative(repo, file)}: ` +
            runs.map((r) => `${r.kv_cache_type}${r.flash_attention ? "+FA" : ""} ${r.ppl}`).join(", "));
await model.dispose();
}

// Without flash attention (llama.cpp's default CPU path), then with it (hearth's only path).
// Quantized caches need head sizes that are multiples of 32; stories260K's is 8.
await writeGolden(path.join(shared, MODEL), MODEL, N_CTX, [["F32", false], ["F16", false], ["F16", true]], {},
                  "perplexity_stories260K.json");

// The random tiny model, synthesized exactly as gen_crossengine.mjs does for its f16 golden.
const SYNTH = {python: "/usr/bin/python3", script: "tools/synth_gguf.py", shape: "tiny", ftype: "f16",
               vocab_from: "models/stories260K.gguf", seed: 1};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-ppl-"));
const gguf = path.join(tmp, "tiny-f16.gguf");
execFileSync(SYNTH.python, [path.join(shared, SYNTH.script), "--shape", SYNTH.shape, "--ftype", SYNTH.ftype,
                            "--vocab-from", path.join(shared, SYNTH.vocab_from), "--seed", String(SYNTH.seed),
                            "-o", gguf], {stdio: "ignore"});
const bytes = fs.readFileSync(gguf);
// Chunks of 256 (llama.cpp rounds smaller contexts up to 256) in a context of 512: a full context
// makes node-llama-cpp shift it, which llama.cpp cannot do to a Q8_0 cache (it crashes).
await writeGolden(gguf, "synth:tiny-f16", 256, [["F16", true], ["Q8_0", true]],
                  {synth: SYNTH, gguf_size: bytes.length, gguf_fnv1a64: fnv1a64Bytes(bytes),
                   gguf_sha256: crypto.createHash("sha256").update(bytes).digest("hex")},
                  "perplexity_random_tiny.json", 512);
fs.rmSync(tmp, {recursive: true, force: true});

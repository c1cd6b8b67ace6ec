// Writes the llama.cpp reference goldens in tests/golden/ (schemas: tests/golden/README.md):
//   stories260K_greedy.json, stories260K_logits.json, stories260K_logits_kvf32.json, stories260K_logits_fa.json,
//   tokenize_stories260K.json, tokenize_llama2-tiny-random.json.
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU only,
// prebuilt binaries (build: "never"). Run via tools/goldens/regen.sh.
//
// Shared data: $HEARTH_SHARED, else <repo>/../shared.
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama, GgmlType} from "node-llama-cpp";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const shared = process.env.HEARTH_SHARED ? path.resolve(process.env.HEARTH_SHARED) : path.resolve(repo, "..", "shared");
const goldenDir = path.join(repo, "tests", "golden");
const corpusPath = path.join(repo, "tests", "data", "tokenizer_corpus.json");

const nlcDir = path.join(here, "node_modules", "node-llama-cpp");
const NLC_VERSION = JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version;
const LLAMA_CPP_RELEASE = JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "llama.cpp.info.json"), "utf8")).tag;

// ---- context configuration (kept plain and recorded in the goldens) -----------------------
const CTX = {
  contextSize: 128,
  batchSize: 128,  // >= every token sequence we evaluate, so a prompt is one llama_decode call
  sequences: 1,
  threads: 1,
  flashAttention: false,
  kvCacheType: "F16",  // K and V
};

const reference = {
  engine: "llama.cpp via node-llama-cpp",
  node_llama_cpp: NLC_VERSION,
  llama_cpp_release: LLAMA_CPP_RELEASE,  // node-llama-cpp's llama/llama.cpp.info.json "tag"
  backend: "CPU (getLlama({gpu: false, build: 'never'}), prebuilt binaries)",
};

// ---- JSON output: pretty objects, number arrays on one line, stable key order -------------
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
function writeGolden(name, obj) {
  const file = path.join(goldenDir, name);
  fs.writeFileSync(file, toJson(obj) + "\n");
  console.log(`wrote ${path.relative(repo, file)} (${fs.statSync(file).size} bytes)`);
}
const round6 = (x) => Number(Math.fround(x).toPrecision(6));

// ---- llama -----------------------------------------------------------------------------
// maxThreads 0 turns off node-llama-cpp's cross-context thread splitter, so every context runs
// with exactly `threads` threads and never waits for another (disposed) context's reservation.
const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});

async function loadModel(file) {
  return await llama.loadModel({modelPath: path.join(shared, "models", file), gpuLayers: 0});
}

async function newContext(model, kvType = CTX.kvCacheType, flashAttention = CTX.flashAttention) {
  const ctx = await model.createContext({
    contextSize: CTX.contextSize,
    batchSize: CTX.batchSize,
    sequences: CTX.sequences,
    threads: CTX.threads,
    flashAttention,
    experimentalKvCacheKeyType: kvType,
    experimentalKvCacheValueType: kvType,
  });
  // The context must be exactly what the goldens record.
  const kvK = GgmlType[ctx.kvCacheKeyType] ?? ctx.kvCacheKeyType;
  const kvV = GgmlType[ctx.kvCacheValueType] ?? ctx.kvCacheValueType;
  if (ctx.contextSize !== CTX.contextSize || ctx.batchSize !== CTX.batchSize || ctx.flashAttention !== flashAttention ||
      kvK !== kvType || kvV !== kvType || ctx.idealThreads !== CTX.threads)
    throw new Error(`unexpected context: ${JSON.stringify({n_ctx: ctx.contextSize, n_batch: ctx.batchSize,
      fa: ctx.flashAttention, kvK, kvV, threads: ctx.idealThreads})}`);
  return ctx;
}

// Logits Map (sorted by value) -> dense Float64Array indexed by token id.
function denseLogits(map, nVocab) {
  if (map == null || map.size !== nVocab) throw new Error(`expected ${nVocab} logits, got ${map?.size}`);
  const out = new Float64Array(nVocab).fill(NaN);
  for (const [tok, v] of map) out[tok] = v;
  if (out.some(Number.isNaN)) throw new Error("missing logits");
  return out;
}
// Argmax, ties broken by the lowest token id.
function argmax(logits) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}
// Sampling options that leave the logits raw: temperature 0 => node-llama-cpp's chain is just
// llama.cpp's greedy sampler (no penalties, no bias), which does not modify the logits.
const RAW = {logits: true, token: true, options: {temperature: 0}};

// Evaluates `tokens` from position 0 in a fresh context; returns logits after every token.
async function evalAll(model, tokens, kvType = CTX.kvCacheType, flashAttention = CTX.flashAttention) {
  const ctx = await newContext(model, kvType, flashAttention);
  try {
    const seq = ctx.getSequence();
    const out = await seq.controlledEvaluate(tokens.map((t) => [t, {generateNext: RAW}]));
    return out.map((o, i) => {
      const l = denseLogits(o?.next?.logits, nVocabOf(model));
      if (o.next.token !== argmax(l) && l[o.next.token] !== l[argmax(l)])
        throw new Error(`greedy sampler disagrees with argmax at ${i}`);
      return l;
    });
  } finally {
    await ctx.dispose();
  }
}
function nVocabOf(model) {
  return model.fileInfo.metadata.tokenizer.ggml.tokens.length;
}

// Greedy: prompt in one batch, then one token per step; stops at EOS (not included) or n_predict.
async function greedy(model, promptTokens, nPredict) {
  const nVocab = nVocabOf(model);
  if (promptTokens.length + nPredict > CTX.contextSize) throw new Error("prompt too long for the context");
  const ctx = await newContext(model);
  try {
    const seq = ctx.getSequence();
    const input = promptTokens.map((t, i) => (i === promptTokens.length - 1 ? [t, {generateNext: RAW}] : t));
    let out = await seq.controlledEvaluate(input);
    let logits = denseLogits(out[out.length - 1].next.logits, nVocab);
    const generated = [];
    let eos = false;
    for (;;) {
      const tok = argmax(logits);
      if (model.isEogToken(tok)) { eos = true; break; }
      generated.push(tok);
      if (generated.length >= nPredict) break;
      out = await seq.controlledEvaluate([[tok, {generateNext: RAW}]]);
      logits = denseLogits(out[0].next.logits, nVocab);
    }
    return {generated, eos};
  } finally {
    await ctx.dispose();
  }
}

// BOS as llama.cpp decides: tokenizer.ggml.add_bos_token, default true for SPM ("llama") vocabs.
function promptTokensOf(model, text) {
  const ggml = model.fileInfo.metadata.tokenizer.ggml;
  const addBos = ggml.add_bos_token ?? (ggml.model === "llama");
  const toks = model.tokenize(text);  // specialTokens=false; never adds BOS (see README)
  return addBos ? [model.tokens.bos, ...toks] : toks;
}

const contextRecord = {
  context_size: CTX.contextSize,
  batch_size: CTX.batchSize,
  ubatch_size: CTX.batchSize,
  sequences: CTX.sequences,
  threads: CTX.threads,
  flash_attention: CTX.flashAttention,
  kv_cache_type_k: CTX.kvCacheType,
  kv_cache_type_v: CTX.kvCacheType,
};

// ---- stories260K: greedy + logits --------------------------------------------------------
const GREEDY_PROMPTS = [
  "Once upon a time",
  "Lily and Tom",
  "The little dog",
  "One day, a girl named Sue",
  "There was a big tree",
  "A",
  "Tim had a red ball. He liked to play with it every day. One day, the ball rolled away.",
  "\"Can I play too?\" asked the cat.",
  "The sun was hot.\nThe bird",
  "She had 3 apples and 2 pears",
  "Mom said, \"Be careful!\" but Ben ran",
  "Once upon a time, in a small house, there lived",
  "The end",
  "Spot",
];
const N_PREDICT = 48;

{
  const model = await loadModel("stories260K.gguf");
  const nVocab = nVocabOf(model);
  const cases = [];
  for (const prompt of GREEDY_PROMPTS) {
    const prompt_tokens = promptTokensOf(model, prompt);
    const {generated, eos} = await greedy(model, prompt_tokens, N_PREDICT);
    cases.push({prompt, prompt_tokens, generated, stopped_at_eos: eos, text: model.detokenize(generated)});
  }
  writeGolden("stories260K_greedy.json", {
    model: "models/stories260K.gguf",
    reference,
    context: contextRecord,
    add_bos: true,
    n_predict: N_PREDICT,
    argmax_ties: "lowest token id",
    cases,
  });

  // Logits: prompt + its greedy continuation, evaluated as ONE batch from position 0. Once with
  // the default F16 KV cache, and once with an F32 cache: llama.cpp then rounds nothing to F16 in
  // attention, which makes the F32 file an exact (float round-off) check of the forward pass.
  // And F16 with llama.cpp's flash-attention path (hearth's kernel family computes that one).
  for (const [kvType, file, fa] of [["F16", "stories260K_logits.json", false],
                                    ["F32", "stories260K_logits_kvf32.json", false],
                                    ["F16", "stories260K_logits_fa.json", true]]) {
    const logitCases = [];
    for (const prompt of ["Once upon a time", "Lily and Tom"]) {
      const c = cases.find((x) => x.prompt === prompt);
      const tokens = [...c.prompt_tokens, ...c.generated];
      if (tokens.length < 40 || tokens.length > CTX.batchSize) throw new Error(`bad logits case length ${tokens.length}`);
      const rows = await evalAll(model, tokens, kvType, fa);
      logitCases.push({prompt, tokens, logits: rows.map((r) => Array.from(r, round6))});
    }
    writeGolden(file, {
      model: "models/stories260K.gguf",
      reference,
      context: {...contextRecord, flash_attention: fa, kv_cache_type_k: kvType, kv_cache_type_v: kvType},
      n_vocab: nVocab,
      rounding: "6 significant digits (of the float32 logit)",
      evaluation: "all tokens of a case in one llama_decode batch from position 0, logits at every position",
      cases: logitCases,
    });
  }
  await model.dispose();
}

// ---- tokenizer goldens ------------------------------------------------------------------
{
  const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8")).strings;
  const wp = fs.readFileSync(path.join(shared, "data", "war-and-peace.txt"), "utf8");
  const long = [
    wp.slice(0, 20000),
    corpus.join("\n"),
    corpus.filter((s) => s !== "").join(" ").repeat(3),
  ];
  for (const [file, name] of [["llama2-tiny-random.gguf", "llama2-tiny-random"], ["stories260K.gguf", "stories260K"]]) {
    const model = await loadModel(file);
    const hello = model.tokenize("Hello");
    if (hello.includes(model.tokens.bos)) throw new Error("tokenize() added BOS");
    const cases = [...corpus, ...long].map((text) => ({text, tokens: Array.from(model.tokenize(text, false))}));
    writeGolden(`tokenize_${name}.json`, {
      model: `models/${file}`,
      reference,
      call: "model.tokenize(text, false) == common_tokenize(vocab, text, add_special=false, parse_special=false)",
      cases,
    });
    await model.dispose();
  }
}

await llama.dispose();

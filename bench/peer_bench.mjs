// peer_bench.mjs: llama.cpp's prefill and decode speed on one GGUF, measured through the pinned
// node-llama-cpp (3.22.1, CPU prebuilt, never built locally) the same way `hearth bench` measures
// hearth, so the two numbers can sit side by side.
//
//   node bench/peer_bench.mjs --model M.gguf [--threads T] [--reps R] [-p 512] [-n 128] [--vocab V]
//   -> one JSON line: {"engine":"llama.cpp", "prefill_tps":..., "decode_tps":..., ...}
//
// Method (mirrors src/cli/cmd_bench.cpp):
// * One context per run: contextSize >= max(640, p + n), batchSize = p (node-llama-cpp sets
//   n_ubatch = n_batch, so the whole prompt is one llama_decode call), the given thread count,
//   flash attention off, one sequence.
// * Prefill: the sequence is cleared (clearHistory() removes its KV cells, so every rep starts
//   from an empty cache), then p uniformly random token ids are evaluated in one controlledEvaluate
//   call. Time = that call.
// * Decode: the sequence is cleared, then n single-token controlledEvaluate calls, each awaited
//   before the next (one llama_decode of one token each). Token ids are random, not sampled, so
//   no sampling chain runs between steps. Time = all n calls.
// * Output logits: llama.cpp computes the LM head only for tokens flagged as outputs, while
//   hearth's Session::feed always produces next-token logits for the last fed token. So the last
//   token of each evaluation (the last prompt token; every decode token) asks for a greedy
//   (temperature 0) next token: that makes llama.cpp run the output projection as hearth does; the
//   extra work is one argmax over the vocabulary (tens of microseconds, <0.1% of a step). Asking for
//   `token` rather than `logits` avoids copying the logits into a JS array.
// * One warm-up rep of each test (pages the weights in, sizes the compute buffers), then the
//   median of R reps. Model load and context creation are not timed.
import {getLlama} from "node-llama-cpp";

function parseArgs(argv) {
  const a = {model: null, threads: 0, reps: 3, p: 512, n: 128, vocab: 0, seed: 42, depth: 0, batch: 512,
             flash: false, kv: "F16"};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    if (k === "--model" || k === "-m") a.model = v();
    else if (k === "--threads" || k === "-t") a.threads = Number(v());
    else if (k === "--reps" || k === "-r") a.reps = Number(v());
    else if (k === "-p" || k === "--prompt") a.p = Number(v());
    else if (k === "-n" || k === "--gen") a.n = Number(v());
    else if (k === "--vocab") a.vocab = Number(v());
    else if (k === "--seed") a.seed = Number(v());
    else if (k === "--depth") a.depth = Number(v());
    else if (k === "--batch" || k === "-b") a.batch = Number(v());
    else if (k === "--flash") a.flash = true;
    else if (k === "--kv-type") a.kv = v().toUpperCase();
    else throw new Error(`peer_bench: unknown argument ${k}`);
  }
  if (!a.model) throw new Error("peer_bench: --model is required");
  return a;
}

function median(v) {
  const s = [...v].sort((x, y) => x - y), n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

// Small deterministic PRNG (mulberry32) so runs draw the same token ids.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const a = parseArgs(process.argv.slice(2));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const tLoad = performance.now();
const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0});
const loadSeconds = (performance.now() - tLoad) / 1e3;

let vocab = a.vocab;
if (!vocab) {
  const md = model.fileInfo?.metadata ?? {};
  const arch = md.general?.architecture;
  vocab = md[arch]?.vocab_size ?? md.tokenizer?.ggml?.tokens?.length ?? 0;
}
if (!vocab) throw new Error("peer_bench: cannot tell the vocabulary size; pass --vocab");

const threads = a.threads > 0 ? a.threads : llama.cpuMathCores;

// --depth D (long context; mirrors `hearth bench --depth`): each rep clears the sequence, prefills D
// random tokens (node-llama-cpp feeds them in batches of --batch; timed), then decodes n tokens one
// at a time at depth D (timed). One short warm-up evaluation first. --flash turns llama.cpp's flash
// attention on, --kv-type sets both cache types.
if (a.depth > 0) {
  const ctx = await model.createContext({
    contextSize: a.depth + a.n + 1, batchSize: a.batch, sequences: 1, threads, flashAttention: a.flash,
    experimentalKvCacheKeyType: a.kv, experimentalKvCacheValueType: a.kv,
  });
  const seq = ctx.getSequence();
  const rand = rng(a.seed);
  const tok = () => Math.floor(rand() * vocab);
  const greedy = {generateNext: {token: true, options: {temperature: 0}}};
  await seq.controlledEvaluate([...Array.from({length: Math.min(64, a.depth) - 1}, tok), [tok(), greedy]]);
  const pp = [], tg = [];
  for (let r = 0; r < a.reps; r++) {
    await seq.clearHistory();
    const toks = Array.from({length: a.depth}, tok);
    const t0 = performance.now();
    await seq.controlledEvaluate([...toks.slice(0, -1), [toks[a.depth - 1], greedy]]);
    pp.push((performance.now() - t0) / 1e3);
    const t1 = performance.now();
    for (let i = 0; i < a.n; i++) await seq.controlledEvaluate([[tok(), greedy]]);
    if (a.n > 0) tg.push(a.n / ((performance.now() - t1) / 1e3));
  }
  const mem = process.memoryUsage();
  console.log(JSON.stringify({
    engine: "llama.cpp", binding: "node-llama-cpp 3.22.1", build: llama.buildType, model: a.model,
    threads: ctx.currentThreads ?? threads, depth: a.depth, n_gen: a.n, n_batch: a.batch, reps: a.reps,
    flash_attention: ctx.flashAttention, kv_type: a.kv, prefill_seconds: median(pp),
    prefill_tps: a.depth / median(pp), decode_tps: median(tg), prefill_runs_s: pp, decode_runs: tg,
    peak_rss_bytes: (await import("node:process")).resourceUsage().maxRSS * 1024, rss_now_bytes: mem.rss,
  }));
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  process.exit(0);
}

const context = await model.createContext({
  contextSize: Math.max(640, a.p + a.n + 1),
  batchSize: Math.max(1, a.p),
  sequences: 1,
  threads,
  flashAttention: false,
});
const seq = context.getSequence();
const rand = rng(a.seed);
const tok = () => Math.floor(rand() * vocab);
const greedy = {generateNext: {token: true, options: {temperature: 0}}};

const pp = [], tg = [];
for (let r = -1; r < a.reps; r++) {  // r = -1 is the warm-up
  if (a.p > 0) {
    const toks = Array.from({length: a.p}, tok);
    const input = [...toks.slice(0, -1), [toks[a.p - 1], greedy]];
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.controlledEvaluate(input);
    const s = (performance.now() - t0) / 1e3;
    if (r >= 0) pp.push(a.p / s);
  }
  if (a.n > 0) {
    const toks = Array.from({length: a.n}, tok);
    await seq.clearHistory();
    const t0 = performance.now();
    for (let i = 0; i < a.n; i++) await seq.controlledEvaluate([[toks[i], greedy]]);
    const s = (performance.now() - t0) / 1e3;
    if (r >= 0) tg.push(a.n / s);
  }
}

const out = {
  engine: "llama.cpp",
  binding: "node-llama-cpp 3.22.1",
  build: llama.buildType,
  model: a.model,
  threads: context.currentThreads ?? threads,
  n_prompt: a.p,
  n_gen: a.n,
  reps: a.reps,
  prefill_tps: median(pp),
  decode_tps: median(tg),
  load_seconds: loadSeconds,
  prefill_runs: pp,
  decode_runs: tg,
  system_info: llama.systemInfo,
};
console.log(JSON.stringify(out));
await context.dispose();
await model.dispose();
await llama.dispose();

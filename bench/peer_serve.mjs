// peer_serve.mjs: llama.cpp's side of the serving benchmark (bench/serve.sh), through the pinned
// node-llama-cpp 3.22.1 (CPU prebuilt, never built locally): one context with N sequences, N
// generations running concurrently.
//
//   node bench/peer_serve.mjs --model M.gguf --streams N [--threads T] [--ctx C] [--reps R]
//        [--words W] [--gen G]
//   -> one JSON line, same fields as serve_load.mjs.
//
// Method (the llama.cpp counterpart of `hearth serve --parallel N --ctx C`):
// * model.createContext({contextSize: N*C, sequences: N, threads: T}): every sequence gets C
//   cells of one unified KV cache; batch size is node-llama-cpp's default (min(contextSize, 512)
//   tokens per llama_decode, the same 512 as hearth's scheduler). Flash attention off.
// * Each run clears all N sequences, then starts N `sequence.evaluate(tokens, {temperature: 0})`
//   generators at once. node-llama-cpp's context collects the pending work of all sequences and
//   issues one llama_decode per step for all of them (prompt chunks and decode tokens together),
//   which is continuous batching over one shared forward pass.
// * tokens = BOS + model.tokenize(prompt text): the text of serve_prompts.mjs for (run, stream),
//   byte-identical to what hearth gets with raw:true.
// * A stream stops after G tokens or at an end-of-generation token, as hearth's server does
//   (it has no ignore-EOS option); the actual counts are in the JSON.
// * Timing: sent = just before the generator starts; one timestamp per yielded token. No HTTP,
//   no detokenization: the peer is measured in-process, so its numbers exclude the costs hearth's
//   side pays for HTTP and JSON (small: see docs/BENCHMARKS.md).
import {getLlama} from "node-llama-cpp";
import {makePrompt, promptSeed, summarize, median} from "./serve_prompts.mjs";

function parseArgs(argv) {
  const a = {model: null, streams: 1, threads: 0, ctx: 256, reps: 3, words: 56, gen: 64};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    if (k === "--model" || k === "-m") a.model = v();
    else if (k === "--streams" || k === "-N") a.streams = Number(v());
    else if (k === "--threads" || k === "-t") a.threads = Number(v());
    else if (k === "--ctx") a.ctx = Number(v());
    else if (k === "--reps" || k === "-r") a.reps = Number(v());
    else if (k === "--words") a.words = Number(v());
    else if (k === "--gen" || k === "-n") a.gen = Number(v());
    else throw new Error(`peer_serve: unknown argument ${k}`);
  }
  if (!a.model) throw new Error("peer_serve: --model is required");
  return a;
}

const a = parseArgs(process.argv.slice(2));
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath: a.model, gpuLayers: 0});
const threads = a.threads > 0 ? a.threads : llama.cpuMathCores;
const context = await model.createContext({
  contextSize: a.streams * a.ctx,
  sequences: a.streams,
  threads,
  flashAttention: false,
});
const seqs = Array.from({length: a.streams}, () => context.getSequence());
const bos = model.tokens.bos;

function tokenize(text) {
  const t = model.tokenize(text);
  return bos != null && t[0] !== bos ? [bos, ...t] : t;
}

async function stream(seq, tokens) {
  const rec = {sent: 0, first: 0, last: 0, tokens: 0, prompt_tokens: tokens.length, times: []};
  rec.sent = performance.now();
  for await (const tok of seq.evaluate(tokens, {temperature: 0})) {
    const now = performance.now();
    if (rec.tokens === 0) rec.first = now;
    rec.times.push(now);
    rec.last = now;
    rec.tokens++;
    if (model.isEogToken(tok)) {
      rec.done_reason = "stop";
      break;
    }
    if (rec.tokens >= a.gen) {
      rec.done_reason = "length";
      break;
    }
  }
  return rec;
}

const runs = [];
for (let r = -1; r < a.reps; r++) {  // r = -1: warm-up, not reported
  const prompts = Array.from({length: a.streams}, (_, i) => tokenize(makePrompt(promptSeed(r + 1, i), a.words)));
  for (const s of seqs) await s.clearHistory();
  const recs = await Promise.all(seqs.map((s, i) => stream(s, prompts[i])));
  if (r < 0) continue;
  const s = summarize(recs);
  s.prompt_tokens = recs.map((x) => x.prompt_tokens);
  s.done_reasons = recs.map((x) => x.done_reason);
  runs.push(s);
}

const pick = (k) => median(runs.map((r) => r[k]));
console.log(JSON.stringify({
  engine: "llama.cpp", binding: "node-llama-cpp 3.22.1", build: llama.buildType,
  streams: a.streams, threads: context.currentThreads ?? threads, ctx_per_seq: a.ctx,
  batch_size: context.batchSize, words: a.words, n_gen: a.gen, reps: a.reps,
  decode_tps: pick("decode_tps"), e2e_tps: pick("e2e_tps"),
  ttft_p50_ms: pick("ttft_p50_ms"), ttft_p99_ms: pick("ttft_p99_ms"),
  prompt_tokens_mean: runs[0].prompt_tokens.reduce((x, y) => x + y, 0) / a.streams,
  runs,
}));
await context.dispose();
await model.dispose();
await llama.dispose();

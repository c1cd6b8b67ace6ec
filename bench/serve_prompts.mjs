// serve_prompts.mjs: the prompts both sides of the serving benchmark send (bench/serve.sh).
// Plain English words drawn by a seeded PRNG (mulberry32), so the hearth client (serve_load.mjs)
// and the llama.cpp peer (peer_serve.mjs) send byte-identical text. Every stream of every run gets
// its own seed (run * 1000 + stream), so no two prompts share a first word: hearth's prefix cache
// (full 16-token blocks shared by content hash) finds nothing to reuse, within a run or across runs.

const WORDS = (
  "the of and to in is that it was for on are as with his they at be this have from or one had by " +
  "word but not what all were we when your can said there use an each which she do how their if " +
  "will up other about out many then them these so some her would make like him into time has look " +
  "two more write go see number no way could people my than first water been call who oil its now " +
  "find long down day did get come made may part over new sound take only little work know place " +
  "year live me back give most very after thing our just name good sentence man think say great " +
  "where help through much before line right too mean old any same tell boy follow came want show " +
  "also around form three small set put end does another well large must big even such because turn " +
  "here why ask went men read need land different home us move try kind hand picture again change " +
  "off play spell air away animal house point page letter mother answer found study still learn " +
  "should world high every near add food between own below country plant last school father keep " +
  "tree never start city earth eye light thought head under story saw left few while along might " +
  "close something seem next hard open example begin life always those both paper together got group"
).split(" ");

export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// n_words words (about 1.1 Llama-2 tokens each); the seed decides them all.
export function makePrompt(seed, nWords) {
  const r = rng(seed * 2654435761 + 12345);
  const w = [];
  for (let i = 0; i < nWords; i++) w.push(WORDS[Math.floor(r() * WORDS.length)]);
  return w.join(" ");
}

export function promptSeed(run, stream) {
  return run * 1000 + stream;
}

export function percentile(v, q) {
  if (v.length === 0) return 0;
  const s = [...v].sort((x, y) => x - y);
  // Nearest rank, as hearth bench --parallel: with 16 samples p99 is the largest.
  const i = Math.min(s.length - 1, Math.round(q * (s.length - 1)));
  return s[i];
}

// One run's numbers from per-stream records {sent, first, last, tokens, times[]} (ms, one clock).
//   ttft_ms             first token time - request sent time, per stream
//   decode_tps          tokens that arrived after the last stream's first token (so while every
//                       stream was past its prefill), over the time from that moment to the last
//                       token of any stream
//   e2e_tps             all generated tokens / (last token of any stream - first request sent)
export function summarize(streams) {
  const t0 = Math.min(...streams.map((s) => s.sent));
  const allFirst = Math.max(...streams.map((s) => s.first));
  const allLast = Math.max(...streams.map((s) => s.last));
  let after = 0, total = 0;
  for (const s of streams) {
    total += s.tokens;
    for (const t of s.times) if (t > allFirst) after++;
  }
  const span = (allLast - allFirst) / 1e3;
  const ttft = streams.map((s) => s.first - s.sent);
  return {
    decode_tps: span > 0 ? after / span : 0,
    decode_tokens: after,
    decode_seconds: span,
    e2e_tps: total / ((allLast - t0) / 1e3),
    e2e_seconds: (allLast - t0) / 1e3,
    total_tokens: total,
    ttft_p50_ms: percentile(ttft, 0.5),
    ttft_p99_ms: percentile(ttft, 0.99),
    ttft_ms: ttft,
    tokens_per_stream: streams.map((s) => s.tokens),
  };
}

export function median(v) {
  const s = [...v].sort((x, y) => x - y), n = s.length;
  return n === 0 ? 0 : n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

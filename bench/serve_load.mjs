// serve_load.mjs: N concurrent streaming /api/generate requests against a running `hearth serve`
// (bench/serve.sh starts it), timed on the client. Node's standard library only.
//
//   node bench/serve_load.mjs --url http://127.0.0.1:PORT --streams N [--reps R] [--words W]
//        [--gen G] [--model NAME] [--seed S]
//   -> one JSON line: medians over R runs (after one warm-up run) plus every run's numbers.
//
// Each run sends N requests at once over N keep-alive connections: raw:true (no template), the
// prompt of serve_prompts.mjs for (run, stream), options {temperature 0, num_predict G, seed}.
// Per stream: sent = just before the request is written; one timestamp per NDJSON chunk carrying a
// token (done:false); tokens = the final object's eval_count. Definitions: serve_prompts.mjs
// summarize().
import http from "node:http";
import {makePrompt, promptSeed, summarize, median} from "./serve_prompts.mjs";

function parseArgs(argv) {
  const a = {url: null, streams: 1, reps: 3, words: 56, gen: 64, model: "bench", seed: 42};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = () => argv[++i];
    if (k === "--url") a.url = v();
    else if (k === "--streams" || k === "-N") a.streams = Number(v());
    else if (k === "--reps" || k === "-r") a.reps = Number(v());
    else if (k === "--words") a.words = Number(v());
    else if (k === "--gen" || k === "-n") a.gen = Number(v());
    else if (k === "--model") a.model = v();
    else if (k === "--seed") a.seed = Number(v());
    else throw new Error(`serve_load: unknown argument ${k}`);
  }
  if (!a.url) throw new Error("serve_load: --url is required");
  return a;
}

const a = parseArgs(process.argv.slice(2));
const url = new URL(a.url);
const agent = new http.Agent({keepAlive: true, maxSockets: a.streams});

function stream(prompt) {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({
      model: a.model, prompt, raw: true, stream: true,
      options: {temperature: 0, num_predict: a.gen, seed: a.seed},
    });
    const rec = {sent: 0, first: 0, last: 0, tokens: 0, prompt_tokens: 0, chunks: 0, times: []};
    const req = http.request({
      host: url.hostname, port: url.port, path: "/api/generate", method: "POST", agent,
      headers: {"Content-Type": "application/json", "Content-Length": Buffer.byteLength(body)},
    }, (res) => {
      if (res.statusCode !== 200) {
        let err = "";
        res.on("data", (d) => (err += d));
        res.on("end", () => reject(new Error(`HTTP ${res.statusCode}: ${err}`)));
        return;
      }
      let buf = "";
      let done = false;
      res.setEncoding("utf8");
      res.on("data", (d) => {
        const now = performance.now();
        buf += d;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          const j = JSON.parse(line);
          if (j.error) return reject(new Error(j.error));
          if (!j.done) {
            if (rec.chunks === 0) rec.first = now;
            rec.chunks++;
            rec.times.push(now);
            rec.last = now;
          } else {
            rec.tokens = j.eval_count ?? rec.chunks;
            rec.prompt_tokens = j.prompt_eval_count ?? 0;
            rec.done_reason = j.done_reason;
            done = true;
            rec.last = rec.times.length ? rec.times[rec.times.length - 1] : now;
          }
        }
      });
      res.on("end", () => (done ? resolve(rec) : reject(new Error("stream ended without done:true"))));
      res.on("error", reject);
    });
    req.on("error", reject);
    rec.sent = performance.now();
    req.end(body);
  });
}

const runs = [];
for (let r = -1; r < a.reps; r++) {  // r = -1: warm-up (page-in, buffer sizing), not reported
  const prompts = Array.from({length: a.streams}, (_, i) => makePrompt(promptSeed(r + 1, i), a.words));
  const recs = await Promise.all(prompts.map((p) => stream(p)));
  if (r < 0) continue;
  const s = summarize(recs);
  s.prompt_tokens = recs.map((x) => x.prompt_tokens);
  s.chunks = recs.map((x) => x.chunks);
  s.done_reasons = recs.map((x) => x.done_reason);
  runs.push(s);
}
agent.destroy();

const pick = (k) => median(runs.map((r) => r[k]));
console.log(JSON.stringify({
  engine: "hearth", streams: a.streams, words: a.words, n_gen: a.gen, reps: a.reps,
  decode_tps: pick("decode_tps"), e2e_tps: pick("e2e_tps"),
  ttft_p50_ms: pick("ttft_p50_ms"), ttft_p99_ms: pick("ttft_p99_ms"),
  prompt_tokens_mean: runs[0].prompt_tokens.reduce((x, y) => x + y, 0) / a.streams,
  runs,
}));

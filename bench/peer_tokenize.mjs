// llama.cpp (node-llama-cpp 3.22.1, CPU, vocab-only load) tokenizing a text file: best of N runs.
//   node bench/peer_tokenize.mjs MODEL.gguf FILE [REPS]
// Prints one JSON line {tokens, seconds}. Includes node's string -> UTF-8 copy and the result
// transfer, which are small next to the tokenization itself.
import fs from "node:fs";
import {getLlama} from "node-llama-cpp";

const [modelPath, file, repsArg] = process.argv.slice(2);
const reps = Number(repsArg ?? 3);
const text = fs.readFileSync(file, "utf8");
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const model = await llama.loadModel({modelPath, vocabOnly: true});
let best = Infinity, n = 0;
for (let r = 0; r < reps; r++) {
  const t0 = process.hrtime.bigint();
  n = model.tokenize(text, false).length;
  best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
}
console.log(JSON.stringify({tokens: n, seconds: best}));
await model.dispose();

// llama.cpp's next-token logits for GGUF files written by `hearth quantize`, for the test
// tests/unit/test_quantize_crossengine.cpp (which runs this script at test time, because the
// files come from our own quantizer: a stored golden would go stale with every quantizer change).
//
//   node quantize_crossengine.mjs OUT_DIR TOKENS MODEL.gguf...
//
// TOKENS: comma-separated ids, evaluated in ONE batch from position 0 (F16 KV cache, 1 thread,
// no flash attention). For each model, writes OUT_DIR/<basename>.logits: little-endian float32
// [n_tokens][n_vocab], row-major. Prints one line per model. Exit code != 0 on any failure.
//
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU only,
// prebuilt binaries (build: "never").
import fs from "node:fs";
import path from "node:path";
import {getLlama} from "node-llama-cpp";

const [outDir, tokenArg, ...models] = process.argv.slice(2);
if (!outDir || !tokenArg || models.length === 0) {
  console.error("usage: node quantize_crossengine.mjs OUT_DIR TOKENS MODEL.gguf...");
  process.exit(2);
}
const tokens = tokenArg.split(",").map((t) => Number.parseInt(t, 10));
if (tokens.some((t) => !Number.isInteger(t) || t < 0)) throw new Error(`bad token list '${tokenArg}'`);

const llama = await getLlama({gpu: false, build: "never", logLevel: "error", maxThreads: 0});
const RAW = {logits: true, token: true, options: {temperature: 0}};
fs.mkdirSync(outDir, {recursive: true});

for (const file of models) {
  const model = await llama.loadModel({modelPath: file, gpuLayers: 0});
  const nVocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
  // contextSize > n_tokens: a full context would make node-llama-cpp shift it before the last token.
  const ctx = await model.createContext({
    contextSize: Math.max(64, 2 * tokens.length), batchSize: tokens.length, sequences: 1, threads: 1,
    flashAttention: false, experimentalKvCacheKeyType: "F16", experimentalKvCacheValueType: "F16",
  });
  const out = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t, {generateNext: RAW}]));
  const buf = new Float32Array(tokens.length * nVocab).fill(NaN);
  out.forEach((o, i) => {
    const map = o?.next?.logits;
    if (map == null || map.size !== nVocab) throw new Error(`${file}: expected ${nVocab} logits at ${i}, got ${map?.size}`);
    for (const [tok, v] of map) buf[i * nVocab + tok] = v;
  });
  if (buf.some(Number.isNaN)) throw new Error(`${file}: missing logits`);
  await ctx.dispose();
  await model.dispose();
  const dst = path.join(outDir, path.basename(file) + ".logits");
  fs.writeFileSync(dst, Buffer.from(buf.buffer));
  console.log(`${path.basename(file)}: ${tokens.length} x ${nVocab} logits -> ${dst}`);
}

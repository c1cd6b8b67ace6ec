// Times llama.cpp (node-llama-cpp, CPU, vocab-only load) tokenizing all of
// shared/data/war-and-peace.txt with the Llama 3 vocabulary, for comparison with hearth's
// BpeSpeed.WarAndPeaceLlama3 gtest. Writes nothing; regen.sh runs every *.mjs here, so it only
// benchmarks when asked:
//
//   node tools/goldens/bench_tokenize.mjs --run [llama3|tinystories|minicpm3 ...]
//
// Env as gen_tokenizers.mjs (HEARTH_SHARED, HEARTH_BIN, PYTHON).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {fileURLToPath} from "node:url";
import {getLlama} from "node-llama-cpp";
import {MODELS, buildGguf} from "./gen_tokenizers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const shared = process.env.HEARTH_SHARED ? path.resolve(process.env.HEARTH_SHARED) : path.resolve(repo, "..", "shared");

const args = process.argv.slice(2);
if (!args.includes("--run")) {
  console.log("bench_tokenize.mjs: benchmark only; run with --run (skipped)");
  process.exit(0);
}
const names = args.filter((a) => a !== "--run");
const text = fs.readFileSync(path.join(shared, "data", "war-and-peace.txt"), "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-bench-tokenize-"));
try {
  for (const name of names.length ? names : ["llama3"]) {
    if (!MODELS[name]) throw new Error(`unknown model ${name}`);
    const model = await llama.loadModel({modelPath: buildGguf(name, tmp), vocabOnly: true});
    const times = [];
    let n = 0;
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      n = model.tokenize(text, false).length;
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    const best = Math.min(...times);
    console.log(`llama.cpp ${name}: war-and-peace.txt ${bytes} bytes -> ${n} tokens; ` +
      `runs ${times.map((t) => t.toFixed(3)).join(" / ")} s; best ${(n / best).toFixed(0)} tokens/s, ` +
      `${(bytes / best / 1e6).toFixed(2)} MB/s (includes the JS string -> UTF-8 copy and result transfer)`);
    await model.dispose();
  }
} finally {
  fs.rmSync(tmp, {recursive: true, force: true});
}

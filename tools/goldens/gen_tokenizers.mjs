// Writes the BPE / HF-import tokenizer goldens (schema: tests/golden/README.md, tokenize_bpe_*):
//   tokenize_bpe_llama3.json      Llama 3 byte-level BPE (shared/tools/synth_gguf.py --bpe-dir)
//   tokenize_bpe_tinystories.json TinyStories-656K tokenizer.json via `hearth tokenizer-import`
//   tokenize_bpe_minicpm3.json    MiniCPM3 tokenizer.json via `hearth tokenizer-import`
//   tokenize_bpe_llama3_pretokenizers.json  the Llama 3 vocabulary under 31 tokenizer.ggml.pre values
// Schema (tokenize_bpe_<name>.json): {"source": "llama3" | "hf:<shared dir>", "gguf": how it was built,
//   "tokenizer": {model, pre, n_vocab}, "reference", "call", "cases": [{"kind", one of
//   "text": str | "bytes_b64": base64 of raw bytes (invalid UTF-8; "llama_text" = what llama.cpp was
//   given, see INVALID_UTF8) | "file": shared-relative path + "bytes": prefix length (+ "remove_chars"),
//   optional "parse_special": true, "tokens": [int] (no BOS/EOS)}], "skipped": [cases llama.cpp aborts on]}.
// Reference: llama.cpp as bundled by node-llama-cpp (pinned in package.json), CPU, prebuilt, each
// GGUF loaded with vocabOnly. The GGUFs are rebuilt in a temporary folder on every run and never
// committed; the C++ tests rebuild the same vocabularies through the same code paths.
//
// Env: HEARTH_SHARED = shared test-data folder (default <repo>/../shared);
//      HEARTH_BIN = hearth binary for tokenizer-import (default <repo>/build/release/hearth);
//      PYTHON = python with numpy for synth_gguf.py (default /usr/bin/python3).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {execFileSync} from "node:child_process";
import {fileURLToPath} from "node:url";
import {getLlama} from "node-llama-cpp";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const shared = process.env.HEARTH_SHARED ? path.resolve(process.env.HEARTH_SHARED) : path.resolve(repo, "..", "shared");
const hearthBin = process.env.HEARTH_BIN ? path.resolve(process.env.HEARTH_BIN) : path.join(repo, "build", "release", "hearth");
const python = process.env.PYTHON || "/usr/bin/python3";
const goldenDir = path.join(repo, "tests", "golden");
const corpusPath = path.join(repo, "tests", "data", "tokenizer_corpus.json");
const vocabTestBase = path.join(shared, "tokenizers", "llama.cpp-vocab-tests", "ggml-vocab-llama-bpe.gguf");
const WAR_AND_PEACE = "data/war-and-peace.txt";
const WAR_AND_PEACE_BYTES = 200 * 1024;

const nlcDir = path.join(here, "node_modules", "node-llama-cpp");
const reference = {
  engine: "llama.cpp via node-llama-cpp",
  node_llama_cpp: JSON.parse(fs.readFileSync(path.join(nlcDir, "package.json"), "utf8")).version,
  llama_cpp_release: JSON.parse(fs.readFileSync(path.join(nlcDir, "llama", "llama.cpp.info.json"), "utf8")).tag,
  backend: "CPU (getLlama({gpu: false, build: 'never'}), prebuilt binaries), loadModel({vocabOnly: true})",
};

// ---- the GGUF files llama.cpp tokenizes ---------------------------------------------------
export const MODELS = {
  llama3: {
    source: "llama3",
    how: "python3 shared/tools/synth_gguf.py --shape tiny --ftype f32 --bpe-dir shared/tokenizers/llama3.2 -o X.gguf",
    build(out) {
      execFileSync(python, [path.join(shared, "tools", "synth_gguf.py"), "--shape", "tiny", "--ftype", "f32",
        "--bpe-dir", path.join(shared, "tokenizers", "llama3.2"), "-o", out], {stdio: "inherit"});
    },
  },
  tinystories: {
    source: "hf:models/tinystories-656k-hf",
    how: "hearth tokenizer-import --dir shared/models/tinystories-656k-hf -o X.gguf",
    build(out) {
      execFileSync(hearthBin, ["tokenizer-import", "--dir", path.join(shared, "models", "tinystories-656k-hf"), "-o", out], {stdio: "inherit"});
    },
  },
  minicpm3: {
    source: "hf:tokenizers/minicpm3",
    how: "hearth tokenizer-import --dir shared/tokenizers/minicpm3 -o X.gguf",
    build(out) {
      execFileSync(hearthBin, ["tokenizer-import", "--dir", path.join(shared, "tokenizers", "minicpm3"), "-o", out], {stdio: "inherit"});
    },
  },
};

export function buildGguf(name, tmp) {
  const out = path.join(tmp, `${name}.gguf`);
  MODELS[name].build(out);
  return out;
}

// ---- inputs ---------------------------------------------------------------------------------
function readVocabTests() {
  const inp = fs.readFileSync(vocabTestBase + ".inp", "utf8");
  const texts = inp.split("\n__ggml_vocab_test__\n");
  texts.pop();  // after the last separator
  const outs = fs.readFileSync(vocabTestBase + ".out", "utf8").split("\n");
  return texts.map((t, i) => ({text: t, expected: outs[i].trim() === "" ? [] : outs[i].trim().split(/\s+/).map(Number)}));
}

// Byte strings that are not valid UTF-8. node-llama-cpp passes text as JS strings, so llama.cpp
// cannot be given raw invalid bytes; for byte-level BPE llama.cpp's first step is a lenient UTF-8
// decode (each bad byte -> U+FFFD, overlong forms -> their value), emulated below, and the
// resulting text is what llama.cpp tokenizes. SPM tokenizes raw bytes, so no reference exists there.
const INVALID_UTF8 = [
  [0xff],
  [...Buffer.from("abc"), 0x80, ...Buffer.from("def")],
  [0xe2, 0x82],
  [0xe2, 0x82, 0x41, 0x42],
  [0xc0, 0xaf, ...Buffer.from("etc")],
  [0xc3, 0x28, ...Buffer.from(" x")],
  [0xf0, 0x9f, 0x98, ...Buffer.from(" ok")],
  [...Buffer.from("Hello "), 0xfe, 0xff, ...Buffer.from(" world")],
  [...Buffer.from("caf"), 0xe9, ...Buffer.from(" au lait")],
  [0xf0, 0x9f, 0xa6, 0x99, 0x80, 0x80, ...Buffer.from("llama")],
  [0x41, 0xc1, 0x81, 0x20, 0xe0, 0x81, 0x81],
];

// llama.cpp's unicode_cpts_from_utf8 (lenient); null if the result cannot be a JS string
// (surrogates, > U+10FFFF, NUL) or llama.cpp would throw.
function llamaDecode(bytes) {
  const cps = [];
  let i = 0;
  const cont = (k) => k < bytes.length && (bytes[k] & 0xc0) === 0x80;
  while (i < bytes.length) {
    const c = bytes[i];
    if (c < 0x80) { cps.push(c); i += 1; continue; }
    if ((c & 0x40) && !(c & 0x20) && i + 1 < bytes.length && cont(i + 1)) {
      cps.push(((c & 0x1f) << 6) | (bytes[i + 1] & 0x3f)); i += 2; continue;
    }
    if ((c & 0x60) === 0x60 && !(c & 0x10) && i + 2 < bytes.length && cont(i + 1) && cont(i + 2)) {
      cps.push(((c & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f)); i += 3; continue;
    }
    if ((c & 0x70) === 0x70 && !(c & 0x08) && i + 3 < bytes.length && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      cps.push(((c & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f)); i += 4; continue;
    }
    cps.push(0xfffd); i += 1;
  }
  if (cps.some((c) => c === 0 || (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)) return null;
  return String.fromCodePoint(...cps);
}

const SPECIAL_TEXTS = {
  llama3: ["<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>", "a<|reserved_special_token_5|>b"],
  tinystories: ["<|start_story|>Once upon a time<|end_story|>", "<unk>x"],
  minicpm3: ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "<s>a</s><unk>"],
};

// ---- JSON output (pretty objects, number arrays on one line) ---------------------------------
function toJson(value, indent = "") {
  const next = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((v) => typeof v === "number")) return "[" + value.join(", ") + "]";
    return "[\n" + value.map((v) => next + toJson(v, next)).join(",\n") + "\n" + indent + "]";
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    return "{\n" + keys.map((k) => next + JSON.stringify(k) + ": " + toJson(value[k], next)).join(",\n") + "\n" + indent + "}";
  }
  return JSON.stringify(value);
}

// ---- pre-tokenizers on the Llama 3 vocabulary ------------------------------------------------
// The same GGUF loaded with tokenizer.ggml.pre overridden (llama.cpp applies metadata overrides
// to the vocabulary keys too), so every regex family is checked on a real 128K vocabulary.
export const PRE_VARIANTS = [
  "default", "gpt-2", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "starcoder",
  "refact", "command-r", "smollm", "tekken", "gpt-4o", "dbrx", "stablelm2", "poro-chat", "bloom", "viking", "mpt",
  "olmo", "jais", "jais-2", "chameleon", "seed-coder", "bailingmoe", "grok-2", "exaone-moe", "minicpm5", "laguna",
  "ufakzeka",
];
const PRE_WAR_AND_PEACE_CHARS = 20000;

async function preVariants(llama, file, corpus, vocabTests) {
  const wp = fs.readFileSync(path.join(shared, WAR_AND_PEACE), "utf8").slice(0, PRE_WAR_AND_PEACE_CHARS);
  const texts = [...vocabTests.map((t) => t.text), ...corpus, wp];
  const variants = [];
  for (const pre of PRE_VARIANTS) {
    const model = await llama.loadModel({modelPath: file, vocabOnly: true, metadataOverrides: {tokenizer: {ggml: {pre}}}});
    variants.push({pre, tokens: texts.map((t) => Array.from(model.tokenize(t, false)))});
    await model.dispose();
  }
  const golden = {
    source: "llama3",
    gguf: MODELS.llama3.how + ", loaded with metadataOverrides {tokenizer.ggml.pre: <pre>}",
    reference,
    call: "model.tokenize(text, false) == common_tokenize(vocab, text, add_special=false, parse_special=false)",
    texts: "the llama.cpp vocab-test inputs (ggml-vocab-llama-bpe.gguf.inp), then tests/data/tokenizer_corpus.json, " +
      `then the first ${PRE_WAR_AND_PEACE_CHARS} characters of ${WAR_AND_PEACE}`,
    n_texts: texts.length,
    variants,
  };
  const out = path.join(goldenDir, "tokenize_bpe_llama3_pretokenizers.json");
  fs.writeFileSync(out, toJson(golden) + "\n");
  console.log(`wrote ${path.relative(repo, out)} (${variants.length} pre-tokenizers x ${texts.length} texts)`);
}

// ---- main -----------------------------------------------------------------------------------
async function main() {
  const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
  const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8")).strings;
  const vocabTests = readVocabTests();
  const wp = fs.readFileSync(path.join(shared, WAR_AND_PEACE)).subarray(0, WAR_AND_PEACE_BYTES);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hearth-gen-tokenizers-"));
  try {
    for (const name of Object.keys(MODELS)) {
      const file = buildGguf(name, tmp);
      const model = await llama.loadModel({modelPath: file, vocabOnly: true});
      const tok = (text, special = false) => Array.from(model.tokenize(text, special));
      const bos = model.tokens.bos;
      if (bos != null && tok("Hello").includes(bos)) throw new Error("tokenize() added BOS");

      // llama.cpp's SPM byte fallback aborts the process (std::out_of_range from
      // token_to_id.at) on a character that is not in the vocabulary when the vocabulary has no
      // <0xNN> byte tokens (TinyStories-656K). Such texts cannot have a reference: they are listed
      // under "skipped", and the long file case drops those characters ("remove_chars").
      const meta = model.fileInfo.metadata.tokenizer.ggml;
      const vocabSet = new Set(meta.tokens);
      const hasByteTokens = meta.model !== "llama" || meta.tokens.filter((t) => /^<0x[0-9A-F]{2}>$/.test(t)).length === 256;
      const missingChars = (text) => hasByteTokens ? [] :
        [...new Set(Array.from("\u2581" + text.replaceAll(" ", "\u2581")).filter((c) => !vocabSet.has(c)))];
      const cases = [];
      const skipped = [];
      const add = (c, special = false) => {
        // With parse_special, the special tokens' own texts are cut out before tokenizing.
        const missing = missingChars(special ? c.text.replace(/<\|[a-z_]+\|>|<unk>|<\/?s>/g, " ") : c.text);
        if (missing.length) { skipped.push({kind: c.kind, text: c.text, missing: missing.join("")}); return; }
        const tokens = tok(c.text, special);
        // llama.cpp's detokenization of the same tokens (llama_detokenize: leading-space and
        // clean_up_tokenization_spaces rules), checked against hearth's Tokenizer::decode.
        cases.push({...c, ...(special ? {parse_special: true} : {detokenized: model.detokenize(tokens, false)}), tokens});
      };
      vocabTests.forEach(({text, expected}, i) => {
        if (name === "llama3" && JSON.stringify(tok(text)) !== JSON.stringify(expected))
          throw new Error(`llama.cpp disagrees with its own ggml-vocab-llama-bpe.gguf.out on case ${i}`);
        add({kind: "llama.cpp-vocab-test", text});
      });
      for (const text of corpus) add({kind: "corpus", text});
      {
        let text = wp.toString("utf8");
        const remove = missingChars(text).filter((c) => c !== "\u2581");
        for (const c of remove) text = text.replaceAll(c, "");
        cases.push({kind: "file", file: WAR_AND_PEACE, bytes: WAR_AND_PEACE_BYTES,
          ...(remove.length ? {remove_chars: remove.join("")} : {}), tokens: tok(text)});
      }
      for (const text of SPECIAL_TEXTS[name]) add({kind: "parse_special", text}, true);
      if (name === "llama3") {
        for (const bytes of INVALID_UTF8) {
          const text = llamaDecode(bytes);
          if (text == null) throw new Error(`invalid-UTF-8 case ${bytes} cannot be passed to llama.cpp`);
          cases.push({kind: "invalid-utf8", bytes_b64: Buffer.from(bytes).toString("base64"), llama_text: text, tokens: tok(text)});
        }
      }

      const golden = {
        source: MODELS[name].source,
        gguf: MODELS[name].how,
        tokenizer: {model: meta.model, pre: meta.pre ?? "", n_vocab: meta.tokens.length},
        reference,
        call: "model.tokenize(text, parse_special) == common_tokenize(vocab, text, add_special=false, parse_special)",
        cases,
        skipped,
      };
      const out = path.join(goldenDir, `tokenize_bpe_${name}.json`);
      fs.writeFileSync(out, toJson(golden) + "\n");
      console.log(`wrote ${path.relative(repo, out)} (${cases.length} cases, ${fs.statSync(out).size} bytes)`);
      await model.dispose();
      if (name === "llama3") await preVariants(llama, file, corpus, vocabTests);
    }
  } finally {
    fs.rmSync(tmp, {recursive: true, force: true});
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

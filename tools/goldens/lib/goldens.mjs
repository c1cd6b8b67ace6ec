// Helpers shared by the golden generators: token streams, float16 storage of logits, and the
// stable JSON layout of the index files.

// BOS (1), then n-1 ids in [3, n_vocab) from a 32-bit xorshift seeded with `seed`.
export function makeTokens(n, nVocab, seed) {
  let s = seed >>> 0;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  const toks = [1];
  while (toks.length < n) toks.push(3 + (next() % (nVocab - 3)));
  return toks;
}

// float32 -> IEEE binary16 bits, round to nearest even; throws on overflow / non-finite.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
export function toF16(v) {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000, exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) throw new Error(`non-finite logit ${v}`);
  const e = exp - 127 + 15;
  if (e >= 0x1f) throw new Error(`logit ${v} overflows float16`);
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  if ((h & 0x7c00) === 0x7c00) throw new Error(`logit ${v} overflows float16`);
  return sign | h;
}

export function toJson(value, indent = "") {
  const next = indent + "  ";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    if (value.every((v) => typeof v === "number" || typeof v === "string")) return "[" + value.map((v) => JSON.stringify(v)).join(", ") + "]";
    return "[\n" + value.map((v) => next + toJson(v, next)).join(",\n") + "\n" + indent + "]";
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0) return "{}";
    return "{\n" + keys.map((k) => next + JSON.stringify(k) + ": " + toJson(value[k], next)).join(",\n") + "\n" + indent + "}";
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`non-finite ${value}`);
  return JSON.stringify(value);
}

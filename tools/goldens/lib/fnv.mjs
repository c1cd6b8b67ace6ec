// FNV-1a 64 of a buffer, as a 16-digit lowercase hex string (hi/lo 32-bit halves; all products
// stay below 2^53 so doubles are exact). Shared by the generators that record model files.
export function fnv1a64(buf) {
  let hi = 0xcbf29ce4, lo = 0x84222325;  // offset basis 0xcbf29ce484222325
  for (let i = 0; i < buf.length; i++) {
    lo = (lo ^ buf[i]) >>> 0;
    // h *= 0x100000001b3 (mod 2^64) = h * 0x1b3 + (h << 40)
    const a = lo * 0x1b3;
    const carry = Math.floor(a / 4294967296);
    hi = (hi * 0x1b3 + carry + lo * 256) >>> 0;
    lo = a >>> 0;
  }
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0");
}

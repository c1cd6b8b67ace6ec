// Panel layouts (scalar pack / unpack), activation preparation and the lazily packed weight.
//
// Panel layouts, per block of one panel (16 rows r, inputs k of the block). A "nibble vector"
// NV(k0) is 64 bytes: byte 4r + i = u[r][k0 + i] & 15 | (u[r][k0 + 16 + i] & 15) << 4, so
// `& 15` gives inputs k0..k0+3 of every row and `>> 4 & 15` inputs k0+16..k0+19.
//
//   Q4_0 (pairs of 32-blocks, 576 B): per block h of the pair NV(4g) for g = 0..3 (256 B), then
//        d[16] f16 of block 0, d[16] f16 of block 1. u = the stored nibble (w = u - 8).
//   Q8_0 (pairs of 32-blocks, 1088 B): per block h, 8 vectors of 16 rows x 4 bytes (u = w + 128),
//        then d[16] f16 of block 0 and of block 1.
//   Q4_K (256-block, 2368 B): NV(32 s + 4 g) at 64 (4 s + g) for sub-block s, g = 0..3 (2048 B);
//        scales [s][r] u8 (128 B); mins [j][r][2] u8 = m[2j], m[2j+1] (128 B); d[16], dmin[16] f16.
//   Q5_K (256-block, 2880 B): the low 4 bits as Q4_K's 2048 B; high bits (512 B): vector s, byte
//        4r + i, bit 2 g = input 32 s + 4 g + i, bit 2 g + 1 = input 32 s + 16 + 4 g + i; then
//        scales (128 B), mins (128 B), d[16], dmin[16] as Q4_K.
//   IQ4_XS (256-block, 2240 B): nibble vectors of sub-block s at 64 (4 s + g) (2048 B, the
//        stored 4-bit codes, Q4_0's order within each 32); scales [s][r] i8 = ls - 32 (128 B);
//        d[16] f16; 32 B padding.
//   IQ4_NL (pairs of 32-blocks, 576 B): as Q4_0 (the codes index kvalues_iq4nl).
//   Q4_1 (pairs, 640 B): as Q4_0, then m[16] f16 of block 0, of block 1.
//   Q5_0 (pairs, 704 B): nibble vectors as Q4_0 (512 B); per block h a high-bit vector (64 B at
//        512 + 64 h: byte 4r + i, bit 2 g = input 4 g + i, bit 2 g + 1 = input 16 + 4 g + i, as
//        Q5_K's); d[16] f16 of block 0, of block 1.
//   Q5_1 (pairs, 768 B): as Q5_0, then m[16] f16 of block 0, of block 1.
//   MXFP4 (pairs of 32-blocks, 576 B): nibble vectors as Q4_0 (codes index kvalues_mxfp4), then
//        e[16] u8 of block 0, e[16] of block 1 (the E8M0 exponents), 32 B padding (keeps pairs
//        64-aligned: +5.9% over the file's 544 B).
//   Q2_K (256-block, 1344 B): 2-bit vectors (1024 B) as Q6_K's high bits below; the scale bytes
//        (low nibble scale, high nibble min) as [k][r][2] = scales[2 k], scales[2 k + 1] of row
//        r (256 B); d[16], dmin[16] f16.
//   Q3_K (256-block, 1856 B): the low 2 bits as Q2_K (1024 B); the high bit as Q5_K's (512 B);
//        scales [j][r] i8 = (6-bit scale) - 32 (256 B); d[16] f16; 32 B padding.
//   Q6_K (256-block, 3392 B): the low 4 bits as Q4_K's 2048 B; the high 2 bits (1024 B): vector
//        2 s + p, byte 4r + i, holds 2-bit fields (low to high) for inputs 32 s + 8 p + i,
//        32 s + 16 + 8 p + i, 32 s + 8 p + 4 + i, 32 s + 16 + 8 p + 4 + i; scales [j][r] i8 for
//        the 16 sub-blocks of 16 (256 B); d[16] f16; 32 B padding (keeps blocks 64-aligned).
#include "kernels/packed.h"

#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "base/cpu.h"
#include "base/fp16.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/tensor.h"

namespace hearth {

// packed_scalar.cpp; packed_avx2.cpp, packed_avxvnni.cpp, packed_avx512.cpp (x86-64);
// packed_neon.cpp (AArch64)
#define HEARTH_PACKED_GEMM(name)                                                                             \
  void name(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts, \
            int64_t n_tok, float* y, size_t ldy);
HEARTH_PACKED_GEMM(packed_gemm_scalar)
#if HEARTH_X86
HEARTH_PACKED_GEMM(packed_gemm_avx2)
HEARTH_PACKED_GEMM(packed_gemm_avxvnni)
HEARTH_PACKED_GEMM(packed_gemm_avx512)
#endif
#if HEARTH_ARM
HEARTH_PACKED_GEMM(packed_gemm_neon)
#endif
#undef HEARTH_PACKED_GEMM

namespace {

constexpr size_t kQ4_0Pair = 576, kQ4_1Pair = 640, kQ5_0Pair = 704, kQ5_1Pair = 768, kQ8_0Pair = 1088,
                 kQ2_KBlock = 1344, kQ3_KBlock = 1856, kQ4_KBlock = 2368, kQ5_KBlock = 2880, kQ6_KBlock = 3392,
                 kIQ4_XSBlock = 2240;

bool repack_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("HEARTH_REPACK");
    return e == nullptr || std::strcmp(e, "0") != 0;
  }();
  return on;
}

// A block's unsigned quants (u[256], as the panel layout indexes them) back into GGUF rows.
void q4_K_from_unsigned(const uint8_t u[256], block_q4_K& b) {
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 32; ++l) b.qs[32 * j + l] = static_cast<uint8_t>(u[64 * j + l] | u[64 * j + 32 + l] << 4);
}
void q6_K_from_unsigned(const uint8_t u[256], block_q6_K& b) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* v = u + 128 * h;
      b.ql[64 * h + l] = static_cast<uint8_t>((v[l] & 15) | (v[64 + l] & 15) << 4);
      b.ql[64 * h + 32 + l] = static_cast<uint8_t>((v[32 + l] & 15) | (v[96 + l] & 15) << 4);
      b.qh[32 * h + l] =
          static_cast<uint8_t>((v[l] >> 4) | (v[32 + l] >> 4) << 2 | (v[64 + l] >> 4) << 4 | (v[96 + l] >> 4) << 6);
    }
}

// Q4_K's 12 packed bytes <-> 8 scales and 8 mins (6 bits each).
void k4_scales(const uint8_t* q, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = q[j] & 63;
    m[j] = q[j + 4] & 63;
    sc[j + 4] = static_cast<uint8_t>((q[j + 8] & 15) | (q[j] >> 6) << 4);
    m[j + 4] = static_cast<uint8_t>((q[j + 8] >> 4) | (q[j + 4] >> 6) << 4);
  }
}
void k4_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = static_cast<uint8_t>(sc[j] | (sc[j + 4] >> 4) << 6);
    q[j + 4] = static_cast<uint8_t>(m[j] | (m[j + 4] >> 4) << 6);
    q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
}

// Nibble vector NV(k0) into the unsigned quants u[r][..] (stride 256 per row).
void get_nibbles(const uint8_t* in, int k0, uint8_t* u) {
  for (int r = 0; r < kPanelRows; ++r)
    for (int i = 0; i < 4; ++i) {
      u[256 * r + k0 + i] = in[4 * r + i] & 15;
      u[256 * r + k0 + 16 + i] = in[4 * r + i] >> 4;
    }
}
// Q6_K high-bit field order within byte 4r + i of vector 2s + p: input offsets from 32 s.
constexpr int kQ6HiOff[4] = {0, 16, 4, 20};

// Packing works on 4 bytes at a time (4 inputs of one row = one dword of a panel vector); it
// runs once per weight on the first forward pass, so it has to be fast: ~1 GB/s per thread.
inline uint32_t ld32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline void st32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
// Nibble-vector dwords from 32 nibble-packed bytes q (low nibbles = inputs 0..31, or high
// nibbles when `high`): 4 g..4 g+3 and 16+4 g..16+4 g+3 of the 32 inputs.
inline uint32_t nib_dword(const uint8_t* q, int g, bool high) {
  const uint32_t a = ld32(q + 4 * g), b = ld32(q + 16 + 4 * g);
  return high ? ((a >> 4) & 0x0F0F0F0Fu) | (b & 0xF0F0F0F0u) : (a & 0x0F0F0F0Fu) | ((b & 0x0F0F0F0Fu) << 4);
}

template <class Block>
const Block& blk(const uint8_t* rows, size_t stride, int r, int64_t b) {
  return reinterpret_cast<const Block*>(rows + r * stride)[b];
}
template <class Block>
Block& blk_mut(uint8_t* rows, size_t stride, int r, int64_t b) {
  return reinterpret_cast<Block*>(rows + r * stride)[b];
}

void pack_q4_K(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kQ4_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q4_K>(rows, stride, r, b);
      // Sub-block s = 2 j + h: low (h = 0) or high (h = 1) nibbles of qs[32 j .. 32 j + 32).
      for (int sb = 0; sb < 8; ++sb)
        for (int g = 0; g < 4; ++g) st32(out + 64 * (4 * sb + g) + 4 * r, nib_dword(x.qs + 32 * (sb / 2), g, sb & 1));
      uint8_t sc[8], m[8];
      k4_scales(x.scales, sc, m);
      for (int sb = 0; sb < 8; ++sb) out[2048 + 16 * sb + r] = sc[sb];
      for (int j = 0; j < 4; ++j) {
        out[2176 + 32 * j + 2 * r] = m[2 * j];
        out[2176 + 32 * j + 2 * r + 1] = m[2 * j + 1];
      }
      std::memcpy(out + 2304 + 2 * r, &x.d, 2);
      std::memcpy(out + 2336 + 2 * r, &x.dmin, 2);
    }
  }
}
void unpack_q4_K(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  uint8_t u[kPanelRows * 256];
  for (int64_t b = 0; b < nb; ++b, in += kQ4_KBlock) {
    for (int s = 0; s < 8; ++s)
      for (int g = 0; g < 4; ++g) get_nibbles(in + 64 * (4 * s + g), 32 * s + 4 * g, u);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q4_K>(rows, stride, r, b);
      q4_K_from_unsigned(u + 256 * r, x);
      uint8_t sc[8], m[8];
      for (int s = 0; s < 8; ++s) sc[s] = in[2048 + 16 * s + r];
      for (int j = 0; j < 4; ++j) {
        m[2 * j] = in[2176 + 32 * j + 2 * r];
        m[2 * j + 1] = in[2176 + 32 * j + 2 * r + 1];
      }
      k4_pack_scales(sc, m, x.scales);
      std::memcpy(&x.d, in + 2304 + 2 * r, 2);
      std::memcpy(&x.dmin, in + 2336 + 2 * r, 2);
    }
  }
}

// Q5_K: Q4_K's nibbles and scales (offsets shifted by the 512 high-bit bytes) plus the high bits.
void pack_q5_K(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kQ5_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q5_K>(rows, stride, r, b);
      for (int sb = 0; sb < 8; ++sb) {
        for (int g = 0; g < 4; ++g) st32(out + 64 * (4 * sb + g) + 4 * r, nib_dword(x.qs + 32 * (sb / 2), g, sb & 1));
        for (int i = 0; i < 4; ++i) {
          uint8_t v = 0;
          for (int g = 0; g < 4; ++g) {
            v |= static_cast<uint8_t>(((x.qh[4 * g + i] >> sb) & 1) << (2 * g));
            v |= static_cast<uint8_t>(((x.qh[16 + 4 * g + i] >> sb) & 1) << (2 * g + 1));
          }
          out[2048 + 64 * sb + 4 * r + i] = v;
        }
      }
      uint8_t sc[8], m[8];
      k4_scales(x.scales, sc, m);
      for (int sb = 0; sb < 8; ++sb) out[2560 + 16 * sb + r] = sc[sb];
      for (int j = 0; j < 4; ++j) {
        out[2688 + 32 * j + 2 * r] = m[2 * j];
        out[2688 + 32 * j + 2 * r + 1] = m[2 * j + 1];
      }
      std::memcpy(out + 2816 + 2 * r, &x.d, 2);
      std::memcpy(out + 2848 + 2 * r, &x.dmin, 2);
    }
  }
}
void unpack_q5_K(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  uint8_t u[kPanelRows * 256];
  for (int64_t b = 0; b < nb; ++b, in += kQ5_KBlock) {
    for (int s = 0; s < 8; ++s)
      for (int g = 0; g < 4; ++g) get_nibbles(in + 64 * (4 * s + g), 32 * s + 4 * g, u);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q5_K>(rows, stride, r, b);
      // Same nibble order as Q4_K's qs.
      for (int j = 0; j < 4; ++j)
        for (int l = 0; l < 32; ++l)
          x.qs[32 * j + l] = static_cast<uint8_t>(u[256 * r + 64 * j + l] | u[256 * r + 64 * j + 32 + l] << 4);
      std::memset(x.qh, 0, sizeof(x.qh));
      for (int s = 0; s < 8; ++s)
        for (int i = 0; i < 4; ++i) {
          const uint8_t v = in[2048 + 64 * s + 4 * r + i];
          for (int g = 0; g < 4; ++g) {
            x.qh[4 * g + i] |= static_cast<uint8_t>(((v >> (2 * g)) & 1) << s);
            x.qh[16 + 4 * g + i] |= static_cast<uint8_t>(((v >> (2 * g + 1)) & 1) << s);
          }
        }
      uint8_t sc[8], m[8];
      for (int s = 0; s < 8; ++s) sc[s] = in[2560 + 16 * s + r];
      for (int j = 0; j < 4; ++j) {
        m[2 * j] = in[2688 + 32 * j + 2 * r];
        m[2 * j + 1] = in[2688 + 32 * j + 2 * r + 1];
      }
      k4_pack_scales(sc, m, x.scales);
      std::memcpy(&x.d, in + 2816 + 2 * r, 2);
      std::memcpy(&x.dmin, in + 2848 + 2 * r, 2);
    }
  }
}

// IQ4_XS: sub-block s's 16 code bytes (low nibbles = inputs 0..15, high = 16..31) are already
// nibble-vector dwords, as Q4_0's.
void pack_iq4_xs(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kIQ4_XSBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_iq4_xs>(rows, stride, r, b);
      for (int sb = 0; sb < 8; ++sb) {
        for (int g = 0; g < 4; ++g) st32(out + 64 * (4 * sb + g) + 4 * r, ld32(x.qs + 16 * sb + 4 * g));
        const int ls = ((x.scales_l[sb / 2] >> (4 * (sb % 2))) & 15) | ((x.scales_h >> (2 * sb)) & 3) << 4;
        out[2048 + 16 * sb + r] = static_cast<uint8_t>(static_cast<int8_t>(ls - 32));
      }
      std::memcpy(out + 2176 + 2 * r, &x.d, 2);
    }
    std::memset(out + 2208, 0, 32);
  }
}
void unpack_iq4_xs(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b, in += kIQ4_XSBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_iq4_xs>(rows, stride, r, b);
      x.scales_h = 0;
      std::memset(x.scales_l, 0, sizeof(x.scales_l));
      for (int sb = 0; sb < 8; ++sb) {
        for (int g = 0; g < 4; ++g) st32(x.qs + 16 * sb + 4 * g, ld32(in + 64 * (4 * sb + g) + 4 * r));
        const int ls = static_cast<int8_t>(in[2048 + 16 * sb + r]) + 32;
        x.scales_l[sb / 2] |= static_cast<uint8_t>((ls & 15) << (4 * (sb % 2)));
        x.scales_h = static_cast<uint16_t>(x.scales_h | (ls >> 4) << (2 * sb));
      }
      std::memcpy(&x.d, in + 2176 + 2 * r, 2);
    }
  }
}

// 2-bit fields stored as Q2_K/Q3_K's qs and Q6_K's qh: input 128 h + 32 t + l of a block is
// (q[32 h + l] >> 2 t) & 3. Vector 2 sb + p (sb = 4 h + t) of the panel, dword of row r, holds
// the fields of inputs 32 sb + 8 p + kQ6HiOff[f] + i at bits 2 f of byte i.
void pack_2bit(const uint8_t* q, int r, uint8_t* out) {
  for (int sb = 0; sb < 8; ++sb) {
    const int h = sb / 4, t = sb % 4;
    for (int p = 0; p < 2; ++p) {
      uint32_t v = 0;
      for (int f = 0; f < 4; ++f) v |= ((ld32(q + 32 * h + 8 * p + kQ6HiOff[f]) >> (2 * t)) & 0x03030303u) << (2 * f);
      st32(out + 64 * (2 * sb + p) + 4 * r, v);
    }
  }
}
// The inverse: ORs the fields back into q (zeroed by the caller).
void unpack_2bit(const uint8_t* in, int r, uint8_t* q) {
  for (int sb = 0; sb < 8; ++sb) {
    const int h = sb / 4, t = sb % 4;
    for (int p = 0; p < 2; ++p)
      for (int i = 0; i < 4; ++i)
        for (int f = 0; f < 4; ++f)
          q[32 * h + 8 * p + kQ6HiOff[f] + i] |=
              static_cast<uint8_t>(((in[64 * (2 * sb + p) + 4 * r + i] >> (2 * f)) & 3) << (2 * t));
  }
}
// One bit per input (Q3_K's hmask: input 128 h + 32 t + l has bit 4 h + t of hm[l]) as Q5_K's
// high-bit vectors: vector sb, byte 4 r + i, bit 2 g = input 32 sb + 4 g + i, 2 g + 1 = + 16.
void pack_1bit(const uint8_t* hm, int r, uint8_t* out) {
  for (int sb = 0; sb < 8; ++sb)
    for (int i = 0; i < 4; ++i) {
      uint8_t v = 0;
      for (int g = 0; g < 4; ++g) {
        v |= static_cast<uint8_t>(((hm[4 * g + i] >> sb) & 1) << (2 * g));
        v |= static_cast<uint8_t>(((hm[16 + 4 * g + i] >> sb) & 1) << (2 * g + 1));
      }
      out[64 * sb + 4 * r + i] = v;
    }
}
void unpack_1bit(const uint8_t* in, int r, uint8_t* hm) {
  for (int sb = 0; sb < 8; ++sb)
    for (int i = 0; i < 4; ++i) {
      const uint8_t v = in[64 * sb + 4 * r + i];
      for (int g = 0; g < 4; ++g) {
        hm[4 * g + i] |= static_cast<uint8_t>(((v >> (2 * g)) & 1) << sb);
        hm[16 + 4 * g + i] |= static_cast<uint8_t>(((v >> (2 * g + 1)) & 1) << sb);
      }
    }
}

void pack_q2_K(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kQ2_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q2_K>(rows, stride, r, b);
      pack_2bit(x.qs, r, out);
      for (int k = 0; k < 8; ++k) {
        out[1024 + 32 * k + 2 * r] = x.scales[2 * k];
        out[1024 + 32 * k + 2 * r + 1] = x.scales[2 * k + 1];
      }
      std::memcpy(out + 1280 + 2 * r, &x.d, 2);
      std::memcpy(out + 1312 + 2 * r, &x.dmin, 2);
    }
  }
}
void unpack_q2_K(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b, in += kQ2_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q2_K>(rows, stride, r, b);
      std::memset(x.qs, 0, sizeof(x.qs));
      unpack_2bit(in, r, x.qs);
      for (int k = 0; k < 8; ++k) {
        x.scales[2 * k] = in[1024 + 32 * k + 2 * r];
        x.scales[2 * k + 1] = in[1024 + 32 * k + 2 * r + 1];
      }
      std::memcpy(&x.d, in + 1280 + 2 * r, 2);
      std::memcpy(&x.dmin, in + 1312 + 2 * r, 2);
    }
  }
}

// Q3_K's 12 scale bytes <-> 16 6-bit scales: low 4 bits in scales[j % 8] (low nibble for j < 8),
// high 2 bits at 2 (j / 4) of scales[8 + j % 4].
void k3_scales(const uint8_t* q, int sc[16]) {
  for (int j = 0; j < 16; ++j)
    sc[j] = ((j < 8 ? q[j] : q[j - 8] >> 4) & 15) | ((q[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
}
void k3_pack_scales(const int sc[16], uint8_t* q) {
  std::memset(q, 0, 12);
  for (int j = 0; j < 16; ++j) {
    q[j % 8] |= static_cast<uint8_t>((sc[j] & 15) << (j < 8 ? 0 : 4));
    q[8 + j % 4] |= static_cast<uint8_t>(((sc[j] >> 4) & 3) << (2 * (j / 4)));
  }
}

void pack_q3_K(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kQ3_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q3_K>(rows, stride, r, b);
      pack_2bit(x.qs, r, out);
      pack_1bit(x.hmask, r, out + 1024);
      int sc[16];
      k3_scales(x.scales, sc);
      for (int j = 0; j < 16; ++j) out[1536 + 16 * j + r] = static_cast<uint8_t>(static_cast<int8_t>(sc[j] - 32));
      std::memcpy(out + 1792 + 2 * r, &x.d, 2);
    }
    std::memset(out + 1824, 0, 32);
  }
}
void unpack_q3_K(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b, in += kQ3_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q3_K>(rows, stride, r, b);
      std::memset(x.qs, 0, sizeof(x.qs));
      std::memset(x.hmask, 0, sizeof(x.hmask));
      unpack_2bit(in, r, x.qs);
      unpack_1bit(in + 1024, r, x.hmask);
      int sc[16];
      for (int j = 0; j < 16; ++j) sc[j] = static_cast<int8_t>(in[1536 + 16 * j + r]) + 32;
      k3_pack_scales(sc, x.scales);
      std::memcpy(&x.d, in + 1792 + 2 * r, 2);
    }
  }
}

void pack_q6_K(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += kQ6_KBlock) {
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q6_K>(rows, stride, r, b);
      // Sub-block s = 4 h + t covers inputs 128 h + 32 t ..: low 4 bits in ql[64 h + 32 (t & 1) ..]
      // (low nibbles for t < 2), high 2 bits in bits 2 t of qh[32 h ..].
      for (int sb = 0; sb < 8; ++sb) {
        const int h = sb / 4, t = sb % 4;
        for (int g = 0; g < 4; ++g)
          st32(out + 64 * (4 * sb + g) + 4 * r, nib_dword(x.ql + 64 * h + 32 * (t & 1), g, t >= 2));
        for (int p = 0; p < 2; ++p) {
          uint32_t v = 0;
          for (int f = 0; f < 4; ++f)
            v |= ((ld32(x.qh + 32 * h + 8 * p + kQ6HiOff[f]) >> (2 * t)) & 0x03030303u) << (2 * f);
          st32(out + 2048 + 64 * (2 * sb + p) + 4 * r, v);
        }
      }
      for (int j = 0; j < 16; ++j) out[3072 + 16 * j + r] = static_cast<uint8_t>(x.scales[j]);
      std::memcpy(out + 3328 + 2 * r, &x.d, 2);
    }
    std::memset(out + 3360, 0, 32);
  }
}
void unpack_q6_K(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  uint8_t u[kPanelRows * 256];
  for (int64_t b = 0; b < nb; ++b, in += kQ6_KBlock) {
    for (int s = 0; s < 8; ++s) {
      for (int g = 0; g < 4; ++g) get_nibbles(in + 64 * (4 * s + g), 32 * s + 4 * g, u);
      for (int p = 0; p < 2; ++p) {
        const uint8_t* h = in + 2048 + 64 * (2 * s + p);
        for (int r = 0; r < kPanelRows; ++r)
          for (int i = 0; i < 4; ++i)
            for (int f = 0; f < 4; ++f)
              u[256 * r + 32 * s + 8 * p + kQ6HiOff[f] + i] |=
                  static_cast<uint8_t>(((h[4 * r + i] >> (2 * f)) & 3) << 4);
      }
    }
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q6_K>(rows, stride, r, b);
      q6_K_from_unsigned(u + 256 * r, x);
      for (int j = 0; j < 16; ++j) x.scales[j] = static_cast<int8_t>(in[3072 + 16 * j + r]);
      std::memcpy(&x.d, in + 3328 + 2 * r, 2);
    }
  }
}

// Q4_0 / Q8_0: blocks in pairs.
void pack_q4_0(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = out + (b / 2) * kQ4_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q4_0>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g) st32(o + 256 * h + 64 * g + 4 * r, ld32(x.qs + 4 * g));
      std::memcpy(o + 512 + 32 * h + 2 * r, &x.d, 2);
    }
  }
}
void unpack_q4_0(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = in + (b / 2) * kQ4_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q4_0>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g)
        for (int i = 0; i < 4; ++i) x.qs[4 * g + i] = o[256 * h + 64 * g + 4 * r + i];
      std::memcpy(&x.d, o + 512 + 32 * h + 2 * r, 2);
    }
  }
}
// Q4_1 / Q5_0 / Q5_1: Q4_0's nibble vectors, Q5's high bits (bit e of qh = element e), d, m.
template <class Block, bool Q5, bool Min>
void pack_legacy_min(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  constexpr size_t kPair = Q5 ? (Min ? kQ5_1Pair : kQ5_0Pair) : kQ4_1Pair;
  constexpr size_t kD = Q5 ? 640 : 512;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = out + (b / 2) * kPair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<Block>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g) st32(o + 256 * h + 64 * g + 4 * r, ld32(x.qs + 4 * g));
      if constexpr (Q5) {
        const uint32_t qh = ld32(x.qh);
        for (int i = 0; i < 4; ++i) {
          uint8_t v = 0;
          for (int g = 0; g < 4; ++g)
            v |= static_cast<uint8_t>(((qh >> (4 * g + i)) & 1) << (2 * g) | ((qh >> (16 + 4 * g + i)) & 1)
                                                                                 << (2 * g + 1));
          o[512 + 64 * h + 4 * r + i] = v;
        }
      }
      std::memcpy(o + kD + 32 * h + 2 * r, &x.d, 2);
      if constexpr (Min) std::memcpy(o + kD + 64 + 32 * h + 2 * r, &x.m, 2);
    }
  }
}
template <class Block, bool Q5, bool Min>
void unpack_legacy_min(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  constexpr size_t kPair = Q5 ? (Min ? kQ5_1Pair : kQ5_0Pair) : kQ4_1Pair;
  constexpr size_t kD = Q5 ? 640 : 512;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = in + (b / 2) * kPair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<Block>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g) st32(x.qs + 4 * g, ld32(o + 256 * h + 64 * g + 4 * r));
      if constexpr (Q5) {
        uint32_t qh = 0;
        for (int i = 0; i < 4; ++i) {
          const uint8_t v = o[512 + 64 * h + 4 * r + i];
          for (int g = 0; g < 4; ++g)
            qh |= static_cast<uint32_t>((v >> (2 * g)) & 1) << (4 * g + i) |
                  static_cast<uint32_t>((v >> (2 * g + 1)) & 1) << (16 + 4 * g + i);
        }
        st32(x.qh, qh);
      }
      std::memcpy(&x.d, o + kD + 32 * h + 2 * r, 2);
      if constexpr (Min) std::memcpy(&x.m, o + kD + 64 + 32 * h + 2 * r, 2);
    }
  }
}

void pack_mxfp4(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = out + (b / 2) * kQ4_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_mxfp4>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g) st32(o + 256 * h + 64 * g + 4 * r, ld32(x.qs + 4 * g));
      o[512 + 16 * h + r] = x.e;
    }
    if (h == 1) std::memset(o + 544, 0, 32);
  }
}
void unpack_mxfp4(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = in + (b / 2) * kQ4_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_mxfp4>(rows, stride, r, b);
      for (int g = 0; g < 4; ++g) st32(x.qs + 4 * g, ld32(o + 256 * h + 64 * g + 4 * r));
      x.e = o[512 + 16 * h + r];
    }
  }
}

void pack_q8_0(int64_t nb, const uint8_t* rows, size_t stride, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* o = out + (b / 2) * kQ8_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      const auto& x = blk<block_q8_0>(rows, stride, r, b);
      // w + 128 as a byte = w with its sign bit flipped.
      for (int g = 0; g < 8; ++g)
        st32(o + 512 * h + 64 * g + 4 * r, ld32(reinterpret_cast<const uint8_t*>(x.qs) + 4 * g) ^ 0x80808080u);
      std::memcpy(o + 1024 + 32 * h + 2 * r, &x.d, 2);
    }
  }
}
void unpack_q8_0(int64_t nb, const uint8_t* in, uint8_t* rows, size_t stride) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* o = in + (b / 2) * kQ8_0Pair;
    const int h = static_cast<int>(b % 2);
    for (int r = 0; r < kPanelRows; ++r) {
      auto& x = blk_mut<block_q8_0>(rows, stride, r, b);
      for (int g = 0; g < 8; ++g)
        for (int i = 0; i < 4; ++i)
          x.qs[4 * g + i] = static_cast<int8_t>(static_cast<int>(o[512 * h + 64 * g + 4 * r + i]) - 128);
      std::memcpy(&x.d, o + 1024 + 32 * h + 2 * r, 2);
    }
  }
}

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

PackedKernel packed_kernel() {
  static const PackedKernel k = [] {
    switch (active_isa()) {
      case Isa::avx512:
        return PackedKernel::kAvx512;
      case Isa::avx2:
        return use_avx_vnni() ? PackedKernel::kAvxVnni : PackedKernel::kAvx2;
      case Isa::neon:
        return PackedKernel::kNeon;
      case Isa::scalar:
        break;
    }
    return PackedKernel::kScalar;
  }();
  return k;
}

bool packed_kernel_runs(PackedKernel k) {
  switch (k) {
    case PackedKernel::kScalar:
      return true;
    case PackedKernel::kAvx2:
      return isa_supported(Isa::avx2);
    case PackedKernel::kAvxVnni:
      return isa_supported(Isa::avx2) && cpu_features().avx_vnni;
    case PackedKernel::kAvx512:
      return isa_supported(Isa::avx512);
    case PackedKernel::kNeon:
      return isa_supported(Isa::neon);
  }
  return false;
}

const char* packed_kernel_name(PackedKernel k) {
  switch (k) {
    case PackedKernel::kScalar:
      return "scalar";
    case PackedKernel::kAvx2:
      return "avx2";
    case PackedKernel::kAvxVnni:
      return "avxvnni";
    case PackedKernel::kAvx512:
      return "avx512";
    case PackedKernel::kNeon:
      return "neon";
  }
  return "?";
}

bool packing_available(GgmlType type) {
  // The scalar twin exists to test the layouts; at HEARTH_CPU=scalar matmul keeps the row
  // kernels, the plain reference path.
  if (!repack_enabled() || packed_kernel() == PackedKernel::kScalar) return false;
  return packed_panel_bytes(type, QK_K) != 0;
}

bool packable(GgmlType type, int64_t n_in, int64_t n_out) {
  if (!packing_available(type) || n_out <= 0 || n_out % kPanelRows != 0) return false;
  const int64_t align = packed_acts_format(type) == PackedActs::kA256 ? QK_K : 64;
  return n_in > 0 && n_in % align == 0;
}

size_t packed_panel_bytes(GgmlType type, int64_t n_in) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::IQ4_NL:
    case GgmlType::MXFP4:
      return static_cast<size_t>(n_in / 64) * kQ4_0Pair;
    case GgmlType::Q4_1:
      return static_cast<size_t>(n_in / 64) * kQ4_1Pair;
    case GgmlType::Q5_0:
      return static_cast<size_t>(n_in / 64) * kQ5_0Pair;
    case GgmlType::Q5_1:
      return static_cast<size_t>(n_in / 64) * kQ5_1Pair;
    case GgmlType::Q8_0:
      return static_cast<size_t>(n_in / 64) * kQ8_0Pair;
    case GgmlType::Q2_K:
      return static_cast<size_t>(n_in / QK_K) * kQ2_KBlock;
    case GgmlType::Q3_K:
      return static_cast<size_t>(n_in / QK_K) * kQ3_KBlock;
    case GgmlType::Q4_K:
      return static_cast<size_t>(n_in / QK_K) * kQ4_KBlock;
    case GgmlType::Q5_K:
      return static_cast<size_t>(n_in / QK_K) * kQ5_KBlock;
    case GgmlType::IQ4_XS:
      return static_cast<size_t>(n_in / QK_K) * kIQ4_XSBlock;
    case GgmlType::Q6_K:
      return static_cast<size_t>(n_in / QK_K) * kQ6_KBlock;
    default:
      return 0;
  }
}

PackedActs packed_acts_format(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
      return PackedActs::kA32Off8;
    case GgmlType::Q4_1:  // Q8_1, as llama.cpp
    case GgmlType::Q5_1:
      return PackedActs::kA32Min;
    case GgmlType::Q8_0:
    case GgmlType::IQ4_NL:  // codes looked up as grid value + 128
    case GgmlType::MXFP4:
      return PackedActs::kA32Off128;
    default:
      return PackedActs::kA256;
  }
}

void pack_panel(GgmlType type, int64_t n_in, const uint8_t* rows, size_t row_stride, uint8_t* panel) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::IQ4_NL:  // same block bytes
      pack_q4_0(n_in / QK4_0, rows, row_stride, panel);
      break;
    case GgmlType::MXFP4:
      pack_mxfp4(n_in / QK_MXFP4, rows, row_stride, panel);
      break;
    case GgmlType::Q4_1:
      pack_legacy_min<block_q4_1, false, true>(n_in / 32, rows, row_stride, panel);
      break;
    case GgmlType::Q5_0:
      pack_legacy_min<block_q5_0, true, false>(n_in / 32, rows, row_stride, panel);
      break;
    case GgmlType::Q5_1:
      pack_legacy_min<block_q5_1, true, true>(n_in / 32, rows, row_stride, panel);
      break;
    case GgmlType::Q2_K:
      pack_q2_K(n_in / QK_K, rows, row_stride, panel);
      break;
    case GgmlType::Q3_K:
      pack_q3_K(n_in / QK_K, rows, row_stride, panel);
      break;
    case GgmlType::Q5_K:
      pack_q5_K(n_in / QK_K, rows, row_stride, panel);
      break;
    case GgmlType::IQ4_XS:
      pack_iq4_xs(n_in / QK_K, rows, row_stride, panel);
      break;
    case GgmlType::Q8_0:
      pack_q8_0(n_in / QK8_0, rows, row_stride, panel);
      break;
    case GgmlType::Q4_K:
      pack_q4_K(n_in / QK_K, rows, row_stride, panel);
      break;
    case GgmlType::Q6_K:
      pack_q6_K(n_in / QK_K, rows, row_stride, panel);
      break;
    default:
      break;
  }
}

void unpack_panel(GgmlType type, int64_t n_in, const uint8_t* panel, uint8_t* rows, size_t row_stride) {
  switch (type) {
    case GgmlType::Q4_0:
    case GgmlType::IQ4_NL:
      unpack_q4_0(n_in / QK4_0, panel, rows, row_stride);
      break;
    case GgmlType::MXFP4:
      unpack_mxfp4(n_in / QK_MXFP4, panel, rows, row_stride);
      break;
    case GgmlType::Q4_1:
      unpack_legacy_min<block_q4_1, false, true>(n_in / 32, panel, rows, row_stride);
      break;
    case GgmlType::Q5_0:
      unpack_legacy_min<block_q5_0, true, false>(n_in / 32, panel, rows, row_stride);
      break;
    case GgmlType::Q5_1:
      unpack_legacy_min<block_q5_1, true, true>(n_in / 32, panel, rows, row_stride);
      break;
    case GgmlType::Q2_K:
      unpack_q2_K(n_in / QK_K, panel, rows, row_stride);
      break;
    case GgmlType::Q3_K:
      unpack_q3_K(n_in / QK_K, panel, rows, row_stride);
      break;
    case GgmlType::Q5_K:
      unpack_q5_K(n_in / QK_K, panel, rows, row_stride);
      break;
    case GgmlType::IQ4_XS:
      unpack_iq4_xs(n_in / QK_K, panel, rows, row_stride);
      break;
    case GgmlType::Q8_0:
      unpack_q8_0(n_in / QK8_0, panel, rows, row_stride);
      break;
    case GgmlType::Q4_K:
      unpack_q4_K(n_in / QK_K, panel, rows, row_stride);
      break;
    case GgmlType::Q6_K:
      unpack_q6_K(n_in / QK_K, panel, rows, row_stride);
      break;
    default:
      break;
  }
}

PackedActView prepare_packed_acts(PackedActs format, const float* x, int64_t n_in, int64_t n_tokens, ThreadPool& pool,
                                  std::vector<uint8_t>& buf, bool parallel) {
  const bool a256 = format == PackedActs::kA256, amin = format == PackedActs::kA32Min;
  const int64_t dblock = a256 ? QK_K : QK8_0, iblock = a256 ? 16 : QK8_0;
  PackedActView v;
  v.off_d = static_cast<size_t>(n_in);
  v.off_init = v.off_d + 4 * static_cast<size_t>(n_in / dblock);
  v.off_s32 = v.off_init + 4 * static_cast<size_t>(n_in / iblock);
  v.off_s16 = v.off_s32 + (a256 ? 2 * static_cast<size_t>(n_in / 32) : 0);
  v.off_ds = v.off_s16 + (a256 ? 2 * static_cast<size_t>(n_in / 16) : 0);
  v.row_bytes = round_up(v.off_ds + (amin ? 4 * static_cast<size_t>(n_in / 32) : 0), 64);
  if (buf.size() < v.row_bytes * n_tokens + 64) buf.resize(v.row_bytes * n_tokens + 64);
  // 64-byte aligned rows inside the buffer.
  uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) % 64;
  v.data = base;
  const GgmlType qt = a256 ? GgmlType::Q8_K : amin ? GgmlType::Q8_1 : GgmlType::Q8_0;
  const TypeTraits* at = type_traits(qt);
  const size_t qrow = static_cast<size_t>(n_in / at->block_size * at->type_size);
  const int32_t off = format == PackedActs::kA32Off128 ? 128 : 8;
  const auto convert = [&](int ith, int nth) {
    thread_local std::vector<uint8_t> tmp;
    if (tmp.size() < qrow) tmp.resize(qrow);
    auto [t0, t1] = ThreadPool::split(n_tokens, ith, nth);
    for (int64_t t = t0; t < t1; ++t) {
      uint8_t* row = base + t * v.row_bytes;
      auto* qs = reinterpret_cast<int8_t*>(row);
      auto* d = reinterpret_cast<float*>(row + v.off_d);
      auto* init = reinterpret_cast<int32_t*>(row + v.off_init);
      at->from_float(x + t * n_in, tmp.data(), n_in);
      if (a256) {
        auto* s32 = reinterpret_cast<int16_t*>(row + v.off_s32);
        const auto* q = reinterpret_cast<const block_q8_K*>(tmp.data());
        for (int64_t b = 0; b < n_in / QK_K; ++b) {
          std::memcpy(qs + b * QK_K, q[b].qs, QK_K);
          d[b] = q[b].d;
          for (int j = 0; j < 16; ++j) init[16 * b + j] = -32 * q[b].bsums[j];
          for (int j = 0; j < 8; ++j) s32[8 * b + j] = static_cast<int16_t>(q[b].bsums[2 * j] + q[b].bsums[2 * j + 1]);
          std::memcpy(row + v.off_s16 + 32 * b, q[b].bsums, 32);
        }
      } else {
        // Q8_0 and Q8_1 blocks: d (f16), [Q8_1: s (f16)], qs[32].
        const size_t bs = at->type_size, qoff = amin ? 4 : 2;
        auto* ds = reinterpret_cast<float*>(row + v.off_ds);
        for (int64_t b = 0; b < n_in / QK8_0; ++b) {
          const uint8_t* blk = tmp.data() + b * bs;
          const auto* bq = reinterpret_cast<const int8_t*>(blk + qoff);
          std::memcpy(qs + b * QK8_0, bq, QK8_0);
          uint16_t h;
          std::memcpy(&h, blk, 2);
          d[b] = fp16_to_fp32(h);
          if (amin) {
            std::memcpy(&h, blk + 2, 2);
            ds[b] = fp16_to_fp32(h);
          }
          int32_t sum = 0;
          for (int i = 0; i < QK8_0; ++i) sum += bq[i];
          init[b] = -off * sum;
        }
      }
    }
  };
  if (parallel) {
    pool.run(convert);
  } else {
    convert(0, 1);
  }
  return v;
}

void packed_gemm_with(PackedKernel k, GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels,
                      const PackedActView& acts, int64_t n_tok, float* y, size_t ldy) {
  switch (k) {
    case PackedKernel::kScalar:
      packed_gemm_scalar(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
#if HEARTH_X86
    case PackedKernel::kAvx2:
      packed_gemm_avx2(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
    case PackedKernel::kAvxVnni:
      packed_gemm_avxvnni(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
    case PackedKernel::kAvx512:
      packed_gemm_avx512(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
#endif
#if HEARTH_ARM
    case PackedKernel::kNeon:
      packed_gemm_neon(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
#endif
    default:  // a kernel this build has no code for (packed_kernel_runs is false for it)
      packed_gemm_scalar(type, n_in, panels, n_panels, acts, n_tok, y, ldy);
      break;
  }
}

void packed_gemm(GgmlType type, int64_t n_in, const uint8_t* panels, int64_t n_panels, const PackedActView& acts,
                 int64_t n_tok, float* y, size_t ldy) {
  packed_gemm_with(packed_kernel(), type, n_in, panels, n_panels, acts, n_tok, y, ldy);
}

PackedWeight::~PackedWeight() {
  if (map_ != nullptr) munmap(map_, map_bytes_);
}

const uint8_t* PackedWeight::get(const WeightView& w, ThreadPool& pool) {
  std::call_once(once_, [&] {
    if (!packable(w.type, w.n_in, w.n_out)) return;
    const auto t0 = std::chrono::steady_clock::now();
    const size_t pb = packed_panel_bytes(w.type, w.n_in);
    const int64_t n_panels = w.n_out / kPanelRows;
    const size_t bytes = pb * static_cast<size_t>(n_panels);
    // Anonymous memory on 2 MiB boundaries with transparent huge pages requested: decode streams
    // every weight once per token, and 4 KiB pages would cost a TLB miss (and stop the hardware
    // prefetcher) every 4 KiB. Only touched pages are backed, so the alignment slack is free.
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t mapped = round_up(bytes, 4096) + kHuge;
    void* m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;  // out of memory: keep using the rows in place
    auto* base = static_cast<uint8_t*>(m);
    uint8_t* p = base + (kHuge - reinterpret_cast<uintptr_t>(base) % kHuge) % kHuge;
    madvise(p, round_up(bytes, 4096), MADV_HUGEPAGE);
    pool.run([&](int ith, int nth) {
      auto [p0, p1] = ThreadPool::split(n_panels, ith, nth);
      for (int64_t i = p0; i < p1; ++i) pack_panel(w.type, w.n_in, w.row(kPanelRows * i), w.row_bytes, p + i * pb);
    });
    data_ = p;
    map_ = base;
    map_bytes_ = mapped;
    bytes_ = bytes;
    source_bytes_ = w.row_bytes * static_cast<size_t>(w.n_out);
    if (release_source_) {
      // Drop the file pages this process no longer reads (re-read from the file if touched).
      const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
      const auto begin = (reinterpret_cast<uintptr_t>(w.data) + page - 1) / page * page;
      const auto end = (reinterpret_cast<uintptr_t>(w.data) + w.row_bytes * w.n_out) / page * page;
      if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done_.store(true, std::memory_order_release);
  });
  return data_;
}

}  // namespace hearth

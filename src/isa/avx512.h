/* SPDX-License-Identifier: MIT */
/* AVX-512 (F, BW, DQ, VL) layer: the operation vocabulary of src/isa/README.md on 16 lanes.
   Masks live in k-registers. */
#ifndef PT_ISA_AVX512_H
#define PT_ISA_AVX512_H

/* The flags of configure's PT_AVX512_CFLAGS; without them the intrinsics below fail one by one
   (or, with some of them, compile into instructions the CPU check does not cover). */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) || \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "src/isa/avx512.h needs -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#include <immintrin.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>

#include "isa/common.h"

/* ---- types and lane counts ------------------------------------------------------------------ */

#define PT_LANES 16
#define PT_QLANES 8

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;
typedef __m512i vu;
typedef __m512i vq;

/* ---- constants ---------------------------------------------------------------------------- */

static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi vi_iota(void) {
  return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline vu vu_set1(uint32_t x) { return _mm512_set1_epi32((int)x); }
static inline vu vu_iota(void) { return vi_iota(); }

/* ---- load and store ------------------------------------------------------------------------- */

static inline vf vf_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  PT_ISA_ASSERT(n < PT_LANES);
  /* masked-off lanes are neither read nor able to fault */
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << n) - 1u), p);
}
/* lane l = p[l * stride], 1 <= stride <= 16: whole vectors in pairs, each pair permuted by
   position and blended into the lanes it holds (no gather: gathers are slow where measured).
   Reads p[0, 16 * stride + 16). */
static inline vf vf_load_stride(const float *p, size_t stride) {
  PT_ISA_ASSERT(stride >= 1 && stride <= 16);
  const __m512i pos = _mm512_mullo_epi32(vi_iota(), _mm512_set1_epi32((int)stride));
  const __m512i idx = _mm512_and_si512(pos, _mm512_set1_epi32(31)), pair = _mm512_srli_epi32(pos, 5);
  __m512 out = _mm512_setzero_ps();
  for (size_t j = 0; j <= 15 * stride / 32; j++) {
    const __m512 v = _mm512_permutex2var_ps(_mm512_loadu_ps(p + 32 * j), idx, _mm512_loadu_ps(p + 32 * j + 16));
    out = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(pair, _mm512_set1_epi32((int)j)), out, v);
  }
  return out;
}
/* out[k] lane l = p[l * stride + k]: sixteen row loads and the 16x16 transpose in four rounds
   of sixteen shuffles (pairs of rows interleaved, four rows of each column per 128-bit lane,
   then two rounds moving 128-bit lanes): with a gather per column instead, the fused argmax's
   short samples took 1.4x as long (d = 16, Zen 4). */
static inline void vf_load_columns(const float *p, size_t stride, vf *out) {
  __m512 r[16], t[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(p + (size_t)i * stride);
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  /* r[4 i + c], 128-bit lane q: column 4 q + c of rows 4 i .. 4 i + 3 */
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  /* for each c, the 4x4 transpose of 128-bit lanes among r[c], r[4 + c], r[8 + c], r[12 + c] */
#pragma GCC unroll 4
  for (int c = 0; c < 4; c++) {
    const __m512 even_ab = _mm512_shuffle_f32x4(r[c], r[4 + c], _MM_SHUFFLE(2, 0, 2, 0)),
                 odd_ab = _mm512_shuffle_f32x4(r[c], r[4 + c], _MM_SHUFFLE(3, 1, 3, 1)),
                 even_cd = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(2, 0, 2, 0)),
                 odd_cd = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    out[c] = _mm512_shuffle_f32x4(even_ab, even_cd, _MM_SHUFFLE(2, 0, 2, 0));
    out[c + 4] = _mm512_shuffle_f32x4(odd_ab, odd_cd, _MM_SHUFFLE(2, 0, 2, 0));
    out[c + 8] = _mm512_shuffle_f32x4(even_ab, even_cd, _MM_SHUFFLE(3, 1, 3, 1));
    out[c + 12] = _mm512_shuffle_f32x4(odd_ab, odd_cd, _MM_SHUFFLE(3, 1, 3, 1));
  }
}
static inline vf vf_gather(const float *base, vi offset) { return _mm512_i32gather_ps(offset, base, 4); }
static inline void vf_storeu(float *p, vf v) { _mm512_storeu_ps(p, v); }

static inline vi vi_loadu(const int32_t *p) { return _mm512_loadu_si512(p); }
static inline void vi_storeu(int32_t *p, vi v) { _mm512_storeu_si512(p, v); }
static inline void vi_store_tail(int32_t *p, size_t n, vi v) {
  PT_ISA_ASSERT(n < PT_LANES);
  _mm512_mask_storeu_epi32(p, (__mmask16)((1u << n) - 1u), v);
}
static inline void vi_scatter_tail(int32_t *p, size_t n, vi index, vi v) {
  PT_ISA_ASSERT(n <= PT_LANES);
  if (n == PT_LANES) { /* a scatter costs the same for any mask: worth it only when full */
    _mm512_i32scatter_epi32(p, index, v, 4);
    return;
  }
  int32_t at[PT_LANES], value[PT_LANES];
  vi_storeu(at, index);
  vi_storeu(value, v);
  for (size_t i = 0; i < n; i++) p[at[i]] = value[i];
}
static inline void vi_store_pairs(int64_t *p, vi hi, vi lo) {
  /* unpack interleaves within 128-bit quarters: pairs 0 1 4 5 8 9 12 13 and 2 3 6 7 ... */
  const __m512i a = _mm512_unpacklo_epi32(lo, hi), b = _mm512_unpackhi_epi32(lo, hi);
  _mm512_storeu_si512(p, _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), b));
  _mm512_storeu_si512(p + 8, _mm512_permutex2var_epi64(a, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), b));
}

static inline vu vu_loadu(const uint32_t *p) { return _mm512_loadu_si512(p); }
static inline void vu_storeu(uint32_t *p, vu v) { _mm512_storeu_si512(p, v); }

static inline vq vq_loadu(const int64_t *p) { return _mm512_loadu_si512(p); }
static inline void vq_storeu(int64_t *p, vq v) { _mm512_storeu_si512(p, v); }
static inline void vq_store_low(int32_t *p, size_t n, vq v) {
  PT_ISA_ASSERT(n <= PT_QLANES);
  _mm512_mask_cvtepi64_storeu_epi32(p, (__mmask8)((1u << n) - 1u), v);
}
static inline void vq_scatter_index(int32_t *p, size_t n, vq v, int32_t first) {
  PT_ISA_ASSERT(n >= 1 && n <= PT_QLANES);
  const __m256i at = _mm256_add_epi32(_mm256_set1_epi32(first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  _mm512_mask_i64scatter_epi32(p, (__mmask8)((1u << n) - 1u),
                               _mm512_and_si512(v, _mm512_set1_epi64(0xffffffff)), at, 4);
}

/* ---- float arithmetic ----------------------------------------------------------------------- */

static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_neg(vf a) {
  return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
}
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }

/* ---- compare, select and masks -------------------------------------------------------------- */

static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_isnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
static inline vm vi_gt(vi a, vi b) { return _mm512_cmpgt_epi32_mask(a, b); }
static inline vm vi_eq(vi a, vi b) { return _mm512_cmpeq_epi32_mask(a, b); }

static inline vf vf_select(vm m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vi vi_select(vm m, vi t, vi f) { return _mm512_mask_blend_epi32(m, f, t); }

static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline int vm_any(vm m) { return m != 0; }
static inline unsigned vm_bits(vm m) { return (unsigned)m; }
static inline unsigned vm_first(vm m) {
  PT_ISA_ASSERT(vm_any(m));
  return (unsigned)__builtin_ctz((unsigned)m);
}
static inline unsigned vm_count(vm m) { return (unsigned)__builtin_popcount((unsigned)m); }

/* ---- integer and bit operations ------------------------------------------------------------- */

static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_min(vi a, vi b) { return _mm512_min_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_inc(vi a, vm m) { return _mm512_mask_add_epi32(a, m, a, _mm512_set1_epi32(1)); }

static inline vu vu_add(vu a, vu b) { return _mm512_add_epi32(a, b); }
static inline vu vu_or(vu a, vu b) { return _mm512_or_si512(a, b); }
static inline vu vu_xor3(vu a, vu b, vu c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
static inline vu vu_shr(vu a, unsigned n) {
  PT_ISA_ASSERT(n < 32);
  return _mm512_srli_epi32(a, n);
}
/* 1 when every lane of m holds lane 0's value (vu_mulhilo's precondition; debug builds only) */
static inline int vu_uniform_(vu m) {
  return _mm512_cmpeq_epi32_mask(m, _mm512_permutexvar_epi32(_mm512_setzero_si512(), m)) == 0xFFFF;
}
/* mul_epu32 multiplies the even 32-bit lanes into 64-bit products; a shuffle brings the odd
   lanes down for a second one, and two merge-masked shuffles put the halves back in lane
   order (one uop each, on the shuffle port, beside the multiplies). */
static inline vu vu_mulhilo(vu a, vu m, vu *lo) {
  PT_ISA_ASSERT(vu_uniform_(m));
  const __m512i even = _mm512_mul_epu32(a, m);
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), m);
  *lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CCAA);
  return _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);
}

/* ---- conversions and reinterpretation ------------------------------------------------------- */

/* a signed conversion: the lanes must be below 2^31 (no sign bit set) */
static inline vf vf_from_vu(vu a) {
  PT_ISA_ASSERT(_mm512_movepi32_mask(a) == 0);
  return _mm512_cvtepi32_ps(a);
}
static inline vi vf_bits(vf v) { return _mm512_castps_si512(v); }

/* ---- horizontal reductions ------------------------------------------------------------------ */

static inline float vf_hmax(vf v) { return _mm512_reduce_max_ps(v); }
static inline float vf_hmin(vf v) { return _mm512_reduce_min_ps(v); }
static inline int32_t vi_hmin(vi v) { return _mm512_reduce_min_epi32(v); }
static inline float vf_tree_sum(vf v) {
  __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),                             /* t += t+8 */
                           _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)); /* t += t+4 */
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                      /* t += t+2 */
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));                      /* t += t+1 */
}

/* ---- 64-bit keys: order and sorting networks ------------------------------------------------ */

static inline vq vq_min(vq a, vq b) { return _mm512_min_epi64(a, b); }
static inline vq vq_max(vq a, vq b) { return _mm512_max_epi64(a, b); }
static inline vq vq_reverse(vq v) {
  return _mm512_permutexvar_epi64(_mm512_setr_epi64(7, 6, 5, 4, 3, 2, 1, 0), v);
}
/* One compare-exchange layer: v against its partner lanes p; the lanes set in `upper` keep the
   larger of the two, the others the smaller. */
static inline vq vq_exchange_(vq v, vq p, __mmask8 upper) {
  return _mm512_mask_max_epi64(_mm512_min_epi64(v, p), upper, v, p);
}
static inline vq vq_sort(vq v) {
  v = vq_exchange_(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC), 0xAA);     /* sorted pairs */
  v = vq_exchange_(v, _mm512_permutex_epi64(v, _MM_SHUFFLE(0, 1, 2, 3)), 0xCC);
  v = vq_exchange_(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC), 0xAA);     /* sorted fours */
  v = vq_exchange_(v, vq_reverse(v), 0xF0);
  v = vq_exchange_(v, _mm512_permutex_epi64(v, _MM_SHUFFLE(1, 0, 3, 2)), 0xCC);
  return vq_exchange_(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC), 0xAA);
}
static inline vq vq_sort_bitonic(vq v) {
  v = vq_exchange_(v, _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2)), 0xF0);
  v = vq_exchange_(v, _mm512_permutex_epi64(v, _MM_SHUFFLE(1, 0, 3, 2)), 0xCC);
  return vq_exchange_(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC), 0xAA);
}

/* ---- math (SLEEF) --------------------------------------------------------------------------- */

static inline vf vf_log_u35(vf a) { return Sleef_finz_logf16_u35avx512f(a); }
static inline void vf_sincospi_u35(vf a, vf *s, vf *c) {
  const Sleef___m512_2 r = Sleef_finz_sincospif16_u35avx512f(a);
  *s = r.x;
  *c = r.y;
}
static inline vf vf_exp(vf a) { return Sleef_finz_expf16_u10avx512f(a); }

#endif

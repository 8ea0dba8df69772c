/* SPDX-License-Identifier: MIT */
/* AVX2 + FMA layer: the operation vocabulary of src/isa/README.md on 8 lanes.
   Masks are full-width vectors (all ones or all zeros per lane), as AVX2 compares give them. */
#ifndef PT_ISA_AVX2_H
#define PT_ISA_AVX2_H

/* Without the flags the intrinsics below would fail one by one, or compile into calls the
   CPU baseline cannot run; say what is missing instead (the AVX2 convenience library of
   Makefile.am builds with them). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "src/isa/avx2.h needs -mavx2 -mfma"
#endif

#include <immintrin.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>

#include "isa/common.h"

/* ---- types and lane counts ------------------------------------------------------------------ */

#define PT_LANES 8
#define PT_QLANES 4

typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;
typedef __m256i vu;
typedef __m256i vq;

/* ---- constants ---------------------------------------------------------------------------- */

static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vi vi_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline vi vi_iota(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline vu vu_set1(uint32_t x) { return _mm256_set1_epi32((int)x); }
static inline vu vu_iota(void) { return vi_iota(); }

/* ---- load and store ------------------------------------------------------------------------- */

static inline vf vf_loadu(const float *p) { return _mm256_loadu_ps(p); }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  PT_ISA_ASSERT(n < PT_LANES);
  __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), vi_iota());
  /* maskload does not touch (or fault on) the memory of masked-off lanes */
  return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, live),
                          _mm256_castsi256_ps(live));
}
/* lane l = p[l * stride], 1 <= stride <= 16: whole vectors, each permuted by position and
   blended into the lanes it holds (no gather).  Reads p[0, 16 * stride + 16). */
static inline vf vf_load_stride(const float *p, size_t stride) {
  PT_ISA_ASSERT(stride >= 1 && stride <= 16);
  const __m256i pos = _mm256_mullo_epi32(vi_iota(), _mm256_set1_epi32((int)stride));
  const __m256i idx = _mm256_and_si256(pos, _mm256_set1_epi32(7)), block = _mm256_srli_epi32(pos, 3);
  __m256 out = _mm256_setzero_ps();
  for (size_t j = 0; j <= 7 * stride / 8; j++) {
    const __m256 v = _mm256_permutevar8x32_ps(_mm256_loadu_ps(p + 8 * j), idx);
    out = _mm256_blendv_ps(out, v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(block, _mm256_set1_epi32((int)j))));
  }
  return out;
}
/* out[k] lane l = p[l * stride + k]: eight row loads and the 8x8 transpose of unpacks, in-lane
   shuffles and 128-bit swaps (24 shuffles, no gather), written out so that nothing goes
   through the stack. */
static inline void vf_load_columns(const float *p, size_t stride, vf *out) {
  const __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + stride),
               r2 = _mm256_loadu_ps(p + 2 * stride), r3 = _mm256_loadu_ps(p + 3 * stride),
               r4 = _mm256_loadu_ps(p + 4 * stride), r5 = _mm256_loadu_ps(p + 5 * stride),
               r6 = _mm256_loadu_ps(p + 6 * stride), r7 = _mm256_loadu_ps(p + 7 * stride);
  /* pairs of rows interleaved: columns 0, 1 | 4, 5 and 2, 3 | 6, 7 */
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
               t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
               t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
               t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  /* four rows of column k in the low half, of column k + 4 in the high half */
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
               s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
               s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
               s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)),
               s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)),
               s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2)),
               s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)),
               s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
static inline vf vf_gather(const float *base, vi offset) { return _mm256_i32gather_ps(base, offset, 4); }
static inline void vf_storeu(float *p, vf v) { _mm256_storeu_ps(p, v); }

static inline vi vi_loadu(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vi_storeu(int32_t *p, vi v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline void vi_store_tail(int32_t *p, size_t n, vi v) {
  PT_ISA_ASSERT(n < PT_LANES);
  _mm256_maskstore_epi32((int *)p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), vi_iota()), v);
}
static inline void vi_scatter_tail(int32_t *p, size_t n, vi index, vi v) {
  PT_ISA_ASSERT(n <= PT_LANES);
  int32_t at[PT_LANES], value[PT_LANES];
  vi_storeu(at, index);
  vi_storeu(value, v);
  for (size_t i = 0; i < n; i++) p[at[i]] = value[i];
}
static inline void vi_store_pairs(int64_t *p, vi hi, vi lo) {
  /* unpack interleaves within 128-bit halves: pairs 0 1 4 5 and 2 3 6 7 */
  const __m256i a = _mm256_unpacklo_epi32(lo, hi), b = _mm256_unpackhi_epi32(lo, hi);
  _mm256_storeu_si256((__m256i *)p, _mm256_permute2x128_si256(a, b, 0x20));
  _mm256_storeu_si256((__m256i *)p + 1, _mm256_permute2x128_si256(a, b, 0x31));
}

static inline vu vu_loadu(const uint32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vu_storeu(uint32_t *p, vu v) { _mm256_storeu_si256((__m256i *)p, v); }

static inline vq vq_loadu(const int64_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void vq_storeu(int64_t *p, vq v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline void vq_store_low(int32_t *p, size_t n, vq v) {
  PT_ISA_ASSERT(n <= PT_QLANES);
  const __m128i low = _mm256_castsi256_si128(
      _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
  if (n == PT_QLANES) _mm_storeu_si128((__m128i *)p, low);
  else _mm_maskstore_epi32((int *)p, _mm_cmpgt_epi32(_mm_set1_epi32((int)n), _mm_setr_epi32(0, 1, 2, 3)),
                           low);
}
static inline void vq_scatter_index(int32_t *p, size_t n, vq v, int32_t first) {
  PT_ISA_ASSERT(n >= 1 && n <= PT_QLANES);
  const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
  const uint32_t at[PT_QLANES] = {(uint32_t)_mm_cvtsi128_si64(lo), (uint32_t)_mm_extract_epi64(lo, 1),
                                  (uint32_t)_mm_cvtsi128_si64(hi), (uint32_t)_mm_extract_epi64(hi, 1)};
  for (size_t i = 0; i < n; i++) p[at[i]] = first + (int32_t)i;
}

/* ---- float arithmetic ----------------------------------------------------------------------- */

static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }

/* ---- compare, select and masks -------------------------------------------------------------- */

static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vm vf_isnan(vf a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
static inline vm vi_gt(vi a, vi b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)); }
static inline vm vi_eq(vi a, vi b) { return _mm256_castsi256_ps(_mm256_cmpeq_epi32(a, b)); }

static inline vf vf_select(vm m, vf t, vf f) { return _mm256_blendv_ps(f, t, m); }
static inline vi vi_select(vm m, vi t, vi f) {
  return _mm256_castps_si256(
      _mm256_blendv_ps(_mm256_castsi256_ps(f), _mm256_castsi256_ps(t), m));
}

static inline vm vm_or(vm a, vm b) { return _mm256_or_ps(a, b); }
static inline int vm_any(vm m) { return _mm256_movemask_ps(m) != 0; }
static inline unsigned vm_bits(vm m) { return (unsigned)_mm256_movemask_ps(m); }
static inline unsigned vm_first(vm m) {
  PT_ISA_ASSERT(vm_any(m));
  return (unsigned)__builtin_ctz((unsigned)_mm256_movemask_ps(m));
}
static inline unsigned vm_count(vm m) { return (unsigned)__builtin_popcount((unsigned)_mm256_movemask_ps(m)); }

/* ---- integer and bit operations ------------------------------------------------------------- */

static inline vi vi_add(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sub(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_min(vi a, vi b) { return _mm256_min_epi32(a, b); }
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_inc(vi a, vm m) { return _mm256_sub_epi32(a, _mm256_castps_si256(m)); }

static inline vu vu_add(vu a, vu b) { return _mm256_add_epi32(a, b); }
static inline vu vu_or(vu a, vu b) { return _mm256_or_si256(a, b); }
static inline vu vu_xor3(vu a, vu b, vu c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
static inline vu vu_shr(vu a, unsigned n) {
  PT_ISA_ASSERT(n < 32);
  return _mm256_srli_epi32(a, (int)n);
}
/* 1 when every lane of m holds lane 0's value (vu_mulhilo's precondition; debug builds only) */
static inline int vu_uniform_(vu m) {
  const __m256i first = _mm256_permutevar8x32_epi32(m, _mm256_setzero_si256());
  return _mm256_movemask_epi8(_mm256_cmpeq_epi32(m, first)) == -1;
}
/* mul_epu32 multiplies the even 32-bit lanes into 64-bit products; the odd lanes are shifted
   down to take their turn, and the halves are blended back into lane order. */
static inline vu vu_mulhilo(vu a, vu m, vu *lo) {
  PT_ISA_ASSERT(vu_uniform_(m));
  const __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

/* ---- conversions and reinterpretation ------------------------------------------------------- */

/* a signed conversion: the lanes must be below 2^31 (no sign bit set) */
static inline vf vf_from_vu(vu a) {
  PT_ISA_ASSERT(_mm256_movemask_ps(_mm256_castsi256_ps(a)) == 0);
  return _mm256_cvtepi32_ps(a);
}
static inline vi vf_bits(vf v) { return _mm256_castps_si256(v); }

/* ---- horizontal reductions ------------------------------------------------------------------ */

static inline float vf_hmax(vf v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
static inline float vf_hmin(vf v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
static inline int32_t vi_hmin(vi v) {
  __m128i m = _mm_min_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(1, 0, 3, 2)));
  m = _mm_min_epi32(m, _mm_shuffle_epi32(m, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(m);
}
static inline float vf_tree_sum(vf v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* t += t+4 */
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                      /* t += t+2 */
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));                      /* t += t+1 */
}

/* ---- 64-bit keys: order and sorting networks ------------------------------------------------ */

static inline vq vq_min(vq a, vq b) { return _mm256_blendv_epi8(a, b, _mm256_cmpgt_epi64(a, b)); }
static inline vq vq_max(vq a, vq b) { return _mm256_blendv_epi8(b, a, _mm256_cmpgt_epi64(a, b)); }
static inline vq vq_reverse(vq v) { return _mm256_permute4x64_epi64(v, _MM_SHUFFLE(0, 1, 2, 3)); }
/* One compare-exchange layer: v against its partner lanes p; the lanes set in `upper` keep the
   larger of the two, the others the smaller (equal keys are equal values: either will do). */
static inline vq vq_exchange_(vq v, vq p, vq upper) {
  return _mm256_blendv_epi8(v, p, _mm256_xor_si256(_mm256_cmpgt_epi64(v, p), upper));
}
static inline vq vq_sort(vq v) {
  v = vq_exchange_(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)),
                   _mm256_setr_epi64x(0, -1, 0, -1));
  v = vq_exchange_(v, vq_reverse(v), _mm256_setr_epi64x(0, 0, -1, -1));
  return vq_exchange_(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)),
                      _mm256_setr_epi64x(0, -1, 0, -1));
}
static inline vq vq_sort_bitonic(vq v) {
  v = vq_exchange_(v, _mm256_permute4x64_epi64(v, _MM_SHUFFLE(1, 0, 3, 2)),
                   _mm256_setr_epi64x(0, 0, -1, -1));
  return vq_exchange_(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2)),
                      _mm256_setr_epi64x(0, -1, 0, -1));
}

/* ---- math (SLEEF) --------------------------------------------------------------------------- */

static inline vf vf_log_u35(vf a) { return Sleef_finz_logf8_u35avx2(a); }
static inline void vf_sincospi_u35(vf a, vf *s, vf *c) {
  const Sleef___m256_2 r = Sleef_finz_sincospif8_u35avx2(a);
  *s = r.x;
  *c = r.y;
}
static inline vf vf_exp(vf a) { return Sleef_finz_expf8_u10avx2(a); }

#endif

/* AVX-512 (F, BW, DQ, VL) layer: the operation vocabulary of src/isa/README.md on 16 lanes.
   Masks live in k-registers. */
#ifndef PT_ISA_AVX512_H
#define PT_ISA_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define PT_LANES 16

typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;

static inline vf vf_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  /* masked-off lanes are neither read nor able to fault */
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << n) - 1u), p);
}
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_gather(const float *base, vi offset) { return _mm512_i32gather_ps(offset, base, 4); }

static inline vi vi_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi vi_loadu(const int32_t *p) { return _mm512_loadu_si512(p); }
static inline vi vi_iota(void) {
  return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline vi vi_add(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_min(vi a, vi b) { return _mm512_min_epi32(a, b); }
static inline void vi_storeu(int32_t *p, vi v) { _mm512_storeu_si512(p, v); }

static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vm vf_isnan(vf a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }

static inline vf vf_select(vm m, vf t, vf f) { return _mm512_mask_blend_ps(m, f, t); }
static inline vi vi_select(vm m, vi t, vi f) { return _mm512_mask_blend_epi32(m, f, t); }

static inline vm vm_or(vm a, vm b) { return (vm)(a | b); }
static inline int vm_any(vm m) { return m != 0; }
static inline unsigned vm_first(vm m) { return (unsigned)__builtin_ctz((unsigned)m); }
static inline unsigned vm_bits(vm m) { return (unsigned)m; }

static inline float vf_hmax(vf v) { return _mm512_reduce_max_ps(v); }
static inline int32_t vi_hmin(vi v) { return _mm512_reduce_min_epi32(v); }

#endif

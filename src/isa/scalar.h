/* SPDX-License-Identifier: MIT */
/* Scalar layer: the operation vocabulary of src/isa/README.md with one lane.  It needs no
   compiler flags (so it has no flag check), and is the baseline every other layer is held to. */
#ifndef PT_ISA_SCALAR_H
#define PT_ISA_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "isa/common.h"

/* ---- types and lane counts ------------------------------------------------------------------ */

#define PT_LANES 1
#define PT_QLANES 1

typedef float vf;
typedef int32_t vi;
typedef int vm;
typedef uint32_t vu;
typedef int64_t vq;

/* ---- constants ---------------------------------------------------------------------------- */

static inline vf vf_set1(float x) { return x; }
static inline vi vi_set1(int32_t x) { return x; }
static inline vi vi_iota(void) { return 0; }
static inline vu vu_set1(uint32_t x) { return x; }
static inline vu vu_iota(void) { return 0; }

/* ---- load and store ------------------------------------------------------------------------- */

static inline vf vf_loadu(const float *p) { return *p; }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  PT_ISA_ASSERT(n < PT_LANES);
  return n ? *p : fill;
}
static inline vf vf_load_stride(const float *p, size_t stride) {
  PT_ISA_ASSERT(stride >= 1 && stride <= 16);
  (void)stride;
  return *p;
}
static inline void vf_load_columns(const float *p, size_t stride, vf *out) {
  (void)stride;
  out[0] = *p;
}
static inline vf vf_gather(const float *base, vi offset) { return base[offset]; }
static inline void vf_storeu(float *p, vf v) { *p = v; }

static inline vi vi_loadu(const int32_t *p) { return *p; }
static inline void vi_storeu(int32_t *p, vi v) { *p = v; }
static inline void vi_store_tail(int32_t *p, size_t n, vi v) {
  PT_ISA_ASSERT(n < PT_LANES);
  if (n) *p = v;
}
static inline void vi_scatter_tail(int32_t *p, size_t n, vi index, vi v) {
  PT_ISA_ASSERT(n <= PT_LANES);
  if (n) p[index] = v;
}
static inline void vi_store_pairs(int64_t *p, vi hi, vi lo) {
  *p = (int64_t)(((uint64_t)(uint32_t)hi << 32) | (uint32_t)lo);
}

static inline vu vu_loadu(const uint32_t *p) { return *p; }
static inline void vu_storeu(uint32_t *p, vu v) { *p = v; }

static inline vq vq_loadu(const int64_t *p) { return *p; }
static inline void vq_storeu(int64_t *p, vq v) { *p = v; }
static inline void vq_store_low(int32_t *p, size_t n, vq v) {
  PT_ISA_ASSERT(n <= PT_QLANES);
  if (n) *p = (int32_t)(uint32_t)v;
}
static inline void vq_scatter_index(int32_t *p, size_t n, vq v, int32_t first) {
  PT_ISA_ASSERT(n >= 1 && n <= PT_QLANES);
  if (n) p[(uint32_t)v] = first;
}

/* ---- float arithmetic ----------------------------------------------------------------------- */

static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
/* __builtin_fmaf: one rounding, whether the compiler emits the instruction or calls fmaf */
static inline vf vf_fma(vf a, vf b, vf c) { return __builtin_fmaf(a, b, c); }
static inline vf vf_neg(vf a) { return -a; }
static inline vf vf_sqrt(vf a) { return __builtin_sqrtf(a); }
static inline vf vf_min(vf a, vf b) { return a < b ? a : b; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }

/* ---- compare, select and masks -------------------------------------------------------------- */

static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_lt(vf a, vf b) { return a < b; }
static inline vm vf_eq(vf a, vf b) { return a == b; }
static inline vm vf_isnan(vf a) { return a != a; }
static inline vm vi_gt(vi a, vi b) { return a > b; }
static inline vm vi_eq(vi a, vi b) { return a == b; }

static inline vf vf_select(vm m, vf t, vf f) { return m ? t : f; }
static inline vi vi_select(vm m, vi t, vi f) { return m ? t : f; }

static inline vm vm_or(vm a, vm b) { return a | b; }
static inline int vm_any(vm m) { return m != 0; }
static inline unsigned vm_bits(vm m) { return m != 0; }
static inline unsigned vm_first(vm m) {
  PT_ISA_ASSERT(vm_any(m));
  (void)m;
  return 0;
}
static inline unsigned vm_count(vm m) { return m != 0; }

/* ---- integer and bit operations ------------------------------------------------------------- */

static inline vi vi_add(vi a, vi b) { return a + b; }
static inline vi vi_sub(vi a, vi b) { return (vi)((uint32_t)a - (uint32_t)b); }
static inline vi vi_min(vi a, vi b) { return a < b ? a : b; }
static inline vi vi_and(vi a, vi b) { return a & b; }
static inline vi vi_inc(vi a, vm m) { return a + (m ? 1 : 0); }

static inline vu vu_add(vu a, vu b) { return a + b; }
static inline vu vu_or(vu a, vu b) { return a | b; }
static inline vu vu_xor3(vu a, vu b, vu c) { return a ^ b ^ c; }
static inline vu vu_shr(vu a, unsigned n) {
  PT_ISA_ASSERT(n < 32);
  return a >> n;
}
static inline vu vu_mulhilo(vu a, vu m, vu *lo) {
  const uint64_t p = (uint64_t)a * m;
  *lo = (uint32_t)p;
  return (uint32_t)(p >> 32);
}

/* ---- conversions and reinterpretation ------------------------------------------------------- */

static inline vf vf_from_vu(vu a) {
  PT_ISA_ASSERT(a < 0x80000000u);
  return (float)(int32_t)a;
}
static inline vi vf_bits(vf v) {
  vi b;
  memcpy(&b, &v, sizeof b);
  return b;
}

/* ---- horizontal reductions ------------------------------------------------------------------ */

static inline float vf_hmax(vf v) { return v; }
static inline float vf_hmin(vf v) { return v; }
static inline int32_t vi_hmin(vi v) { return v; }
static inline float vf_tree_sum(vf v) { return v; }

/* ---- 64-bit keys: order and sorting networks ------------------------------------------------ */

static inline vq vq_min(vq a, vq b) { return a < b ? a : b; }
static inline vq vq_max(vq a, vq b) { return a < b ? b : a; }
static inline vq vq_reverse(vq v) { return v; }
static inline vq vq_sort(vq v) { return v; }
static inline vq vq_sort_bitonic(vq v) { return v; }

/* ---- math (SLEEF) --------------------------------------------------------------------------- */

/* SLEEF's scalar functions, chosen once for the CPU in src/isa/scalar_sleef.c: the finz purecfma
   ones (the bits of every vector ISA) wherever the CPU has FMA, and on an x86 CPU without FMA,
   where those would fault, SLEEF's cinz purec ones, whose last bit can differ: the one
   exception to bitwise identity that perturb(7) allows ("DETERMINISM"). */
float pt_scalar_log_u35(float a);
void pt_scalar_sincospi_u35(float a, float *s, float *c);
float pt_scalar_expf(float a);
static inline vf vf_log_u35(vf a) { return pt_scalar_log_u35(a); }
static inline void vf_sincospi_u35(vf a, vf *s, vf *c) { pt_scalar_sincospi_u35(a, s, c); }
static inline vf vf_exp(vf a) { return pt_scalar_expf(a); }

#endif

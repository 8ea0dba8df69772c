/* SPDX-License-Identifier: MIT */
/* AArch64 Advanced SIMD layer: the operation vocabulary of src/isa/README.md on 4 lanes.
   Masks are all-ones/all-zeros 32-bit lanes, as NEON compares give them. */
#ifndef PT_ISA_NEON_H
#define PT_ISA_NEON_H

/* AArch64's Advanced SIMD, which every AArch64 compiler targets by default: the horizontal
   operations (vmaxvq, vaddvq), vuzp1q and vfmaq below do not exist in 32-bit ARM NEON. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "src/isa/neon.h needs an AArch64 compiler with Advanced SIMD (no -mgeneral-regs-only)"
#endif

#include <arm_neon.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>

#include "isa/common.h"

/* ---- types and lane counts ------------------------------------------------------------------ */

#define PT_LANES 4
#define PT_QLANES 2

typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vm;
typedef uint32x4_t vu;
typedef int64x2_t vq;

/* ---- constants ---------------------------------------------------------------------------- */

static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vi vi_set1(int32_t x) { return vdupq_n_s32(x); }
static inline vi vi_iota(void) {
  static const int32_t iota[PT_LANES] = {0, 1, 2, 3};
  return vld1q_s32(iota);
}
static inline vu vu_set1(uint32_t x) { return vdupq_n_u32(x); }
static inline vu vu_iota(void) { return vreinterpretq_u32_s32(vi_iota()); }

/* ---- load and store ------------------------------------------------------------------------- */

static inline vf vf_loadu(const float *p) { return vld1q_f32(p); }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  PT_ISA_ASSERT(n < PT_LANES);
  /* NEON has no masked load: stage the live lanes so nothing past p + n is read */
  float lanes[PT_LANES] = {fill, fill, fill, fill};
  for (size_t i = 0; i < n; i++) lanes[i] = p[i];
  return vld1q_f32(lanes);
}
/* lane l = p[l * stride], 1 <= stride <= 16: one lane load each.  Reads p[0, 16 * stride + 16)
   at most (the vocabulary's bound). */
static inline vf vf_load_stride(const float *p, size_t stride) {
  PT_ISA_ASSERT(stride >= 1 && stride <= 16);
  vf v = vdupq_n_f32(0.0f);
  v = vld1q_lane_f32(p, v, 0);
  v = vld1q_lane_f32(p + stride, v, 1);
  v = vld1q_lane_f32(p + 2 * stride, v, 2);
  return vld1q_lane_f32(p + 3 * stride, v, 3);
}
/* out[k] lane l = p[l * stride + k]: four row loads and the 4x4 transpose of two trn and
   their halves' combines. */
static inline void vf_load_columns(const float *p, size_t stride, vf *out) {
  const float32x4x2_t a = vtrnq_f32(vld1q_f32(p), vld1q_f32(p + stride));
  const float32x4x2_t b = vtrnq_f32(vld1q_f32(p + 2 * stride), vld1q_f32(p + 3 * stride));
  out[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
  out[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
  out[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
  out[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
}
static inline vf vf_gather(const float *base, vi offset) {
  /* no gather instruction: four lane loads */
  vf v = vld1q_dup_f32(base + vgetq_lane_s32(offset, 0));
  v = vld1q_lane_f32(base + vgetq_lane_s32(offset, 1), v, 1);
  v = vld1q_lane_f32(base + vgetq_lane_s32(offset, 2), v, 2);
  return vld1q_lane_f32(base + vgetq_lane_s32(offset, 3), v, 3);
}
static inline void vf_storeu(float *p, vf v) { vst1q_f32(p, v); }

static inline vi vi_loadu(const int32_t *p) { return vld1q_s32(p); }
static inline void vi_storeu(int32_t *p, vi v) { vst1q_s32(p, v); }
static inline void vi_store_tail(int32_t *p, size_t n, vi v) {
  PT_ISA_ASSERT(n < PT_LANES);
  int32_t lanes[PT_LANES];
  vst1q_s32(lanes, v);
  for (size_t i = 0; i < n; i++) p[i] = lanes[i];
}
static inline void vi_scatter_tail(int32_t *p, size_t n, vi index, vi v) {
  PT_ISA_ASSERT(n <= PT_LANES);
  int32_t at[PT_LANES], value[PT_LANES];
  vst1q_s32(at, index);
  vst1q_s32(value, v);
  for (size_t i = 0; i < n; i++) p[at[i]] = value[i];
}
static inline void vi_store_pairs(int64_t *p, vi hi, vi lo) {
  /* little-endian: the 32-bit pair (lo, hi) read as one 64-bit lane is hi * 2^32 + lo */
  vst1q_s64(p, vreinterpretq_s64_s32(vzip1q_s32(lo, hi)));
  vst1q_s64(p + 2, vreinterpretq_s64_s32(vzip2q_s32(lo, hi)));
}

static inline vu vu_loadu(const uint32_t *p) { return vld1q_u32(p); }
static inline void vu_storeu(uint32_t *p, vu v) { vst1q_u32(p, v); }

static inline vq vq_loadu(const int64_t *p) { return vld1q_s64(p); }
static inline void vq_storeu(int64_t *p, vq v) { vst1q_s64(p, v); }
static inline void vq_store_low(int32_t *p, size_t n, vq v) {
  PT_ISA_ASSERT(n <= PT_QLANES);
  const int32x2_t low = vmovn_s64(v);
  if (n == PT_QLANES) vst1_s32(p, low);
  else if (n == 1) vst1_lane_s32(p, low, 0);
}
/* lane 0 is written whatever n is: hence the vocabulary's n >= 1 */
static inline void vq_scatter_index(int32_t *p, size_t n, vq v, int32_t first) {
  PT_ISA_ASSERT(n >= 1 && n <= PT_QLANES);
  p[(uint32_t)vgetq_lane_s64(v, 0)] = first;
  if (n == PT_QLANES) p[(uint32_t)vgetq_lane_s64(v, 1)] = first + 1;
}

/* ---- float arithmetic ----------------------------------------------------------------------- */

static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_neg(vf a) { return vnegq_f32(a); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
static inline vf vf_min(vf a, vf b) { return vminq_f32(a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }

/* ---- compare, select and masks -------------------------------------------------------------- */

static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vm vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vf_isnan(vf a) { return vmvnq_u32(vceqq_f32(a, a)); }
static inline vm vi_gt(vi a, vi b) { return vcgtq_s32(a, b); }
static inline vm vi_eq(vi a, vi b) { return vceqq_s32(a, b); }

static inline vf vf_select(vm m, vf t, vf f) { return vbslq_f32(m, t, f); }
static inline vi vi_select(vm m, vi t, vi f) { return vbslq_s32(m, t, f); }

static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline int vm_any(vm m) { return vmaxvq_u32(m) != 0; }
static inline unsigned vm_bits(vm m) {
  static const uint32_t bit[PT_LANES] = {1, 2, 4, 8};
  return vaddvq_u32(vandq_u32(m, vld1q_u32(bit)));
}
static inline unsigned vm_first(vm m) {
  PT_ISA_ASSERT(vm_any(m));
  return (unsigned)__builtin_ctz(vm_bits(m));
}
static inline unsigned vm_count(vm m) { return vaddvq_u32(vshrq_n_u32(m, 31)); }

/* ---- integer and bit operations ------------------------------------------------------------- */

static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline vi vi_sub(vi a, vi b) { return vsubq_s32(a, b); }
static inline vi vi_min(vi a, vi b) { return vminq_s32(a, b); }
static inline vi vi_and(vi a, vi b) { return vandq_s32(a, b); }
static inline vi vi_inc(vi a, vm m) { return vsubq_s32(a, vreinterpretq_s32_u32(m)); }

static inline vu vu_add(vu a, vu b) { return vaddq_u32(a, b); }
static inline vu vu_or(vu a, vu b) { return vorrq_u32(a, b); }
static inline vu vu_xor3(vu a, vu b, vu c) { return veorq_u32(veorq_u32(a, b), c); }
/* a shift by a negative variable count shifts right; vshrq_n wants a literal count */
static inline vu vu_shr(vu a, unsigned n) {
  PT_ISA_ASSERT(n < 32);
  return vshlq_u32(a, vdupq_n_s32(-(int32_t)n));
}
/* 1 when every lane of m holds lane 0's value (vu_mulhilo's precondition; debug builds only) */
static inline int vu_uniform_(vu m) { return vminvq_u32(vceqq_u32(m, vdupq_laneq_u32(m, 0))) != 0; }
/* vmull gives the 64-bit products of two lanes at a time; unzipping the low and the high
   halves of the four products puts them back in lane order. */
static inline vu vu_mulhilo(vu a, vu m, vu *lo) {
  PT_ISA_ASSERT(vu_uniform_(m));
  const uint32x4_t p01 = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(a), vget_low_u32(m)));
  const uint32x4_t p23 = vreinterpretq_u32_u64(vmull_high_u32(a, m));
  *lo = vuzp1q_u32(p01, p23);
  return vuzp2q_u32(p01, p23);
}

/* ---- conversions and reinterpretation ------------------------------------------------------- */

/* an unsigned conversion here, a signed one elsewhere: they agree below 2^31 only */
static inline vf vf_from_vu(vu a) {
  PT_ISA_ASSERT(vmaxvq_u32(a) < 0x80000000u);
  return vcvtq_f32_u32(a);
}
static inline vi vf_bits(vf v) { return vreinterpretq_s32_f32(v); }

/* ---- horizontal reductions ------------------------------------------------------------------ */

static inline float vf_hmax(vf v) { return vmaxvq_f32(v); }
static inline float vf_hmin(vf v) { return vminvq_f32(v); }
static inline int32_t vi_hmin(vi v) { return vminvq_s32(v); }
static inline float vf_tree_sum(vf v) {
  const float32x2_t s = vadd_f32(vget_low_f32(v), vget_high_f32(v)); /* t += t+2 */
  return vpadds_f32(s);                                               /* t += t+1 */
}

/* ---- 64-bit keys: order and sorting networks ------------------------------------------------ */

static inline vq vq_min(vq a, vq b) { return vbslq_s64(vcgtq_s64(a, b), b, a); }
static inline vq vq_max(vq a, vq b) { return vbslq_s64(vcgtq_s64(a, b), a, b); }
static inline vq vq_reverse(vq v) { return vextq_s64(v, v, 1); }
static inline vq vq_sort_bitonic(vq v) {
  const vq p = vq_reverse(v);
  return vcombine_s64(vget_low_s64(vq_min(v, p)), vget_high_s64(vq_max(v, p)));
}
static inline vq vq_sort(vq v) { return vq_sort_bitonic(v); }

/* ---- math (SLEEF) --------------------------------------------------------------------------- */

static inline vf vf_log_u35(vf a) { return Sleef_finz_logf4_u35advsimd(a); }
static inline void vf_sincospi_u35(vf a, vf *s, vf *c) {
  const Sleef_float32x4_t_2 r = Sleef_finz_sincospif4_u35advsimd(a);
  *s = r.x;
  *c = r.y;
}
static inline vf vf_exp(vf a) { return Sleef_finz_expf4_u10advsimd(a); }

#endif

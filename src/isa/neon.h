/* AArch64 Advanced SIMD layer: the operation vocabulary of src/isa/README.md on 4 lanes.
   Masks are all-ones/all-zeros 32-bit lanes, as NEON compares give them. */
#ifndef PT_ISA_NEON_H
#define PT_ISA_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>

#define PT_LANES 4

typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vm;

static inline vf vf_loadu(const float *p) { return vld1q_f32(p); }
static inline vf vf_load_tail(const float *p, size_t n, float fill) {
  /* NEON has no masked load: stage the live lanes so nothing past p + n is read */
  float lanes[PT_LANES] = {fill, fill, fill, fill};
  for (size_t i = 0; i < n; i++) lanes[i] = p[i];
  return vld1q_f32(lanes);
}
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vf vf_gather(const float *base, vi offset) {
  /* no gather instruction: four lane loads */
  vf v = vld1q_dup_f32(base + vgetq_lane_s32(offset, 0));
  v = vld1q_lane_f32(base + vgetq_lane_s32(offset, 1), v, 1);
  v = vld1q_lane_f32(base + vgetq_lane_s32(offset, 2), v, 2);
  return vld1q_lane_f32(base + vgetq_lane_s32(offset, 3), v, 3);
}

static inline vi vi_set1(int32_t x) { return vdupq_n_s32(x); }
static inline vi vi_loadu(const int32_t *p) { return vld1q_s32(p); }
static inline vi vi_iota(void) {
  static const int32_t iota[PT_LANES] = {0, 1, 2, 3};
  return vld1q_s32(iota);
}
static inline vi vi_add(vi a, vi b) { return vaddq_s32(a, b); }
static inline vi vi_min(vi a, vi b) { return vminq_s32(a, b); }
static inline void vi_storeu(int32_t *p, vi v) { vst1q_s32(p, v); }

static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vm vf_isnan(vf a) { return vmvnq_u32(vceqq_f32(a, a)); }

static inline vf vf_select(vm m, vf t, vf f) { return vbslq_f32(m, t, f); }
static inline vi vi_select(vm m, vi t, vi f) { return vbslq_s32(m, t, f); }

static inline vm vm_or(vm a, vm b) { return vorrq_u32(a, b); }
static inline int vm_any(vm m) { return vmaxvq_u32(m) != 0; }
static inline unsigned vm_bits(vm m) {
  static const uint32_t bit[PT_LANES] = {1, 2, 4, 8};
  return vaddvq_u32(vandq_u32(m, vld1q_u32(bit)));
}
static inline unsigned vm_first(vm m) { return (unsigned)__builtin_ctz(vm_bits(m)); }

static inline float vf_hmax(vf v) { return vmaxvq_f32(v); }
static inline int32_t vi_hmin(vi v) { return vminvq_s32(v); }

#endif

/* Scalar layer: the operation vocabulary of src/isa/README.md with one lane. */
#ifndef PT_ISA_SCALAR_H
#define PT_ISA_SCALAR_H

#include <stddef.h>
#include <stdint.h>

#define PT_LANES 1

typedef float vf;
typedef int32_t vi;
typedef int vm;

static inline vf vf_loadu(const float *p) { return *p; }
static inline vf vf_load_tail(const float *p, size_t n, float fill) { return n ? *p : fill; }
static inline vf vf_set1(float x) { return x; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vf vf_gather(const float *base, vi offset) { return base[offset]; }

static inline vi vi_set1(int32_t x) { return x; }
static inline vi vi_loadu(const int32_t *p) { return *p; }
static inline vi vi_iota(void) { return 0; }
static inline vi vi_add(vi a, vi b) { return a + b; }
static inline vi vi_min(vi a, vi b) { return a < b ? a : b; }
static inline void vi_storeu(int32_t *p, vi v) { *p = v; }

static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_eq(vf a, vf b) { return a == b; }
static inline vm vf_isnan(vf a) { return a != a; }

static inline vf vf_select(vm m, vf t, vf f) { return m ? t : f; }
static inline vi vi_select(vm m, vi t, vi f) { return m ? t : f; }

static inline vm vm_or(vm a, vm b) { return a | b; }
static inline int vm_any(vm m) { return m != 0; }
static inline unsigned vm_first(vm m) { (void)m; return 0; }
static inline unsigned vm_bits(vm m) { return m != 0; }

static inline float vf_hmax(vf v) { return v; }
static inline int32_t vi_hmin(vi v) { return v; }

#endif

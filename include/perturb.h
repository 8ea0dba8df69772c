/* libperturb: differentiable functions by random perturbation (Berthet et al. 2020).
 *
 * The public contract is API.md; this header implements it.  Only <stddef.h> and <stdint.h>
 * are used, and no SIMD type appears here: the kernels behind these calls are chosen at run
 * time for the CPU (see pt_isa_*).  All floating data is IEEE binary32; matrices are row-major
 * with an explicit row stride `ld` in elements.  Every call that can fail returns a pt_status
 * and, on error, writes nothing to its outputs. */
#ifndef PERTURB_H
#define PERTURB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PT_API __attribute__((visibility("default")))
#else
#define PT_API
#endif

/* ---- Status and version ------------------------------------------------------------------ */

#define PT_VERSION_MAJOR 0
#define PT_VERSION_MINOR 1
#define PT_VERSION_PATCH 0

/* "0.1.0": the version of the library actually loaded, which may differ from the macros above
   when a program runs against a newer shared library than it was compiled with. */
PT_API const char *pt_version(void);

typedef enum pt_status {
  PT_OK = 0,
  PT_EINVAL = 1,       /* NULL pointer, zero/inconsistent size, ld < d, sigma not finite or <= 0,
                          num_samples == 0, unknown enum value, non-finite input where refused */
  PT_ENOMEM = 2,       /* an allocation failed */
  PT_EOVERFLOW = 3,    /* a size product overflows size_t, or a dimension exceeds INT32_MAX */
  PT_EUNSUPPORTED = 4, /* ISA not available; operation a function does not provide */
  PT_ECALLBACK = 5     /* a user callback returned non-zero */
} pt_status;

/* A short English description; never NULL ("unknown status" for values outside the enum). */
PT_API const char *pt_strerror(pt_status s);

/* ---- ISA dispatch ------------------------------------------------------------------------- */

typedef enum pt_isa { PT_ISA_SCALAR = 0, PT_ISA_AVX2 = 1, PT_ISA_AVX512 = 2, PT_ISA_NEON = 3 } pt_isa;

/* "scalar", "avx2", "avx512", "neon"; NULL for a value outside the enum. */
PT_API const char *pt_isa_name(pt_isa isa);
/* 1 when the ISA's kernels are built into this library AND the CPU and OS can run them. */
PT_API int pt_isa_supported(pt_isa isa);
/* The ISA computing calls use now: the best supported one, unless PERTURB_ISA (read once, at
   first use) or pt_isa_select chose another.  While PERTURB_ISA names an unknown or unsupported
   ISA, every computing call returns PT_EUNSUPPORTED and this returns PT_ISA_SCALAR. */
PT_API pt_isa pt_isa_active(void);
/* Makes `isa` the active ISA for every thread; PT_EUNSUPPORTED if it is not supported. */
PT_API pt_status pt_isa_select(pt_isa isa);

/* ---- Kernels on batches of rows ------------------------------------------------------------
 * Order used by all of them: ascending by value; -0.0 == +0.0; ties keep index order; NaN is
 * greater than every number (NaNs sort last, among themselves by index).  x is `rows` rows of
 * `d` floats, row r starting at x + r*ld.  rows == 0 is allowed and writes nothing; d == 0 or
 * ld < d is PT_EINVAL; d > INT32_MAX or a row extent overflowing size_t is PT_EOVERFLOW. */

/* idx[r] = first index of the greatest element of row r (the first NaN if there is one). */
PT_API pt_status pt_argmax_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *idx);

/* perm[r*ld_out + p] = index of the p-th smallest element of row r (a stable sort); ld_out >= d.
   PT_ENOMEM if the work space of long rows (about 16 bytes per element) cannot be allocated. */
PT_API pt_status pt_argsort_rows(const float *x, size_t rows, size_t d, size_t ld,
                                 int32_t *perm, size_t ld_out);

/* rank[r*ld_out + i] = position of element i of row r in that sorted order (0 for the
   smallest), i.e. argsort(argsort(x)) with a stable sort; ld_out >= d.  PT_ENOMEM as above. */
PT_API pt_status pt_rank_rows(const float *x, size_t rows, size_t d, size_t ld,
                              int32_t *rank, size_t ld_out);

/* out[j] = sum_r w[r] * x[r*ld + j] for j < d; w == NULL means every weight is 1.  The order of
   operations depends only on the shape (blocked sums), so every ISA gives the same bits; the
   error is at most 1e-5 * sum_r |w[r] x[r*ld + j]| against exact arithmetic for up to 10^7
   rows (4e-6 by construction, for any number of rows).  A NaN result is written as the quiet
   NaN 0x7fc00000, whatever NaN the inputs held. */
PT_API pt_status pt_weighted_sum_rows(const float *x, size_t rows, size_t d, size_t ld,
                                      const float *w, float *out);

#ifdef __cplusplus
}
#endif

#endif /* PERTURB_H */

/* SPDX-License-Identifier: MIT */
/* The SLEEF functions of the scalar layer (src/isa/scalar.h), chosen once for the CPU.

   SLEEF's deterministic finz family gives the same bits on every ISA, but its x86 scalar
   members (purecfma) are built with FMA instructions, so sleef.h declares them only when the
   compiler targets FMA (FP_FAST_FMA), and they fault on a CPU without it.  The library is
   built for the baseline x86-64, so this file declares them itself and calls them only after
   CPUID has shown FMA (and AVX state, which their VEX encoding needs).  On an x86 CPU without
   FMA the scalar kernels use SLEEF's cinz purec functions instead, whose last bit can differ:
   the exception perturb(7)'s determinism contract names ("DETERMINISM").  AArch64
   always has FMA. */
#include <sleef.h>

#include "dispatch/cpu.h"
#include "isa/scalar.h"

#if defined(__x86_64__) || defined(__i386__)
/* Identical to sleef.h's declarations under FP_FAST_FMA; these are in libsleef regardless.
   Each takes the type sleef.h gives its purec twin: sleef.h qualifies the return types const
   (its CONST), which clang counts in a function's type, so a plain `float (*)(float)` would
   not hold the purec functions, and writing the const out draws -Wignored-qualifiers. */
__typeof__(Sleef_cinz_logf1_u35purec) Sleef_finz_logf1_u35purecfma;
__typeof__(Sleef_cinz_sincospif1_u35purec) Sleef_finz_sincospif1_u35purecfma;
__typeof__(Sleef_cinz_expf1_u10purec) Sleef_finz_expf1_u10purecfma;

typedef struct scalar_math {
  __typeof__(Sleef_cinz_logf1_u35purec) *logf;
  __typeof__(Sleef_cinz_sincospif1_u35purec) *sincospif;
  __typeof__(Sleef_cinz_expf1_u10purec) *expf;
} scalar_math;

static const scalar_math with_fma = {Sleef_finz_logf1_u35purecfma, Sleef_finz_sincospif1_u35purecfma,
                                     Sleef_finz_expf1_u10purecfma};
static const scalar_math without_fma = {Sleef_cinz_logf1_u35purec, Sleef_cinz_sincospif1_u35purec,
                                        Sleef_cinz_expf1_u10purec};
static const scalar_math *chosen;

/* Every thread that races here stores the same pointer. */
static const scalar_math *math(void) {
  const scalar_math *m = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
  if (!m) {
    m = pt_cpu_has_fma() ? &with_fma : &without_fma;
    __atomic_store_n(&chosen, m, __ATOMIC_RELAXED);
  }
  return m;
}

float pt_scalar_log_u35(float a) { return math()->logf(a); }

float pt_scalar_expf(float a) { return math()->expf(a); }

void pt_scalar_sincospi_u35(float a, float *s, float *c) {
  const Sleef_float_2 r = math()->sincospif(a);
  *s = r.x;
  *c = r.y;
}
#else
float pt_scalar_log_u35(float a) { return Sleef_finz_logf1_u35purecfma(a); }

float pt_scalar_expf(float a) { return Sleef_finz_expf1_u10purecfma(a); }

void pt_scalar_sincospi_u35(float a, float *s, float *c) {
  const Sleef_float_2 r = Sleef_finz_sincospif1_u35purecfma(a);
  *s = r.x;
  *c = r.y;
}
#endif

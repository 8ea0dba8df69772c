/* Run-time dispatch: one kernel table per ISA built into the library, chosen once (on first
   use) from PERTURB_ISA or the best ISA the CPU runs, and switched atomically by
   pt_isa_select.  A PERTURB_ISA that names an unknown or unsupported ISA selects no table at
   all, so computing calls fail with PT_EUNSUPPORTED instead of measuring something else. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dispatch/cpu.h"
#include "dispatch/dispatch_table.h"

#define PT_DECLARE(op, fn, ret, params) ret fn params;
#define PT_DESIGNATE(op, fn, ret, params) .op = fn,

PT_KERNELS_SCALAR(PT_DECLARE)
static const pt_kernel_table table_scalar = {.isa = PT_ISA_SCALAR, PT_KERNELS_SCALAR(PT_DESIGNATE)};
#if PT_BUILD_AVX2
PT_KERNELS_AVX2(PT_DECLARE)
static const pt_kernel_table table_avx2 = {.isa = PT_ISA_AVX2, PT_KERNELS_AVX2(PT_DESIGNATE)};
#endif
#if PT_BUILD_AVX512
PT_KERNELS_AVX512(PT_DECLARE)
static const pt_kernel_table table_avx512 = {.isa = PT_ISA_AVX512, PT_KERNELS_AVX512(PT_DESIGNATE)};
#endif
#if PT_BUILD_NEON
PT_KERNELS_NEON(PT_DECLARE)
static const pt_kernel_table table_neon = {.isa = PT_ISA_NEON, PT_KERNELS_NEON(PT_DESIGNATE)};
#endif

/* Tables built into this library, by pt_isa value; NULL where not built. */
static const pt_kernel_table *built_table(pt_isa isa) {
  switch (isa) {
    case PT_ISA_SCALAR: return &table_scalar;
#if PT_BUILD_AVX2
    case PT_ISA_AVX2: return &table_avx2;
#endif
#if PT_BUILD_AVX512
    case PT_ISA_AVX512: return &table_avx512;
#endif
#if PT_BUILD_NEON
    case PT_ISA_NEON: return &table_neon;
#endif
    default: return NULL;
  }
}

const pt_kernel_table *pt_kernels_for(pt_isa isa) {
  const pt_kernel_table *t = built_table(isa);
  return t && pt_cpu_can_run(isa) ? t : NULL;
}

/* Best first: the order in which the default choice tries ISAs. */
static const pt_isa preference[] = {PT_ISA_AVX512, PT_ISA_AVX2, PT_ISA_NEON, PT_ISA_SCALAR};

static const pt_kernel_table *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_initial(void) {
  const pt_kernel_table *choice = NULL;
  const char *forced = getenv("PERTURB_ISA");
  if (forced && *forced && strcmp(forced, "auto") != 0) {
    for (int isa = PT_ISA_SCALAR; isa <= PT_ISA_NEON; isa++)
      if (strcmp(forced, pt_isa_name((pt_isa)isa)) == 0) choice = pt_kernels_for((pt_isa)isa);
  } else {
    for (size_t i = 0; !choice; i++) choice = pt_kernels_for(preference[i]);
  }
  __atomic_store_n(&active, choice, __ATOMIC_RELEASE);
}

const pt_kernel_table *pt_kernels_active(void) {
  pthread_once(&active_once, choose_initial);
  return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

const char *pt_isa_name(pt_isa isa) {
  switch (isa) {
    case PT_ISA_SCALAR: return "scalar";
    case PT_ISA_AVX2: return "avx2";
    case PT_ISA_AVX512: return "avx512";
    case PT_ISA_NEON: return "neon";
    default: return NULL;
  }
}

int pt_isa_supported(pt_isa isa) { return pt_kernels_for(isa) != NULL; }

pt_isa pt_isa_active(void) {
  const pt_kernel_table *t = pt_kernels_active();
  return t ? t->isa : PT_ISA_SCALAR;
}

pt_status pt_isa_select(pt_isa isa) {
  const pt_kernel_table *t = pt_kernels_for(isa);
  if (!t) return PT_EUNSUPPORTED;
  pthread_once(&active_once, choose_initial); /* so a later first use cannot undo this choice */
  __atomic_store_n(&active, t, __ATOMIC_RELEASE);
  return PT_OK;
}

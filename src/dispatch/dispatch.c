/* SPDX-License-Identifier: MIT */
/* Run-time dispatch: one kernel table per ISA built into the library, chosen once (on first
   use) from PERTURB_ISA or the best ISA the CPU runs, and switched atomically by
   pt_isa_select.  A PERTURB_ISA that names an unknown or unsupported ISA selects no table at
   all, so computing calls fail with PT_EUNSUPPORTED instead of measuring something else. */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "api/error.h"
#include "runtime/pool.h"
#include "dispatch/cpu.h"
#include "dispatch/dispatch_table.h"

/* built_tables[isa]: the kernel table of each ISA configure built in, NULL for the others
   (generated from the rows of gen/kernel_table.py) */
#include "gen/dispatch_isas.inc"

static const pt_kernel_table *built_table(pt_isa isa) {
  return (unsigned)isa < PT_ISA_COUNT ? built_tables[isa] : NULL;
}

const pt_kernel_table *pt_kernels_for(pt_isa isa) {
  const pt_kernel_table *t = built_table(isa);
  return t && pt_cpu_can_run(isa) ? t : NULL;
}

/* Best first: the order in which the default choice tries ISAs; the last runs everywhere. */
static const pt_isa preference[PT_ISA_COUNT] = PT_ISA_PREFERENCE;

static const pt_kernel_table *active;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static void choose_initial(void) {
  const pt_kernel_table *choice = NULL;
  const char *forced = getenv("PERTURB_ISA");
  if (forced && *forced && strcmp(forced, "auto") != 0) {
    for (int isa = 0; isa < PT_ISA_COUNT; isa++)
      if (strcmp(forced, pt_isa_name((pt_isa)isa)) == 0) choice = pt_kernels_for((pt_isa)isa);
  } else {
    for (size_t i = 0; !choice && i < PT_ISA_COUNT; i++) choice = pt_kernels_for(preference[i]);
  }
  __atomic_store_n(&active, choice, __ATOMIC_RELEASE);
}

const pt_kernel_table *pt_kernels_active(void) {
  pthread_once(&active_once, choose_initial);
  return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

#define PT_NAME(name, value) [value] = #name,
static const char *const isa_names[PT_ISA_COUNT] = {PT_FOR_EACH_ISA(PT_NAME)};
#undef PT_NAME

const char *pt_isa_name(pt_isa isa) { return (unsigned)isa < PT_ISA_COUNT ? isa_names[isa] : NULL; }

int pt_isa_supported(pt_isa isa) { return pt_kernels_for(isa) != NULL; }

pt_isa pt_isa_active(void) {
  const pt_kernel_table *t = pt_kernels_active();
  return t ? t->isa : PT_ISA_FALLBACK;
}

/* The ISAs this build runs on this CPU, as "scalar, avx2" (at most PT_ISA_COUNT short names). */
static void list_runnable(char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int isa = 0; isa < PT_ISA_COUNT && used < size; isa++)
    if (pt_kernels_for((pt_isa)isa))
      used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "",
                               pt_isa_name((pt_isa)isa));
}

/* Names are matched exactly (lower case, no spaces): a variable that does not say exactly
   what it means is refused, and the sentence says what it holds and what would do. */
static pt_status fail_isa(void) {
  const char *forced = getenv("PERTURB_ISA");
  char runs[64];
  list_runnable(runs, sizeof runs);
  for (int isa = 0; forced && isa < PT_ISA_COUNT; isa++)
    if (strcmp(forced, pt_isa_name((pt_isa)isa)) == 0)
      return pt_fail(PT_EUNSUPPORTED,
                     "PERTURB_ISA is \"%s\", which this build and CPU do not run (they run %s)",
                     forced, runs);
  return pt_fail(PT_EUNSUPPORTED,
                 "PERTURB_ISA is \"%s\", not one of auto, scalar, avx2, avx512, neon (matched "
                 "exactly; this CPU runs %s)",
                 forced ? forced : "", runs);
}

pt_status pt_kernels_ready(const pt_kernel_table **k) {
  *k = pt_kernels_active();
  if (!*k) return fail_isa();
  return pt_threads_ready();
}

pt_status pt_isa_select(pt_isa isa) {
  PT_CALL("pt_isa_select");
  const pt_kernel_table *t = pt_kernels_for(isa);
  if (!t) {
    char runs[64];
    list_runnable(runs, sizeof runs);
    if (!pt_isa_name(isa)) return pt_fail(PT_EUNSUPPORTED, "isa %d is not a pt_isa", (int)isa);
    return pt_fail(PT_EUNSUPPORTED, "isa %s does not run here (this build and CPU run %s)",
                   pt_isa_name(isa), runs);
  }
  pthread_once(&active_once, choose_initial); /* so a later first use cannot undo this choice */
  __atomic_store_n(&active, t, __ATOMIC_RELEASE);
  return PT_OK;
}

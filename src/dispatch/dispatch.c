/* SPDX-License-Identifier: MIT */
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

pt_status pt_isa_select(pt_isa isa) {
  const pt_kernel_table *t = pt_kernels_for(isa);
  if (!t) return PT_EUNSUPPORTED;
  pthread_once(&active_once, choose_initial); /* so a later first use cannot undo this choice */
  __atomic_store_n(&active, t, __ATOMIC_RELEASE);
  return PT_OK;
}

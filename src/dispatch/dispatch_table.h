/* SPDX-License-Identifier: MIT */
/* The dispatch table: one function pointer per kernel family (gen/kernel_table.py), one table per
   ISA.  Internal to the library; tests and benchmarks reach it through the convenience
   library they link. */
#ifndef PT_KERNELS_H
#define PT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "perturb.h"
#include "kernels/fused.h"
#include "gen/dispatch_tables.inc"
#include "gen/isas.h"

typedef struct pt_kernel_table {
  pt_isa isa;
  pt_fused_thresholds fused; /* the fused argmax kernels' (kernels/fused.h) */
  pt_row_thresholds rows;    /* the row kernels' (kernels/rows.h), which their callers pass on */
#define PT_SLOT(op, ret, params) ret(*op) params;
  PT_FOR_EACH_OP(PT_SLOT)
#undef PT_SLOT
} pt_kernel_table;

/* The table computing calls use now; NULL while PERTURB_ISA names an unknown or unsupported ISA
   and pt_isa_select has not been called since. */
const pt_kernel_table *pt_kernels_active(void);

/* The first check of every computing call: *k the active table, PT_OK; else PT_EUNSUPPORTED
   (PERTURB_ISA names an ISA this machine lacks) or PT_EINVAL (PERTURB_NUM_THREADS is no
   count), each with its pt_last_error sentence. */
pt_status pt_kernels_ready(const pt_kernel_table **k);

/* The table of `isa`; NULL if that ISA is not supported here. */
const pt_kernel_table *pt_kernels_for(pt_isa isa);

#endif

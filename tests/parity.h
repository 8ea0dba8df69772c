/* SPDX-License-Identifier: MIT */
/* ISA parity: every kernel of one ISA's table against the scalar table (bitwise) and against
   the independent reference, on the whole case battery, then known answers that hold every
   ISA and machine (the emulated NEON run included) to the same constants.  Shared by the
   Criterion suite and the stand-alone runner used under qemu. */
#ifndef PT_TEST_PARITY_H
#define PT_TEST_PARITY_H

#include <stddef.h>

#include "cases.h"
#include "dispatch/dispatch_table.h"
#include "perturb.h"

/* checked: checks begun (each counts itself when it starts); failed: those of them with at
   least one failure, so never more than checked; failed_at: the last one counted as failed. */
typedef struct pt_parity_result {
  size_t checked, failed, failed_at;
  char first_failure[512];
} pt_parity_result;

/* Runs the battery for `isa`, which must be supported; 0 on success, -1 on ENOMEM. */
int pt_parity_check(pt_isa isa, pt_parity_result *res);

/* One check per kernel family, parity_<op> (tests/parity.c, parity_noise.c, parity_fused.c):
   the ISA's kernel and the scalar one on case c (whose data is x), both held to the reference.
   Declared from the kernel table, so a family without its check does not link. */
#define PT_PARITY_DECLARE(op, ret, params)                                                      \
  void parity_##op(const pt_kernel_table *k, const pt_kernel_table *scalar, const pt_case *c, \
                   const float *x, pt_parity_result *res);
PT_FOR_EACH_OP(PT_PARITY_DECLARE)
#undef PT_PARITY_DECLARE

/* The pinned answers of the noise stream (tests/parity_noise.c) and of the perturbed
   functions' kernels and public API (tests/parity_fused.c) on one ISA's kernels; each
   mismatch counts as a failed check in res. */
void pt_parity_noise_known(const pt_kernel_table *k, pt_parity_result *res);
void pt_parity_fused_known(const pt_kernel_table *k, pt_parity_result *res);

/* Records a failure of the current check in res (the check counts once however many it has),
   keeping the first message. */
void pt_parity_fail(pt_parity_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

/* ISA parity of the perturbed functions' kernels (tests/parity_fused.c): the parity_<op>
   functions tests/parity.c runs on every case of the battery, and known answers that pin their
   bits (and the perturbed functions' results through the public API) to the same constants on
   every ISA and machine, the emulated NEON run included. */
#ifndef PT_TEST_PARITY_FUSED_H
#define PT_TEST_PARITY_FUSED_H

#include "cases.h"
#include "kernels.h"
#include "parity.h"

void parity_perturb_tile(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res);
void parity_fused_argmax_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                                const pt_case *c, const float *x, pt_parity_result *res);
void parity_fused_argmax_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                                const pt_case *c, const float *x, pt_parity_result *res);
void parity_fused_rank_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res);
void parity_fused_rank_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res);

/* The pinned answers on one ISA's kernels, and through the public API with that ISA selected
   (the previously active ISA is restored); a mismatch counts as one failed check in res. */
void pt_parity_fused_known(const pt_kernel_table *k, pt_parity_result *res);

#endif

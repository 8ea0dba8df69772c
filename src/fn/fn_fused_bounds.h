/* SPDX-License-Identifier: MIT */
/* What the fused Gumbel kernels' bounds need from a call, computed once per call from x and
   sigma (src/fn/fn_fused_bounds.c): the score coefficients of the argmax and the top-k, and the
   top-k's margins.  Neither is part of any output: the kernels' winners are the same with any
   valid bounds. */
#ifndef PT_FUSED_BOUNDS_H
#define PT_FUSED_BOUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch/dispatch_table.h"

/* a[i] = exp((x[top[s]] - x[i]) / sigma) for the inputs i of each segment s, x[top[s]] the
   segment's first greatest (or any input of it), through tmp (n floats): the quotient rounded
   in float, then k's perturb_tile exp (SLEEF's expf, 1 ulp), the same bits on every ISA. */
void pt_fused_gumbel_coefficients(const pt_kernel_table *k, const float *x, size_t segments,
                                  const size_t *offsets, const int32_t *top, float sigma,
                                  float *tmp, float *a);

/* The margin of the top-k's bounds for a segment of z inputs x (src/kernels/fused_topk.c.j2):
   a float above exp(2^-15 + (2^-20 max |x| + 2^-146) / sigma), or +inf where x is not all
   finite, the keys may overflow, or the margin would be too large to be of use (every input
   is then a candidate). */
float pt_fused_topk_margin(const float *x, size_t z, float sigma);

#endif

/* SPDX-License-Identifier: MIT */
/* What a perturbed function is, for the estimator (estimate.c) and its paths. */
#ifndef PT_FN_PERTURBED_H
#define PT_FN_PERTURBED_H

#include <stddef.h>
#include <stdint.h>

#include "fn/fn.h"

/* A perturbation with its options checked against the function (pt_make_perturbed_fun_ex(3)):
   the gradient resolved (AUTO decided), every flag 0 or 1. */
typedef struct pt_perturbation {
  size_t samples; /* M */
  float sigma;
  pt_noise noise; /* PT_NOISE_GUMBEL or PT_NOISE_NORMAL */
  pt_baseline baseline;
  int pathwise;   /* derivatives E[J f(x + sigma Z)] instead of the score function */
  int antithetic, multiplicative, block_diagonal, independent_jacobian;
} pt_perturbation;

/* The options of p as one word (a partial's identity, src/fn/partial.c): the baseline in bits
   0-1, then one bit each for pathwise, antithetic, multiplicative, block_diagonal and
   independent_jacobian.  pt_perturbation_from_bits refuses (returns 0 for) a word no
   perturbation has. */
uint32_t pt_perturbation_bits(const pt_perturbation *p);
int pt_perturbation_from_bits(uint32_t bits, pt_perturbation *p);

/* The options the caller's struct holds into *v (whose size becomes this version's): at
   least the v0.2 fields; a larger struct (a caller built against a later header) only when its
   bytes past ours are all zero, i.e. its later fields unused.  PT_EINVAL otherwise. */
pt_status pt_perturb_options_read(const pt_perturb_options *o, pt_perturb_options *v);

/* The perturbation of f and the function it perturbs, when f was made by
   pt_make_perturbed_fun(_ex); NULL otherwise. */
const pt_perturbation *pt_fn_perturbation(const pt_fn *f, const pt_fn **inner);

#endif

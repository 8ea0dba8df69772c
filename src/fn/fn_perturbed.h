/* SPDX-License-Identifier: MIT */
/* What a perturbed function is, for the estimator (estimate.c) and its paths. */
#ifndef PT_FN_PERTURBED_H
#define PT_FN_PERTURBED_H

#include <stddef.h>

#include "fn/fn.h"

typedef struct pt_perturbation {
  size_t samples; /* M */
  float sigma;
  pt_noise noise; /* PT_NOISE_GUMBEL or PT_NOISE_NORMAL */
  int baseline;
} pt_perturbation;

/* The perturbation of f and the function it perturbs, when f was made by
   pt_make_perturbed_fun; NULL otherwise. */
const pt_perturbation *pt_fn_perturbation(const pt_fn *f, const pt_fn **inner);

#endif

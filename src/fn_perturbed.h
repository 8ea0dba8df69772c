/* What the perturbed estimator computes, shared by its generic path (fn_perturbed.c) and its
   fused paths for built-ins (fn_fused.c). */
#ifndef PT_FN_PERTURBED_H
#define PT_FN_PERTURBED_H

#include <stddef.h>

#include "fn.h"

typedef struct pt_perturbation {
  size_t samples; /* M */
  float sigma;
  pt_noise noise; /* PT_NOISE_GUMBEL or PT_NOISE_NORMAL */
  int baseline;
} pt_perturbation;

/* One pass of the estimator; NULL members are not wanted. */
typedef struct pt_estimate {
  float *y;                         /* value, n_out */
  const float *y_bar; float *x_bar; /* vjp */
  const float *x_dot; float *y_dot; /* jvp */
  float *jac;                       /* n_out x n_in */
  float *hess;                      /* n_in x n_in (n_out == 1) */
} pt_estimate;

/* The fused path of f perturbed by p at x (finite) with the noise of `key`: PT_EUNSUPPORTED
   when there is none for this f and request (the generic path runs instead). */
pt_status pt_fused_estimate(const pt_fn *f, const pt_perturbation *p, pt_key key, const float *x,
                            const pt_estimate *want);

#endif

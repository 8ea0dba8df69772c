/* SPDX-License-Identifier: MIT */
/* An independent reference for perturbed functions: the estimator of pt_make_perturbed_fun(3)
   written out plainly, in double, sample by sample, on the same noise (pt_noise_fill) as the
   library.  Besides the estimates it keeps the spread of the per-sample terms, so that
   statistical tests compare closed forms at a number of standard errors derived from the
   samples themselves. */
#ifndef PT_TEST_ESTIMATOR_H
#define PT_TEST_ESTIMATOR_H

#include <stddef.h>

#include "perturb.h"

/* f at one point: x (n_in) -> y (n_out); its Jacobian there, jac (n_out x n_in). */
typedef void (*pt_ref_point_fn)(const void *ctx, const float *x, float *y);
typedef void (*pt_ref_jacobian_fn)(const void *ctx, const float *x, float *jac);

typedef struct pt_ref_estimate {
  size_t n_in, n_out, samples;
  /* mean and standard error of the mean, per entry */
  double *value, *value_se;  /* n_out */
  double *jac, *jac_se;      /* n_out x n_in */
  double *hess, *hess_se;    /* n_in x n_in, the score function's when n_out == 1 (else NULL) */
} pt_ref_estimate;

/* The perturbed estimate of f at x: samples x + sigma Z_m with Z_m = noise(key, m*n_in + i)
   (inputs rounded to float as x + sigma*z, a product then a sum), baseline (a pt_baseline)
   0, f(x) or, for the leave-one-out, each sample's b_m = (sum_k Y_k - Y_m)/(M - 1) from a
   first pass over the samples, grad_nu and nu'' in double.  The leave-one-out's terms are not
   independent (each holds every sample), so its standard errors are those of the terms with
   b_m taken as fixed, which they are up to O(1/M).  0 on success, -1 when out of memory. */
int pt_ref_estimate_run(pt_ref_point_fn f, const void *ctx, size_t n_in, size_t n_out,
                        size_t samples, float sigma, pt_noise noise, int baseline, pt_key key,
                        const float *x, pt_ref_estimate *out);
/* The same with antithetic pairs when `antithetic` (samples even; else pt_ref_estimate_run's): samples 2p and 2p + 1 from the words of pair
   p, normal z and -z, Gumbel from u and 1 - u (the partner's Gumbel -log(-log(1 - u)) in double
   rounded to float, within an ulp or two of the library's); the leave-one-out's b_m the mean of
   the other pairs' samples, (sum_k Y_k - Y_m - Y_partner)/(M - 2).  Standard errors are those
   of the M/2 pairs' mean terms, the independent replicates. */
int pt_ref_pairs_run(pt_ref_point_fn f, const void *ctx, size_t n_in, size_t n_out,
                     size_t samples, float sigma, pt_noise noise, int baseline, int antithetic,
                     pt_key key, const float *x, pt_ref_estimate *out);
/* The pathwise estimate on the same samples: the value as above, and as `jac` the mean of f's
   own Jacobian jf at the samples, each term as jf gives it (float); no Hessian. */
int pt_ref_pathwise_run(pt_ref_point_fn f, pt_ref_jacobian_fn jf, const void *ctx, size_t n_in,
                        size_t n_out, size_t samples, float sigma, pt_noise noise, pt_key key,
                        const float *x, pt_ref_estimate *out);
void pt_ref_estimate_free(pt_ref_estimate *e);

/* The checks of the tests built on the reference (Criterion assertions, naming `what` and the
   entry that fails).  The library against the reference on the same samples: within `rel` of
   the entry's size plus `abs` (rounding; or a few samples' worth of disagreement on float
   near-ties). */
void pt_ref_expect_near(const float *got, const double *ref, size_t n, double rel, double abs,
                        const char *what);
/* The reference against the closed form: within 5 standard errors (and a rounding floor). */
void pt_ref_expect_truth(const double *mean, const double *se, const double *truth, size_t n,
                         const char *what);

/* Options of the score function (pt_perturb_defaults otherwise), and f perturbed with given
   options (a Criterion assertion that it is accepted). */
pt_perturb_options pt_ref_score_options(size_t m, float sigma, pt_noise noise, pt_baseline b);
pt_fn *pt_ref_perturbed(const pt_fn *f, const pt_perturb_options *o);

/* The perturbed ranks' closed form: Gumbel noise gives P(x_j + s G_j < x_i + s G_i) =
   sigmoid((x_i - x_j) / s) (a difference of Gumbels is logistic), normal noise
   Phi((x_i - x_j) / (s sqrt 2)); E[rank_i] (r) sums them over j != i, and its Jacobian (d rows
   of jac, ld apart: a diagonal block of a larger one) their derivatives. */
void pt_ref_rank_truth(const float *x, size_t d, double sigma, pt_noise noise, double *r,
                       double *jac, size_t ld);

/* The argmax one-hot as a plain function, the tests' independent truth for the built-in: one-hot
   on the first greatest of the d = *(const size_t *)ctx entries. */
void pt_ref_argmax_point(const void *ctx, const float *x, float *y);
/* The same on each of `batch` rows, as a user's solver callback (pt_eval_fn; user: the d). */
int pt_ref_argmax_rows(void *user, size_t batch, const float *x, float *y);

#endif

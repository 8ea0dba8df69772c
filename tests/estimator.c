/* SPDX-License-Identifier: MIT */
#include "estimator.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Running sums of a term and of its square, turned into a mean and its standard error; with
   antithetic pairs (pend: the entry's term of the pair's first sample) those of each pair's
   mean, the independent replicates, so that the standard error counts the pairs' correlation. */
static void add(double *sum, double *sq, double *pend, size_t m, double v) {
  if (pend && m % 2 == 0) {
    *pend = v;
    return;
  }
  if (pend) v = 0.5 * (*pend + v);
  *sum += v;
  *sq += v * v;
}

static void finish(double *sum, double *sq, size_t n, size_t m) {
  for (size_t i = 0; i < n; i++) {
    const double mean = sum[i] / (double)m, var = sq[i] / (double)m - mean * mean;
    sum[i] = mean;
    sq[i] = m > 1 && var > 0 ? sqrt(var / (double)(m - 1)) : 0.0;
  }
}

/* The leave-one-out baseline of a sample of value y, of `samples` whose values sum to total;
   with antithetic pairs (partner: the value of the sample's partner) the mean of the other
   pairs' samples. */
static double others_mean(double total, float y, const float *partner, size_t samples) {
  if (partner) return (total - (double)y - (double)*partner) / (double)(samples - 2);
  return (total - (double)y) / (double)(samples - 1);
}

/* The noise z of sample m (n inputs): the stream's words m*n + i, or with antithetic pairs
   those of pair m/2, sample 2p + 1 taking -z (normal) or the Gumbel of 1 - u (Gumbel, in
   double rounded to float, u the words' uniforms). */
static void sample_noise(pt_noise noise, pt_key key, int antithetic, size_t m, size_t n,
                         float *z) {
  const uint64_t word = (uint64_t)(antithetic ? m / 2 : m) * n;
  if (!antithetic || m % 2 == 0) {
    pt_noise_fill(noise, key, word, z, n);
    return;
  }
  pt_noise_fill(noise == PT_NOISE_NORMAL ? PT_NOISE_NORMAL : PT_NOISE_UNIFORM, key, word, z, n);
  for (size_t i = 0; i < n; i++)
    z[i] = noise == PT_NOISE_NORMAL ? -z[i] : (float)-log(-log(1.0 - (double)z[i]));
}

void pt_ref_estimate_free(pt_ref_estimate *e) {
  free(e->value);
  free(e->value_se);
  free(e->jac);
  free(e->jac_se);
  free(e->hess);
  free(e->hess_se);
  memset(e, 0, sizeof *e);
}

/* Both estimators on the same samples: the score function's Jacobian (and Hessian, n_out 1)
   when jf is NULL, else the mean of f's own Jacobian jf at the samples. */
static int run(pt_ref_point_fn f, pt_ref_jacobian_fn jf, const void *ctx, size_t n_in,
               size_t n_out, size_t samples, float sigma, pt_noise noise, int baseline,
               int antithetic, pt_key key, const float *x, pt_ref_estimate *out) {
  memset(out, 0, sizeof *out);
  out->n_in = n_in;
  out->n_out = n_out;
  out->samples = samples;
  out->value = calloc(n_out, sizeof(double));
  out->value_se = calloc(n_out, sizeof(double));
  out->jac = calloc(n_out * n_in, sizeof(double));
  out->jac_se = calloc(n_out * n_in, sizeof(double));
  const int hessian = n_out == 1 && !jf;
  if (hessian) {
    out->hess = calloc(n_in * n_in, sizeof(double));
    out->hess_se = calloc(n_in * n_in, sizeof(double));
  }
  float *z = malloc(n_in * sizeof *z), *xt = malloc(n_in * sizeof *xt);
  float *y = malloc(n_out * sizeof *y), *b = calloc(n_out, sizeof *b);
  float *yp = malloc(n_out * sizeof *yp); /* the partner's value */
  /* the pairs' first terms (add) */
  double *pend = antithetic ? malloc((n_out + n_out * n_in + n_in * n_in) * sizeof *pend) : NULL;
  double *pend_jac = pend ? pend + n_out : NULL, *pend_hess = pend ? pend_jac + n_out * n_in : NULL;
  float *j = jf ? malloc(n_out * n_in * sizeof *j) : NULL;
  double *g = malloc(n_in * sizeof *g), *h = malloc(n_in * sizeof *h);
  double *total = calloc(n_out, sizeof *total); /* sum_m Y_m, for the leave-one-out */
  int ok = out->value && out->value_se && out->jac && out->jac_se &&
           (!hessian || (out->hess && out->hess_se)) && z && xt && y && b && g && h &&
           (!jf || j) && total && yp && (!antithetic || pend);
  const int loo = !jf && baseline == PT_BASELINE_LEAVE_ONE_OUT;
  if (ok && baseline == PT_BASELINE_F_X && !jf) f(ctx, x, b);
  const double s = sigma;
  /* the leave-one-out's first pass: every sample's value; the second one takes the others' */
  for (int pass = loo ? 0 : 1; ok && pass < 2; pass++) {
    for (size_t m = 0; ok && m < samples; m++) {
      const int pairs = loo && antithetic && pass == 1;
      if (pairs) { /* the partner's value first */
        sample_noise(noise, key, 1, m ^ 1, n_in, z);
        for (size_t i = 0; i < n_in; i++) xt[i] = x[i] + sigma * z[i];
        f(ctx, xt, yp);
      }
      sample_noise(noise, key, antithetic, m, n_in, z);
      for (size_t i = 0; i < n_in; i++) {
        const float step = sigma * z[i];
        xt[i] = x[i] + step;
        if (noise == PT_NOISE_GUMBEL) {
          g[i] = 1.0 - exp(-(double)z[i]);
          h[i] = exp(-(double)z[i]);
        } else {
          g[i] = z[i];
          h[i] = 1.0;
        }
      }
      f(ctx, xt, y);
      if (pass == 0) {
        for (size_t r = 0; r < n_out; r++) total[r] += y[r];
        continue;
      }
      if (jf) jf(ctx, xt, j);
      for (size_t r = 0; r < n_out; r++) {
        add(&out->value[r], &out->value_se[r], pend ? pend + r : NULL, m, y[r]);
        const double d =
            (double)y[r] - (loo ? others_mean(total[r], y[r], pairs ? yp + r : NULL, samples)
                                : (double)b[r]);
        for (size_t i = 0; i < n_in; i++)
          add(&out->jac[r * n_in + i], &out->jac_se[r * n_in + i],
              pend ? pend_jac + r * n_in + i : NULL, m,
              jf ? (double)j[r * n_in + i] : d * g[i] / s);
      }
      if (hessian) {
        const double d = (double)y[0] - (loo ? others_mean(total[0], y[0], pairs ? yp : NULL,
                                                           samples)
                                             : (double)b[0]);
        for (size_t i = 0; i < n_in; i++)
          for (size_t k = 0; k < n_in; k++)
            add(&out->hess[i * n_in + k], &out->hess_se[i * n_in + k],
                pend ? pend_hess + i * n_in + k : NULL, m,
                d * (g[i] * g[k] - (i == k ? h[i] : 0.0)) / (s * s));
      }
    }
  }
  if (ok) {
    const size_t reps = antithetic ? samples / 2 : samples;
    finish(out->value, out->value_se, n_out, reps);
    finish(out->jac, out->jac_se, n_out * n_in, reps);
    if (hessian) finish(out->hess, out->hess_se, n_in * n_in, reps);
  }
  free(z);
  free(xt);
  free(y);
  free(yp);
  free(pend);
  free(b);
  free(j);
  free(g);
  free(h);
  free(total);
  if (!ok) pt_ref_estimate_free(out);
  return ok ? 0 : -1;
}

int pt_ref_estimate_run(pt_ref_point_fn f, const void *ctx, size_t n_in, size_t n_out,
                        size_t samples, float sigma, pt_noise noise, int baseline, pt_key key,
                        const float *x, pt_ref_estimate *out) {
  return run(f, NULL, ctx, n_in, n_out, samples, sigma, noise, baseline, 0, key, x, out);
}

int pt_ref_pairs_run(pt_ref_point_fn f, const void *ctx, size_t n_in, size_t n_out,
                     size_t samples, float sigma, pt_noise noise, int baseline, int antithetic,
                     pt_key key, const float *x, pt_ref_estimate *out) {
  return run(f, NULL, ctx, n_in, n_out, samples, sigma, noise, baseline, antithetic != 0, key, x,
             out);
}

int pt_ref_pathwise_run(pt_ref_point_fn f, pt_ref_jacobian_fn jf, const void *ctx, size_t n_in,
                        size_t n_out, size_t samples, float sigma, pt_noise noise, pt_key key,
                        const float *x, pt_ref_estimate *out) {
  return run(f, jf, ctx, n_in, n_out, samples, sigma, noise, 0, 0, key, x, out);
}

void pt_ref_expect_near(const float *got, const double *ref, size_t n, double rel, double abs,
                        const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(got[i] - ref[i]) <= rel * fabs(ref[i]) + abs,
              "%s[%zu]: library %.9g, reference %.9g", what, i, (double)got[i], ref[i]);
}

void pt_ref_expect_truth(const double *mean, const double *se, const double *truth, size_t n,
                         const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(mean[i] - truth[i]) <= 5.0 * se[i] + 1e-9,
              "%s[%zu]: estimate %.6g +- %.2g, closed form %.6g (%.1f standard errors)", what, i,
              mean[i], se[i], truth[i], fabs(mean[i] - truth[i]) / se[i]);
}

void pt_ref_argmax_point(const void *ctx, const float *x, float *y) {
  const size_t d = *(const size_t *)ctx;
  size_t best = 0;
  for (size_t i = 1; i < d; i++)
    if (x[i] > x[best]) best = i;
  for (size_t i = 0; i < d; i++) y[i] = i == best ? 1.0f : 0.0f;
}

int pt_ref_argmax_rows(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t r = 0; r < batch; r++) pt_ref_argmax_point(user, x + r * d, y + r * d);
  return 0;
}

pt_perturb_options pt_ref_score_options(size_t m, float sigma, pt_noise noise, pt_baseline b) {
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = m;
  o.sigma = sigma;
  o.noise = noise;
  o.baseline = b;
  o.gradient = PT_GRADIENT_SCORE;
  return o;
}

pt_fn *pt_ref_perturbed(const pt_fn *f, const pt_perturb_options *o) {
  pt_fn *p = NULL;
  cr_assert_eq(pt_make_perturbed_fun_ex(f, o, &p), PT_OK);
  return p;
}

static double sigmoid(double t) { return 1.0 / (1.0 + exp(-t)); }
static double normal_cdf(double t) { return 0.5 * erfc(-t / sqrt(2.0)); }
static double normal_pdf(double t) { return exp(-0.5 * t * t) / sqrt(2.0 * 3.14159265358979324); }

void pt_ref_rank_truth(const float *x, size_t d, double sigma, pt_noise noise, double *r,
                       double *jac, size_t ld) {
  const double scale = noise == PT_NOISE_GUMBEL ? sigma : sigma * sqrt(2.0);
  for (size_t i = 0; i < d; i++) {
    r[i] = 0;
    for (size_t j = 0; j < d; j++) jac[i * ld + j] = 0.0;
    for (size_t j = 0; j < d; j++) {
      if (j == i) continue;
      const double t = (x[i] - x[j]) / scale;
      const double cdf = noise == PT_NOISE_GUMBEL ? sigmoid(t) : normal_cdf(t);
      const double pdf = noise == PT_NOISE_GUMBEL ? sigmoid(t) * (1 - sigmoid(t)) : normal_pdf(t);
      r[i] += cdf;
      jac[i * ld + i] += pdf / scale;
      jac[i * ld + j] -= pdf / scale;
    }
  }
}

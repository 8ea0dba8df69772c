/* SPDX-License-Identifier: MIT */
/* The estimator options of pt_make_perturbed_fun_ex(3) against independent truth: the
   leave-one-out baseline, plain and leaving out antithetic pairs (the formula on the
   reference's samples, the softmax Jacobian and the half square's Hessian at 5 standard
   errors, unbiased at small M, and its variance against the other baselines), block_diagonal (the cross-segment entries exactly 0, the diagonal
   blocks those of the full estimate bit for bit, and a tree objective's gradient less
   variable), independent_jacobian (the derivatives are those of pt_key_fold_in(K, 1), and a
   loss of the value gets an unbiased gradient through pt_fn_compose); then every option split
   into shards, threads and ISAs at the bits of one call, and the refusals.  Keys are fixed, so
   every statistical bound is one deterministic run. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimator.h"
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT */

/* ---- functions and their closed forms --------------------------------------------------------- */

static void half_square_point(const void *ctx, const float *x, float *y) {
  const size_t n = *(const size_t *)ctx;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += 0.5 * (double)x[i] * x[i];
  y[0] = (float)s;
}

typedef struct point_fn {
  pt_ref_point_fn f;
  size_t n_in, n_out;
  const void *ctx;
} point_fn;

static int point_batch(void *user, size_t batch, const float *x, float *y) {
  const point_fn *p = user;
  for (size_t b = 0; b < batch; b++) p->f(p->ctx, x + b * p->n_in, y + b * p->n_out);
  return 0;
}

/* a thread-safe black box of p: the generic path */
static pt_fn *black_box(point_fn *p) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(p->n_in, p->n_out, point_batch, NULL, p, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &f), PT_OK);
  return f;
}


/* softmax(x / sigma) of d inputs and its Jacobian (diag p - p p^T) / sigma, with row stride ld
   (a diagonal block of a larger Jacobian) */
static void softmax_truth(const float *x, size_t d, double sigma, double *p, double *jac,
                          size_t ld) {
  double mx = x[0], z = 0;
  for (size_t i = 1; i < d; i++) mx = fmax(mx, x[i]);
  for (size_t i = 0; i < d; i++) z += exp((x[i] - mx) / sigma);
  for (size_t i = 0; i < d; i++) p[i] = exp((x[i] - mx) / sigma) / z;
  for (size_t j = 0; j < d; j++)
    for (size_t i = 0; i < d; i++) jac[j * ld + i] = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / sigma;
}

static int same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* ---- checks ------------------------------------------------------------------------------------ */

/* Mean and standard error of replicate estimates: `reps` rows of n values. */
typedef struct spread {
  size_t n, reps;
  double *sum, *sq;
} spread;

static spread spread_new(size_t n) {
  spread s = {n, 0, calloc(n, sizeof(double)), calloc(n, sizeof(double))};
  cr_assert(s.sum && s.sq);
  return s;
}

static void spread_add(spread *s, const float *v) {
  for (size_t i = 0; i < s->n; i++) {
    s->sum[i] += v[i];
    s->sq[i] += (double)v[i] * v[i];
  }
  s->reps++;
}

/* per entry: mean into sum, standard error of the mean into sq; returns the total variance of
   one replicate, sum_i var_i */
static double spread_finish(spread *s) {
  double total = 0;
  for (size_t i = 0; i < s->n; i++) {
    const double r = (double)s->reps, mean = s->sum[i] / r, var = (s->sq[i] - r * mean * mean) / (r - 1);
    s->sum[i] = mean;
    s->sq[i] = sqrt(fmax(var, 0) / r);
    total += fmax(var, 0);
  }
  return total;
}

static void spread_free(spread *s) {
  free(s->sum);
  free(s->sq);
}

/* ---- the leave-one-out baseline ------------------------------------------------------------- */

/* The library on the reference's samples: value and Jacobian within rounding (or `slack`
   samples of a fused kernel's float near-ties), and the vjp and jvp the Jacobian's products;
   with antithetic pairs (p's option), the reference's leave-one-pair-out. */
static void expect_loo_is_the_formula(const pt_fn *p, point_fn *pf, size_t m, float sigma,
                                      pt_noise noise, int antithetic, pt_key key, const float *x,
                                      double slack, pt_ref_estimate *ref) {
  const size_t n_in = pf->n_in, n_out = pf->n_out;
  cr_assert_eq(pt_ref_pairs_run(pf->f, pf->ctx, n_in, n_out, m, sigma, noise,
                                PT_BASELINE_LEAVE_ONE_OUT, antithetic, key, x, ref), 0);
  float y[8], jac[64], x_bar[8], y_dot[8], y_bar[8], x_dot[8];
  for (size_t j = 0; j < n_out; j++) y_bar[j] = 0.5f * (float)j - 1.0f;
  for (size_t i = 0; i < n_in; i++) x_dot[i] = 1.0f - 0.25f * (float)i;
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(p, key, x, x_dot, y_dot), PT_OK);
  /* one sample moves a Jacobian entry by at most ~2 max|y| 17 / ((M - 2) sigma) */
  const double unit = 1.0 / (double)(m - (antithetic ? 2 : 1));
  pt_ref_expect_near(y, ref->value, n_out, 1e-5, slack * unit + 1e-6, "value");
  pt_ref_expect_near(jac, ref->jac, n_out * n_in, 1e-5, slack * 34 * unit / sigma + 1e-6,
                     "jacobian");
  /* the products on the same samples: the vjp sums its terms in float runs of 32 samples,
     within 32 2^-24 |c g| each, |c| <= sum |y_bar| < 8, E|g| < 2 */
  double vjp[8] = {0}, jvp[8] = {0};
  for (size_t j = 0; j < n_out; j++)
    for (size_t i = 0; i < n_in; i++) {
      vjp[i] += (double)jac[j * n_in + i] * y_bar[j];
      jvp[j] += (double)jac[j * n_in + i] * x_dot[i];
    }
  pt_ref_expect_near(x_bar, vjp, n_in, 1e-5, 32 * 0x1p-24 * 8 * 2 / sigma + 1e-5, "vjp");
  pt_ref_expect_near(y_dot, jvp, n_out, 1e-5, 1e-5, "jvp");
}

/* The Gumbel argmax with the leave-one-out: softmax(x / sigma) and its Jacobian, through the
   fused kernel (a few samples may settle float near-ties their own way) and a black box;
   with antithetic pairs too, each leaving out its pair. */
static void check_loo_softmax(int builtin, int antithetic) {
  size_t d = 5;
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f}, sigma = 0.5f;
  const size_t m = 100000;
  point_fn pf = {pt_ref_argmax_point, d, d, &d};
  pt_fn *f = NULL;
  if (builtin) cr_assert_eq(pt_fn_argmax_one_hot(d, &f), PT_OK);
  else f = black_box(&pf);
  pt_perturb_options o = pt_ref_score_options(m, sigma, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT);
  o.antithetic = antithetic;
  pt_fn *p = pt_ref_perturbed(f, &o);
  pt_ref_estimate ref;
  /* the partner's Gumbel differs from the reference's by an ulp or two: a few more near-ties */
  expect_loo_is_the_formula(p, &pf, m, sigma, PT_NOISE_GUMBEL, antithetic, pt_key_make(2024), x,
                            builtin || antithetic ? 3 : 0, &ref);
  double prob[5], jac[25];
  softmax_truth(x, d, sigma, prob, jac, d);
  pt_ref_expect_truth(ref.value, ref.value_se, prob, d, "softmax");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, d * d, "softmax jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(options, leave_one_out_fused_argmax_is_the_softmax_jacobian) { check_loo_softmax(1, 0); }
Test(options, leave_one_out_black_box_argmax_is_the_softmax_jacobian) { check_loo_softmax(0, 0); }
Test(options, leave_one_pair_out_fused_argmax_is_the_softmax_jacobian) { check_loo_softmax(1, 1); }
Test(options, leave_one_pair_out_black_box_argmax_is_the_softmax_jacobian) {
  check_loo_softmax(0, 1);
}

/* The fewest samples (2; 4 in antithetic pairs), one or two more than a group (129, 130) and
   1000, either noise: the formula of the reference exactly, on the fused argmax path and the
   generic one, plain and leaving out pairs. */
Test(options, leave_one_out_is_the_formula_at_any_sample_count) {
  size_t d = 4;
  const float x[4] = {0.3f, -0.5f, 0.9f, 0.0f};
  point_fn pf = {pt_ref_argmax_point, d, d, &d};
  pt_fn *fs[2] = {NULL, black_box(&pf)};
  cr_assert_eq(pt_fn_argmax_one_hot(d, &fs[0]), PT_OK);
  const size_t counts[2][3] = {{2, 129, 1000}, {4, 130, 1000}};
  for (int anti = 0; anti < 2; anti++)
  for (size_t c = 0; c < 3; c++)
    for (int noise = 0; noise < 2; noise++)
      for (int k = 0; k < 2; k++) {
        pt_perturb_options o = pt_ref_score_options(counts[anti][c], 0.7f, (pt_noise)noise,
                                                    PT_BASELINE_LEAVE_ONE_OUT);
        o.antithetic = anti;
        pt_fn *p = pt_ref_perturbed(fs[k], &o);
        pt_ref_estimate ref;
        expect_loo_is_the_formula(p, &pf, counts[anti][c], 0.7f, (pt_noise)noise, anti,
                                  pt_key_make(c + 1), x,
                                  (k == 0 || anti) && noise == PT_NOISE_GUMBEL ? 1 : 0, &ref);
        pt_ref_estimate_free(&ref);
        pt_fn_free(p);
      }
  pt_fn_free(fs[0]);
  pt_fn_free(fs[1]);
}

/* The Hessian with the leave-one-out (the generic path's second-order terms): the half
   square's is the identity, plain and in antithetic pairs (whose Hessian terms are even in z,
   so that leaving out the pair acts on them with normal noise too). */
Test(options, leave_one_out_hessian_of_half_square_is_the_identity) {
  size_t n = 3;
  point_fn pf = {half_square_point, n, 1, &n};
  pt_fn *f = black_box(&pf);
  const float x[3] = {0.2f, -0.1f, 0.3f}, sigma = 0.5f;
  const size_t m = 200000;
  const pt_key key = pt_key_make(99);
  for (int anti = 0; anti < 2; anti++)
  for (int noise = 0; noise < 2; noise++) {
    pt_perturb_options o = pt_ref_score_options(m, sigma, (pt_noise)noise, PT_BASELINE_LEAVE_ONE_OUT);
    o.antithetic = anti;
    pt_fn *p = pt_ref_perturbed(f, &o);
    pt_ref_estimate ref;
    cr_assert_eq(pt_ref_pairs_run(half_square_point, &n, n, 1, m, sigma, (pt_noise)noise,
                                  PT_BASELINE_LEAVE_ONE_OUT, anti, key, x, &ref), 0);
    float hess[9], value, grad[3];
    cr_assert_eq(pt_fn_hessian(p, key, x, hess), PT_OK);
    cr_assert_eq(pt_fn_value_and_grad(p, key, x, &value, grad), PT_OK);
    pt_ref_expect_near(hess, ref.hess, 9, 1e-5, 1e-5, "hessian");
    pt_ref_expect_near(grad, ref.jac, 3, 1e-5, 1e-6, "gradient");
    const double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    pt_ref_expect_truth(ref.hess, ref.hess_se, identity, 9, "hessian");
    pt_ref_estimate_free(&ref);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* Unbiased at any M, unlike a baseline of the mean of all samples (biased by (M - 1)/M): over
   many keys at M = 10 the mean Jacobian is the softmax's at 5 standard errors; and its
   variance against no baseline and f(x), on a diffuse softmax (where f(x), a one-hot, is far
   from E[Y]) and a peaked one (where it is close). */
static double loo_variance(const float *x, double sigma, size_t m, size_t reps, int antithetic,
                           double *ratio_none, double *ratio_f_x, int check_bias) {
  enum { D = 4 };
  pt_fn *f;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &f), PT_OK);
  const pt_baseline baselines[3] = {PT_BASELINE_NONE, PT_BASELINE_F_X, PT_BASELINE_LEAVE_ONE_OUT};
  double variance[3];
  for (int b = 0; b < 3; b++) {
    pt_perturb_options o = pt_ref_score_options(m, (float)sigma, PT_NOISE_GUMBEL, baselines[b]);
    o.antithetic = antithetic;
    pt_fn *p = pt_ref_perturbed(f, &o);
    spread s = spread_new(D * D);
    float jac[D * D];
    for (size_t r = 0; r < reps; r++) {
      cr_assert_eq(pt_fn_jacobian(p, pt_key_make(1000 + r), x, jac), PT_OK);
      spread_add(&s, jac);
    }
    variance[b] = spread_finish(&s);
    if (check_bias) {
      double prob[D], truth[D * D];
      softmax_truth(x, D, sigma, prob, truth, D);
      pt_ref_expect_truth(s.sum, s.sq, truth, D * D, baselines[b] == PT_BASELINE_LEAVE_ONE_OUT
                                                   ? "leave-one-out jacobian, M = 10"
                                                   : "jacobian, M = 10");
    }
    spread_free(&s);
    pt_fn_free(p);
  }
  pt_fn_free(f);
  *ratio_none = variance[2] / variance[0];
  *ratio_f_x = variance[2] / variance[1];
  return variance[2];
}

Test(options, leave_one_out_is_unbiased_and_lowers_the_variance) {
  const float diffuse[4] = {0.2f, -0.1f, 0.0f, 0.1f}, peaked[4] = {2.0f, -1.0f, 0.0f, -0.5f};
  double none, f_x;
  loo_variance(diffuse, 0.5, 10, 20000, 0, &none, &f_x, 1);
  cr_log_info("leave-one-out variance, diffuse softmax, M = 10: %.3f of no baseline's, %.3f of "
              "f(x)'s", none, f_x);
  cr_expect(none < 0.9 && f_x < 0.7, "diffuse, M = 10: %.3f, %.3f", none, f_x);
  loo_variance(diffuse, 0.5, 200, 2000, 0, &none, &f_x, 0);
  cr_log_info("leave-one-out variance, diffuse softmax, M = 200: %.3f of no baseline's, %.3f of "
              "f(x)'s", none, f_x);
  cr_expect(none < 0.8 && f_x < 0.6, "diffuse, M = 200: %.3f, %.3f", none, f_x);
  loo_variance(peaked, 0.5, 200, 2000, 0, &none, &f_x, 0);
  cr_log_info("leave-one-out variance, peaked softmax, M = 200: %.3f of no baseline's, %.3f of "
              "f(x)'s", none, f_x);
  cr_expect(none < 0.1 && f_x < 1.0, "peaked, M = 200: %.3f, %.3f", none, f_x);
}

/* In antithetic pairs each sample leaves out its pair: unbiased at M = 10 (five pairs), where
   a plain leave-one-out would hold the partner; with Gumbel pairs less variable than the
   pairs' other baselines on the argmax (measured at M = 200: 0.79 of f(x)'s, 0.90 of none's),
   though not below the plain leave-one-out of independent samples (1.16 of it), since a pair's
   terms are positively correlated there. */
Test(options, leave_one_pair_out_is_unbiased_and_lowers_the_variance_of_pairs) {
  const float diffuse[4] = {0.2f, -0.1f, 0.0f, 0.1f};
  double none, f_x;
  loo_variance(diffuse, 0.5, 10, 20000, 1, &none, &f_x, 1);
  cr_log_info("leave-one-pair-out variance, diffuse softmax, M = 10: %.3f of no baseline's, "
              "%.3f of f(x)'s", none, f_x);
  cr_expect(none < 1.0 && f_x < 0.9, "pairs, M = 10: %.3f, %.3f", none, f_x);
  loo_variance(diffuse, 0.5, 200, 2000, 1, &none, &f_x, 0);
  cr_log_info("leave-one-pair-out variance, diffuse softmax, M = 200: %.3f of no baseline's, "
              "%.3f of f(x)'s", none, f_x);
  cr_expect(none < 0.97 && f_x < 0.9, "pairs, M = 200: %.3f, %.3f", none, f_x);
}

/* Normal pairs have grad_nu(Z_2p+1) = -grad_nu(Z_2p): the baseline's terms of a pair cancel,
   so the first derivatives leaving out pairs are those of no baseline, to the rounding of
   their other order of sums, on the fused path and the generic one; the Hessian's terms
   (even in z) do not cancel, and differ. */
Test(options, normal_pairs_leave_their_first_derivatives_unchanged) {
  size_t d = 5;
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f}, x_dot[5] = {1, -2, 0.5f, 3, -1};
  point_fn pf = {pt_ref_argmax_point, d, d, &d};
  pt_fn *fs[2] = {NULL, black_box(&pf)};
  cr_assert_eq(pt_fn_argmax_one_hot(d, &fs[0]), PT_OK);
  for (int k = 0; k < 2; k++) {
    pt_perturb_options o = pt_ref_score_options(1000, 0.5f, PT_NOISE_NORMAL, PT_BASELINE_NONE);
    o.antithetic = 1;
    pt_fn *plain = pt_ref_perturbed(fs[k], &o);
    o.baseline = PT_BASELINE_LEAVE_ONE_OUT;
    pt_fn *pairs = pt_ref_perturbed(fs[k], &o);
    const pt_key key = pt_key_make(404);
    float a[25], b[25];
    cr_assert_eq(pt_fn_jacobian(plain, key, x, a), PT_OK);
    cr_assert_eq(pt_fn_jacobian(pairs, key, x, b), PT_OK);
    for (size_t i = 0; i < 25; i++)
      cr_assert(fabsf(a[i] - b[i]) <= 1e-5f, "%s jacobian[%zu]: %g, leaving out pairs %g",
                k ? "black box" : "fused", i, (double)a[i], (double)b[i]);
    cr_assert_eq(pt_fn_jvp(plain, key, x, x_dot, a), PT_OK);
    cr_assert_eq(pt_fn_jvp(pairs, key, x, x_dot, b), PT_OK);
    for (size_t i = 0; i < 5; i++)
      cr_assert(fabsf(a[i] - b[i]) <= 1e-4f, "%s jvp[%zu]", k ? "black box" : "fused", i);
    cr_assert_eq(pt_fn_vjp(plain, key, x, x_dot, a), PT_OK);
    cr_assert_eq(pt_fn_vjp(pairs, key, x, x_dot, b), PT_OK);
    for (size_t i = 0; i < 5; i++)
      cr_assert(fabsf(a[i] - b[i]) <= 1e-4f, "%s vjp[%zu]", k ? "black box" : "fused", i);
    pt_fn_free(plain);
    pt_fn_free(pairs);
  }
  pt_fn_free(fs[0]);
  pt_fn_free(fs[1]);
}

/* ---- block_diagonal ------------------------------------------------------------------------ */

/* Segments of every size class: a single input, short ones settled one sample per lane
   (n <= 16 in all), and long ones run along their inputs (n > 16). */
static const size_t short_sizes[3] = {2, 5, 1}, long_sizes[4] = {3, 20, 1, 9};

static void point_of(float *x, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(seed >> 40) / (double)(1u << 24)) - 0.5f;
  }
}

typedef pt_status (*segments_fn)(const size_t *sizes, size_t count, pt_fn **out);

/* The most outputs of a case here: a segment's are its inputs, or for the permutation matrix
   its d x d cells (491 for long_sizes). */
#define MAX_OUT 512

static void check_block_diagonal(segments_fn make, const size_t *sizes, size_t count,
                                 pt_noise noise, pt_baseline baseline) {
  const int cells = make == pt_fn_permutation_matrix_segments;
  size_t n = 0, n_out = 0, seg_of[64], out_seg[MAX_OUT];
  for (size_t s = 0; s < count; s++) {
    for (size_t i = 0; i < sizes[s]; i++) seg_of[n++] = s;
    for (size_t j = 0; j < (cells ? sizes[s] * sizes[s] : sizes[s]); j++) out_seg[n_out++] = s;
  }
  pt_fn *f;
  cr_assert_eq(make(sizes, count, &f), PT_OK);
  cr_assert_eq(pt_fn_n_out(f), n_out);
  pt_perturb_options o = pt_ref_score_options(700, 0.4f, noise, baseline);
  pt_fn *full = pt_ref_perturbed(f, &o);
  o.block_diagonal = 1;
  pt_fn *bd = pt_ref_perturbed(f, &o);
  float x[64], y_bar[MAX_OUT], x_dot[64];
  point_of(x, n, 1);
  point_of(y_bar, n_out, 2);
  point_of(x_dot, n, 3);
  const pt_key key = pt_key_make(31);
  static float jf[MAX_OUT * 64], jb[MAX_OUT * 64];
  float yf[MAX_OUT], yb[MAX_OUT], x_bar[64], y_dot[MAX_OUT];
  cr_assert_eq(pt_fn_jacobian(full, key, x, jf), PT_OK);
  cr_assert_eq(pt_fn_jacobian(bd, key, x, jb), PT_OK);
  cr_assert_eq(pt_fn_eval(full, key, x, yf), PT_OK);
  cr_assert_eq(pt_fn_eval(bd, key, x, yb), PT_OK);
  cr_assert(same_bits(yf, yb, n_out), "the value does not depend on block_diagonal");
  double vjp[64] = {0}, jvp[MAX_OUT] = {0}, size_vjp[64] = {0}, size_jvp[MAX_OUT] = {0};
  for (size_t j = 0; j < n_out; j++)
    for (size_t i = 0; i < n; i++) {
      const float got = jb[j * n + i];
      if (seg_of[i] != out_seg[j])
        cr_assert(memcmp(&got, &(float){0.0f}, sizeof got) == 0,
                  "cross-segment entry (%zu, %zu) is %a", j, i, (double)got);
      else
        cr_assert(same_bits(&jb[j * n + i], &jf[j * n + i], 1),
                  "diagonal-block entry (%zu, %zu): %a, full estimate %a", j, i, (double)got,
                  (double)jf[j * n + i]);
      vjp[i] += (double)got * y_bar[j];
      jvp[j] += (double)got * x_dot[i];
      size_vjp[i] += fabs((double)got * y_bar[j]);
      size_jvp[j] += fabs((double)got * x_dot[i]);
    }
  /* the vjp and jvp are the block-diagonal Jacobian's products, up to their rounding (the vjp's
     float runs of 32 samples: within 32 2^-24 |c g| a term, |c| <= 2 (the argmax's), 200 (the
     ranks of a segment of 20 times y_bar) or 20 (a segment's 20 cells of the permutation
     matrix), E|g| <= 2) */
  cr_assert_eq(pt_fn_vjp(bd, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(bd, key, x, x_dot, y_dot), PT_OK);
  const double c_max = make == pt_fn_ranking_segments ? 200.0 : cells ? 20.0 : 2.0;
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(x_bar[i] - vjp[i]) <= 1e-5 * size_vjp[i] + 32 * 0x1p-24 * 2 * c_max / 0.4 + 1e-6,
              "vjp[%zu] %.9g, J^T y_bar %.9g", i, (double)x_bar[i], vjp[i]);
  for (size_t j = 0; j < n_out; j++)
    cr_assert(fabs(y_dot[j] - jvp[j]) <= 1e-5 * size_jvp[j] + 1e-6, "jvp[%zu] %.9g, J x_dot %.9g",
              j, (double)y_dot[j], jvp[j]);
  pt_fn_free(full);
  pt_fn_free(bd);
  pt_fn_free(f);
}

static const segments_fn block_diagonal_makes[3] = {
    pt_fn_argmax_one_hot_segments, pt_fn_ranking_segments, pt_fn_permutation_matrix_segments};

Test(options, block_diagonal_drops_exactly_the_cross_segment_terms) {
  for (int noise = 0; noise < 2; noise++)
    for (int b = 0; b < 3; b++)
      for (size_t k = 0; k < 3; k++) {
        const segments_fn make = block_diagonal_makes[k];
        check_block_diagonal(make, short_sizes, 3, (pt_noise)noise, (pt_baseline)b);
        check_block_diagonal(make, long_sizes, 4, (pt_noise)noise, (pt_baseline)b);
      }
}

/* The closed form of a leaf's perturbed value (d entries) and its Jacobian (rows ld apart),
   Gumbel noise. */
typedef void (*leaf_truth)(const float *x, size_t d, double sigma, double *value, double *jac,
                           size_t ld);

static void rank_truth_gumbel(const float *x, size_t d, double sigma, double *value, double *jac,
                              size_t ld) {
  pt_ref_rank_truth(x, d, sigma, PT_NOISE_GUMBEL, value, jac, ld);
}

/* A tree of 16 leaves of 4 entries, flattened: the loss L(x) = sum_s w_s . y_s(x) of the
   perturbed built-in of each leaf (Gumbel noise), its gradient the vjp with y_bar = w.  Over
   fresh keys at M = 100 both estimates are unbiased (5 standard errors of the closed form), and
   the block-diagonal one has a fraction of the variance: in the full estimate every leaf's
   gradient carries the other leaves' cotangents.  Returns the block-diagonal variance over the
   full estimate's. */
static double tree_gradient_variance_ratio(segments_fn make, leaf_truth truth, const char *what) {
  enum { LEAVES = 16, CHOICES = 4, N = LEAVES * CHOICES, REPS = 1000 };
  size_t sizes[LEAVES];
  for (size_t s = 0; s < LEAVES; s++) sizes[s] = CHOICES;
  pt_fn *f;
  cr_assert_eq(make(sizes, LEAVES, &f), PT_OK);
  float x[N], w[N];
  point_of(x, N, 11);
  point_of(w, N, 12);
  const float sigma = 0.5f;
  static double value[N], jac[N * N];
  double grad_truth[N] = {0};
  memset(jac, 0, sizeof jac);
  for (size_t s = 0; s < LEAVES; s++)
    truth(x + s * CHOICES, CHOICES, sigma, value + s * CHOICES, jac + s * CHOICES * (N + 1), N);
  for (size_t j = 0; j < N; j++)
    for (size_t i = 0; i < N; i++) grad_truth[i] += jac[j * N + i] * w[j];
  double variance[2];
  for (int blocks = 0; blocks < 2; blocks++) {
    pt_perturb_options o = pt_ref_score_options(100, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
    o.block_diagonal = blocks;
    pt_fn *p = pt_ref_perturbed(f, &o);
    spread s = spread_new(N);
    for (size_t r = 0; r < REPS; r++) {
      float grad[N];
      cr_assert_eq(pt_fn_vjp(p, pt_key_make(5000 + r), x, w, grad), PT_OK);
      spread_add(&s, grad);
    }
    variance[blocks] = spread_finish(&s);
    pt_ref_expect_truth(s.sum, s.sq, grad_truth, N, blocks ? "block-diagonal tree gradient"
                                                           : "tree gradient");
    spread_free(&s);
    pt_fn_free(p);
  }
  pt_fn_free(f);
  cr_log_info("%s tree gradient, 16 leaves of 4, M = 100: block-diagonal variance %.3f of the "
              "full estimate's", what, variance[1] / variance[0]);
  return variance[1] / variance[0];
}

Test(options, block_diagonal_lowers_the_variance_of_a_tree_gradient) {
  const double argmax = tree_gradient_variance_ratio(pt_fn_argmax_one_hot_segments, softmax_truth,
                                                     "argmax");
  cr_expect(argmax < 0.25, "argmax variance ratio %.3f", argmax);
  const double ranks = tree_gradient_variance_ratio(pt_fn_ranking_segments, rank_truth_gumbel,
                                                    "ranking");
  cr_expect(ranks < 0.25, "ranking variance ratio %.3f", ranks);
}

/* ---- independent_jacobian ----------------------------------------------------------------- */

/* Every op of a function with the option against the function without it: the value from K,
   each derivative from pt_key_fold_in(K, 1), bit for bit, and the calls that return both (the
   value and gradient, a composition's vjp) split the same way. */
static void check_independent(const pt_fn *f, pt_perturb_options o) {
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f);
  o.independent_jacobian = 0;
  pt_fn *plain = pt_ref_perturbed(f, &o);
  o.independent_jacobian = 1;
  pt_fn *indep = pt_ref_perturbed(f, &o);
  float x[64], y_bar[64], x_dot[64];
  point_of(x, n_in, 4);
  point_of(y_bar, n_out, 5);
  point_of(x_dot, n_in, 6);
  const pt_key key = pt_key_make(8), derivative_key = pt_key_fold_in(key, 1);
  static float a[64 * 64], b[64 * 64];
  cr_assert_eq(pt_fn_eval(indep, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_eval(plain, key, x, b), PT_OK);
  cr_assert(same_bits(a, b, n_out), "eval: the key's own samples");
  cr_assert_eq(pt_fn_vjp(indep, key, x, y_bar, a), PT_OK);
  cr_assert_eq(pt_fn_vjp(plain, derivative_key, x, y_bar, b), PT_OK);
  cr_assert(same_bits(a, b, n_in), "vjp: the samples of pt_key_fold_in(K, 1)");
  cr_assert_eq(pt_fn_jvp(indep, key, x, x_dot, a), PT_OK);
  cr_assert_eq(pt_fn_jvp(plain, derivative_key, x, x_dot, b), PT_OK);
  cr_assert(same_bits(a, b, n_out), "jvp");
  cr_assert_eq(pt_fn_jacobian(indep, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_jacobian(plain, derivative_key, x, b), PT_OK);
  cr_assert(same_bits(a, b, n_out * n_in), "jacobian");
  if (n_out == 1) {
    cr_assert_eq(pt_fn_hessian(indep, key, x, a), PT_OK);
    cr_assert_eq(pt_fn_hessian(plain, derivative_key, x, b), PT_OK);
    cr_assert(same_bits(a, b, n_in * n_in), "hessian");
    float value, grad[64], value_plain;
    const float one = 1.0f;
    cr_assert_eq(pt_fn_value_and_grad(indep, key, x, &value, grad), PT_OK);
    cr_assert_eq(pt_fn_eval(plain, key, x, &value_plain), PT_OK);
    cr_assert_eq(pt_fn_vjp(plain, derivative_key, x, &one, b), PT_OK);
    cr_assert(same_bits(&value, &value_plain, 1) && same_bits(grad, b, n_in),
              "value_and_grad: the value from K, the gradient from pt_key_fold_in(K, 1)");
  }
  pt_fn_free(plain);
  pt_fn_free(indep);
}

Test(options, independent_jacobian_takes_the_derivatives_from_fold_in_1) {
  const size_t sizes[3] = {4, 1, 7};
  size_t n = 3;
  point_fn hs = {half_square_point, n, 1, &n};
  pt_fn *argmax, *rank, *sort, *box = black_box(&hs);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 3, &argmax), PT_OK);
  cr_assert_eq(pt_fn_ranking(9, &rank), PT_OK);
  cr_assert_eq(pt_fn_sort(6, &sort), PT_OK);
  for (int b = 0; b < 3; b++) {
    pt_perturb_options o = pt_ref_score_options(300, 0.5f, PT_NOISE_GUMBEL, (pt_baseline)b);
    check_independent(argmax, o);
    o.block_diagonal = 1;
    check_independent(argmax, o);
    o = pt_ref_score_options(300, 0.5f, PT_NOISE_NORMAL, (pt_baseline)b);
    check_independent(rank, o);
    check_independent(box, o);
  }
  /* the pathwise gradient draws its samples the same way */
  pt_perturb_options o = pt_ref_score_options(300, 0.5f, PT_NOISE_NORMAL, PT_BASELINE_F_X);
  o.gradient = PT_GRADIENT_PATHWISE;
  check_independent(sort, o);
  pt_fn_free(argmax);
  pt_fn_free(rank);
  pt_fn_free(sort);
  pt_fn_free(box);
}

/* The Fenchel-Young loss (pathwise by default) with the option: its value and gradient from
   independent samples, as pt_fenchel_young_loss(3) says. */
Test(options, independent_jacobian_splits_a_fenchel_young_loss) {
  enum { D = 6 };
  pt_fn *argmax, *plain, *indep;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &argmax), PT_OK);
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 300;
  cr_assert_eq(pt_fenchel_young_loss(argmax, &o, &plain), PT_OK);
  o.independent_jacobian = 1;
  cr_assert_eq(pt_fenchel_young_loss(argmax, &o, &indep), PT_OK);
  float x[2 * D], value, grad[2 * D], value_plain, unused, grad_plain[2 * D];
  point_of(x, D, 7);
  for (size_t i = 0; i < D; i++) x[D + i] = i == 2 ? 1.0f : 0.0f; /* y_true */
  const pt_key key = pt_key_make(17);
  cr_assert_eq(pt_fn_value_and_grad(indep, key, x, &value, grad), PT_OK);
  cr_assert_eq(pt_fn_eval(plain, key, x, &value_plain), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(plain, pt_key_fold_in(key, 1), x, &unused, grad_plain), PT_OK);
  cr_expect(same_bits(&value, &value_plain, 1), "the value from K");
  cr_expect(same_bits(grad, grad_plain, 2 * D), "the gradient from pt_key_fold_in(K, 1)");
  pt_fn_free(plain);
  pt_fn_free(indep);
  pt_fn_free(argmax);
}

/* L(u) = ||u||^2, its vjp 2 u y_bar */
static int square_norm(void *user, size_t batch, const float *u, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)u[b * d + i] * u[b * d + i];
    y[b] = (float)s;
  }
  return 0;
}

static int square_norm_vjp(void *user, const float *u, const float *y_bar, float *u_bar) {
  const size_t d = *(const size_t *)user;
  for (size_t i = 0; i < d; i++) u_bar[i] = 2.0f * u[i] * y_bar[0];
  return 0;
}

/* L(x) = ||p(x)||^2 with p the perturbed Gumbel argmax (p = softmax(x / sigma)), through
   pt_fn_compose: grad L = 2 J^T p, J = (diag p - p p^T) / sigma.  With shared samples the
   estimate 2 J^T p of one call multiplies two estimates of the same noise, biased by O(1/M);
   with independent_jacobian its mean over keys is the closed form at 5 standard errors, and
   without it, at M = 10, it is measurably not. */
Test(options, independent_jacobian_makes_a_loss_of_the_value_unbiased) {
  enum { D = 4, REPS = 40000 };
  static size_t d = D;
  const float x[D] = {0.3f, -0.2f, 0.1f, 0.0f}, sigma = 0.5f;
  double prob[D], jac[D * D], truth[D] = {0};
  softmax_truth(x, D, sigma, prob, jac, D);
  for (size_t i = 0; i < D; i++)
    for (size_t j = 0; j < D; j++) truth[i] += 2.0 * jac[j * D + i] * prob[j];
  pt_fn *argmax, *loss;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &argmax), PT_OK);
  cr_assert_eq(pt_custom_gradient(D, 1, square_norm, square_norm_vjp, &d, &loss), PT_OK);
  double worst[2];
  for (int indep = 0; indep < 2; indep++) {
    pt_perturb_options o = pt_ref_score_options(10, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
    o.independent_jacobian = indep;
    pt_fn *p = pt_ref_perturbed(argmax, &o), *l;
    cr_assert_eq(pt_fn_compose(loss, p, &l), PT_OK);
    spread s = spread_new(D);
    for (size_t r = 0; r < REPS; r++) {
      float value, grad[D];
      cr_assert_eq(pt_fn_value_and_grad(l, pt_key_make(70000 + r), x, &value, grad), PT_OK);
      spread_add(&s, grad);
    }
    spread_finish(&s);
    worst[indep] = 0;
    for (size_t i = 0; i < D; i++) worst[indep] = fmax(worst[indep], fabs(s.sum[i] - truth[i]) / s.sq[i]);
    if (indep) pt_ref_expect_truth(s.sum, s.sq, truth, D, "gradient of ||p||^2, independent");
    cr_log_info("grad ||p||^2 at M = 10 over %d keys, %s: worst component %.1f standard errors "
                "from the closed form", REPS, indep ? "independent" : "shared samples", worst[indep]);
    spread_free(&s);
    pt_fn_free(l);
    pt_fn_free(p);
  }
  cr_expect(worst[0] > 5.0, "shared samples: biased by only %.1f standard errors", worst[0]);
  pt_fn_free(argmax);
  pt_fn_free(loss);
}

/* ---- shards, threads and ISAs -------------------------------------------------------------- */

typedef struct subject {
  const char *name;
  pt_fn *base, *f; /* the function perturbed, and perturbed with o */
  pt_perturb_options o;
} subject;

enum { SUBJECTS = 19, BASES = 6 };

static size_t three = 3;
static point_fn half_square3 = {half_square_point, 3, 1, &three};

/* Every fused path and the generic one, under each option and their combinations; `bases`
   holds the functions perturbed (each subject's base is one of them). */
typedef struct subjects {
  subject s[SUBJECTS];
  pt_fn *bases[BASES];
} subjects;

static void make_subjects(subjects *all) {
  const size_t sizes[4] = {5, 20, 1, 9};
  /* the top-k's: one segment all taken, one selected through its bound (40 >= 8 k) */
  const size_t top_sizes[4] = {5, 40, 1, 9}, top_ks[4] = {2, 3, 1, 9};
  /* the permutation matrix's: 62 cells, within the tests' 64 outputs */
  const size_t perm_sizes[3] = {5, 1, 6};
  pt_fn *seg, *rank, *top, *rank_seg, *perm_seg, *box = black_box(&half_square3);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 4, &seg), PT_OK);
  cr_assert_eq(pt_fn_ranking_segments(sizes, 4, &rank_seg), PT_OK);
  cr_assert_eq(pt_fn_top_k_segments(top_sizes, top_ks, 4, &top), PT_OK);
  cr_assert_eq(pt_fn_ranking(11, &rank), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix_segments(perm_sizes, 3, &perm_seg), PT_OK);
  const struct {
    const char *name;
    pt_fn *f;
    pt_noise noise;
    pt_baseline baseline;
    int block_diagonal, independent, antithetic;
    size_t m; /* enough work for every path to split its groups among threads */
  } made[SUBJECTS] = {
      {"segments loo", seg, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 0, 0, 2100},
      {"segments block-diagonal", seg, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 0, 0, 2100},
      {"segments block-diagonal loo", seg, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 0, 2100},
      {"segments independent", seg, PT_NOISE_GUMBEL, PT_BASELINE_NONE, 0, 1, 0, 2100},
      {"segments all", seg, PT_NOISE_NORMAL, PT_BASELINE_LEAVE_ONE_OUT, 1, 1, 0, 2100},
      {"ranking loo independent", rank, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 1, 0, 2100},
      {"top-k block-diagonal loo", top, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 0, 2100},
      {"top-k block-diagonal independent", top, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 1, 0, 2100},
      {"box loo", box, PT_NOISE_NORMAL, PT_BASELINE_LEAVE_ONE_OUT, 0, 0, 0, 17000},
      {"box loo independent", box, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 1, 0, 17000},
      {"segments pairs loo", seg, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 0, 1, 2100},
      {"segments block-diagonal pairs loo", seg, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1, 0,
       1, 2100},
      {"ranking pairs loo", rank, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 0, 1, 2100},
      {"top-k block-diagonal pairs loo", top, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 1,
       2100},
      {"box pairs loo", box, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 0, 0, 1, 17000},
      {"ranking segments block-diagonal loo", rank_seg, PT_NOISE_GUMBEL,
       PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 0, 2100},
      {"ranking segments block-diagonal pairs", rank_seg, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 0,
       1, 2100},
      {"permutation segments block-diagonal loo", perm_seg, PT_NOISE_GUMBEL,
       PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 0, 2100},
      {"permutation segments block-diagonal pairs", perm_seg, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1,
       1, 1, 2100},
  };
  for (size_t i = 0; i < SUBJECTS; i++) {
    subject *s = &all->s[i];
    s->name = made[i].name;
    s->base = made[i].f;
    s->o = pt_ref_score_options(made[i].m, 0.5f, made[i].noise, made[i].baseline);
    s->o.block_diagonal = made[i].block_diagonal;
    s->o.independent_jacobian = made[i].independent;
    s->o.antithetic = made[i].antithetic;
    s->f = pt_ref_perturbed(made[i].f, &s->o);
  }
  all->bases[0] = seg;
  all->bases[1] = rank;
  all->bases[2] = top;
  all->bases[3] = box;
  all->bases[4] = rank_seg;
  all->bases[5] = perm_seg;
}

static void free_subjects(subjects *all) {
  for (size_t i = 0; i < SUBJECTS; i++) pt_fn_free(all->s[i].f);
  for (size_t i = 0; i < BASES; i++) pt_fn_free(all->bases[i]);
}

/* The inputs of an op of s: x, and the v of the vjp or jvp. */
static const float *subject_v(const subject *s, pt_op op, float *y_bar, float *x_dot) {
  point_of(y_bar, pt_fn_n_out(s->f), 22);
  point_of(x_dot, pt_fn_n_in(s->f), 23);
  return op == PT_OP_VJP ? y_bar : op == PT_OP_JVP ? x_dot : NULL;
}

/* The one call of op into out; its output's floats. */
static size_t one_call(const subject *s, pt_op op, pt_key key, const float *x, const float *v,
                       float *out) {
  const size_t n_in = pt_fn_n_in(s->f), n_out = pt_fn_n_out(s->f);
  switch (op) {
    case PT_OP_EVAL: cr_assert_eq(pt_fn_eval(s->f, key, x, out), PT_OK); return n_out;
    case PT_OP_VJP: cr_assert_eq(pt_fn_vjp(s->f, key, x, v, out), PT_OK); return n_in;
    case PT_OP_JVP: cr_assert_eq(pt_fn_jvp(s->f, key, x, v, out), PT_OK); return n_out;
    case PT_OP_JACOBIAN: cr_assert_eq(pt_fn_jacobian(s->f, key, x, out), PT_OK); return n_out * n_in;
    default: cr_assert_eq(pt_fn_hessian(s->f, key, x, out), PT_OK); return n_in * n_in;
  }
}

static int has_op(const subject *s, pt_op op) { return op != PT_OP_HESSIAN || pt_fn_n_out(s->f) == 1; }

/* Shards at group boundaries (cut after group g when bit g of `cuts` is set), merged in the
   order of `order` as objects, then saved, merged as bytes in reverse and loaded: both finish
   to the one call's bits.  With independent_jacobian a derivative's shards cover the samples
   of pt_key_fold_in(K, 1): they finish to the bits of the function without the option called
   with that key. */
Test(options, shards_with_each_option_merge_to_the_one_call) {
  subjects all;
  make_subjects(&all);
  subject *s = all.s;
  const pt_key key = pt_key_make(123);
  static float want[64 * 64], got[64 * 64], plain_out[64 * 64];
  for (size_t k = 0; k < SUBJECTS; k++)
    for (int op = 0; op <= PT_OP_HESSIAN; op++) {
      if (!has_op(&s[k], (pt_op)op)) continue;
      const uint64_t group = pt_fn_sample_group(s[k].f), m = s[k].o.num_samples;
      const size_t groups = (size_t)((m + group - 1) / group);
      float x[64], y_bar[64], x_dot[64];
      point_of(x, pt_fn_n_in(s[k].f), 21);
      const float *v = subject_v(&s[k], (pt_op)op, y_bar, x_dot);
      const size_t n = one_call(&s[k], (pt_op)op, key, x, v, want);
      for (unsigned cuts = 0; cuts < 4; cuts++) {
        const unsigned pattern = cuts == 0 ? 0 : cuts == 1 ? 0x15 : cuts == 2 ? 0x0a : 0x3f;
        pt_partial *parts[8];
        size_t count = 0;
        uint64_t m0 = 0;
        for (size_t g = 0; g < groups; g++)
          if (g + 1 == groups || (g < 8 && (pattern >> g & 1))) {
            const uint64_t m1 = g + 1 == groups ? m : (g + 1) * group;
            cr_assert_eq(pt_fn_partial(s[k].f, (pt_op)op, key, x, v, m0, m1, &parts[count]),
                         PT_OK);
            count++;
            m0 = m1;
          }
        /* objects, merged last to first */
        pt_partial *all;
        cr_assert_eq(pt_fn_partial(s[k].f, (pt_op)op, key, x, v, 0, 0, &all), PT_OK);
        for (size_t i = count; i-- > 0;)
          cr_assert_eq(pt_partial_merge(all, parts[i]), PT_OK, "%s op %d: merge %zu", s[k].name, op, i);
        cr_assert_eq(pt_partial_finish(all, got), PT_OK);
        cr_assert(same_bits(got, want, n), "%s op %d, cuts %#x: merged objects", s[k].name, op,
                  pattern);
        /* bytes, every partial the same size, merged first to last into the last */
        const size_t size = pt_partial_size(all);
        unsigned char *bytes = malloc(count * size);
        cr_assert(bytes);
        for (size_t i = 0; i < count; i++) {
          cr_assert_eq(pt_partial_size(parts[i]), size, "%s: a partial's size is its range's",
                       s[k].name);
          cr_assert_eq(pt_partial_save(parts[i], bytes + i * size, size), PT_OK);
        }
        for (size_t i = 0; i + 1 < count; i++)
          cr_assert_eq(pt_partial_merge_bytes(bytes + i * size, bytes + (count - 1) * size, size),
                       PT_OK);
        pt_partial *loaded;
        cr_assert_eq(pt_partial_load(bytes + (count - 1) * size, size, &loaded), PT_OK);
        cr_assert_eq(pt_partial_finish(loaded, got), PT_OK);
        cr_assert(same_bits(got, want, n), "%s op %d, cuts %#x: merged bytes", s[k].name, op,
                  pattern);
        pt_partial_free(loaded);
        free(bytes);
        pt_partial_free(all);
        for (size_t i = 0; i < count; i++) pt_partial_free(parts[i]);
      }
      if (s[k].o.independent_jacobian && op != PT_OP_EVAL) {
        subject plain = s[k];
        plain.o.independent_jacobian = 0;
        plain.f = pt_ref_perturbed(plain.base, &plain.o);
        one_call(&plain, (pt_op)op, pt_key_fold_in(key, 1), x, v, plain_out);
        cr_assert(same_bits(plain_out, want, n),
                  "%s op %d: the derivative is the plain function's at pt_key_fold_in(K, 1)",
                  s[k].name, op);
        pt_fn_free(plain.f);
      }
    }
  free_subjects(&all);
}

/* Every op of every subject on 1, 2 and 5 threads and every supported ISA: the bits of one
   thread on the first ISA (M = 2100 samples: enough work for every path to split its groups
   among threads). */
Test(options, every_thread_count_and_isa_gives_the_same_bits) {
  subjects all;
  make_subjects(&all);
  subject *s = all.s;
  const pt_key key = pt_key_make(321);
  const pt_isa before = pt_isa_active();
  const size_t before_threads = pt_get_num_threads();
  static float want[64 * 64], got[64 * 64];
  const size_t threads[3] = {1, 2, 5};
  for (size_t k = 0; k < SUBJECTS; k++)
    for (int op = 0; op <= PT_OP_HESSIAN; op++) {
      if (!has_op(&s[k], (pt_op)op)) continue;
      float x[64], y_bar[64], x_dot[64];
      point_of(x, pt_fn_n_in(s[k].f), 31);
      const float *v = subject_v(&s[k], (pt_op)op, y_bar, x_dot);
      int first = 1;
      size_t n = 0;
      for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
        if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
        for (size_t t = 0; t < 3; t++) {
          cr_assert_eq(pt_set_num_threads(threads[t]), PT_OK);
          n = one_call(&s[k], (pt_op)op, key, x, v, first ? want : got);
          if (!first)
            cr_assert(same_bits(got, want, n), "%s op %d on %s with %zu threads", s[k].name, op,
                      pt_isa_name((pt_isa)isa), threads[t]);
          first = 0;
        }
      }
    }
  pt_set_num_threads(before_threads);
  pt_isa_select(before);
  free_subjects(&all);
}

/* ---- refusals --------------------------------------------------------------------------------- */

static int ident(void *user, size_t batch, const float *x, float *y) {
  memcpy(y, x, batch * *(const size_t *)user * sizeof *y);
  return 0;
}

Test(options, options_that_do_not_apply_are_refused_with_nothing_written) {
  static size_t d = 9;
  const size_t sizes[2] = {4, 5}, ks[2] = {1, 2};
  pt_fn *argmax, *segs, *top, *rank, *rank_segs, *sort, *box;
  cr_assert_eq(pt_fn_argmax_one_hot(9, &argmax), PT_OK);
  cr_assert_eq(pt_fn_ranking_segments(sizes, 2, &rank_segs), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 2, &segs), PT_OK);
  cr_assert_eq(pt_fn_top_k_segments(sizes, ks, 2, &top), PT_OK);
  cr_assert_eq(pt_fn_ranking(9, &rank), PT_OK);
  cr_assert_eq(pt_fn_sort(9, &sort), PT_OK);
  cr_assert_eq(pt_fn_from_callback(9, 9, ident, &d, &box), PT_OK);
  pt_fn *const sentinel = argmax;
  const struct {
    pt_fn *f;
    pt_baseline baseline;
    size_t m;
    int block_diagonal;
    pt_gradient gradient;
    pt_status want;
    const char *why;
  } bad[] = {
      {argmax, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, PT_GRADIENT_SCORE, PT_EINVAL, "one sample"},
      {box, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, PT_GRADIENT_SCORE, PT_EINVAL, "one sample"},
      {sort, PT_BASELINE_LEAVE_ONE_OUT, 100, 0, PT_GRADIENT_AUTO, PT_EINVAL, "pathwise"},
      {argmax, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_SCORE, PT_EINVAL, "one segment"},
      {rank, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_SCORE, PT_EINVAL, "no segments"},
      {rank_segs, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_PATHWISE, PT_EINVAL,
       "ranking segments: no own derivative"},
      {box, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_SCORE, PT_EINVAL, "a black box"},
      {sort, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_AUTO, PT_EINVAL, "pathwise"},
      {top, PT_BASELINE_F_X, 100, 1, PT_GRADIENT_PATHWISE, PT_EINVAL, "top-k: no own derivative"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pt_perturb_options o = pt_ref_score_options(bad[i].m, 0.5f, PT_NOISE_GUMBEL, bad[i].baseline);
    o.block_diagonal = bad[i].block_diagonal;
    o.gradient = bad[i].gradient;
    pt_fn *out = sentinel;
    cr_expect_eq(pt_make_perturbed_fun_ex(bad[i].f, &o, &out), bad[i].want, "case %zu: %s", i,
                 bad[i].why);
    cr_expect_eq(out, sentinel, "case %zu: nothing written", i);
  }
  /* and the applicable ones are accepted: two samples, block_diagonal of two segments */
  pt_perturb_options o = pt_ref_score_options(2, 0.5f, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT);
  o.block_diagonal = 1;
  o.independent_jacobian = 1;
  pt_fn *p = pt_ref_perturbed(segs, &o);
  /* a bad point of an option's function is refused with nothing written */
  float x[9] = {0, 1, 2, 3, NAN, 5, 6, 7, 8}, out[81], before[81];
  for (size_t i = 0; i < 81; i++) out[i] = before[i] = -7.0f;
  cr_expect_eq(pt_fn_jacobian(p, pt_key_make(1), x, out), PT_EINVAL);
  cr_expect_eq(pt_fn_vjp(p, pt_key_make(1), x, x, out), PT_EINVAL);
  cr_expect(same_bits(out, before, 81), "nothing written");
  pt_fn_free(p);
  pt_fn_free(argmax);
  pt_fn_free(segs);
  pt_fn_free(top);
  pt_fn_free(rank);
  pt_fn_free(rank_segs);
  pt_fn_free(sort);
  pt_fn_free(box);
}

/* FNV-1a, as the partial's trailer (pt_fn_partial(3)) */
static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* The loader checks a partial's cells against the options it names: a leave-one-out partial
   relabelled as another baseline, its checksum made right, is refused; relabelled back, it
   loads and finishes to the one call. */
Test(options, a_partial_is_refused_when_its_cells_are_not_its_options) {
  pt_fn *f;
  const size_t sizes[2] = {4, 5};
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 2, &f), PT_OK);
  pt_perturb_options o = pt_ref_score_options(300, 0.5f, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT);
  o.block_diagonal = 1;
  pt_fn *p = pt_ref_perturbed(f, &o);
  float x[9], y_bar[9], want[9], got[9];
  point_of(x, 9, 1);
  point_of(y_bar, 9, 2);
  pt_partial *part, *loaded;
  cr_assert_eq(pt_fn_partial(p, PT_OP_VJP, pt_key_make(4), x, y_bar, 0, 300, &part), PT_OK);
  const size_t size = pt_partial_size(part);
  unsigned char *bytes = malloc(size);
  cr_assert(bytes);
  cr_assert_eq(pt_partial_save(part, bytes, size), PT_OK);
  /* the options word: 4 bytes at offset 8 + 3 * 4 (pt_fn_partial(3)) */
  const uint32_t options_word = bytes[20] | (uint32_t)bytes[21] << 8;
  const uint32_t relabelled[3] = {options_word & ~3u, (options_word & ~3u) | 1,
                                  options_word & ~(1u << 5)};
  for (int r = 0; r < 3; r++) {
    bytes[20] = (unsigned char)relabelled[r];
    bytes[21] = (unsigned char)(relabelled[r] >> 8);
    const uint64_t sum = fnv1a(bytes, size - 8);
    for (int b = 0; b < 8; b++) bytes[size - 8 + b] = (unsigned char)(sum >> (8 * b));
    loaded = NULL;
    cr_expect_eq(pt_partial_load(bytes, size, &loaded), PT_EINVAL, "options word %#x",
                 relabelled[r]);
    cr_expect_null(loaded);
  }
  bytes[20] = (unsigned char)options_word;
  bytes[21] = (unsigned char)(options_word >> 8);
  const uint64_t sum = fnv1a(bytes, size - 8);
  for (int b = 0; b < 8; b++) bytes[size - 8 + b] = (unsigned char)(sum >> (8 * b));
  cr_assert_eq(pt_partial_load(bytes, size, &loaded), PT_OK);
  cr_assert_eq(pt_partial_finish(loaded, got), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, pt_key_make(4), x, y_bar, want), PT_OK);
  cr_expect(same_bits(got, want, 9));
  pt_partial_free(loaded);
  pt_partial_free(part);
  free(bytes);
  pt_fn_free(p);
  pt_fn_free(f);
}

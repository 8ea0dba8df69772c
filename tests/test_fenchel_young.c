/* SPDX-License-Identifier: MIT */
/* pt_fenchel_young_loss against its closed forms (Gumbel argmax: F_eps = sigma LSE(theta/sigma)
   + sigma gamma, gradient softmax(theta/sigma) - y_true) at 5 standard errors with fixed keys,
   for one segment and several; a user's solver against the built-in it imitates; the exact
   invariants of top-k and ranking; batches against their rows; and every bad input refused
   with nothing written. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "estimator.h" /* pt_ref_argmax_rows */
#include "perturb.h"

#define EULER_GAMMA 0.57721566490153286
#define PI 3.14159265358979324
#define M 4000
#define SIGMA 0.5f
#define D 6

static const float theta[D] = {0.3f, -0.7f, 1.1f, 0.2f, 0.9f, -1.4f};
/* a point of the simplex, not a vertex: every entry of <theta, y_true> counts */
static const float y_true[D] = {0.25f, 0, 0.5f, 0, 0.125f, 0.125f};

/* x = (theta, y_true) */
static void loss_input(float *x, const float *th, const float *yt, size_t n) {
  memcpy(x, th, n * sizeof *x);
  memcpy(x + n, yt, n * sizeof *x);
}

/* softmax(theta[o, o+z) / sigma) into p, and sigma LSE + sigma gamma as the return */
static double smoothed_max(const float *th, size_t z, double sigma, double *p) {
  double top = th[0];
  for (size_t i = 1; i < z; i++) top = fmax(top, th[i]);
  double s = exp((th[0] - top) / sigma); /* a row has at least one entry */
  for (size_t i = 1; i < z; i++) s += exp((th[i] - top) / sigma);
  for (size_t i = 0; i < z; i++) p[i] = exp((th[i] - top) / sigma) / s;
  return top + sigma * log(s) + sigma * EULER_GAMMA;
}

static pt_perturb_options options(void) {
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = M;
  o.sigma = SIGMA;
  return o;
}

/* The loss of `opt` on (theta, y_true) against the closed form of the Gumbel argmax over
   segments of the given sizes: the value within 5 standard errors (the max of Gumbel-perturbed
   inputs is Gumbel with scale sigma: variance sigma^2 pi^2 / 6 per segment), each gradient
   entry within 5 of its own (p (1 - p) / M: the one-hot's mean); the y_true half exactly -theta. */
static void expect_closed_form(pt_fn *opt, const size_t *sizes, size_t count, pt_key key) {
  const pt_perturb_options o = options();
  pt_fn *loss;
  cr_assert_eq(pt_fenchel_young_loss(opt, &o, &loss), PT_OK);
  cr_assert_eq(pt_fn_n_in(loss), 2 * D);
  cr_assert_eq(pt_fn_n_out(loss), 1);
  float x[2 * D], value, grad[2 * D];
  loss_input(x, theta, y_true, D);
  cr_assert_eq(pt_fn_value_and_grad(loss, key, x, &value, grad), PT_OK);
  double want = 0.0, p[D] = {0}, var = 0.0;
  for (size_t s = 0, at = 0; s < count; at += sizes[s], s++) {
    want += smoothed_max(theta + at, sizes[s], SIGMA, p + at);
    var += (double)SIGMA * SIGMA * PI * PI / 6.0 / M;
  }
  for (size_t i = 0; i < D; i++) want -= (double)theta[i] * y_true[i];
  cr_expect(fabs(value - want) <= 5.0 * sqrt(var) + 1e-6, "value %.6f, closed form %.6f (se %.2g)",
            (double)value, want, sqrt(var));
  for (size_t i = 0; i < D; i++) {
    const double g = p[i] - y_true[i], se = sqrt(p[i] * (1.0 - p[i]) / M);
    cr_expect(fabs(grad[i] - g) <= 5.0 * se + 1e-6, "grad[%zu] %.5f, softmax - y_true %.5f (se %.2g)",
              i, (double)grad[i], g, se);
    cr_expect_eq(grad[D + i], -theta[i], "the y_true half is -theta");
  }
  /* the value alone is the value_and_grad's (the same samples) */
  float alone;
  cr_assert_eq(pt_fn_eval(loss, key, x, &alone), PT_OK);
  cr_expect_eq(alone, value);
  pt_fn_free(loss);
}

Test(fenchel_young, gumbel_argmax_has_the_closed_form) {
  pt_fn *opt;
  const size_t d = D;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &opt), PT_OK);
  for (uint64_t seed = 1; seed <= 3; seed++) expect_closed_form(opt, &d, 1, pt_key_make(seed));
  pt_fn_free(opt);
}

Test(fenchel_young, segments_sum_their_closed_forms) {
  const size_t sizes[3] = {2, 3, 1};
  pt_fn *opt;
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 3, &opt), PT_OK);
  expect_closed_form(opt, sizes, 3, pt_key_make(11));
  pt_fn_free(opt);
}

Test(fenchel_young, a_solver_callback_has_the_closed_form_too) {
  static size_t n = D;
  const size_t d = D;
  pt_fn *opt;
  cr_assert_eq(pt_fn_from_callback(D, D, pt_ref_argmax_rows, &n, &opt), PT_OK);
  expect_closed_form(opt, &d, 1, pt_key_make(5));
  pt_fn_free(opt);
}

/* A ranking solver: the ranks as pt_rank_rows gives them, so the same samples give the same
   bits as the built-in ranking. */
static int ranking_solver(void *user, size_t batch, const float *th, float *y) {
  const size_t n = *(const size_t *)user;
  int32_t rank[64];
  for (size_t r = 0; r < batch; r++) {
    if (pt_rank_rows(th + r * n, 1, n, n, rank, n) != PT_OK) return 1;
    for (size_t i = 0; i < n; i++) y[r * n + i] = (float)rank[i];
  }
  return 0;
}

Test(fenchel_young, ranking_matches_a_ranking_solver_bit_for_bit) {
  static size_t n = D;
  pt_fn *builtin, *solver, *a, *b;
  cr_assert_eq(pt_fn_ranking(D, &builtin), PT_OK);
  cr_assert_eq(pt_fn_from_callback(D, D, ranking_solver, &n, &solver), PT_OK);
  pt_perturb_options o = options();
  o.num_samples = 300;
  o.noise = PT_NOISE_NORMAL;
  cr_assert_eq(pt_fenchel_young_loss(builtin, &o, &a), PT_OK);
  cr_assert_eq(pt_fenchel_young_loss(solver, &o, &b), PT_OK);
  const float ranks[D] = {2, 0, 5, 1, 4, 3};
  float x[2 * D], va, vb, ga[2 * D], gb[2 * D];
  loss_input(x, theta, ranks, D);
  cr_assert_eq(pt_fn_value_and_grad(a, pt_key_make(3), x, &va, ga), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(b, pt_key_make(3), x, &vb, gb), PT_OK);
  cr_expect_eq(va, vb);
  cr_expect(memcmp(ga, gb, sizeof ga) == 0);
  /* the ranks of every sample are a permutation of 0..d-1: the mean's entries sum to
     d (d - 1) / 2, up to the rounding of d floats */
  double sum = 0.0;
  for (size_t i = 0; i < D; i++) sum += (double)ga[i] + ranks[i];
  cr_expect(fabs(sum - D * (D - 1) / 2.0) <= 1e-5 * D * D, "sum of E[rank] %.7f", sum);
  pt_fn_free(a);
  pt_fn_free(b);
  pt_fn_free(builtin);
  pt_fn_free(solver);
}

Test(fenchel_young, top_k_mean_sums_to_k) {
  pt_fn *opt, *loss;
  cr_assert_eq(pt_fn_top_k(D, 2, &opt), PT_OK);
  pt_perturb_options o = options();
  o.num_samples = 500;
  cr_assert_eq(pt_fenchel_young_loss(opt, &o, &loss), PT_OK);
  const float target[D] = {0, 0, 1, 0, 1, 0};
  float x[2 * D], value, grad[2 * D];
  loss_input(x, theta, target, D);
  cr_assert_eq(pt_fn_value_and_grad(loss, pt_key_make(9), x, &value, grad), PT_OK);
  double sum = 0.0;
  for (size_t i = 0; i < D; i++) sum += (double)grad[i] + target[i];
  cr_expect(fabs(sum - 2.0) <= 1e-6 * D, "sum of E[y*] %.8f", sum);
  /* the target is y*(theta) itself: the loss is then at least 0 in expectation and small */
  cr_expect(isfinite(value));
  pt_fn_free(loss);
  pt_fn_free(opt);
}

Test(fenchel_young, a_batch_equals_its_rows) {
  pt_fn *opt, *loss;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &opt), PT_OK);
  pt_perturb_options o = options();
  o.num_samples = 256;
  cr_assert_eq(pt_fenchel_young_loss(opt, &o, &loss), PT_OK);
  enum { B = 3 };
  float x[B][2 * D], values[B], grads[B][2 * D];
  for (size_t b = 0; b < B; b++) {
    float th[D];
    for (size_t i = 0; i < D; i++) th[i] = theta[i] * (float)(b + 1) - 0.1f * (float)i;
    loss_input(x[b], th, y_true, D);
  }
  const pt_key key = pt_key_make(21);
  cr_assert_eq(pt_fn_value_and_grad_batch(loss, key, B, &x[0][0], values, &grads[0][0]), PT_OK);
  for (size_t b = 0; b < B; b++) {
    float v, g[2 * D];
    cr_assert_eq(pt_fn_value_and_grad(loss, pt_key_fold_in(key, b), x[b], &v, g), PT_OK);
    cr_expect_eq(v, values[b]);
    cr_expect(memcmp(g, grads[b], sizeof g) == 0, "row %zu", b);
  }
  pt_fn_free(loss);
  pt_fn_free(opt);
}

static int shrink(void *user, size_t batch, const float *th, float *y) {
  (void)user;
  for (size_t r = 0; r < batch; r++) y[r] = th[2 * r];
  return 0;
}

Test(fenchel_young, bad_inputs_are_refused_and_write_nothing) {
  pt_fn *argmax, *mx, *sorter, *perm, *narrow, *perturbed, *loss = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &argmax), PT_OK);
  cr_assert_eq(pt_fn_max(D, &mx), PT_OK);
  cr_assert_eq(pt_fn_sort(D, &sorter), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix(D, &perm), PT_OK);
  cr_assert_eq(pt_fn_from_callback(2, 1, shrink, NULL, &narrow), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(argmax, 10, 0.1f, PT_NOISE_GUMBEL, 1, &perturbed), PT_OK);
  pt_fn *const not_optimizers[] = {mx, sorter, perm, narrow, perturbed};
  for (size_t i = 0; i < 5; i++) {
    cr_expect_eq(pt_fenchel_young_loss(not_optimizers[i], NULL, &loss), PT_EINVAL, "%zu", i);
    cr_expect_null(loss);
  }
  cr_expect_eq(pt_fenchel_young_loss(NULL, NULL, &loss), PT_EINVAL);
  cr_expect_eq(pt_fenchel_young_loss(argmax, NULL, NULL), PT_EINVAL);
  pt_perturb_options o = pt_perturb_defaults();
  o.size = sizeof o - 4;
  cr_expect_eq(pt_fenchel_young_loss(argmax, &o, &loss), PT_EINVAL);
  o = pt_perturb_defaults();
  o.sigma = -1.0f;
  cr_expect_eq(pt_fenchel_young_loss(argmax, &o, &loss), PT_EINVAL);
  o = pt_perturb_defaults();
  o.block_diagonal = 1; /* the loss has no cross-segment terms to drop */
  cr_expect_eq(pt_fenchel_young_loss(argmax, &o, &loss), PT_EINVAL);
  cr_expect_null(loss);

  /* non-finite theta or y_true: nothing written */
  cr_assert_eq(pt_fenchel_young_loss(argmax, NULL, &loss), PT_OK);
  const float poison[3] = {NAN, INFINITY, -INFINITY};
  for (size_t bad = 0; bad < 2 * D; bad += 5)
    for (size_t k = 0; k < 3; k++) {
      float x[2 * D], value = 42.0f, grad[2 * D], before[2 * D];
      loss_input(x, theta, y_true, D);
      x[bad] = poison[k];
      for (size_t i = 0; i < 2 * D; i++) grad[i] = before[i] = (float)i;
      cr_expect_eq(pt_fn_value_and_grad(loss, pt_key_make(1), x, &value, grad), PT_EINVAL);
      cr_expect_eq(pt_fn_eval(loss, pt_key_make(1), x, &value), PT_EINVAL);
      cr_expect_eq(value, 42.0f);
      cr_expect(memcmp(grad, before, sizeof grad) == 0);
    }
  pt_fn_free(loss);
  pt_fn_free(argmax);
  pt_fn_free(mx);
  pt_fn_free(sorter);
  pt_fn_free(perm);
  pt_fn_free(narrow);
  pt_fn_free(perturbed);
}

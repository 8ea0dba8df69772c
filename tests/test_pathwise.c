/* SPDX-License-Identifier: MIT */
/* The pathwise gradient (pt_make_perturbed_fun_ex(3), PT_GRADIENT_PATHWISE) against independent
   truth.  As in test_perturbed.c, the library runs beside the plain reference of
   tests/estimator.c on the same key: the library must agree with the reference on the same
   samples, and the reference with the closed form within 5 standard errors of its own
   per-sample terms.  Keys are fixed: every run is the same run. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimator.h"
#include "perturb.h"

#define EULER_GAMMA 0.57721566490153286
#define PI 3.14159265358979324

/* The mean and variance of one noise entry. */
static double noise_mean(pt_noise noise) { return noise == PT_NOISE_GUMBEL ? EULER_GAMMA : 0.0; }
static double noise_var(pt_noise noise) { return noise == PT_NOISE_GUMBEL ? PI * PI / 6.0 : 1.0; }

static pt_fn *perturbed_with(const pt_fn *f, size_t m, float sigma, pt_noise noise,
                             pt_gradient gradient) {
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = m;
  o.sigma = sigma;
  o.noise = noise;
  o.gradient = gradient;
  pt_fn *p = NULL;
  cr_assert_eq(pt_make_perturbed_fun_ex(f, &o, &p), PT_OK);
  return p;
}

/* The library against the reference on the same samples: within `rel` of the entry plus `abs`. */
static void expect_near(const float *got, const double *ref, size_t n, double rel, double abs,
                        const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(got[i] - ref[i]) <= rel * fabs(ref[i]) + abs,
              "%s[%zu]: library %.9g, reference %.9g", what, i, (double)got[i], ref[i]);
}

/* The reference against the closed form: within 5 standard errors (and a rounding floor). */
static void expect_truth(const double *mean, const double *se, const double *truth, size_t n,
                         const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(mean[i] - truth[i]) <= 5.0 * se[i] + 1e-9,
              "%s[%zu]: estimate %.6g +- %.2g, closed form %.6g (%.1f standard errors)", what, i,
              mean[i], se[i], truth[i], fabs(mean[i] - truth[i]) / se[i]);
}

/* ---- the generic path: a function with a gradient of its own ------------------------------ */

/* y_i = x_i^2 / 2, J = diag(x): pathwise, E[x + sigma Z] on the diagonal */
enum { HD = 6 };

static void half_squares_point(const void *ctx, const float *x, float *y) {
  (void)ctx;
  for (size_t i = 0; i < HD; i++) y[i] = 0.5f * x[i] * x[i];
}

static void half_squares_jacobian(const void *ctx, const float *x, float *jac) {
  (void)ctx;
  for (size_t j = 0; j < HD; j++)
    for (size_t i = 0; i < HD; i++) jac[j * HD + i] = i == j ? x[i] : 0.0f;
}

static int half_squares_eval(void *user, size_t batch, const float *x, float *y) {
  for (size_t b = 0; b < batch; b++) half_squares_point(user, x + b * HD, y + b * HD);
  return 0;
}

static int half_squares_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  for (size_t i = 0; i < HD; i++) x_bar[i] = y_bar[i] * x[i];
  return 0;
}

static pt_fn *half_squares(unsigned flags) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(HD, HD, half_squares_eval, half_squares_vjp, NULL, NULL,
                                      flags, &f), PT_OK);
  return f;
}

static const float hx[HD] = {0.5f, -1.25f, 2.0f, 0.0f, -0.375f, 3.5f};

/* value E[(x + s Z)^2 / 2] = ((x + s mu)^2 + s^2 var) / 2, Jacobian diag(x + s mu); the
   library's vjp, jvp and Jacobian are the reference's mean Jacobian applied to y_bar, x_dot. */
static void check_half_squares(pt_noise noise, unsigned flags) {
  const size_t m = 20000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(11);
  pt_fn *f = half_squares(flags), *p = perturbed_with(f, m, sigma, noise, PT_GRADIENT_PATHWISE);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_pathwise_run(half_squares_point, half_squares_jacobian, NULL, HD, HD, m,
                                   sigma, noise, key, hx, &ref), 0);
  double value[HD], jac[HD * HD] = {0}, ref_vjp[HD], ref_jvp[HD];
  const double mu = noise_mean(noise), var = noise_var(noise), s = sigma;
  for (size_t i = 0; i < HD; i++) {
    const double c = hx[i] + s * mu;
    value[i] = 0.5 * (c * c + s * s * var);
    jac[i * HD + i] = c;
  }
  expect_truth(ref.value, ref.value_se, value, HD, "value");
  expect_truth(ref.jac, ref.jac_se, jac, HD * HD, "jacobian");
  float y_bar[HD], x_dot[HD], y[HD], x_bar[HD], y_dot[HD], got_jac[HD * HD];
  for (size_t i = 0; i < HD; i++) {
    y_bar[i] = 0.25f * (float)i - 0.5f;
    x_dot[i] = 1.0f - 0.125f * (float)i;
    ref_vjp[i] = ref.jac[i * HD + i] * y_bar[i];
    ref_jvp[i] = ref.jac[i * HD + i] * x_dot[i];
  }
  cr_assert_eq(pt_fn_eval(p, key, hx, y), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, key, hx, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(p, key, hx, x_dot, y_dot), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, hx, got_jac), PT_OK);
  expect_near(y, ref.value, HD, 1e-6, 1e-7, "value");
  expect_near(x_bar, ref_vjp, HD, 1e-6, 1e-7, "vjp");
  expect_near(y_dot, ref_jvp, HD, 1e-6, 1e-7, "jvp");
  expect_near(got_jac, ref.jac, HD * HD, 1e-6, 1e-7, "jacobian");
  /* no Hessian: pathwise derivatives are first derivatives only */
  float hess[HD * HD];
  cr_expect_eq(pt_fn_hessian(p, key, hx, hess), PT_EUNSUPPORTED);
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(pathwise, half_squares_gumbel) { check_half_squares(PT_NOISE_GUMBEL, PT_CALLBACK_THREAD_SAFE); }
Test(pathwise, half_squares_normal) { check_half_squares(PT_NOISE_NORMAL, PT_CALLBACK_THREAD_SAFE); }
Test(pathwise, half_squares_on_the_calling_thread) { check_half_squares(PT_NOISE_NORMAL, 0); }

/* The value is the same mean whichever gradient a function takes, and a derivative call's
   value (value_and_grad) is the value's bits. */
static int half_square_sum_eval(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) {
    float s = 0.0f;
    for (size_t i = 0; i < HD; i++) s += 0.5f * x[b * HD + i] * x[b * HD + i];
    y[b] = s;
  }
  return 0;
}

static int half_square_sum_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  for (size_t i = 0; i < HD; i++) x_bar[i] = y_bar[0] * x[i];
  return 0;
}

Test(pathwise, the_value_is_the_score_function_s) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_custom_gradient(HD, 1, half_square_sum_eval, half_square_sum_vjp, NULL, &f),
               PT_OK);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    pt_fn *pw = perturbed_with(f, 777, 0.3f, (pt_noise)noise, PT_GRADIENT_PATHWISE);
    pt_fn *sf = perturbed_with(f, 777, 0.3f, (pt_noise)noise, PT_GRADIENT_SCORE);
    const pt_key key = pt_key_make(3);
    float a, b, c, grad[HD], want[HD];
    cr_assert_eq(pt_fn_eval(pw, key, hx, &a), PT_OK);
    cr_assert_eq(pt_fn_eval(sf, key, hx, &b), PT_OK);
    cr_assert_eq(pt_fn_value_and_grad(pw, key, hx, &c, grad), PT_OK);
    cr_expect(memcmp(&a, &b, sizeof a) == 0 && memcmp(&a, &c, sizeof a) == 0,
              "values %a, %a, %a", (double)a, (double)b, (double)c);
    const float one = 1.0f;
    cr_assert_eq(pt_fn_vjp(pw, key, hx, &one, want), PT_OK);
    cr_expect(memcmp(grad, want, sizeof grad) == 0, "value_and_grad's gradient is the vjp's");
    pt_fn_free(pw);
    pt_fn_free(sf);
  }
  pt_fn_free(f);
}

/* A function with random parts of its own: sample m runs f's derivatives with f's key of row m
   of a batch, pt_key_fold_in(pt_key_fold_in(K, 0), m), as the score function's samples do
   (perturb.h, "Keys"); so the pathwise vjp is the mean of pt_fn_vjp_batch of f on the
   perturbed inputs, materialised here from pt_noise_fill. */
Test(pathwise, random_parts_are_keyed_as_rows_of_a_batch) {
  enum { M = 300 };
  pt_fn *g = half_squares(PT_CALLBACK_THREAD_SAFE), *inner = NULL, *f = NULL;
  cr_assert_eq(pt_make_perturbed_fun(g, 50, 0.2f, PT_NOISE_NORMAL, 0, &inner), PT_OK);
  pt_fn *outer = half_squares(0);
  cr_assert_eq(pt_fn_compose(outer, inner, &f), PT_OK);
  pt_fn *p = perturbed_with(f, M, 0.4f, PT_NOISE_GUMBEL, PT_GRADIENT_PATHWISE);
  const pt_key key = pt_key_make(8);
  float *z = malloc(M * HD * sizeof *z), *xs = malloc(M * HD * sizeof *xs);
  float *y_bars = malloc(M * HD * sizeof *y_bars), *x_bars = malloc(M * HD * sizeof *x_bars);
  float y_bar[HD], got[HD];
  for (size_t i = 0; i < HD; i++) y_bar[i] = (float)i - 2.0f;
  cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, key, 0, z, M * HD), PT_OK);
  for (size_t k = 0; k < M * HD; k++) {
    const float step = 0.4f * z[k];
    xs[k] = hx[k % HD] + step;
    y_bars[k] = y_bar[k % HD];
  }
  cr_assert_eq(pt_fn_vjp_batch(f, pt_key_fold_in(key, 0), M, xs, y_bars, x_bars), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, key, hx, y_bar, got), PT_OK);
  for (size_t i = 0; i < HD; i++) {
    double mean = 0.0, size = 0.0;
    for (size_t m = 0; m < M; m++) {
      mean += x_bars[m * HD + i];
      size += fabs(x_bars[m * HD + i]);
    }
    cr_expect(fabs(got[i] - mean / M) <= 1e-6 * size / M + 1e-9, "x_bar[%zu]: %.9g, rows' mean %.9g",
              i, (double)got[i], mean / M);
  }
  free(z);
  free(xs);
  free(y_bars);
  free(x_bars);
  pt_fn_free(p);
  pt_fn_free(f);
  pt_fn_free(outer);
  pt_fn_free(inner);
  pt_fn_free(g);
}

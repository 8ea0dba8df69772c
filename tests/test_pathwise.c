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
  pt_ref_expect_truth(ref.value, ref.value_se, value, HD, "value");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, HD * HD, "jacobian");
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
  pt_ref_expect_near(y, ref.value, HD, 1e-6, 1e-7, "value");
  pt_ref_expect_near(x_bar, ref_vjp, HD, 1e-6, 1e-7, "vjp");
  pt_ref_expect_near(y_dot, ref_jvp, HD, 1e-6, 1e-7, "jvp");
  pt_ref_expect_near(got_jac, ref.jac, HD * HD, 1e-6, 1e-7, "jacobian");
  /* no Hessian: pathwise derivatives are first derivatives only */
  float hess[HD * HD];
  cr_expect_eq(pt_fn_hessian(p, key, hx, hess), PT_EUNSUPPORTED);
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(pathwise, half_squares_gumbel) {
  check_half_squares(PT_NOISE_GUMBEL, PT_CALLBACK_THREAD_SAFE);
}
Test(pathwise, half_squares_normal) {
  check_half_squares(PT_NOISE_NORMAL, PT_CALLBACK_THREAD_SAFE);
}
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
    cr_expect(fabs(got[i] - mean / M) <= 1e-6 * size / M + 1e-9,
              "x_bar[%zu]: %.9g, rows' mean %.9g", i, (double)got[i], mean / M);
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

/* ---- the fused max: the smoothed max sigma LSE(x / sigma) + sigma gamma ------------------- */

/* A flattened tree of leaves: segment s covers inputs [off[s], off[s + 1]). */
typedef struct segments {
  size_t count, off[8];
} segments;

static void max_point(const void *ctx, const float *x, float *y) {
  const segments *sg = ctx;
  for (size_t s = 0; s < sg->count; s++) {
    size_t best = sg->off[s];
    for (size_t i = best + 1; i < sg->off[s + 1]; i++)
      if (x[i] > x[best]) best = i;
    y[s] = x[best];
  }
}

/* one-hot of each segment's first argmax in its row */
static void max_jacobian(const void *ctx, const float *x, float *jac) {
  const segments *sg = ctx;
  const size_t n = sg->off[sg->count];
  float y[8];
  max_point(ctx, x, y);
  memset(jac, 0, sg->count * n * sizeof *jac);
  for (size_t s = 0; s < sg->count; s++)
    for (size_t i = sg->off[s]; i < sg->off[s + 1]; i++)
      if (x[i] == y[s]) {
        jac[s * n + i] = 1.0f;
        break;
      }
}

/* Per segment: the smoothed max and its gradient, softmax(x / sigma). */
static void smoothed_max_truth(const segments *sg, const float *x, double sigma, double *value,
                               double *jac) {
  const size_t n = sg->off[sg->count];
  memset(jac, 0, sg->count * n * sizeof *jac);
  for (size_t s = 0; s < sg->count; s++) {
    double mx = x[sg->off[s]], z = 0.0;
    for (size_t i = sg->off[s]; i < sg->off[s + 1]; i++) mx = fmax(mx, x[i]);
    for (size_t i = sg->off[s]; i < sg->off[s + 1]; i++) z += exp((x[i] - mx) / sigma);
    /* the max's own term is 1: z >= 1 (a segment is never empty) */
    value[s] = mx + sigma * log(fmax(z, 1.0)) + sigma * EULER_GAMMA;
    for (size_t i = sg->off[s]; i < sg->off[s + 1]; i++)
      jac[s * n + i] = exp((x[i] - mx) / sigma) / z;
  }
}

static pt_fn *max_of(const segments *sg) {
  size_t sizes[8];
  for (size_t s = 0; s < sg->count; s++) sizes[s] = sg->off[s + 1] - sg->off[s];
  pt_fn *f = NULL;
  cr_assert_eq(sg->count == 1 ? pt_fn_max(sizes[0], &f) : pt_fn_max_segments(sizes, sg->count, &f),
               PT_OK);
  return f;
}

/* The fused max by default (PT_GRADIENT_AUTO is pathwise for it): its value, vjp, jvp and
   Jacobian against the reference on the same samples, where the Gumbel kernel's argmin of
   E exp((max x - x) / sigma) may settle a float near-tie apart from the literal argmax (a few
   samples' counts; the value moves by the near-tie's width alone), and the reference against
   the closed forms at 5 standard errors. */
static void check_smoothed_max(const segments *sg, const float *x) {
  const size_t n = sg->off[sg->count], k = sg->count, m = 100000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(2025);
  pt_fn *f = max_of(sg), *p = perturbed_with(f, m, sigma, PT_NOISE_GUMBEL, PT_GRADIENT_AUTO);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_pathwise_run(max_point, max_jacobian, sg, n, k, m, sigma, PT_NOISE_GUMBEL,
                                   key, x, &ref), 0);
  double value[8], jac[64];
  smoothed_max_truth(sg, x, sigma, value, jac);
  pt_ref_expect_truth(ref.value, ref.value_se, value, k, "smoothed max");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, k * n, "softmax");
  float y[8], got_jac[64], y_bar[8], x_bar[32], x_dot[32], y_dot[8];
  double ref_vjp[32] = {0}, ref_jvp[8] = {0};
  for (size_t s = 0; s < k; s++) y_bar[s] = 1.0f - 0.75f * (float)s;
  for (size_t i = 0; i < n; i++) x_dot[i] = 0.125f * (float)(i % 5) - 0.25f;
  for (size_t s = 0; s < k; s++)
    for (size_t i = 0; i < n; i++) {
      ref_vjp[i] += ref.jac[s * n + i] * y_bar[s];
      ref_jvp[s] += ref.jac[s * n + i] * x_dot[i];
    }
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(p, key, x, x_dot, y_dot), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, got_jac), PT_OK);
  const double slack = 3.0 / (double)m;
  pt_ref_expect_near(y, ref.value, k, 1e-6, 1e-6, "value");
  pt_ref_expect_near(got_jac, ref.jac, k * n, 0.0, slack + 1e-7, "jacobian");
  pt_ref_expect_near(x_bar, ref_vjp, n, 0.0, slack * 1.0 + 1e-7, "vjp");
  pt_ref_expect_near(y_dot, ref_jvp, k, 0.0, slack * 0.25 + 1e-7, "jvp");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(pathwise, smoothed_max) {
  const segments sg = {1, {0, 5}};
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f};
  check_smoothed_max(&sg, x);
}

Test(pathwise, smoothed_max_segments) {
  const segments sg = {3, {0, 3, 4, 9}};
  const float x[9] = {0.5f, -0.2f, 0.4f, 2.0f, 1.0f, 0.1f, -1.0f, 0.95f, 0.3f};
  check_smoothed_max(&sg, x);
}

/* The same function by both estimators on the same samples: their Jacobians agree within 5
   standard errors of the two together, and the pathwise terms spread less: each entry's
   variance at most `ratio` times the score function's (the callers say what was measured;
   the keys are fixed, so the measure is the same on every run).  The library's results are
   checked against their references first. */
static void compare_estimators(const pt_fn *f, pt_ref_point_fn point, pt_ref_jacobian_fn jf,
                               const void *ctx, size_t n, size_t k, const float *x,
                               pt_noise noise, double ratio, const char *what) {
  const size_t m = 20000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(77);
  pt_fn *pw = perturbed_with(f, m, sigma, noise, PT_GRADIENT_PATHWISE);
  pt_fn *sf = perturbed_with(f, m, sigma, noise, PT_GRADIENT_SCORE);
  pt_ref_estimate rp, rs;
  cr_assert_eq(pt_ref_pathwise_run(point, jf, ctx, n, k, m, sigma, noise, key, x, &rp), 0);
  cr_assert_eq(pt_ref_estimate_run(point, ctx, n, k, m, sigma, noise, 1, key, x, &rs), 0);
  float *jp = malloc(k * n * sizeof *jp), *js = malloc(k * n * sizeof *js);
  cr_assert_eq(pt_fn_jacobian(pw, key, x, jp), PT_OK);
  cr_assert_eq(pt_fn_jacobian(sf, key, x, js), PT_OK);
  pt_ref_expect_near(jp, rp.jac, k * n, 0.0, 3.0 / (double)m + 1e-7, "pathwise jacobian");
  pt_ref_expect_near(js, rs.jac, k * n, 1e-5, 1e-5, "score jacobian");
  double worst = 0.0;
  for (size_t c = 0; c < k * n; c++) {
    const double se = sqrt(rp.jac_se[c] * rp.jac_se[c] + rs.jac_se[c] * rs.jac_se[c]);
    cr_expect(fabs(rp.jac[c] - rs.jac[c]) <= 5.0 * se + 1e-9,
              "%s: entry %zu: pathwise %.6g, score %.6g (+- %.2g)", what, c, rp.jac[c],
              rs.jac[c], se);
    if (rs.jac_se[c] > 0) worst = fmax(worst, pow(rp.jac_se[c] / rs.jac_se[c], 2));
  }
  cr_log_info("%s: the pathwise variance is at most %.3f of the score function's", what, worst);
  cr_expect(worst <= ratio, "%s: pathwise variance %.3f of the score function's, above %.3f",
            what, worst, ratio);
  free(jp);
  free(js);
  pt_ref_estimate_free(&rp);
  pt_ref_estimate_free(&rs);
  pt_fn_free(pw);
  pt_fn_free(sf);
}

/* measured: at most 0.079 (Gumbel) and 0.154 (normal) of the score function's variance */
Test(pathwise, max_pathwise_and_score_agree) {
  const segments sg = {2, {0, 4, 7}};
  const float x[7] = {0.3f, -0.2f, 0.1f, 0.25f, 1.0f, 0.6f, 0.9f};
  pt_fn *f = max_of(&sg);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++)
    compare_estimators(f, max_point, max_jacobian, &sg, 7, 2, x, (pt_noise)noise, 0.25,
                       noise == PT_NOISE_GUMBEL ? "max, Gumbel" : "max, normal");
  pt_fn_free(f);
}

/* The callbacks of a user's max with its gradient, the one-hot of the first argmax: the generic
   path's form of what the fused max computes. */
static int max_eval(void *user, size_t batch, const float *x, float *y) {
  const segments *sg = user;
  for (size_t b = 0; b < batch; b++) max_point(sg, x + b * sg->off[sg->count], y + b * sg->count);
  return 0;
}

static int max_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const segments *sg = user;
  const size_t n = sg->off[sg->count];
  float jac[64];
  max_jacobian(sg, x, jac);
  for (size_t i = 0; i < n; i++) {
    x_bar[i] = 0.0f;
    for (size_t s = 0; s < sg->count; s++)
      if (jac[s * n + i] != 0.0f) x_bar[i] = y_bar[s];
  }
  return 0;
}

/* Normal noise: the fused max is the literal max of x + sigma z, so the generic path on the
   user's max gives its bits: the values, and the derivatives, whose sums of y_bar, x_dot (here
   multiples of 1/8) and ones are exact in any order. */
Test(pathwise, fused_max_is_the_generic_max) {
  static const segments sg = {3, {0, 6, 7, 20}};
  pt_fn *fused = max_of(&sg), *box = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(20, 3, max_eval, max_vjp, (void *)&sg, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &box), PT_OK);
  float x[20], x_dot[20], y_bar[3] = {0.5f, -1.25f, 2.0f};
  for (size_t i = 0; i < 20; i++) {
    x[i] = (float)((i * 7) % 11) * 0.1f - 0.5f;
    x_dot[i] = 0.125f * (float)(i % 9) - 0.5f;
  }
  pt_fn *pf = perturbed_with(fused, 1500, 0.3f, PT_NOISE_NORMAL, PT_GRADIENT_AUTO);
  pt_fn *pg = perturbed_with(box, 1500, 0.3f, PT_NOISE_NORMAL, PT_GRADIENT_PATHWISE);
  const pt_key key = pt_key_make(5);
  float a[3 * 20 + 3], b[3 * 20 + 3];
  cr_assert_eq(pt_fn_eval(pf, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_eval(pg, key, x, b), PT_OK);
  cr_expect(memcmp(a, b, 3 * sizeof *a) == 0, "values");
  cr_assert_eq(pt_fn_vjp(pf, key, x, y_bar, a), PT_OK);
  cr_assert_eq(pt_fn_vjp(pg, key, x, y_bar, b), PT_OK);
  cr_expect(memcmp(a, b, 20 * sizeof *a) == 0, "vjp");
  cr_assert_eq(pt_fn_jvp(pf, key, x, x_dot, a), PT_OK);
  cr_assert_eq(pt_fn_jvp(pg, key, x, x_dot, b), PT_OK);
  cr_expect(memcmp(a, b, 3 * sizeof *a) == 0, "jvp");
  cr_assert_eq(pt_fn_jacobian(pf, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_jacobian(pg, key, x, b), PT_OK);
  cr_expect(memcmp(a, b, 60 * sizeof *a) == 0, "jacobian");
  pt_fn_free(pf);
  pt_fn_free(pg);
  pt_fn_free(fused);
  pt_fn_free(box);
}

/* ---- the fused sort (pathwise) and permutation matrix (score function) ------------------- */

/* rank_i = how many elements come before x_i in the stable ascending order */
static void ranks_of(const float *x, size_t d, size_t *rank) {
  for (size_t i = 0; i < d; i++) {
    size_t r = 0;
    for (size_t j = 0; j < d; j++) r += x[j] < x[i] || (j < i && x[j] == x[i]);
    rank[i] = r;
  }
}

static void sort_point(const void *ctx, const float *x, float *y) {
  const size_t d = *(const size_t *)ctx;
  size_t rank[64];
  ranks_of(x, d, rank);
  for (size_t i = 0; i < d; i++) y[rank[i]] = x[i];
}

/* the ranks as the ranking's value, y_i = rank_i */
static void ranking_point(const void *ctx, const float *x, float *y) {
  const size_t d = *(const size_t *)ctx;
  size_t rank[64];
  ranks_of(x, d, rank);
  for (size_t i = 0; i < d; i++) y[i] = (float)rank[i];
}

/* the permutation matrix, J[p*d + i] = [rank_i == p]: the sort's Jacobian and the permutation
   matrix's value */
static void permutation_point(const void *ctx, const float *x, float *y) {
  const size_t d = *(const size_t *)ctx;
  size_t rank[64];
  ranks_of(x, d, rank);
  memset(y, 0, d * d * sizeof *y);
  for (size_t i = 0; i < d; i++) y[rank[i] * d + i] = 1.0f;
}

static pt_fn *builtin(pt_status (*make)(size_t, pt_fn **), size_t d) {
  pt_fn *f = NULL;
  cr_assert_eq(make(d, &f), PT_OK);
  return f;
}

/* Each sample's sorted keys are non-decreasing and their sums are rounded monotonically, so the
   perturbed sort's value is non-decreasing exactly; its Jacobian is E[P], counted exactly:
   with M = 1024, M times each entry is an integer, and every row and column sums to M. */
Test(pathwise, sort_is_non_decreasing_and_its_jacobian_doubly_stochastic) {
  enum { D = 9, M = 1024 };
  const float x[D] = {3.0f, -1.0f, 3.0f, 0.5f, -0.0f, 0.0f, 7.0f, 3.0f, -2.0f};
  pt_fn *f = builtin(pt_fn_sort, D);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    pt_fn *p = perturbed_with(f, M, 1.5f, (pt_noise)noise, PT_GRADIENT_AUTO);
    float y[D], jac[D * D];
    cr_assert_eq(pt_fn_eval(p, pt_key_make(4), x, y), PT_OK);
    cr_assert_eq(pt_fn_jacobian(p, pt_key_make(4), x, jac), PT_OK);
    for (size_t q = 0; q + 1 < D; q++) cr_expect_leq(y[q], y[q + 1], "y[%zu] > y[%zu]", q, q + 1);
    for (size_t a = 0; a < D; a++) {
      double row = 0.0, column = 0.0;
      for (size_t b = 0; b < D; b++) {
        const double entry = (double)jac[a * D + b] * M, down = (double)jac[b * D + a] * M;
        cr_expect(entry == floor(entry) && entry >= 0 && entry <= M, "J[%zu][%zu] * M = %g", a,
                  b, entry);
        row += entry;
        column += down;
      }
      cr_expect(row == M && column == M, "row %zu sums to %g, column %zu to %g (of %d)", a, row,
                a, column, M);
    }
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

static double phi(double t) { return exp(-0.5 * t * t) / sqrt(2.0 * PI); }
static double Phi(double t) { return 0.5 * erfc(-t / sqrt(2.0)); }

/* Sorting two values: the max and the min of x + sigma Z, in closed form.  Normal: with
   theta = sigma sqrt 2 and a = (x_0 - x_1) / theta, E max = x_0 Phi(a) + x_1 Phi(-a) +
   theta phi(a), its gradient (Phi(a), Phi(-a)); Gumbel: E max = sigma LSE(x / sigma) +
   sigma gamma, its gradient softmax(x / sigma).  The min is the sum's mean less the max. */
static void sort_two_truth(pt_noise noise, const float *x, double s, double *value, double *jac) {
  double p0;
  if (noise == PT_NOISE_NORMAL) {
    const double theta = s * sqrt(2.0), a = (x[0] - x[1]) / theta;
    value[1] = x[0] * Phi(a) + x[1] * Phi(-a) + theta * phi(a);
    p0 = Phi(a);
  } else {
    const double mx = fmax(x[0], x[1]), e0 = exp((x[0] - mx) / s), e1 = exp((x[1] - mx) / s);
    value[1] = mx + s * log(e0 + e1) + s * EULER_GAMMA;
    p0 = e0 / (e0 + e1);
  }
  value[0] = (double)x[0] + x[1] + 2.0 * s * noise_mean(noise) - value[1];
  const double j[4] = {1.0 - p0, p0, p0, 1.0 - p0}; /* rows: min, max */
  memcpy(jac, j, sizeof j);
}

/* The fused sort against the reference on the same samples (its keys are the literal x + sigma
   Z: only rounding apart) and the reference against the closed forms. */
static void check_sort(size_t d, const float *x, pt_noise noise, double *value, double *jac,
                       int (*truth_entry)(size_t d, size_t c)) {
  const size_t m = 100000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(606);
  pt_fn *f = builtin(pt_fn_sort, d), *p = perturbed_with(f, m, sigma, noise, PT_GRADIENT_AUTO);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_pathwise_run(sort_point, permutation_point, &d, d, d, m, sigma, noise, key,
                                   x, &ref), 0);
  float y[8], got[64];
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, got), PT_OK);
  pt_ref_expect_near(y, ref.value, d, 1e-6, 1e-7, "value");
  pt_ref_expect_near(got, ref.jac, d * d, 1e-6, 1e-7, "jacobian");
  for (size_t q = 0; q < d; q++)
    if (truth_entry(d, q))
      pt_ref_expect_truth(&ref.value[q], &ref.value_se[q], &value[q], 1, "sorted value");
  for (size_t c = 0; c < d * d; c++)
    if (truth_entry(d, c / d)) pt_ref_expect_truth(&ref.jac[c], &ref.jac_se[c], &jac[c], 1, "E[P]");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

static int every_entry(size_t d, size_t q) {
  (void)d;
  (void)q;
  return 1;
}

static int last_entry(size_t d, size_t q) { return q == d - 1; }

Test(pathwise, sort_of_two_in_closed_form) {
  const float x[2] = {0.3f, -0.1f};
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    double value[2], jac[4];
    sort_two_truth((pt_noise)noise, x, 0.5, value, jac);
    check_sort(2, x, (pt_noise)noise, value, jac, every_entry);
  }
}

/* Gumbel: the last sorted entry is the smoothed max, its row of E[P] softmax(x / sigma). */
Test(pathwise, sort_s_greatest_is_the_smoothed_max) {
  static const segments one = {1, {0, 5}};
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f};
  double value[5] = {0}, jac[25] = {0}, max_value, max_jac[5];
  smoothed_max_truth(&one, x, 0.5, &max_value, max_jac);
  value[4] = max_value;
  memcpy(jac + 20, max_jac, sizeof max_jac);
  check_sort(5, x, PT_NOISE_GUMBEL, value, jac, last_entry);
}

static size_t sort_d = 11;

static int sort_eval(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) sort_point(user, x + b * d, y + b * d);
  return 0;
}

static int sort_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const size_t d = *(const size_t *)user;
  size_t rank[64];
  ranks_of(x, d, rank);
  for (size_t i = 0; i < d; i++) x_bar[i] = y_bar[rank[i]];
  return 0;
}

/* The fused sort's keys are the generic path's inputs bit for bit on both noises, so a user's
   sort with its gradient gives its bits: values, and derivatives whose sums of y_bar, x_dot
   (multiples of 1/8) and ones are exact in any order. */
Test(pathwise, fused_sort_is_the_generic_sort) {
  const size_t d = sort_d;
  pt_fn *fused = builtin(pt_fn_sort, d), *box = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(d, d, sort_eval, sort_vjp, &sort_d, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &box), PT_OK);
  float x[11], y_bar[11], x_dot[11];
  for (size_t i = 0; i < d; i++) {
    x[i] = (float)((i * 5) % 7) * 0.1f - 0.3f;
    y_bar[i] = 0.25f * (float)i - 1.0f;
    x_dot[i] = 0.125f * (float)(i % 4) + 0.5f;
  }
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    pt_fn *pf = perturbed_with(fused, 1300, 0.4f, (pt_noise)noise, PT_GRADIENT_AUTO);
    pt_fn *pg = perturbed_with(box, 1300, 0.4f, (pt_noise)noise, PT_GRADIENT_PATHWISE);
    const pt_key key = pt_key_make(12);
    float a[121], b[121];
    cr_assert_eq(pt_fn_eval(pf, key, x, a), PT_OK);
    cr_assert_eq(pt_fn_eval(pg, key, x, b), PT_OK);
    cr_expect(memcmp(a, b, d * sizeof *a) == 0, "values, noise %d", noise);
    cr_assert_eq(pt_fn_vjp(pf, key, x, y_bar, a), PT_OK);
    cr_assert_eq(pt_fn_vjp(pg, key, x, y_bar, b), PT_OK);
    cr_expect(memcmp(a, b, d * sizeof *a) == 0, "vjp, noise %d", noise);
    cr_assert_eq(pt_fn_jvp(pf, key, x, x_dot, a), PT_OK);
    cr_assert_eq(pt_fn_jvp(pg, key, x, x_dot, b), PT_OK);
    cr_expect(memcmp(a, b, d * sizeof *a) == 0, "jvp, noise %d", noise);
    cr_assert_eq(pt_fn_jacobian(pf, key, x, a), PT_OK);
    cr_assert_eq(pt_fn_jacobian(pg, key, x, b), PT_OK);
    cr_expect(memcmp(a, b, d * d * sizeof *a) == 0, "jacobian, noise %d", noise);
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  pt_fn_free(fused);
  pt_fn_free(box);
}

/* A black box of segments: their sizes (n their sum), and the function of each segment, a point
   function taking the segment's size as its context (sort_point, ranking_point). */
typedef struct segments_box {
  size_t count, sizes[4], n;
  void (*point)(const void *ctx, const float *x, float *y);
} segments_box;

static int segments_eval(void *user, size_t batch, const float *x, float *y) {
  const segments_box *b = user;
  for (size_t r = 0; r < batch; r++)
    for (size_t s = 0, o = 0; s < b->count; o += b->sizes[s], s++)
      b->point(&b->sizes[s], x + r * b->n + o, y + r * b->n + o);
  return 0;
}

static int sort_segments_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  segments_box *b = user;
  for (size_t s = 0, o = 0; s < b->count; o += b->sizes[s], s++)
    sort_vjp(&b->sizes[s], x + o, y_bar + o, x_bar + o);
  return 0;
}

/* Op `op` of f and g at key and x (v: the vjp's y_bar or the jvp's x_dot) gives the same bits
   (what and k name the case). */
static void expect_same_bits(const pt_fn *f, const pt_fn *g, pt_op op, pt_key key, const float *x,
                             const float *v, const char *what, int k) {
  static float a[64 * 64], b[64 * 64];
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f);
  const pt_fn *fs[2] = {f, g};
  float *out[2] = {a, b};
  for (int j = 0; j < 2; j++)
    switch (op) {
      case PT_OP_EVAL: cr_assert_eq(pt_fn_eval(fs[j], key, x, out[j]), PT_OK); break;
      case PT_OP_VJP: cr_assert_eq(pt_fn_vjp(fs[j], key, x, v, out[j]), PT_OK); break;
      case PT_OP_JVP: cr_assert_eq(pt_fn_jvp(fs[j], key, x, v, out[j]), PT_OK); break;
      default: cr_assert_eq(pt_fn_jacobian(fs[j], key, x, out[j]), PT_OK); break;
    }
  const size_t n = op == PT_OP_VJP ? n_in : op == PT_OP_JACOBIAN ? n_out * n_in : n_out;
  cr_expect(memcmp(a, b, n * sizeof *a) == 0, "%s %d: op %d", what, k, (int)op);
}

/* The fused sort and ranking of segments against black boxes doing each segment's sort (with
   its permutation as gradient) and ranks: the sort's every op bit for bit on both noises (as
   fused_sort_is_the_generic_sort), the ranking's value and normal-noise Jacobian bit for bit
   with and without the baseline f(x) (its terms +-z). */
Test(pathwise, fused_segments_of_sort_and_ranking_are_the_generic_ones) {
  static segments_box sb = {3, {4, 1, 6}, 11, sort_point}, rb = {3, {4, 1, 6}, 11, ranking_point};
  pt_fn *sort = NULL, *rank = NULL, *sort_box = NULL, *rank_box = NULL;
  cr_assert_eq(pt_fn_sort_segments(sb.sizes, 3, &sort), PT_OK);
  cr_assert_eq(pt_fn_ranking_segments(sb.sizes, 3, &rank), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(11, 11, segments_eval, sort_segments_vjp, &sb, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &sort_box), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(11, 11, segments_eval, NULL, &rb, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &rank_box), PT_OK);
  float x[11], y_bar[11], x_dot[11];
  for (size_t i = 0; i < 11; i++) {
    x[i] = (float)((i * 5) % 7) * 0.1f - 0.3f;
    y_bar[i] = 0.25f * (float)i - 1.0f;
    x_dot[i] = 0.125f * (float)(i % 4) + 0.5f;
  }
  const pt_key key = pt_key_make(14);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    pt_fn *pf = perturbed_with(sort, 1300, 0.4f, (pt_noise)noise, PT_GRADIENT_AUTO);
    pt_fn *pg = perturbed_with(sort_box, 1300, 0.4f, (pt_noise)noise, PT_GRADIENT_PATHWISE);
    for (int op = PT_OP_EVAL; op <= PT_OP_JACOBIAN; op++)
      expect_same_bits(pf, pg, (pt_op)op, key, x, op == PT_OP_VJP ? y_bar : x_dot, "sort", noise);
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  for (int baseline = 0; baseline < 2; baseline++) {
    pt_fn *pf = NULL, *pg = NULL;
    cr_assert_eq(pt_make_perturbed_fun(rank, 900, 0.3f, PT_NOISE_NORMAL, baseline, &pf), PT_OK);
    cr_assert_eq(pt_make_perturbed_fun(rank_box, 900, 0.3f, PT_NOISE_NORMAL, baseline, &pg),
                 PT_OK);
    expect_same_bits(pf, pg, PT_OP_EVAL, key, x, NULL, "ranking, baseline", baseline);
    expect_same_bits(pf, pg, PT_OP_JACOBIAN, key, x, NULL, "ranking, baseline", baseline);
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  pt_fn_free(sort);
  pt_fn_free(rank);
  pt_fn_free(sort_box);
  pt_fn_free(rank_box);
}

/* measured: at most 0.349 (Gumbel) and 0.320 (normal) of the score function's variance */
Test(pathwise, sort_pathwise_and_score_agree) {
  size_t d = 4;
  const float x[4] = {0.2f, -0.3f, 0.25f, 0.9f};
  pt_fn *f = builtin(pt_fn_sort, d);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++)
    compare_estimators(f, sort_point, permutation_point, &d, d, d, x, (pt_noise)noise, 0.5,
                       noise == PT_NOISE_GUMBEL ? "sort, Gumbel" : "sort, normal");
  pt_fn_free(f);
}

/* Perturbed, the permutation matrix is E[P] counted exactly: with M = 1024, M times each entry
   is an integer and every row and column holds exactly M. */
Test(pathwise, permutation_matrix_rows_and_columns_hold_every_sample) {
  enum { D = 9, M = 1024 };
  const float x[D] = {1.0f, 0.5f, 2.0f, -1.0f, 0.5f, 0.5f, 0.0f, 1.0f, 1.0f};
  pt_fn *f = builtin(pt_fn_permutation_matrix, D);
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
    pt_fn *p = perturbed_with(f, M, 0.7f, (pt_noise)noise, PT_GRADIENT_AUTO);
    float y[D * D];
    cr_assert_eq(pt_fn_eval(p, pt_key_make(40), x, y), PT_OK);
    for (size_t a = 0; a < D; a++) {
      double row = 0.0, column = 0.0;
      for (size_t b = 0; b < D; b++) {
        const double entry = (double)y[a * D + b] * M;
        cr_expect(entry == floor(entry), "P[%zu][%zu] * M = %g", a, b, entry);
        row += entry;
        column += (double)y[b * D + a] * M;
      }
      cr_expect(row == M && column == M, "row %zu sums to %g, column %zu to %g (of %d)", a, row,
                a, column, M);
    }
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* The vjp and jvp of p's samples at key: the reference's Jacobian (of those samples) applied
   to a y_bar and an x_dot, within rounding (the vjp's float sums of 32 samples: vjp_abs). */
static void expect_products_of_jacobian(const pt_fn *p, pt_key key, const float *x,
                                        const pt_ref_estimate *ref, double vjp_abs) {
  const size_t n_in = ref->n_in, n_out = ref->n_out;
  static float y_bar[64], y_dot[64];
  float x_dot[8], x_bar[8];
  double want_x_bar[8] = {0}, want_y_dot[64] = {0};
  cr_assert(n_in <= 8 && n_out <= 64);
  for (size_t j = 0; j < n_out; j++) y_bar[j] = (float)((j * 5) % 7) * 0.25f - 0.75f;
  for (size_t i = 0; i < n_in; i++) x_dot[i] = 0.5f - 0.25f * (float)i;
  for (size_t j = 0; j < n_out; j++)
    for (size_t i = 0; i < n_in; i++) {
      want_x_bar[i] += ref->jac[j * n_in + i] * y_bar[j];
      want_y_dot[j] += ref->jac[j * n_in + i] * x_dot[i];
    }
  cr_assert_eq(pt_fn_vjp(p, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(p, key, x, x_dot, y_dot), PT_OK);
  pt_ref_expect_near(x_bar, want_x_bar, n_in, 1e-5, vjp_abs, "vjp");
  pt_ref_expect_near(y_dot, want_y_dot, n_out, 1e-5, 1e-5, "jvp");
}

/* The ranks and permutation matrices of four inputs at this point. */
enum { D = 4 };
static size_t four = D;
static const float four_x[D] = {0.4f, -0.3f, 0.1f, 0.6f};

/* The fused ranking and permutation matrix in Gumbel antithetic pairs, each sample leaving out
   its pair, against the reference's b_m on the same samples (its partners' Gumbel within an
   ulp or two of the library's; no key here is that near a tie): the value exactly, the
   Jacobian, vjp and jvp up to rounding. */
Test(pathwise, ranks_leaving_out_pairs_are_the_reference) {
  const float *x = four_x;
  const pt_key key = pt_key_make(43);
  for (int permutation = 0; permutation < 2; permutation++) {
    const size_t n_out = permutation ? D * D : D;
    pt_fn *f = builtin(permutation ? pt_fn_permutation_matrix : pt_fn_ranking, D);
    pt_perturb_options o = pt_ref_score_options(20000, 0.5f, PT_NOISE_GUMBEL,
                                                PT_BASELINE_LEAVE_ONE_OUT);
    o.antithetic = 1;
    pt_fn *p = pt_ref_perturbed(f, &o);
    pt_ref_estimate ref;
    cr_assert_eq(pt_ref_pairs_run(permutation ? permutation_point : ranking_point, &four, D,
                                  n_out, 20000, 0.5f, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1,
                                  key, x, &ref), 0);
    static float y[D * D], jac[D * D * D];
    cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
    cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
    pt_ref_expect_near(y, ref.value, n_out, 1e-7, 1e-7, "value");
    pt_ref_expect_near(jac, ref.jac, n_out * D, 1e-5, 1e-5, "jacobian");
    expect_products_of_jacobian(p, key, x, &ref, 1e-4);
    pt_ref_estimate_free(&ref);
    pt_fn_free(p);
    pt_fn_free(f);
  }
}

/* Gumbel: the greatest position's row of E[P] is softmax(x / sigma), and its Jacobian rows
   (diag p - p p^T) / sigma.  The library against the reference on the same samples: the value
   exactly (the keys are literal), the derivatives up to rounding (the kernel's grad_nu is
   1 - E where the reference takes 1 - exp(-G), and its vjp sums in float over 32 samples). */
Test(pathwise, permutation_matrix_s_last_row_is_softmax) {
  static size_t d = D;
  const float *x = four_x;
  const size_t m = 100000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(41);
  pt_fn *f = builtin(pt_fn_permutation_matrix, D);
  pt_fn *p = perturbed_with(f, m, sigma, PT_NOISE_GUMBEL, PT_GRADIENT_AUTO);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_estimate_run(permutation_point, &d, D, D * D, m, sigma, PT_NOISE_GUMBEL, 1,
                                   key, x, &ref), 0);
  static float y[D * D], jac[D * D * D];
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  pt_ref_expect_near(y, ref.value, D * D, 0.0, 1e-7, "value");
  pt_ref_expect_near(jac, ref.jac, D * D * D, 1e-5, 1e-5, "jacobian");
  expect_products_of_jacobian(p, key, x, &ref, 1e-5);
  static const segments one = {1, {0, D}};
  double value, soft[D], soft_jac[D * D];
  smoothed_max_truth(&one, x, sigma, &value, soft);
  for (size_t j = 0; j < D; j++)
    for (size_t i = 0; i < D; i++)
      soft_jac[j * D + i] = ((i == j ? soft[i] : 0.0) - soft[i] * soft[j]) / sigma;
  const size_t last = (D - 1) * D;
  pt_ref_expect_truth(ref.value + last, ref.value_se + last, soft, D, "last row");
  pt_ref_expect_truth(ref.jac + last * D, ref.jac_se + last * D, soft_jac, D * D,
                      "last rows' jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

static int permutation_eval(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) permutation_point(user, x + b * d, y + b * d * d);
  return 0;
}

/* Normal noise: the fused permutation matrix ranks the literal keys, so a user's black box
   gives its value and its Jacobian, whose terms are the samples' +-z, bit for bit. */
Test(pathwise, fused_permutation_matrix_is_the_generic_one) {
  static size_t d = 7;
  pt_fn *fused = builtin(pt_fn_permutation_matrix, d), *box = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(d, d * d, permutation_eval, NULL, &d, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &box), PT_OK);
  const float x[7] = {0.1f, 0.3f, -0.2f, 0.3f, 0.0f, 0.25f, -0.1f};
  for (int baseline = 0; baseline < 2; baseline++) {
    pt_fn *pf = NULL, *pg = NULL;
    cr_assert_eq(pt_make_perturbed_fun(fused, 900, 0.2f, PT_NOISE_NORMAL, baseline, &pf), PT_OK);
    cr_assert_eq(pt_make_perturbed_fun(box, 900, 0.2f, PT_NOISE_NORMAL, baseline, &pg), PT_OK);
    static float a[7 * 49], b[7 * 49];
    cr_assert_eq(pt_fn_eval(pf, pt_key_make(2), x, a), PT_OK);
    cr_assert_eq(pt_fn_eval(pg, pt_key_make(2), x, b), PT_OK);
    cr_expect(memcmp(a, b, 49 * sizeof *a) == 0, "values, baseline %d", baseline);
    cr_assert_eq(pt_fn_jacobian(pf, pt_key_make(2), x, a), PT_OK);
    cr_assert_eq(pt_fn_jacobian(pg, pt_key_make(2), x, b), PT_OK);
    cr_expect(memcmp(a, b, 7 * 49 * sizeof *a) == 0, "jacobian, baseline %d", baseline);
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  pt_fn_free(fused);
  pt_fn_free(box);
}

/* The permutation matrix of segments, as a user writes it: each segment's d x d block of cells
   after the blocks before (ctx: a segments_box; its point is unused). */
static void permutation_segments_point(const void *ctx, const float *x, float *y) {
  const segments_box *b = ctx;
  for (size_t s = 0; s < b->count; s++) {
    permutation_point(&b->sizes[s], x, y);
    x += b->sizes[s];
    y += b->sizes[s] * b->sizes[s];
  }
}

static size_t cells_of(const segments_box *b) {
  size_t cells = 0;
  for (size_t s = 0; s < b->count; s++) cells += b->sizes[s] * b->sizes[s];
  return cells;
}

static int permutation_segments_eval(void *user, size_t batch, const float *x, float *y) {
  const segments_box *b = user;
  for (size_t r = 0; r < batch; r++) permutation_segments_point(b, x + r * b->n, y + r * cells_of(b));
  return 0;
}

/* Gumbel noise makes the order of two inputs logistic: in a segment of two, E[P] has x_1 ahead
   with probability q = sigmoid((x_1 - x_0) / sigma) (cells (0, 0) and (1, 1); 1 - q the other
   two), and its Jacobian is +-q (1 - q) / sigma within the segment and 0 across segments.  The
   reference's estimate on the library's samples against that (5 standard errors), and the
   library against the reference: the value exactly (the keys are literal), the derivatives up
   to rounding. */
Test(pathwise, permutation_matrix_segments_of_two_are_sigmoids) {
  static segments_box sb = {3, {2, 2, 2}, 6, NULL};
  const float x[6] = {0.3f, -0.2f, 0.0f, 0.5f, 1.0f, 1.0f};
  const size_t m = 100000, n_out = 12;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(47);
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_permutation_matrix_segments(sb.sizes, 3, &f), PT_OK);
  cr_assert_eq(pt_fn_n_out(f), n_out);
  pt_fn *p = perturbed_with(f, m, sigma, PT_NOISE_GUMBEL, PT_GRADIENT_AUTO);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_estimate_run(permutation_segments_point, &sb, 6, n_out, m, sigma,
                                   PT_NOISE_GUMBEL, 1, key, x, &ref), 0);
  float y[12], jac[12 * 6];
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  pt_ref_expect_near(y, ref.value, n_out, 0.0, 1e-7, "value");
  pt_ref_expect_near(jac, ref.jac, n_out * 6, 1e-5, 1e-5, "jacobian");
  double value[12], slope[12 * 6] = {0};
  for (size_t s = 0; s < 3; s++) {
    const double q = 1.0 / (1.0 + exp(-((double)x[2 * s + 1] - x[2 * s]) / sigma));
    const double dq = q * (1.0 - q) / sigma;
    for (size_t cell = 0; cell < 4; cell++) { /* cell p*2 + i of block s: p == i is "in order" */
      const double sign = cell == 0 || cell == 3 ? 1.0 : -1.0;
      value[4 * s + cell] = sign > 0 ? q : 1.0 - q;
      slope[(4 * s + cell) * 6 + 2 * s] = -sign * dq;
      slope[(4 * s + cell) * 6 + 2 * s + 1] = sign * dq;
    }
  }
  pt_ref_expect_truth(ref.value, ref.value_se, value, n_out, "E[P]");
  pt_ref_expect_truth(ref.jac, ref.jac_se, slope, n_out * 6, "its jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

/* Normal noise: the fused permutation matrix of segments against a user's black box writing the
   same blocks: the value and Jacobian bit for bit, with and without the baseline f(x), and the
   vjp and jvp the Jacobian's products up to rounding (the kernel's cotangent over the blocks'
   cells, and the baseline's). */
Test(pathwise, fused_permutation_matrix_segments_is_the_generic_one) {
  static segments_box sb = {3, {3, 1, 4}, 8, NULL};
  enum { N = 8, CELLS = 26 };
  pt_fn *fused = NULL, *box = NULL;
  cr_assert_eq(pt_fn_permutation_matrix_segments(sb.sizes, 3, &fused), PT_OK);
  cr_assert_eq(pt_fn_n_out(fused), (size_t)CELLS);
  cr_assert_eq(pt_fn_from_callback_ex(N, CELLS, permutation_segments_eval, NULL, &sb, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &box), PT_OK);
  const float x[N] = {0.1f, 0.3f, -0.2f, 0.3f, 0.0f, 0.25f, -0.1f, 0.05f};
  float y_bar[CELLS], x_dot[N];
  for (size_t j = 0; j < CELLS; j++) y_bar[j] = (float)((j * 5) % 7) * 0.25f - 0.75f;
  for (size_t i = 0; i < N; i++) x_dot[i] = 0.5f - 0.125f * (float)i;
  const pt_key key = pt_key_make(5);
  for (int baseline = 0; baseline < 2; baseline++) {
    pt_fn *pf = NULL, *pg = NULL;
    cr_assert_eq(pt_make_perturbed_fun(fused, 900, 0.2f, PT_NOISE_NORMAL, baseline, &pf), PT_OK);
    cr_assert_eq(pt_make_perturbed_fun(box, 900, 0.2f, PT_NOISE_NORMAL, baseline, &pg), PT_OK);
    expect_same_bits(pf, pg, PT_OP_EVAL, key, x, NULL, "permutation segments, baseline",
                     baseline);
    expect_same_bits(pf, pg, PT_OP_JACOBIAN, key, x, NULL, "permutation segments, baseline",
                     baseline);
    static float jac[CELLS * N];
    float x_bar[N], y_dot[CELLS];
    cr_assert_eq(pt_fn_jacobian(pf, key, x, jac), PT_OK);
    cr_assert_eq(pt_fn_vjp(pf, key, x, y_bar, x_bar), PT_OK);
    cr_assert_eq(pt_fn_jvp(pf, key, x, x_dot, y_dot), PT_OK);
    double want_x_bar[N] = {0}, want_y_dot[CELLS] = {0};
    for (size_t j = 0; j < CELLS; j++)
      for (size_t i = 0; i < N; i++) {
        want_x_bar[i] += (double)jac[j * N + i] * y_bar[j];
        want_y_dot[j] += (double)jac[j * N + i] * x_dot[i];
      }
    pt_ref_expect_near(x_bar, want_x_bar, N, 1e-5, 1e-5, "vjp");
    pt_ref_expect_near(y_dot, want_y_dot, CELLS, 1e-5, 1e-5, "jvp");
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  pt_fn_free(fused);
  pt_fn_free(box);
}

/* ---- determinism ------------------------------------------------------------------------- */

/* Every supported ISA gives the same bits for every operation of the fused max, sort,
   permutation matrix and ranking segments and of the generic pathwise path, on both noises. */
Test(pathwise, bitwise_identical_across_isas) {
  const size_t sizes[3] = {5, 1, 14};
  pt_fn *fs[6];
  cr_assert_eq(pt_fn_max_segments(sizes, 3, &fs[0]), PT_OK);
  fs[1] = builtin(pt_fn_sort, 20);
  cr_assert_eq(pt_fn_ranking_segments(sizes, 3, &fs[4]), PT_OK);
  fs[2] = builtin(pt_fn_permutation_matrix, 20);
  cr_assert_eq(pt_fn_permutation_matrix_segments(sizes, 3, &fs[5]), PT_OK);
  /* the derivatives of max, sort and the user's are their own; of the others, score */
  const pt_gradient gradient[6] = {PT_GRADIENT_PATHWISE, PT_GRADIENT_PATHWISE, PT_GRADIENT_SCORE,
                                   PT_GRADIENT_PATHWISE, PT_GRADIENT_SCORE, PT_GRADIENT_SCORE};
  cr_assert_eq(pt_fn_from_callback_ex(HD, HD, half_squares_eval, half_squares_vjp, NULL, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &fs[3]), PT_OK);
  float x[20], v[400];
  for (size_t i = 0; i < 400; i++) v[i] = (float)((i * 5) % 7) * 0.25f - 0.5f;
  for (size_t i = 0; i < 20; i++) x[i] = (float)((i * 13) % 17) * 0.05f - 0.4f;
  static float run[2][4][20 * 400];
  for (size_t k = 0; k < 6; k++)
    for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
      pt_fn *p = perturbed_with(fs[k], 1000, 0.3f, (pt_noise)noise, gradient[k]);
      const size_t n_in = pt_fn_n_in(p), n_out = pt_fn_n_out(p);
      const size_t n[4] = {n_out, n_in, n_out, n_out * n_in};
      int have = 0;
      for (int isa = 0; pt_isa_name((pt_isa)isa); isa++) {
        if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
        float(*out)[20 * 400] = run[have];
        const pt_key key = pt_key_make(9);
        cr_assert_eq(pt_fn_eval(p, key, x, out[0]), PT_OK);
        cr_assert_eq(pt_fn_vjp(p, key, x, v, out[1]), PT_OK);
        cr_assert_eq(pt_fn_jvp(p, key, x, v, out[2]), PT_OK);
        cr_assert_eq(pt_fn_jacobian(p, key, x, out[3]), PT_OK);
        for (int op = 0; have && op < 4; op++)
          cr_expect(memcmp(run[0][op], run[1][op], n[op] * sizeof(float)) == 0,
                    "function %zu, noise %d, op %d on %s", k, noise, op, pt_isa_name((pt_isa)isa));
        have = 1;
      }
      pt_fn_free(p);
    }
  for (size_t k = 0; k < 6; k++) pt_fn_free(fs[k]);
}

/* Gumbel noise orders x + sigma G as the Plackett-Luce model with weights w = exp(x / sigma):
   an order from the greatest down, (i_1, ..., i_d), has probability prod_k w_{i_k} / (w_{i_k}
   + ... + w_{i_d}).  So E[P][p*d + i] = P(rank_i = p), summed here over all d! orders (d <= 6):
   the permutation matrix's value and the sort's Jacobian, in closed form. */
/* Adds the probability of every order whose k greatest are order[0 .. k) (of probability
   `prob`, `left` the weight of the others), each at its elements' ranks. */
static void orders_from(const double *w, size_t d, size_t *order, size_t k, double prob,
                        double left, double *e_p) {
  if (k == d) {
    for (size_t j = 0; j < d; j++) e_p[(d - 1 - j) * d + order[j]] += prob;
    return;
  }
  for (size_t i = 0; i < d; i++) {
    int taken = 0;
    for (size_t j = 0; j < k; j++) taken |= order[j] == i;
    if (taken) continue;
    order[k] = i;
    orders_from(w, d, order, k + 1, prob * w[i] / left, left - w[i], e_p);
  }
}

static void plackett_luce(const float *x, size_t d, double sigma, double *e_p) {
  double w[6], total = 0.0;
  size_t order[6];
  for (size_t i = 0; i < d; i++) total += w[i] = exp((double)x[i] / sigma);
  memset(e_p, 0, d * d * sizeof *e_p);
  orders_from(w, d, order, 0, 1.0, total, e_p);
}

Test(pathwise, e_p_is_plackett_luce) {
  static size_t d = 4;
  const float x[4] = {0.4f, -0.3f, 0.1f, 0.6f};
  const size_t m = 100000;
  const float sigma = 0.5f;
  const pt_key key = pt_key_make(43);
  double truth[16];
  plackett_luce(x, d, sigma, truth);
  for (size_t i = 0; i < d; i++) { /* a doubly stochastic matrix */
    double row = 0.0, column = 0.0;
    for (size_t p = 0; p < d; p++) {
      row += truth[i * d + p];
      column += truth[p * d + i];
    }
    cr_assert(fabs(row - 1.0) < 1e-12 && fabs(column - 1.0) < 1e-12, "Plackett-Luce sums");
  }
  /* the sort's Jacobian, pathwise */
  pt_fn *sort = builtin(pt_fn_sort, d);
  pt_fn *ps = perturbed_with(sort, m, sigma, PT_NOISE_GUMBEL, PT_GRADIENT_AUTO);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_pathwise_run(sort_point, permutation_point, &d, d, d, m, sigma,
                                   PT_NOISE_GUMBEL, key, x, &ref), 0);
  float got[16];
  cr_assert_eq(pt_fn_jacobian(ps, key, x, got), PT_OK);
  pt_ref_expect_near(got, ref.jac, d * d, 1e-6, 1e-7, "the sort's jacobian");
  pt_ref_expect_truth(ref.jac, ref.jac_se, truth, d * d, "the sort's E[P]");
  pt_ref_estimate_free(&ref);
  /* the permutation matrix's value */
  pt_fn *perm = builtin(pt_fn_permutation_matrix, d);
  pt_fn *pp = perturbed_with(perm, m, sigma, PT_NOISE_GUMBEL, PT_GRADIENT_AUTO);
  cr_assert_eq(pt_ref_estimate_run(permutation_point, &d, d, d * d, m, sigma, PT_NOISE_GUMBEL, 1,
                                   key, x, &ref), 0);
  cr_assert_eq(pt_fn_eval(pp, key, x, got), PT_OK);
  pt_ref_expect_near(got, ref.value, d * d, 0.0, 1e-7, "the permutation matrix");
  pt_ref_expect_truth(ref.value, ref.value_se, truth, d * d, "the permutation matrix's E[P]");
  pt_ref_estimate_free(&ref);
  pt_fn_free(pp);
  pt_fn_free(perm);
  pt_fn_free(ps);
  pt_fn_free(sort);
}

/* ---- options ------------------------------------------------------------------------------ */

/* The pathwise gradient is refused where it does not apply (PT_EINVAL), with nothing written,
   and takes antithetic pairs and multiplicative noise (tests/test_noise_options.c checks
   them); the independent Jacobian's key is the estimator's, whatever the gradient. */
Test(pathwise, options_that_do_not_apply_are_refused) {
  pt_fn *mx = builtin(pt_fn_max, 5), *box = half_squares(0);
  pt_fn *argmax = builtin(pt_fn_argmax_one_hot, 5);
  const struct {
    const pt_fn *f;
    pt_gradient gradient;
    pt_noise noise;
    int antithetic, multiplicative, independent_jacobian, block_diagonal;
    pt_baseline baseline;
    pt_status want;
  } cases[] = {
      {mx, PT_GRADIENT_AUTO, PT_NOISE_GUMBEL, 1, 0, 0, 0, PT_BASELINE_F_X, PT_OK},
      {mx, PT_GRADIENT_AUTO, PT_NOISE_NORMAL, 0, 1, 0, 0, PT_BASELINE_F_X, PT_OK},
      {mx, PT_GRADIENT_AUTO, PT_NOISE_GUMBEL, 0, 1, 0, 0, PT_BASELINE_F_X, PT_EINVAL},
      {box, PT_GRADIENT_PATHWISE, PT_NOISE_GUMBEL, 0, 0, 1, 0, PT_BASELINE_F_X, PT_OK},
      {box, PT_GRADIENT_PATHWISE, PT_NOISE_GUMBEL, 0, 0, 0, 0, PT_BASELINE_LEAVE_ONE_OUT,
       PT_EINVAL},
      {mx, PT_GRADIENT_PATHWISE, PT_NOISE_GUMBEL, 0, 0, 0, 1, PT_BASELINE_F_X, PT_EINVAL},
      {argmax, PT_GRADIENT_PATHWISE, PT_NOISE_GUMBEL, 0, 0, 0, 0, PT_BASELINE_F_X, PT_EINVAL},
      {box, PT_GRADIENT_PATHWISE, PT_NOISE_NORMAL, 0, 0, 0, 0, PT_BASELINE_NONE, PT_OK},
      {mx, PT_GRADIENT_PATHWISE, PT_NOISE_NORMAL, 0, 0, 0, 0, PT_BASELINE_F_X, PT_OK},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    pt_perturb_options o = pt_perturb_defaults();
    o.gradient = cases[c].gradient;
    o.noise = cases[c].noise;
    o.antithetic = cases[c].antithetic;
    o.multiplicative = cases[c].multiplicative;
    o.independent_jacobian = cases[c].independent_jacobian;
    o.block_diagonal = cases[c].block_diagonal;
    o.baseline = cases[c].baseline;
    pt_fn *out = NULL;
    cr_expect_eq(pt_make_perturbed_fun_ex(cases[c].f, &o, &out), cases[c].want, "case %zu", c);
    cr_expect((out != NULL) == (cases[c].want == PT_OK), "case %zu: the output", c);
    pt_fn_free(out);
  }
  pt_fn_free(mx);
  pt_fn_free(box);
  pt_fn_free(argmax);
}

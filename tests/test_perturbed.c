/* SPDX-License-Identifier: MIT */
/* pt_make_perturbed_fun against independent truth.  Each statistical test runs the library and
   the plain reference estimator of tests/estimator.c on the same key: the library must agree
   with the reference (the same samples, so only rounding apart, or a few samples for a fused
   kernel that settles float near-ties its own way), and the reference must agree with the
   closed form within 5 standard errors of its own per-sample terms.  Keys are fixed, so every
   run is the same run: never flaky. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimator.h"
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */

#define EULER_GAMMA 0.57721566490153286

/* ---- the functions perturbed, as plain point functions ----------------------------------- */

typedef struct point_fn {
  pt_ref_point_fn f;
  size_t n_in, n_out;
  const void *ctx;
  int fail; /* the callback fails from this call on (0: never) */
  int calls;
} point_fn;

/* rank_i = how many elements come before x_i in the stable ascending order */
static void rank_point(const void *ctx, const float *x, float *y) {
  const size_t d = *(const size_t *)ctx;
  for (size_t i = 0; i < d; i++) {
    size_t r = 0;
    for (size_t j = 0; j < d; j++) r += x[j] < x[i] || (j < i && x[j] == x[i]);
    y[i] = (float)r;
  }
}

typedef struct affine {
  size_t n_in, n_out;
  const float *a, *c;
} affine;

static void affine_point(const void *ctx, const float *x, float *y) {
  const affine *l = ctx;
  for (size_t j = 0; j < l->n_out; j++) {
    double s = l->c[j];
    for (size_t i = 0; i < l->n_in; i++) s += (double)l->a[j * l->n_in + i] * x[i];
    y[j] = (float)s;
  }
}

static void half_square_point(const void *ctx, const float *x, float *y) {
  const size_t n = *(const size_t *)ctx;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += 0.5 * (double)x[i] * x[i];
  y[0] = (float)s;
}

static int batch_callback(void *user, size_t batch, const float *x, float *y) {
  point_fn *p = user;
  if (p->fail && __atomic_add_fetch(&p->calls, 1, __ATOMIC_RELAXED) >= p->fail) return 1;
  for (size_t b = 0; b < batch; b++) p->f(p->ctx, x + b * p->n_in, y + b * p->n_out);
  return 0;
}

static pt_fn *black_box(point_fn *p) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_from_callback(p->n_in, p->n_out, batch_callback, p, &f), PT_OK);
  return f;
}

static pt_fn *perturbed(const pt_fn *f, size_t m, float sigma, pt_noise noise, int baseline) {
  pt_fn *p = NULL;
  cr_assert_eq(pt_make_perturbed_fun(f, m, sigma, noise, baseline, &p), PT_OK);
  return p;
}

/* ---- checks --------------------------------------------------------------------------------- */

/* Runs the reference for `pf` and checks the library's value and Jacobian of `pfn` (f perturbed
   the same way) against it: `slack` samples may fall differently (fused near-ties). */
static void expect_matches_reference(const pt_fn *pfn, point_fn *pf, size_t m, float sigma,
                                     pt_noise noise, int baseline, pt_key key, const float *x,
                                     double slack, pt_ref_estimate *ref) {
  cr_assert_eq(pt_ref_estimate_run(pf->f, pf->ctx, pf->n_in, pf->n_out, m, sigma, noise, baseline,
                                   key, x, ref), 0);
  const size_t n_in = pf->n_in, n_out = pf->n_out;
  float *y = malloc(n_out * sizeof *y), *jac = malloc(n_out * n_in * sizeof *jac);
  cr_assert(y && jac);
  cr_assert_eq(pt_fn_eval(pfn, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(pfn, key, x, jac), PT_OK);
  /* one sample moves a value entry by at most max|y|/M and a Jacobian entry by max|y g|/(M s);
     g = 1 - exp(-z) of Gumbel noise is at most ~17 in magnitude over the stream's range */
  const double unit = 1.0 / (double)m;
  double top = 0;
  for (size_t j = 0; j < n_out; j++) top = fmax(top, fabs(ref->value[j]));
  pt_ref_expect_near(y, ref->value, n_out, 1e-5, slack * (top + 1) * unit + 1e-6, "value");
  pt_ref_expect_near(jac, ref->jac, n_out * n_in, 1e-5,
                     slack * 2 * (top + 1) * 17 * unit / sigma + 1e-6, "jacobian");
  free(y);
  free(jac);
}

/* ---- Gumbel perturbed argmax: softmax(x / sigma), Jacobian (diag p - p p^T) / sigma --------- */

static void softmax_truth(const float *x, size_t d, double sigma, double *p, double *jac) {
  double mx = x[0], z = 0;
  for (size_t i = 1; i < d; i++) mx = fmax(mx, x[i]);
  for (size_t i = 0; i < d; i++) z += exp((x[i] - mx) / sigma);
  for (size_t i = 0; i < d; i++) p[i] = exp((x[i] - mx) / sigma) / z;
  for (size_t j = 0; j < d; j++)
    for (size_t i = 0; i < d; i++) jac[j * d + i] = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / sigma;
}

static void check_gumbel_argmax(int builtin, int baseline) {
  size_t d = 5;
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f};
  const float sigma = 0.5f;
  const size_t m = 100000;
  const pt_key key = pt_key_make(2024);
  point_fn pf = {pt_ref_argmax_point, d, d, &d, 0, 0};
  pt_fn *f = NULL;
  if (builtin) cr_assert_eq(pt_fn_argmax_one_hot(d, &f), PT_OK);
  else f = black_box(&pf);
  pt_fn *p = perturbed(f, m, sigma, PT_NOISE_GUMBEL, baseline);
  pt_ref_estimate ref;
  expect_matches_reference(p, &pf, m, sigma, PT_NOISE_GUMBEL, baseline, key, x, builtin ? 3 : 0, &ref);
  double prob[5], jac[25];
  softmax_truth(x, d, sigma, prob, jac);
  pt_ref_expect_truth(ref.value, ref.value_se, prob, d, "softmax");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, d * d, "softmax jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(perturbed, gumbel_argmax_is_softmax_with_baseline) { check_gumbel_argmax(0, 1); }
Test(perturbed, gumbel_argmax_is_softmax_without_baseline) { check_gumbel_argmax(0, 0); }
Test(perturbed, builtin_gumbel_argmax_is_softmax_with_baseline) { check_gumbel_argmax(1, 1); }
Test(perturbed, builtin_gumbel_argmax_is_softmax_without_baseline) { check_gumbel_argmax(1, 0); }

/* ---- argmax on segments: each segment its own argmax, so its own softmax --------------------
   Segments far apart in scale (50, -100, 0): a kernel that scaled every segment by one maximum
   would overflow or underflow the others' keys. */

typedef struct segments {
  size_t count;
  const size_t *sizes;
} segments;

static void segments_argmax_point(const void *ctx, const float *x, float *y) {
  const segments *s = ctx;
  for (size_t k = 0, o = 0; k < s->count; o += s->sizes[k++])
    pt_ref_argmax_point(&s->sizes[k], x + o, y + o);
}

static void check_segments(pt_noise noise) {
  const size_t sizes[3] = {2, 3, 2}, n = 7;
  const segments seg = {3, sizes};
  const float x[7] = {50.0f, 49.9f, -100.0f, -100.2f, -99.9f, 0.0f, 0.05f}, sigma = 0.1f;
  const size_t m = 20000;
  point_fn pf = {segments_argmax_point, n, n, &seg, 0, 0};
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 3, &f), PT_OK);
  pt_fn *p = perturbed(f, m, sigma, noise, 1);
  pt_ref_estimate ref;
  expect_matches_reference(p, &pf, m, sigma, noise, 1, pt_key_make(5), x,
                           noise == PT_NOISE_GUMBEL ? 3 : 0, &ref);
  float y[7];
  cr_assert_eq(pt_fn_eval(p, pt_key_make(5), x, y), PT_OK);
  for (size_t k = 0, o = 0; k < 3; o += sizes[k++]) {
    double total = 0;
    for (size_t i = o; i < o + sizes[k]; i++) total += y[i];
    cr_assert(fabs(total - 1) <= 1e-6, "segment %zu sums to %.9g", k, total);
  }
  if (noise == PT_NOISE_GUMBEL) { /* block-diagonal softmax */
    double prob[7], jac[49] = {0}, block_p[3], block_jac[9];
    for (size_t k = 0, o = 0; k < 3; o += sizes[k++]) {
      softmax_truth(x + o, sizes[k], sigma, block_p, block_jac);
      for (size_t j = 0; j < sizes[k]; j++) {
        prob[o + j] = block_p[j];
        for (size_t i = 0; i < sizes[k]; i++) jac[(o + j) * n + o + i] = block_jac[j * sizes[k] + i];
      }
    }
    pt_ref_expect_truth(ref.value, ref.value_se, prob, n, "softmax per segment");
    pt_ref_expect_truth(ref.jac, ref.jac_se, jac, n * n, "block-diagonal softmax jacobian");
  }
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(perturbed, gumbel_segments_are_softmax_per_segment) { check_segments(PT_NOISE_GUMBEL); }
Test(perturbed, normal_segments_match_the_reference) { check_segments(PT_NOISE_NORMAL); }

/* Exact ties: x + sigma z rounds to x for every sample when all x are 1e9 (an ulp is 64), and
   the argmax rule gives the first index, so the perturbed normal argmax is exactly e_0, on
   every ISA, for short rows (several samples per vector) and long ones (with a tail). */
Test(perturbed, normal_argmax_ties_take_the_first_index) {
  const size_t lengths[3] = {5, 45, 100};
  float x[100], y[100];
  for (size_t i = 0; i < 100; i++) x[i] = 1e9f;
  for (size_t k = 0; k < 3; k++) {
    const size_t n = lengths[k];
    pt_fn *am = NULL;
    cr_assert_eq(pt_fn_argmax_one_hot(n, &am), PT_OK);
    pt_fn *p = perturbed(am, 500, 0.3f, PT_NOISE_NORMAL, 1);
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      cr_assert_eq(pt_fn_eval(p, pt_key_make(3), x, y), PT_OK);
      for (size_t i = 0; i < n; i++)
        cr_assert_eq(y[i], i == 0 ? 1.0f : 0.0f, "d %zu on %s: y[%zu] = %g", n,
                     pt_isa_name((pt_isa)isa), i, (double)y[i]);
    }
    pt_fn_free(p);
    pt_fn_free(am);
  }
}

/* ---- perturbed ranks: against pt_ref_rank_truth ----------------------------------------- */

static void check_ranks(int builtin, pt_noise noise, int baseline) {
  size_t d = 4;
  const float x[4] = {0.3f, -0.5f, 0.9f, 0.0f};
  const float sigma = 0.7f;
  const size_t m = 20000;
  const pt_key key = pt_key_make(77);
  point_fn pf = {rank_point, d, d, &d, 0, 0};
  pt_fn *f = NULL;
  if (builtin) cr_assert_eq(pt_fn_ranking(d, &f), PT_OK);
  else f = black_box(&pf);
  pt_fn *p = perturbed(f, m, sigma, noise, baseline);
  pt_ref_estimate ref;
  expect_matches_reference(p, &pf, m, sigma, noise, baseline, key, x, 0, &ref);
  double r[4], jac[16];
  pt_ref_rank_truth(x, d, sigma, noise, r, jac, d);
  pt_ref_expect_truth(ref.value, ref.value_se, r, d, "expected ranks");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, d * d, "rank jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(perturbed, gumbel_ranks_are_sums_of_sigmoids) { check_ranks(0, PT_NOISE_GUMBEL, 1); }
Test(perturbed, normal_ranks_are_sums_of_phi) { check_ranks(0, PT_NOISE_NORMAL, 1); }
Test(perturbed, builtin_gumbel_ranks) { check_ranks(1, PT_NOISE_GUMBEL, 1); }
Test(perturbed, builtin_normal_ranks_without_baseline) { check_ranks(1, PT_NOISE_NORMAL, 0); }

/* ---- perturbed linear map: Jacobian A; value A x + c (+ s gamma A 1 for Gumbel, E G = gamma) */

static const float a23[6] = {1.5f, -2.0f, 0.25f, 3.0f, 0.5f, -1.0f};
static const float c2[2] = {0.125f, -4.0f};

static void check_linear(pt_noise noise) {
  const affine l = {3, 2, a23, c2};
  point_fn pf = {affine_point, 3, 2, &l, 0, 0};
  pt_fn *f = black_box(&pf);
  const float x[3] = {0.5f, -1.0f, 2.0f}, sigma = 0.3f;
  const size_t m = 100000;
  pt_fn *p = perturbed(f, m, sigma, noise, 1);
  pt_ref_estimate ref;
  expect_matches_reference(p, &pf, m, sigma, noise, 1, pt_key_make(5), x, 0, &ref);
  double value[2], jac[6];
  const double shift = noise == PT_NOISE_GUMBEL ? sigma * EULER_GAMMA : 0.0;
  for (size_t j = 0; j < 2; j++) {
    value[j] = c2[j];
    for (size_t i = 0; i < 3; i++) {
      value[j] += a23[j * 3 + i] * ((double)x[i] + shift);
      jac[j * 3 + i] = a23[j * 3 + i];
    }
  }
  pt_ref_expect_truth(ref.value, ref.value_se, value, 2, "A x + c");
  pt_ref_expect_truth(ref.jac, ref.jac_se, jac, 6, "A");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(perturbed, linear_map_gumbel) { check_linear(PT_NOISE_GUMBEL); }
Test(perturbed, linear_map_normal) { check_linear(PT_NOISE_NORMAL); }

/* ---- Hessian of 0.5 |x|^2: the identity, for both noises; gradient x (+ s gamma) -------- */

static void check_hessian(pt_noise noise, int baseline) {
  size_t n = 3;
  point_fn pf = {half_square_point, n, 1, &n, 0, 0};
  pt_fn *f = black_box(&pf);
  const float x[3] = {0.2f, -0.1f, 0.3f}, sigma = 0.5f;
  const size_t m = 200000;
  const pt_key key = pt_key_make(99);
  pt_fn *p = perturbed(f, m, sigma, noise, baseline);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_estimate_run(half_square_point, &n, n, 1, m, sigma, noise, baseline, key, x, &ref), 0);
  float hess[9], value, grad[3], y;
  cr_assert_eq(pt_fn_hessian(p, key, x, hess), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(p, key, x, &value, grad), PT_OK);
  cr_assert_eq(pt_fn_eval(p, key, x, &y), PT_OK);
  cr_assert(memcmp(&y, &value, sizeof y) == 0, "value_and_grad's value is eval's");
  pt_ref_expect_near(hess, ref.hess, 9, 1e-5, 1e-5, "hessian");
  pt_ref_expect_near(grad, ref.jac, 3, 1e-5, 1e-6, "gradient");
  const double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  double gradient[3];
  for (size_t i = 0; i < 3; i++) gradient[i] = x[i] + (noise == PT_NOISE_GUMBEL ? sigma * EULER_GAMMA : 0);
  pt_ref_expect_truth(ref.hess, ref.hess_se, identity, 9, "hessian");
  pt_ref_expect_truth(ref.jac, ref.jac_se, gradient, 3, "gradient");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(perturbed, hessian_of_half_square_gumbel) { check_hessian(PT_NOISE_GUMBEL, 1); }
Test(perturbed, hessian_of_half_square_normal) { check_hessian(PT_NOISE_NORMAL, 1); }
Test(perturbed, hessian_of_half_square_gumbel_without_baseline) { check_hessian(PT_NOISE_GUMBEL, 0); }
Test(perturbed, hessian_of_half_square_normal_without_baseline) { check_hessian(PT_NOISE_NORMAL, 0); }

/* ---- derivatives of one key agree: vjp = J^T y_bar, jvp = J x_dot --------------------------- */

static void check_vjp_jvp(const pt_fn *p, pt_key key, const float *x) {
  const size_t n_in = pt_fn_n_in(p), n_out = pt_fn_n_out(p);
  float *jac = malloc(n_in * n_out * sizeof *jac), *y_bar = malloc(n_out * sizeof *y_bar);
  float *x_dot = malloc(n_in * sizeof *x_dot), *x_bar = malloc(n_in * sizeof *x_bar);
  float *y_dot = malloc(n_out * sizeof *y_dot);
  cr_assert(jac && y_bar && x_dot && x_bar && y_dot);
  for (size_t j = 0; j < n_out; j++) y_bar[j] = (float)j * 0.5f - 1.0f;
  for (size_t i = 0; i < n_in; i++) x_dot[i] = 1.0f - (float)i * 0.25f;
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  cr_assert_eq(pt_fn_vjp(p, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(p, key, x, x_dot, y_dot), PT_OK);
  for (size_t i = 0; i < n_in; i++) {
    double s = 0, size = 0;
    for (size_t j = 0; j < n_out; j++) {
      s += (double)jac[j * n_in + i] * y_bar[j];
      size += fabs((double)jac[j * n_in + i] * y_bar[j]);
    }
    cr_assert(fabs(x_bar[i] - s) <= 1e-5 * size + 1e-6, "vjp[%zu] %.9g, J^T y_bar %.9g", i,
              (double)x_bar[i], s);
  }
  for (size_t j = 0; j < n_out; j++) {
    double s = 0, size = 0;
    for (size_t i = 0; i < n_in; i++) {
      s += (double)jac[j * n_in + i] * x_dot[i];
      size += fabs((double)jac[j * n_in + i] * x_dot[i]);
    }
    cr_assert(fabs(y_dot[j] - s) <= 1e-5 * size + 1e-6, "jvp[%zu] %.9g, J x_dot %.9g", j,
              (double)y_dot[j], s);
  }
  free(jac);
  free(y_bar);
  free(x_dot);
  free(x_bar);
  free(y_dot);
}

Test(perturbed, vjp_and_jvp_are_the_jacobian_of_the_same_samples) {
  size_t d = 7;
  point_fn pf = {rank_point, d, d, &d, 0, 0};
  pt_fn *f = black_box(&pf), *am = NULL, *rk = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(d, &am), PT_OK);
  cr_assert_eq(pt_fn_ranking(d, &rk), PT_OK);
  const float x[7] = {0.1f, 0.4f, -0.3f, 0.0f, 0.2f, 1.0f, -0.5f};
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++)
    for (int baseline = 0; baseline < 2; baseline++) {
      const pt_fn *fs[3] = {f, am, rk};
      for (size_t k = 0; k < 3; k++) {
        pt_fn *p = perturbed(fs[k], 3000, 0.3f, (pt_noise)noise, baseline);
        check_vjp_jvp(p, pt_key_make(11 + k), x);
        pt_fn_free(p);
      }
    }
  pt_fn_free(f);
  pt_fn_free(am);
  pt_fn_free(rk);
}

Test(perturbed, segments_vjp_and_jvp_are_the_jacobian_of_the_same_samples) {
  const size_t sizes[4] = {5, 12, 1, 19};
  pt_fn *seg = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 4, &seg), PT_OK);
  float x[37];
  for (size_t i = 0; i < 37; i++) x[i] = (float)((i * 13) % 17) * 0.05f - 0.4f;
  for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++)
    for (int baseline = 0; baseline < 2; baseline++) {
      pt_fn *p = perturbed(seg, 2000, 0.3f, (pt_noise)noise, baseline);
      check_vjp_jvp(p, pt_key_make(4), x);
      pt_fn_free(p);
    }
  pt_fn_free(seg);
}

/* The fused kernels compute the literal samples for ranking (both noises) and for the normal
   argmax, so their values are the generic path's (a black box computing the same function)
   bit for bit.  (The Gumbel argmax uses an equivalent form; its tests allow a few samples.) */
Test(perturbed, fused_values_are_the_generic_values) {
  size_t d = 23;
  point_fn ranks = {rank_point, d, d, &d, 0, 0}, onehot = {pt_ref_argmax_point, d, d, &d, 0, 0};
  pt_fn *box_rank = black_box(&ranks), *box_argmax = black_box(&onehot), *rk = NULL, *am = NULL;
  cr_assert_eq(pt_fn_ranking(d, &rk), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot(d, &am), PT_OK);
  float x[23];
  for (size_t i = 0; i < d; i++) x[i] = (float)((i * 5) % 11) * 0.1f - 0.5f;
  const struct { const pt_fn *fused, *generic; pt_noise noise; } pairs[3] = {
      {rk, box_rank, PT_NOISE_GUMBEL}, {rk, box_rank, PT_NOISE_NORMAL}, {am, box_argmax, PT_NOISE_NORMAL}};
  for (size_t k = 0; k < 3; k++) {
    pt_fn *pf = perturbed(pairs[k].fused, 3001, 0.4f, pairs[k].noise, 1);
    pt_fn *pg = perturbed(pairs[k].generic, 3001, 0.4f, pairs[k].noise, 1);
    float yf[23], yg[23];
    cr_assert_eq(pt_fn_eval(pf, pt_key_make(31), x, yf), PT_OK);
    cr_assert_eq(pt_fn_eval(pg, pt_key_make(31), x, yg), PT_OK);
    cr_assert(memcmp(yf, yg, sizeof yf) == 0, "pair %zu", k);
    pt_fn_free(pf);
    pt_fn_free(pg);
  }
  pt_fn_free(rk);
  pt_fn_free(am);
  pt_fn_free(box_rank);
  pt_fn_free(box_argmax);
}

/* ---- batches and keys --------------------------------------------------------------------------- */

Test(perturbed, eval_batch_rows_are_evals_with_folded_keys) {
  size_t d = 6;
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_ranking(d, &f), PT_OK);
  pt_fn *p = perturbed(f, 500, 0.4f, PT_NOISE_NORMAL, 1);
  float x[3 * 6], y[3 * 6], one[6];
  for (size_t i = 0; i < 18; i++) x[i] = (float)((i * 7) % 11) * 0.1f;
  const pt_key key = pt_key_make(3);
  cr_assert_eq(pt_fn_eval_batch(p, key, 3, x, y), PT_OK);
  for (size_t b = 0; b < 3; b++) {
    cr_assert_eq(pt_fn_eval(p, pt_key_fold_in(key, b), x + b * d, one), PT_OK);
    cr_assert(memcmp(one, y + b * d, sizeof one) == 0, "row %zu", b);
  }
  pt_fn_free(p);
  pt_fn_free(f);
}

/* A loss on a perturbed argmax: the composition's value is the loss of the perturbed value
   (one random part: it draws with the call's own key), and its gradient estimates that of
   L(softmax(x / s)) = 0.5 |softmax(x / s) - t|^2. */
static int loss_eval(void *user, size_t batch, const float *y, float *out) {
  const float *t = user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0;
    for (size_t i = 0; i < 4; i++) s += 0.5 * ((double)y[b * 4 + i] - t[i]) * ((double)y[b * 4 + i] - t[i]);
    out[b] = (float)s;
  }
  return 0;
}
static int loss_vjp(void *user, const float *y, const float *y_bar, float *x_bar) {
  const float *t = user;
  for (size_t i = 0; i < 4; i++) x_bar[i] = (y[i] - t[i]) * y_bar[0];
  return 0;
}

Test(perturbed, loss_of_perturbed_argmax_has_the_softmax_gradient) {
  float target[4] = {0, 1, 0, 0};
  const float x[4] = {0.3f, -0.2f, 0.8f, 0.0f}, sigma = 0.5f;
  const size_t m = 40000;
  const pt_key key = pt_key_make(8);
  pt_fn *am = NULL, *loss = NULL, *total = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(4, &am), PT_OK);
  cr_assert_eq(pt_custom_gradient(4, 1, loss_eval, loss_vjp, target, &loss), PT_OK);
  pt_fn *p = perturbed(am, m, sigma, PT_NOISE_GUMBEL, 1);
  cr_assert_eq(pt_fn_compose(loss, p, &total), PT_OK);
  float value, grad[4], y[4], l;
  cr_assert_eq(pt_fn_value_and_grad(total, key, x, &value, grad), PT_OK);
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  loss_eval(target, 1, y, &l);
  cr_assert(memcmp(&l, &value, sizeof l) == 0, "value %a, loss of the perturbed value %a", (double)value, (double)l);
  /* gradient: J^T (p_hat - t) with J the perturbed Jacobian of the same samples */
  float jac[16];
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  double prob[4], truth_jac[16], truth[4];
  softmax_truth(x, 4, sigma, prob, truth_jac);
  for (size_t i = 0; i < 4; i++) {
    double s = 0, t = 0;
    for (size_t j = 0; j < 4; j++) {
      s += (double)jac[j * 4 + i] * (y[j] - target[j]);
      t += truth_jac[j * 4 + i] * (prob[j] - target[j]);
    }
    truth[i] = t;
    cr_assert(fabs(grad[i] - s) <= 1e-5 * fabs(s) + 1e-6, "grad[%zu] %.9g, J^T(y - t) %.9g", i, (double)grad[i], s);
    /* Per sample, (Y - b) has at most two entries, +-1, and E g^2 = 1: the gradient's terms
       have a standard deviation below 2 max|p - t| / s; p_hat adds at most
       |J| 5 sqrt(p (1 - p) / M) per entry, |J| <= 1 / (2 s). */
    double worst = 0;
    for (size_t j = 0; j < 4; j++) worst = fmax(worst, fabs(prob[j] - target[j]));
    const double tol = 5 * (2 * worst / sigma + 4 * 0.5 / (2 * sigma)) / sqrt((double)m);
    cr_assert(fabs(grad[i] - truth[i]) <= tol, "grad[%zu] %.6g, analytic %.6g, tolerance %.3g", i,
              (double)grad[i], truth[i], tol);
  }
  pt_fn_free(total);
  pt_fn_free(p);
  pt_fn_free(loss);
  pt_fn_free(am);
}

/* Several random parts: part p (inner first) draws with pt_key_fold_in(key, p). */
Test(perturbed, composed_random_parts_get_folded_keys) {
  pt_fn *am = NULL, *rk = NULL, *both = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(5, &am), PT_OK);
  cr_assert_eq(pt_fn_ranking(5, &rk), PT_OK);
  pt_fn *pa = perturbed(am, 300, 0.5f, PT_NOISE_GUMBEL, 1);
  pt_fn *pr = perturbed(rk, 200, 0.2f, PT_NOISE_NORMAL, 0);
  cr_assert_eq(pt_fn_compose(pr, pa, &both), PT_OK);
  const float x[5] = {0.1f, 0.5f, 0.2f, -0.3f, 0.45f};
  const pt_key key = pt_key_make(1234);
  float got[5], mid[5], want[5];
  cr_assert_eq(pt_fn_eval(both, key, x, got), PT_OK);
  cr_assert_eq(pt_fn_eval(pa, pt_key_fold_in(key, 0), x, mid), PT_OK);
  cr_assert_eq(pt_fn_eval(pr, pt_key_fold_in(key, 1), mid, want), PT_OK);
  cr_assert(memcmp(got, want, sizeof got) == 0);
  /* and the chain rule holds with the same keys */
  float y_bar[5] = {1, -1, 0.5f, 0, 2}, g[5], mid_bar[5], want_g[5];
  cr_assert_eq(pt_fn_vjp(both, key, x, y_bar, g), PT_OK);
  cr_assert_eq(pt_fn_vjp(pr, pt_key_fold_in(key, 1), mid, y_bar, mid_bar), PT_OK);
  cr_assert_eq(pt_fn_vjp(pa, pt_key_fold_in(key, 0), x, mid_bar, want_g), PT_OK);
  cr_assert(memcmp(g, want_g, sizeof g) == 0);
  /* the jvp, forward through the same keys */
  const float x_dot[5] = {1, -0.5f, 0.25f, 2, -1};
  float y_dot[5], mid_dot[5], want_dot[5];
  cr_assert_eq(pt_fn_jvp(both, key, x, x_dot, y_dot), PT_OK);
  cr_assert_eq(pt_fn_jvp(pa, pt_key_fold_in(key, 0), x, x_dot, mid_dot), PT_OK);
  cr_assert_eq(pt_fn_jvp(pr, pt_key_fold_in(key, 1), mid, mid_dot, want_dot), PT_OK);
  cr_assert(memcmp(y_dot, want_dot, sizeof y_dot) == 0);
  /* the Jacobian, the product of the parts' (each entry summed in double over the middle index,
     as test_fn.c's compose_chain_rule_exact) */
  float jac[25], ja[25], jr[25], want_jac[25];
  cr_assert_eq(pt_fn_jacobian(both, key, x, jac), PT_OK);
  cr_assert_eq(pt_fn_jacobian(pa, pt_key_fold_in(key, 0), x, ja), PT_OK);
  cr_assert_eq(pt_fn_jacobian(pr, pt_key_fold_in(key, 1), mid, jr), PT_OK);
  for (size_t j = 0; j < 5; j++)
    for (size_t i = 0; i < 5; i++) {
      double s = 0;
      for (size_t k = 0; k < 5; k++) s += (double)jr[j * 5 + k] * (double)ja[k * 5 + i];
      want_jac[j * 5 + i] = (float)s;
    }
  cr_assert(memcmp(jac, want_jac, sizeof jac) == 0, "the Jacobian is not the product of the parts'");
  pt_fn_free(both);
  pt_fn_free(pa);
  pt_fn_free(pr);
  pt_fn_free(am);
  pt_fn_free(rk);
}

/* The numbering of random parts does not depend on the bracketing: p3 o (p2 o p1) and
   (p3 o p2) o p1 both give part p the key pt_key_fold_in(key, p - 1). */
Test(perturbed, random_parts_numbered_whatever_the_bracketing) {
  pt_fn *am = NULL, *rk = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(4, &am), PT_OK);
  cr_assert_eq(pt_fn_ranking(4, &rk), PT_OK);
  pt_fn *p1 = perturbed(am, 100, 0.5f, PT_NOISE_GUMBEL, 1);
  pt_fn *p2 = perturbed(rk, 100, 0.3f, PT_NOISE_NORMAL, 1);
  pt_fn *p3 = perturbed(am, 100, 0.4f, PT_NOISE_NORMAL, 0);
  pt_fn *c21 = NULL, *right = NULL, *c32 = NULL, *left = NULL;
  cr_assert_eq(pt_fn_compose(p2, p1, &c21), PT_OK);
  cr_assert_eq(pt_fn_compose(p3, c21, &right), PT_OK);
  cr_assert_eq(pt_fn_compose(p3, p2, &c32), PT_OK);
  cr_assert_eq(pt_fn_compose(c32, p1, &left), PT_OK);
  const float x[4] = {0.2f, -0.1f, 0.3f, 0.0f};
  const pt_key key = pt_key_make(77);
  float u[4], v[4], want[4], got[4];
  cr_assert_eq(pt_fn_eval(p1, pt_key_fold_in(key, 0), x, u), PT_OK);
  cr_assert_eq(pt_fn_eval(p2, pt_key_fold_in(key, 1), u, v), PT_OK);
  cr_assert_eq(pt_fn_eval(p3, pt_key_fold_in(key, 2), v, want), PT_OK);
  cr_assert_eq(pt_fn_eval(right, key, x, got), PT_OK);
  cr_assert(memcmp(got, want, sizeof got) == 0, "p3 o (p2 o p1)");
  cr_assert_eq(pt_fn_eval(left, key, x, got), PT_OK);
  cr_assert(memcmp(got, want, sizeof got) == 0, "(p3 o p2) o p1");
  pt_fn *fs[9] = {right, c21, left, c32, p1, p2, p3, am, rk};
  for (size_t k = 0; k < 9; k++) pt_fn_free(fs[k]);
}

/* A perturbed function of a random function: sample m of the inner one is row m of a batch
   with pt_key_fold_in(key, 0), and its baseline is row M (the unperturbed x), so the value is
   the mean of rows 0 .. M-1 and the vjp is (1/(M s)) sum_m ((Y_m - Y_M) . y_bar) z_m.  M spans
   several of the generic path's tiles. */
Test(perturbed, perturbing_a_random_function) {
  enum { M = 3000, N = 3 };
  const float sigma = 0.25f, x[N] = {0.2f, 0.1f, -0.1f}, y_bar[N] = {1.0f, -0.5f, 0.25f};
  pt_fn *am = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(N, &am), PT_OK);
  pt_fn *inner = perturbed(am, 20, 0.5f, PT_NOISE_GUMBEL, 1);
  pt_fn *outer = perturbed(inner, M, sigma, PT_NOISE_NORMAL, 1);
  const pt_key key = pt_key_make(6);
  float *z = malloc(M * N * sizeof *z), *xt = malloc((M + 1) * N * sizeof *xt);
  float *rows = malloc((M + 1) * N * sizeof *rows);
  cr_assert(z && xt && rows);
  cr_assert_eq(pt_noise_fill(PT_NOISE_NORMAL, key, 0, z, M * N), PT_OK);
  for (size_t k = 0; k < M * N; k++) {
    const float step = sigma * z[k];
    xt[k] = x[k % N] + step;
  }
  memcpy(xt + M * N, x, sizeof x);
  cr_assert_eq(pt_fn_eval_batch(inner, pt_key_fold_in(key, 0), M + 1, xt, rows), PT_OK);
  float y[N], g[N];
  cr_assert_eq(pt_fn_eval(outer, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_vjp(outer, key, x, y_bar, g), PT_OK);
  double want[N] = {0}, size[N] = {0}, mean[N] = {0};
  for (size_t m = 0; m < M; m++) {
    double c = 0;
    for (size_t j = 0; j < N; j++) {
      c += ((double)rows[m * N + j] - rows[M * N + j]) * y_bar[j];
      mean[j] += rows[m * N + j];
    }
    for (size_t i = 0; i < N; i++) {
      want[i] += c * z[m * N + i];
      size[i] += fabs(c * z[m * N + i]);
    }
  }
  for (size_t i = 0; i < N; i++) {
    cr_assert_eq(y[i], (float)(mean[i] / M), "value %zu", i);
    want[i] /= (double)M * sigma;
    size[i] /= (double)M * sigma;
    cr_assert(fabs(g[i] - want[i]) <= 1e-5 * size[i] + 1e-7, "vjp[%zu] %.9g, by hand %.9g", i,
              (double)g[i], want[i]);
  }
  free(z);
  free(xt);
  free(rows);
  pt_fn_free(outer);
  pt_fn_free(inner);
  pt_fn_free(am);
}

/* ---- bad inputs: a status, nothing written, the object still usable ------------------------- */

static void poison(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = -99.0f;
}
static void expect_untouched(const float *p, size_t n) {
  for (size_t i = 0; i < n; i++) cr_assert_eq(p[i], -99.0f, "output %zu was written", i);
}

Test(perturbed, bad_construction) {
  pt_fn *f = NULL, *p = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(4, &f), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(NULL, 10, 0.1f, PT_NOISE_GUMBEL, 1, &p), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, 10, 0.1f, PT_NOISE_GUMBEL, 1, NULL), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, 0, 0.1f, PT_NOISE_GUMBEL, 1, &p), PT_EINVAL);
  const float bad_sigma[] = {0.0f, -0.0f, -1.0f, NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof bad_sigma / sizeof bad_sigma[0]; i++)
    cr_assert_eq(pt_make_perturbed_fun(f, 10, bad_sigma[i], PT_NOISE_NORMAL, 1, &p), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, 10, 0.1f, PT_NOISE_UNIFORM, 1, &p), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, 10, 0.1f, (pt_noise)7, 1, &p), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, 10, 0.1f, (pt_noise)-1, 1, &p), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(f, SIZE_MAX / 2, 0.1f, PT_NOISE_GUMBEL, 1, &p), PT_EOVERFLOW);
#if SIZE_MAX >= UINT64_MAX
  /* num_samples * n_in = 2^64 is refused, one sample fewer is not (n_in = 4) */
  cr_assert_eq(pt_make_perturbed_fun(f, (size_t)1 << 62, 0.1f, PT_NOISE_GUMBEL, 1, &p), PT_EOVERFLOW);
  cr_assert_null(p);
  cr_assert_eq(pt_make_perturbed_fun(f, ((size_t)1 << 62) - 1, 0.1f, PT_NOISE_GUMBEL, 1, &p), PT_OK);
  pt_fn_free(p);
  p = NULL;
#endif
  cr_assert_null(p);
  pt_fn_free(f);
}

/* Argmax one-hot twice: as a black box (the generic, tiled path) and as the built-in (fused). */
typedef struct argmax_paths {
  size_t d;
  point_fn pf;
  pt_fn *fn[2];
} argmax_paths;

static void argmax_paths_make(argmax_paths *a, size_t d) {
  a->d = d;
  a->pf = (point_fn){pt_ref_argmax_point, d, d, &a->d, 0, 0};
  a->fn[0] = black_box(&a->pf);
  cr_assert_eq(pt_fn_argmax_one_hot(d, &a->fn[1]), PT_OK);
}

static void argmax_paths_free(argmax_paths *a) {
  pt_fn_free(a->fn[0]);
  pt_fn_free(a->fn[1]);
}

Test(perturbed, bad_calls_write_nothing) {
  argmax_paths a;
  argmax_paths_make(&a, 4);
  for (size_t k = 0; k < 2; k++) {
    pt_fn *p = perturbed(a.fn[k], 100, 0.5f, PT_NOISE_GUMBEL, 1);
    const pt_key key = pt_key_make(1);
    const float ok_x[4] = {1, 2, 3, 4};
    const float bad[4][4] = {{NAN, 0, 0, 0}, {0, INFINITY, 0, 0}, {0, 0, -INFINITY, 0}, {0, 0, 0, -NAN}};
    float out[16];
    for (size_t b = 0; b < 4; b++) {
      poison(out, 16);
      cr_assert_eq(pt_fn_eval(p, key, bad[b], out), PT_EINVAL);
      cr_assert_eq(pt_fn_eval_batch(p, key, 1, bad[b], out), PT_EINVAL);
      cr_assert_eq(pt_fn_vjp(p, key, bad[b], ok_x, out), PT_EINVAL);
      cr_assert_eq(pt_fn_jvp(p, key, bad[b], ok_x, out), PT_EINVAL);
      cr_assert_eq(pt_fn_jacobian(p, key, bad[b], out), PT_EINVAL);
      expect_untouched(out, 16);
    }
    /* a NaN in the second row of a batch: the first row is not written either */
    float two[8] = {1, 2, 3, 4, 1, NAN, 3, 4};
    poison(out, 16);
    cr_assert_eq(pt_fn_eval_batch(p, key, 2, two, out), PT_EINVAL);
    expect_untouched(out, 16);
    cr_assert_eq(pt_fn_hessian(p, key, ok_x, out), PT_EUNSUPPORTED, "n_out is 4");
    float v;
    cr_assert_eq(pt_fn_value_and_grad(p, key, ok_x, &v, out), PT_EINVAL, "n_out is 4");
    expect_untouched(out, 16);
    cr_assert_eq(pt_fn_eval(p, key, ok_x, out), PT_OK);
    pt_fn_free(p);
  }
  argmax_paths_free(&a);
}

/* An output may be the memory of an input (results are made in scratch memory and copied out
   at the end): in-place calls give the bits of out-of-place ones, on the generic and the fused
   paths. */
static void expect_bits(const float *got, const float *want, size_t n, const char *what) {
  cr_assert(memcmp(got, want, n * sizeof *got) == 0, "%s: not the out-of-place bits", what);
}

Test(perturbed, outputs_may_overwrite_inputs) {
  const size_t d = 5;
  argmax_paths a;
  argmax_paths_make(&a, d);
  const float x[5] = {0.3f, -1.0f, 0.25f, 0.0f, 0.5f}, v[5] = {1.0f, -2.0f, 0.5f, 3.0f, -0.25f};
  const pt_key key = pt_key_make(9);
  for (size_t k = 0; k < 2; k++) {
    pt_fn *p = perturbed(a.fn[k], 300, 0.5f, PT_NOISE_GUMBEL, 1);
    float want[3][5], io[5];
    cr_assert_eq(pt_fn_eval(p, key, x, want[0]), PT_OK);
    cr_assert_eq(pt_fn_vjp(p, key, x, v, want[1]), PT_OK);
    cr_assert_eq(pt_fn_jvp(p, key, x, v, want[2]), PT_OK);
    memcpy(io, x, sizeof io);
    cr_assert_eq(pt_fn_eval(p, key, io, io), PT_OK);
    expect_bits(io, want[0], d, "eval, y over x");
    memcpy(io, x, sizeof io);
    cr_assert_eq(pt_fn_vjp(p, key, io, v, io), PT_OK);
    expect_bits(io, want[1], d, "vjp, x_bar over x");
    memcpy(io, v, sizeof io);
    cr_assert_eq(pt_fn_vjp(p, key, x, io, io), PT_OK);
    expect_bits(io, want[1], d, "vjp, x_bar over y_bar");
    memcpy(io, v, sizeof io);
    cr_assert_eq(pt_fn_jvp(p, key, x, io, io), PT_OK);
    expect_bits(io, want[2], d, "jvp, y_dot over x_dot");
    pt_fn_free(p);
  }
  argmax_paths_free(&a);
}

Test(perturbed, failing_callback_writes_nothing) {
  size_t d = 3;
  point_fn pf = {pt_ref_argmax_point, d, d, &d, 0, 0};
  pt_fn *f = black_box(&pf);
  pt_fn *p = perturbed(f, 5000, 0.5f, PT_NOISE_GUMBEL, 1);
  const float x[3] = {0.1f, 0.2f, 0.3f};
  float out[9];
  const int fail_at[] = {1, 2, 4}; /* jacobian: the baseline, the first tile, a later one */
  for (size_t k = 0; k < 3; k++) {
    pf.fail = fail_at[k];
    pf.calls = 0;
    poison(out, 9);
    cr_assert_eq(pt_fn_jacobian(p, pt_key_make(0), x, out), PT_ECALLBACK);
    pf.calls = 0;
    cr_assert_eq(pt_fn_vjp(p, pt_key_make(0), x, x, out), PT_ECALLBACK);
    pf.calls = 0;
    cr_assert_eq(pt_fn_eval(p, pt_key_make(0), x, out), PT_ECALLBACK);
    expect_untouched(out, 9);
  }
  pf.fail = 0;
  cr_assert_eq(pt_fn_eval(p, pt_key_make(0), x, out), PT_OK);
  pt_fn_free(p);
  pt_fn_free(f);
}

/* ---- threads and ISAs ----------------------------------------------------------------------- */

typedef struct job {
  const pt_fn *p;
  const float *x;
  const float *want_y, *want_g;
  int ok;
} job;

static void *job_body(void *arg) {
  job *j = arg;
  float y[6], g[6];
  j->ok = 1;
  for (int i = 0; i < 20 && j->ok; i++)
    j->ok = pt_fn_eval(j->p, pt_key_make(42), j->x, y) == PT_OK &&
            pt_fn_vjp(j->p, pt_key_make(42), j->x, j->x, g) == PT_OK &&
            memcmp(y, j->want_y, sizeof y) == 0 && memcmp(g, j->want_g, sizeof g) == 0;
  return NULL;
}

Test(perturbed, threads_share_one_perturbed_function) {
  size_t d = 6;
  point_fn pf = {rank_point, d, d, &d, 0, 0};
  pt_fn *f = black_box(&pf), *am = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(d, &am), PT_OK);
  const pt_fn *fs[2] = {f, am};
  const float x[6] = {0.3f, 0.1f, -0.2f, 0.25f, 0.0f, 0.5f};
  for (size_t k = 0; k < 2; k++) {
    pt_fn *p = perturbed(fs[k], 2000, 0.3f, PT_NOISE_GUMBEL, 1);
    float y[6], g[6];
    cr_assert_eq(pt_fn_eval(p, pt_key_make(42), x, y), PT_OK);
    cr_assert_eq(pt_fn_vjp(p, pt_key_make(42), x, x, g), PT_OK);
    enum { N = 4 };
    pthread_t t[N];
    job jobs[N];
    for (int i = 0; i < N; i++) {
      jobs[i] = (job){p, x, y, g, 0};
      cr_assert_eq(pthread_create(&t[i], NULL, job_body, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
      pthread_join(t[i], NULL);
      cr_assert(jobs[i].ok, "thread %d", i);
    }
    pt_fn_free(p);
  }
  pt_fn_free(am);
  pt_fn_free(f);
}

/* Every supported ISA gives the same bits for every operation, generic and fused paths. */
Test(perturbed, bitwise_identical_across_isas) {
  size_t d = 37, one = 5;
  point_fn pf = {rank_point, d, d, &d, 0, 0}, hs = {half_square_point, one, 1, &one, 0, 0};
  pt_fn *fs[5];
  fs[0] = black_box(&pf);
  fs[1] = black_box(&hs);
  cr_assert_eq(pt_fn_argmax_one_hot(d, &fs[2]), PT_OK);
  cr_assert_eq(pt_fn_ranking(d, &fs[3]), PT_OK);
  const size_t sizes[4] = {5, 12, 1, 19};
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 4, &fs[4]), PT_OK);
  float x[37], v[37];
  for (size_t i = 0; i < d; i++) {
    x[i] = (float)((i * 13) % 17) * 0.05f - 0.4f;
    v[i] = (float)((i * 5) % 7) * 0.25f - 0.5f;
  }
  for (size_t k = 0; k < 5; k++)
    for (int noise = PT_NOISE_GUMBEL; noise <= PT_NOISE_NORMAL; noise++) {
      pt_fn *p = perturbed(fs[k], 1000, 0.3f, (pt_noise)noise, 1);
      const size_t n_in = pt_fn_n_in(p), n_out = pt_fn_n_out(p);
      float run[2][4][37 * 38]; /* the first ISA's outputs, then each later one's */
      int have = 0;
      for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
        if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
        float(*out)[37 * 38] = run[have];
        cr_assert_eq(pt_fn_eval(p, pt_key_make(9), x, out[0]), PT_OK);
        cr_assert_eq(pt_fn_vjp(p, pt_key_make(9), x, v, out[1]), PT_OK);
        cr_assert_eq(pt_fn_jvp(p, pt_key_make(9), x, v, out[2]), PT_OK);
        cr_assert_eq(pt_fn_jacobian(p, pt_key_make(9), x, out[3]), PT_OK);
        if (have) {
          cr_assert(memcmp(run[0][0], run[1][0], n_out * sizeof(float)) == 0, "f%zu eval on %s", k, pt_isa_name((pt_isa)isa));
          cr_assert(memcmp(run[0][1], run[1][1], n_in * sizeof(float)) == 0, "f%zu vjp on %s", k, pt_isa_name((pt_isa)isa));
          cr_assert(memcmp(run[0][2], run[1][2], n_out * sizeof(float)) == 0, "f%zu jvp on %s", k, pt_isa_name((pt_isa)isa));
          cr_assert(memcmp(run[0][3], run[1][3], n_out * n_in * sizeof(float)) == 0, "f%zu jacobian on %s", k, pt_isa_name((pt_isa)isa));
        }
        have = 1;
      }
      pt_fn_free(p);
    }
  for (size_t k = 0; k < 5; k++) pt_fn_free(fs[k]);
}

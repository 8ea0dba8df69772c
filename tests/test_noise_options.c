/* SPDX-License-Identifier: MIT */
/* The antithetic and multiplicative options of pt_make_perturbed_fun_ex(3) against independent
   truth: the noise a function is given (pairs of rows from one draw: z and -z, Gumbel from u
   and 1 - u, against pt_noise_fill of the pair's words), closed forms at 5 standard errors
   (multiplicative noise keeps the mean, E[x~] = x, and a linear function's gradient is its
   weights by either estimator; antithetic estimates of the argmax are the softmax and its
   Jacobian), the variance antithetic pairs save (a ratio over many fixed keys, held under a
   bound well clear of its measured value), every path and op split into shards, threads and
   ISAs at the bits of one call, and the refusals.  Keys are fixed: every statistical bound is
   one deterministic run. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"
#include "estimator.h"
#include "gen/isas.h" /* PT_ISA_COUNT */

static pt_perturb_options options(size_t m, float sigma, pt_noise noise, pt_baseline b,
                                  int antithetic, int multiplicative) {
  pt_perturb_options o = pt_ref_score_options(m, sigma, noise, b);
  o.antithetic = antithetic;
  o.multiplicative = multiplicative;
  return o;
}

static int same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

/* ---- black boxes ----------------------------------------------------------------------------- */

/* The rows a function is given, in the order it is given them (one thread: sample order). */
typedef struct recorder {
  size_t n, rows, cap;
  float *x;
} recorder;

static int record(void *user, size_t batch, const float *x, float *y) {
  recorder *r = user;
  for (size_t b = 0; b < batch; b++, r->rows++) {
    if (r->rows < r->cap) memcpy(r->x + r->rows * r->n, x + b * r->n, r->n * sizeof *x);
    y[b] = 0.0f;
  }
  return 0;
}

/* y = w . x (n_out 1), its vjp y_bar w; ctx: the weights, n of them */
enum { LN = 5 };
static const float weights[LN] = {0.75f, -1.5f, 0.25f, 2.0f, -0.5f};

static int linear_eval(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0.0;
    for (size_t i = 0; i < LN; i++) s += (double)weights[i] * x[b * LN + i];
    y[b] = (float)s;
  }
  return 0;
}

static int linear_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  (void)x;
  for (size_t i = 0; i < LN; i++) x_bar[i] = y_bar[0] * weights[i];
  return 0;
}

/* y = x (n_in = n_out = *user) */
static int identity_eval(void *user, size_t batch, const float *x, float *y) {
  memcpy(y, x, batch * *(const size_t *)user * sizeof *y);
  return 0;
}

/* the first argmax of x as a one-hot (n = *user), the built-in's answer */
static int argmax_eval(void *user, size_t batch, const float *x, float *y) {
  const size_t n = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) {
    const float *xb = x + b * n;
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
      if (xb[i] > xb[best]) best = i;
    for (size_t i = 0; i < n; i++) y[b * n + i] = i == best ? 1.0f : 0.0f;
  }
  return 0;
}

/* the max of x (n = *user), its vjp y_bar at the first argmax */
static int max_eval(void *user, size_t batch, const float *x, float *y) {
  const size_t n = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) {
    y[b] = x[b * n];
    for (size_t i = 1; i < n; i++) y[b] = x[b * n + i] > y[b] ? x[b * n + i] : y[b];
  }
  return 0;
}

static int max_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const size_t n = *(const size_t *)user;
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  for (size_t i = 0; i < n; i++) x_bar[i] = i == best ? y_bar[0] : 0.0f;
  return 0;
}

/* y = sum_i x_i^2 / 2 (n = 3), its vjp y_bar x */
static size_t three = 3;

static int half_square_eval(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0.0;
    for (size_t i = 0; i < 3; i++) s += 0.5 * (double)x[b * 3 + i] * x[b * 3 + i];
    y[b] = (float)s;
  }
  return 0;
}

static int half_square_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  for (size_t i = 0; i < 3; i++) x_bar[i] = y_bar[0] * x[i];
  return 0;
}

static pt_fn *box(size_t n_in, size_t n_out, pt_eval_fn f, pt_vjp_fn vjp, void *user,
                  unsigned flags) {
  pt_fn *out = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(n_in, n_out, f, vjp, user, NULL, flags, &out), PT_OK);
  return out;
}

/* ---- statistics over keys -------------------------------------------------------------------- */

/* The mean and its standard error, per entry, of estimates over keys pt_key_make(seed + r). */
typedef struct over_keys {
  size_t n, reps;
  double *mean, *se;
} over_keys;

typedef void (*estimate_fn)(const void *ctx, pt_key key, float *out);

static over_keys run_keys(estimate_fn f, const void *ctx, size_t n, size_t reps, uint64_t seed) {
  over_keys s = {n, reps, calloc(n, sizeof(double)), calloc(n, sizeof(double))};
  float *out = malloc(n * sizeof *out);
  cr_assert(s.mean && s.se && out);
  for (size_t r = 0; r < reps; r++) {
    f(ctx, pt_key_make(seed + r), out);
    for (size_t i = 0; i < n; i++) {
      s.mean[i] += out[i];
      s.se[i] += (double)out[i] * out[i];
    }
  }
  for (size_t i = 0; i < n; i++) {
    const double mean = s.mean[i] / (double)reps;
    const double var = (s.se[i] - (double)reps * mean * mean) / (double)(reps - 1);
    s.mean[i] = mean;
    s.se[i] = sqrt(fmax(var, 0.0) / (double)reps);
  }
  free(out);
  return s;
}

/* the variance of one estimate, summed over the entries */
static double total_variance(const over_keys *s) {
  double v = 0.0;
  for (size_t i = 0; i < s->n; i++) v += s->se[i] * s->se[i] * (double)s->reps;
  return v;
}

static void expect_truth(const over_keys *s, const double *truth, const char *what) {
  for (size_t i = 0; i < s->n; i++)
    cr_assert(fabs(s->mean[i] - truth[i]) <= 5.0 * s->se[i] + 1e-6,
              "%s[%zu]: %.6g +- %.2g over %zu keys, closed form %.6g (%.1f standard errors)",
              what, i, s->mean[i], s->se[i], s->reps, truth[i],
              fabs(s->mean[i] - truth[i]) / s->se[i]);
}

static void over_keys_free(over_keys *s) {
  free(s->mean);
  free(s->se);
}

/* One op of a perturbed function at a point, as an estimate_fn. */
typedef struct op_call {
  const pt_fn *p;
  pt_op op;
  const float *x, *v;
} op_call;

static void call_op(const void *ctx, pt_key key, float *out) {
  const op_call *c = ctx;
  switch (c->op) {
    case PT_OP_EVAL: cr_assert_eq(pt_fn_eval(c->p, key, c->x, out), PT_OK); break;
    case PT_OP_VJP: cr_assert_eq(pt_fn_vjp(c->p, key, c->x, c->v, out), PT_OK); break;
    case PT_OP_JVP: cr_assert_eq(pt_fn_jvp(c->p, key, c->x, c->v, out), PT_OK); break;
    default: cr_assert_eq(pt_fn_jacobian(c->p, key, c->x, out), PT_OK); break;
  }
}

/* ---- the noise of antithetic pairs ----------------------------------------------------------- */

/* With x = 0 and sigma = 1 a function is given the noise itself (0 + 1 z = z): sample 2p is the
   stream's noise at the words of pair p, p*n + i, bit for bit, and sample 2p + 1 its partner,
   -z bit for bit (normal), or -log(-log(1 - u)) of the words' uniforms (Gumbel) within
   pt_noise_fill(3)'s bound; the same bits on every ISA.  n = 7 and M = 300: pairs straddle
   the stream's chunks and the tiles cross a group boundary. */
static void check_pairs(pt_noise noise) {
  enum { N = 7, M = 300 };
  static float rows[M * N], first[M * N], z[N], u[N];
  recorder r = {N, 0, M, rows};
  pt_fn *f = box(N, 1, record, NULL, &r, 0);
  pt_perturb_options o = options(M, 1.0f, noise, PT_BASELINE_NONE, 1, 0);
  pt_fn *p = pt_ref_perturbed(f, &o);
  const pt_key key = pt_key_make(77);
  const float x[N] = {0};
  float y;
  const pt_isa before = pt_isa_active();
  int firsts = 1;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    r.rows = 0;
    cr_assert_eq(pt_fn_eval(p, key, x, &y), PT_OK);
    cr_assert_eq(r.rows, (size_t)M, "every sample once");
    for (size_t pair = 0; pair < M / 2; pair++) {
      cr_assert_eq(pt_noise_fill(noise, key, pair * N, z, N), PT_OK);
      cr_assert_eq(pt_noise_fill(PT_NOISE_UNIFORM, key, pair * N, u, N), PT_OK);
      const float *a = rows + 2 * pair * N, *b = a + N;
      cr_assert(same_bits(a, z, N), "%s: sample %zu is the stream's words of pair %zu",
                pt_isa_name((pt_isa)isa), 2 * pair, pair);
      for (size_t i = 0; i < N; i++) {
        const double partner = noise == PT_NOISE_NORMAL ? -(double)z[i]
                                                        : -log(-log(1.0 - (double)u[i]));
        if (noise == PT_NOISE_NORMAL)
          cr_assert(b[i] == -a[i], "sample %zu input %zu: %a, not -%a", 2 * pair + 1, i, b[i],
                    a[i]);
        else
          cr_assert(fabs(b[i] - partner) <= 1e-6 * fmax(1.0, fabs(partner)),
                    "sample %zu input %zu: %.9g, -log(-log(1 - u)) %.9g", 2 * pair + 1, i, b[i],
                    partner);
      }
    }
    if (!firsts)
      cr_assert(same_bits(rows, first, M * N), "%s: the pairs of the first ISA",
                pt_isa_name((pt_isa)isa));
    memcpy(first, rows, sizeof first);
    firsts = 0;
  }
  pt_isa_select(before);
  pt_fn_free(p);
  pt_fn_free(f);
}

Test(noise_options, antithetic_normal_rows_are_z_and_minus_z) { check_pairs(PT_NOISE_NORMAL); }
Test(noise_options, antithetic_gumbel_rows_are_from_u_and_one_minus_u) {
  check_pairs(PT_NOISE_GUMBEL);
}

/* The fused argmax draws the same pairs: with normal noise its keys are the generic path's
   x + sigma z, so its every op at M = 1000 is the black box's argmax on the same pairs (the
   value exactly; the derivatives, summed in another order, to float rounding). */
Test(noise_options, fused_antithetic_argmax_is_the_black_box_s) {
  static size_t d = 6;
  pt_fn *fused, *bb = box(6, 6, argmax_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_argmax_one_hot(6, &fused), PT_OK);
  pt_perturb_options o = options(1000, 0.5f, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 0);
  pt_fn *pf = pt_ref_perturbed(fused, &o), *pb = pt_ref_perturbed(bb, &o);
  const float x[6] = {0.1f, -0.3f, 0.4f, 0.35f, -1.0f, 0.0f}, x_dot[6] = {1, -2, 0.5f, 3, 1, -1};
  float a[36], b[36];
  const pt_key key = pt_key_make(5);
  cr_assert_eq(pt_fn_eval(pf, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_eval(pb, key, x, b), PT_OK);
  cr_assert(same_bits(a, b, 6), "the values");
  cr_assert_eq(pt_fn_jacobian(pf, key, x, a), PT_OK);
  cr_assert_eq(pt_fn_jacobian(pb, key, x, b), PT_OK);
  for (size_t i = 0; i < 36; i++) cr_assert(fabsf(a[i] - b[i]) <= 1e-5f, "jacobian[%zu]", i);
  cr_assert_eq(pt_fn_jvp(pf, key, x, x_dot, a), PT_OK);
  cr_assert_eq(pt_fn_jvp(pb, key, x, x_dot, b), PT_OK);
  for (size_t i = 0; i < 6; i++) cr_assert(fabsf(a[i] - b[i]) <= 1e-4f, "jvp[%zu]", i);
  pt_fn_free(pf);
  pt_fn_free(pb);
  pt_fn_free(fused);
  pt_fn_free(bb);
}

/* ---- closed forms ---------------------------------------------------------------------------- */

/* softmax(x / sigma) and its Jacobian (diag p - p p^T) / sigma: the Gumbel argmax's */
static void softmax_truth(const float *x, size_t d, double sigma, double *p, double *jac) {
  double mx = x[0], z = 0.0;
  for (size_t i = 1; i < d; i++) mx = fmax(mx, x[i]);
  for (size_t i = 0; i < d; i++) z += p[i] = exp((x[i] - mx) / sigma);
  for (size_t i = 0; i < d; i++) p[i] /= z;
  for (size_t j = 0; j < d; j++)
    for (size_t i = 0; i < d; i++) jac[j * d + i] = ((i == j ? p[i] : 0.0) - p[i] * p[j]) / sigma;
}

/* Antithetic Gumbel pairs leave the argmax's estimates unbiased: the value is the softmax and
   the Jacobian its Jacobian, fused and on the generic path, over 60 keys of M = 1000. */
Test(noise_options, antithetic_argmax_is_the_softmax) {
  static size_t d = 4;
  const float x[4] = {0.3f, -0.2f, 0.5f, 0.1f};
  const float sigma = 0.5f;
  double p[4], jac[16];
  softmax_truth(x, 4, sigma, p, jac);
  pt_fn *fused, *bb = box(4, 4, argmax_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_argmax_one_hot(4, &fused), PT_OK);
  const pt_fn *fs[2] = {fused, bb};
  for (int k = 0; k < 2; k++) {
    pt_perturb_options o = options(1000, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 1, 0);
    pt_fn *pf = pt_ref_perturbed(fs[k], &o);
    op_call value = {pf, PT_OP_EVAL, x, NULL}, jacobian = {pf, PT_OP_JACOBIAN, x, NULL};
    over_keys v = run_keys(call_op, &value, 4, 60, 1000);
    over_keys j = run_keys(call_op, &jacobian, 16, 60, 2000);
    expect_truth(&v, p, k ? "black box value" : "fused value");
    expect_truth(&j, jac, k ? "black box jacobian" : "fused jacobian");
    over_keys_free(&v);
    over_keys_free(&j);
    pt_fn_free(pf);
  }
  pt_fn_free(fused);
  pt_fn_free(bb);
}

/* Multiplicative noise keeps the mean: E[x exp(sigma Z - sigma^2/2)] = x, the identity's value,
   for inputs of either sign; and antithetic pairs with it too. */
Test(noise_options, multiplicative_noise_keeps_the_mean) {
  static size_t n = 5;
  const float x[5] = {1.5f, -0.7f, 2.0f, 0.3f, -1.1f};
  const double truth[5] = {1.5f, -0.7f, 2.0f, 0.3f, -1.1f};
  pt_fn *f = box(5, 5, identity_eval, NULL, &n, PT_CALLBACK_THREAD_SAFE);
  for (int anti = 0; anti < 2; anti++) {
    pt_perturb_options o = options(500, 0.4f, PT_NOISE_NORMAL, PT_BASELINE_F_X, anti, 1);
    pt_fn *p = pt_ref_perturbed(f, &o);
    op_call value = {p, PT_OP_EVAL, x, NULL};
    over_keys v = run_keys(call_op, &value, 5, 60, 300);
    expect_truth(&v, truth, anti ? "antithetic value" : "value");
    /* the spread of one estimate is the lognormal's, |x| sqrt(e^(sigma^2) - 1) / sqrt(M), or
       less with pairs */
    for (size_t i = 0; !anti && i < 5; i++) {
      const double se = fabs(truth[i]) * sqrt(expm1(0.16) / 500.0);
      cr_assert(fabs(v.se[i] * sqrt(60.0) / se - 1.0) < 0.4, "spread[%zu]: %g, lognormal %g", i,
                v.se[i] * sqrt(60.0), se);
    }
    over_keys_free(&v);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* The gradient of w . x under multiplicative noise is w, by the score function (its terms carry
   z_i / (sigma x_i)) with every baseline, and by the pathwise estimator (J diag(w) at each
   sample); the jvp is w . x_dot; with antithetic pairs too. */
Test(noise_options, multiplicative_gradient_of_a_linear_function_is_its_weights) {
  const float x[LN] = {1.2f, -0.8f, 0.5f, 2.5f, -1.5f};
  const float x_dot[LN] = {1.0f, 0.5f, -2.0f, 0.25f, 1.0f};
  const float one = 1.0f;
  double w[LN], dot = 0.0;
  for (size_t i = 0; i < LN; i++) dot += (double)(w[i] = weights[i]) * x_dot[i];
  pt_fn *f = box(LN, 1, linear_eval, linear_vjp, NULL, PT_CALLBACK_THREAD_SAFE);
  const struct {
    pt_baseline baseline;
    pt_gradient gradient;
    int antithetic;
  } cases[] = {
      {PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0},        {PT_BASELINE_NONE, PT_GRADIENT_SCORE, 0},
      {PT_BASELINE_LEAVE_ONE_OUT, PT_GRADIENT_SCORE, 0}, {PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1},
      {PT_BASELINE_F_X, PT_GRADIENT_PATHWISE, 0},     {PT_BASELINE_F_X, PT_GRADIENT_PATHWISE, 1},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    pt_perturb_options o = options(400, 0.3f, PT_NOISE_NORMAL, cases[c].baseline,
                                   cases[c].antithetic, 1);
    o.gradient = cases[c].gradient;
    pt_fn *p = pt_ref_perturbed(f, &o);
    op_call vjp = {p, PT_OP_VJP, x, &one}, jvp = {p, PT_OP_JVP, x, x_dot},
            jac = {p, PT_OP_JACOBIAN, x, NULL};
    over_keys g = run_keys(call_op, &vjp, LN, 40, 500 + 100 * c);
    over_keys t = run_keys(call_op, &jvp, 1, 40, 600 + 100 * c);
    over_keys j = run_keys(call_op, &jac, LN, 40, 700 + 100 * c);
    cr_log_info("case %zu: vjp[0] %.4f +- %.4f", c, g.mean[0], g.se[0]);
    expect_truth(&g, w, "vjp");
    expect_truth(&t, &dot, "jvp");
    expect_truth(&j, w, "jacobian");
    over_keys_free(&g);
    over_keys_free(&t);
    over_keys_free(&j);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* And where d x~ / d x = w matters: for f = sum_i x_i^2 / 2, E f(x W) = e^(sigma^2) f(x) and its
   gradient e^(sigma^2) x (E[W^2] = e^(sigma^2)), by the score function and the pathwise
   estimator (f's gradient x~ at each sample, times w), plain and antithetic. */
Test(noise_options, multiplicative_half_square_is_its_closed_form) {
  const float x[3] = {1.2f, -0.8f, 0.5f}, sigma = 0.3f, one = 1.0f;
  const double grow = exp((double)sigma * sigma);
  double value = 0.0, grad[3];
  for (size_t i = 0; i < 3; i++) {
    value += 0.5 * grow * x[i] * x[i];
    grad[i] = grow * x[i];
  }
  pt_fn *f = box(3, 1, half_square_eval, half_square_vjp, &three, PT_CALLBACK_THREAD_SAFE);
  const struct {
    pt_gradient gradient;
    int antithetic;
  } cases[] = {{PT_GRADIENT_SCORE, 0}, {PT_GRADIENT_SCORE, 1}, {PT_GRADIENT_PATHWISE, 0},
               {PT_GRADIENT_PATHWISE, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    pt_perturb_options o = options(400, sigma, PT_NOISE_NORMAL, PT_BASELINE_F_X,
                                   cases[c].antithetic, 1);
    o.gradient = cases[c].gradient;
    pt_fn *p = pt_ref_perturbed(f, &o);
    op_call eval = {p, PT_OP_EVAL, x, NULL}, vjp = {p, PT_OP_VJP, x, &one},
            jac = {p, PT_OP_JACOBIAN, x, NULL};
    over_keys v = run_keys(call_op, &eval, 1, 40, 900 + 100 * c);
    over_keys g = run_keys(call_op, &vjp, 3, 40, 950 + 100 * c);
    over_keys j = run_keys(call_op, &jac, 3, 40, 980 + 100 * c);
    cr_log_info("case %zu: vjp[0] %.4f +- %.4f, closed form %.4f", c, g.mean[0], g.se[0], grad[0]);
    expect_truth(&v, &value, "value");
    expect_truth(&g, grad, "vjp");
    expect_truth(&j, grad, "jacobian");
    over_keys_free(&v);
    over_keys_free(&g);
    over_keys_free(&j);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* Multiplicative noise runs every built-in on the generic path: the argmax one-hot's every op
   is a black box argmax's bit for bit, and so is the max's (pathwise, the max's Jacobian the
   one-hot at each sample, times w). */
Test(noise_options, multiplicative_built_ins_are_the_black_box_s) {
  static size_t d = 5;
  pt_fn *argmax, *bb = box(5, 5, argmax_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_argmax_one_hot(5, &argmax), PT_OK);
  pt_perturb_options o = options(700, 0.3f, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 1);
  pt_fn *pa = pt_ref_perturbed(argmax, &o), *pb = pt_ref_perturbed(bb, &o);
  const float x[5] = {1.0f, 1.1f, 0.9f, -0.5f, 1.05f}, v[5] = {1, -1, 2, 0.5f, 3};
  float a[25], b[25];
  const pt_key key = pt_key_make(9);
  for (int op = PT_OP_EVAL; op <= PT_OP_JACOBIAN; op++) {
    op_call ca = {pa, (pt_op)op, x, v}, cb = {pb, (pt_op)op, x, v};
    call_op(&ca, key, a);
    call_op(&cb, key, b);
    cr_assert(same_bits(a, b, op == PT_OP_JACOBIAN ? 25 : 5), "argmax op %d", op);
  }
  pt_fn_free(pa);
  pt_fn_free(pb);
  pt_fn *mx, *bm = box(5, 1, max_eval, max_vjp, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_max(5, &mx), PT_OK);
  o.gradient = PT_GRADIENT_PATHWISE;
  pa = pt_ref_perturbed(mx, &o);
  pb = pt_ref_perturbed(bm, &o);
  for (int op = PT_OP_EVAL; op <= PT_OP_JACOBIAN; op++) {
    op_call ca = {pa, (pt_op)op, x, v}, cb = {pb, (pt_op)op, x, v};
    call_op(&ca, key, a);
    call_op(&cb, key, b);
    cr_assert(same_bits(a, b, op == PT_OP_EVAL || op == PT_OP_JVP ? 1 : 5), "max op %d", op);
  }
  pt_fn_free(pa);
  pt_fn_free(pb);
  pt_fn_free(mx);
  pt_fn_free(bm);
  pt_fn_free(argmax);
  pt_fn_free(bb);
}

/* The Fenchel-Young loss takes both options through its perturbed support function: with
   antithetic Gumbel pairs its value is sigma LSE(theta / sigma) + sigma gamma - <theta, y_true>
   and its gradient softmax(theta / sigma) - y_true, at 5 standard errors over 40 keys; with
   multiplicative noise its theta gradient is the perturbed max's pathwise one, E[y* w], minus
   y_true, bit for bit. */
typedef struct loss_call {
  const pt_fn *loss;
  const float *x;
} loss_call;

static void loss_value_and_grad(const void *ctx, pt_key key, float *out) {
  const loss_call *c = ctx;
  cr_assert_eq(pt_fn_value_and_grad(c->loss, key, c->x, out, out + 1), PT_OK);
}

Test(noise_options, fenchel_young_loss_takes_both_options) {
  enum { D = 5 };
  const float x[2 * D] = {0.3f, -0.7f, 1.1f, 0.2f, 0.9f, 0.25f, 0.0f, 0.5f, 0.0f, 0.25f};
  const float sigma = 0.5f;
  double p[D], jac[D * D], truth[1 + 2 * D], top = x[0], z = 0.0;
  softmax_truth(x, D, sigma, p, jac);
  for (size_t i = 1; i < D; i++) top = fmax(top, x[i]);
  for (size_t i = 0; i < D; i++) z += exp((x[i] - top) / sigma);
  truth[0] = top + sigma * log(z) + sigma * 0.57721566490153286;
  for (size_t i = 0; i < D; i++) {
    truth[0] -= (double)x[i] * x[D + i];
    truth[1 + i] = p[i] - x[D + i];
    truth[1 + D + i] = -x[i];
  }
  pt_fn *argmax, *mx, *loss;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &argmax), PT_OK);
  cr_assert_eq(pt_fn_max(D, &mx), PT_OK);
  pt_perturb_options o = options(1000, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 1, 0);
  o.gradient = PT_GRADIENT_AUTO;
  cr_assert_eq(pt_fenchel_young_loss(argmax, &o, &loss), PT_OK);
  loss_call c = {loss, x};
  over_keys s = run_keys(loss_value_and_grad, &c, 1 + 2 * D, 40, 77000);
  expect_truth(&s, truth, "antithetic loss, gradient");
  over_keys_free(&s);
  pt_fn_free(loss);

  o = options(1000, sigma, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 1);
  o.gradient = PT_GRADIENT_AUTO;
  cr_assert_eq(pt_fenchel_young_loss(argmax, &o, &loss), PT_OK);
  pt_fn *pm = pt_ref_perturbed(mx, &o);
  float got[1 + 2 * D], want[D], one = 1.0f;
  const pt_key key = pt_key_make(8);
  cr_assert_eq(pt_fn_value_and_grad(loss, key, x, got, got + 1), PT_OK);
  cr_assert_eq(pt_fn_vjp(pm, key, x, &one, want), PT_OK);
  for (size_t i = 0; i < D; i++)
    cr_assert_eq(got[1 + i], want[i] - x[D + i],
                 "theta gradient %zu: the perturbed max's vjp minus y_true", i);
  pt_fn_free(pm);
  pt_fn_free(loss);
  pt_fn_free(mx);
  pt_fn_free(argmax);
}

/* ---- variance -------------------------------------------------------------------------------- */

/* y = sum_i tanh(x_i) (n = *user): increasing in every input, so a pair's two values are
   negatively correlated */
static int tanh_sum_eval(void *user, size_t batch, const float *x, float *y) {
  const size_t n = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += tanh((double)x[b * n + i]);
    y[b] = (float)s;
  }
  return 0;
}

/* The variance of an estimate (summed over its entries) over 1000 keys with antithetic pairs,
   over that without, at the same M = 100. */
static double variance_ratio(const pt_fn *f, pt_op op, size_t n, const float *x, pt_noise noise) {
  double v[2];
  for (int anti = 0; anti < 2; anti++) {
    pt_perturb_options o = options(100, 0.5f, noise, PT_BASELINE_F_X, anti, 0);
    pt_fn *p = pt_ref_perturbed(f, &o);
    op_call c = {p, op, x, NULL};
    over_keys s = run_keys(call_op, &c, n, 1000, 40000);
    v[anti] = total_variance(&s);
    over_keys_free(&s);
    pt_fn_free(p);
  }
  return v[1] / v[0];
}

/* The value of a monotone function and the fused argmax's Jacobian, Gumbel and normal noise.
   Measured (these keys): value 0.058 (Gumbel), 0.050 (normal); Jacobian 0.778 (Gumbel), 0.672
   (normal).  The bounds sit well clear of them, and of 1. */
Test(noise_options, antithetic_pairs_lower_the_variance) {
  static size_t d = 6;
  const float x[6] = {0.3f, -0.2f, 0.5f, 0.1f, 0.45f, -0.6f};
  pt_fn *argmax, *th = box(6, 1, tanh_sum_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_argmax_one_hot(6, &argmax), PT_OK);
  for (int k = 0; k < 2; k++) {
    const pt_noise noise = k ? PT_NOISE_NORMAL : PT_NOISE_GUMBEL;
    const double value = variance_ratio(th, PT_OP_EVAL, 1, x, noise);
    const double jac = variance_ratio(argmax, PT_OP_JACOBIAN, 36, x, noise);
    cr_log_info("%s noise, antithetic/plain variance: value %.3f, argmax jacobian %.3f",
                k ? "normal" : "Gumbel", value, jac);
    cr_expect(value < 0.2, "%s: the value's variance ratio %.3f", k ? "normal" : "Gumbel", value);
    cr_expect(jac < 0.9, "%s: the Jacobian's variance ratio %.3f", k ? "normal" : "Gumbel", jac);
  }
  pt_fn_free(th);
  pt_fn_free(argmax);
}

/* ---- every path, split ----------------------------------------------------------------------- */

typedef struct subject {
  const char *name;
  pt_perturb_options o;
  pt_fn *base, *f;
} subject;

enum { SUBJECTS = 13, BASES = 8 };

typedef struct subjects {
  subject s[SUBJECTS];
  pt_fn *bases[BASES];
} subjects;

static void make_subjects(subjects *all) {
  const size_t sizes[4] = {5, 20, 1, 9};
  pt_fn *seg, *rank, *mx, *sort, *argmax, *top;
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 4, &seg), PT_OK);
  cr_assert_eq(pt_fn_ranking(11, &rank), PT_OK);
  cr_assert_eq(pt_fn_max_segments(sizes, 4, &mx), PT_OK);
  cr_assert_eq(pt_fn_sort(11, &sort), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot(9, &argmax), PT_OK);
  cr_assert_eq(pt_fn_top_k(9, 3, &top), PT_OK);
  pt_fn *sq = box(3, 1, half_square_eval, half_square_vjp, &three, PT_CALLBACK_THREAD_SAFE);
  pt_fn *sq1 = box(3, 1, half_square_eval, half_square_vjp, &three, 0); /* the calling thread */
  const struct {
    const char *name;
    pt_fn *f;
    pt_noise noise;
    pt_baseline baseline;
    pt_gradient gradient;
    int antithetic, multiplicative, block_diagonal, independent;
    size_t m; /* enough work for every path to split its groups among threads */
  } made[SUBJECTS] = {
      {"segments antithetic", seg, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1, 0, 0, 0,
       2100},
      {"segments antithetic block-diagonal", seg, PT_NOISE_NORMAL, PT_BASELINE_NONE,
       PT_GRADIENT_SCORE, 1, 0, 1, 1, 2100},
      {"ranking antithetic", rank, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1, 0, 0, 1,
       2100},
      {"max antithetic", mx, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_AUTO, 1, 0, 0, 0, 2100},
      {"sort antithetic", sort, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_AUTO, 1, 0, 0, 0,
       2100},
      {"argmax multiplicative", argmax, PT_NOISE_NORMAL, PT_BASELINE_LEAVE_ONE_OUT,
       PT_GRADIENT_SCORE, 0, 1, 0, 0, 2100},
      {"max multiplicative antithetic", mx, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_AUTO, 1,
       1, 0, 0, 2100},
      {"ranking multiplicative", rank, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 1, 0,
       0, 2100},
      {"sort multiplicative", sort, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_AUTO, 0, 1, 0, 0,
       2100},
      {"top-k antithetic", top, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1, 0, 0, 0,
       2100},
      {"box antithetic", sq, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1, 0, 0, 0,
       17000},
      {"box multiplicative antithetic", sq, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1,
       1, 0, 1, 17000},
      {"calling-thread box pathwise multiplicative antithetic", sq1, PT_NOISE_NORMAL,
       PT_BASELINE_F_X, PT_GRADIENT_PATHWISE, 1, 1, 0, 0, 17000},
  };
  for (size_t i = 0; i < SUBJECTS; i++) {
    subject *s = &all->s[i];
    s->name = made[i].name;
    s->base = made[i].f;
    s->o = options(made[i].m, 0.5f, made[i].noise, made[i].baseline, made[i].antithetic,
                   made[i].multiplicative);
    s->o.gradient = made[i].gradient;
    s->o.block_diagonal = made[i].block_diagonal;
    s->o.independent_jacobian = made[i].independent;
    s->f = pt_ref_perturbed(made[i].f, &s->o);
  }
  pt_fn *bases[BASES] = {seg, rank, mx, sort, argmax, top, sq, sq1};
  memcpy(all->bases, bases, sizeof bases);
}

static void free_subjects(subjects *all) {
  for (size_t i = 0; i < SUBJECTS; i++) pt_fn_free(all->s[i].f);
  for (size_t i = 0; i < BASES; i++) pt_fn_free(all->bases[i]);
}

/* a point of n inputs, none 0 (multiplicative derivatives divide by it) */
static void point_of(float *x, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(seed >> 40) / (double)(1 << 24) * 3.0 - 1.5);
    if (x[i] == 0.0f) x[i] = 0.25f;
  }
}

static const float *subject_v(const subject *s, pt_op op, float *y_bar, float *x_dot) {
  point_of(y_bar, pt_fn_n_out(s->f), 22);
  point_of(x_dot, pt_fn_n_in(s->f), 23);
  return op == PT_OP_VJP ? y_bar : op == PT_OP_JVP ? x_dot : NULL;
}

static size_t one_call(const subject *s, pt_op op, pt_key key, const float *x, const float *v,
                       float *out) {
  const size_t n_in = pt_fn_n_in(s->f), n_out = pt_fn_n_out(s->f);
  switch (op) {
    case PT_OP_EVAL: cr_assert_eq(pt_fn_eval(s->f, key, x, out), PT_OK); return n_out;
    case PT_OP_VJP: cr_assert_eq(pt_fn_vjp(s->f, key, x, v, out), PT_OK); return n_in;
    case PT_OP_JVP: cr_assert_eq(pt_fn_jvp(s->f, key, x, v, out), PT_OK); return n_out;
    case PT_OP_JACOBIAN:
      cr_assert_eq(pt_fn_jacobian(s->f, key, x, out), PT_OK);
      return n_out * n_in;
    default: cr_assert_eq(pt_fn_hessian(s->f, key, x, out), PT_OK); return n_in * n_in;
  }
}

/* the Hessian: of one output, the additive score function's */
static int has_op(const subject *s, pt_op op) {
  return op != PT_OP_HESSIAN ||
         (pt_fn_n_out(s->f) == 1 && !s->o.multiplicative && s->o.gradient == PT_GRADIENT_SCORE);
}

/* Shards at group boundaries (never inside a pair: groups are even), merged as objects and as
   bytes, finish to the bits of the one call. */
Test(noise_options, shards_merge_to_the_one_call) {
  subjects all;
  make_subjects(&all);
  const pt_key key = pt_key_make(123);
  static float want[64 * 64], got[64 * 64];
  for (size_t k = 0; k < SUBJECTS; k++)
    for (int op = 0; op <= PT_OP_HESSIAN; op++) {
      const subject *s = &all.s[k];
      if (!has_op(s, (pt_op)op)) continue;
      const uint64_t group = pt_fn_sample_group(s->f), m = s->o.num_samples;
      const size_t groups = (size_t)((m + group - 1) / group);
      float x[64], y_bar[64], x_dot[64];
      point_of(x, pt_fn_n_in(s->f), 21);
      const float *v = subject_v(s, (pt_op)op, y_bar, x_dot);
      const size_t n = one_call(s, (pt_op)op, key, x, v, want);
      /* cuts after groups 1, 3, 4, 6 and 7 (those there are), then the rest */
      const uint64_t cuts[6] = {1, 3, 4, 6, 7, UINT64_MAX};
      pt_partial *parts[6], *merged;
      size_t count = 0;
      for (uint64_t m0 = 0; m0 < m; count++) {
        const uint64_t m1 = cuts[count] < groups ? cuts[count] * group : m;
        cr_assert_eq(pt_fn_partial(s->f, (pt_op)op, key, x, v, m0, m1, &parts[count]), PT_OK);
        m0 = m1;
      }
      cr_assert_eq(pt_fn_partial(s->f, (pt_op)op, key, x, v, 0, 0, &merged), PT_OK);
      for (size_t i = count; i-- > 0;) cr_assert_eq(pt_partial_merge(merged, parts[i]), PT_OK);
      cr_assert_eq(pt_partial_finish(merged, got), PT_OK);
      cr_assert(same_bits(got, want, n), "%s op %d: merged objects", s->name, op);
      const size_t size = pt_partial_size(merged);
      unsigned char *bytes = malloc(count * size);
      cr_assert(bytes);
      for (size_t i = 0; i < count; i++)
        cr_assert_eq(pt_partial_save(parts[i], bytes + i * size, size), PT_OK);
      for (size_t i = 0; i + 1 < count; i++)
        cr_assert_eq(pt_partial_merge_bytes(bytes + i * size, bytes + (count - 1) * size, size),
                     PT_OK);
      pt_partial *loaded;
      cr_assert_eq(pt_partial_load(bytes + (count - 1) * size, size, &loaded), PT_OK);
      cr_assert_eq(pt_partial_finish(loaded, got), PT_OK);
      cr_assert(same_bits(got, want, n), "%s op %d: merged bytes", s->name, op);
      pt_partial_free(loaded);
      free(bytes);
      pt_partial_free(merged);
      for (size_t i = 0; i < count; i++) pt_partial_free(parts[i]);
    }
  free_subjects(&all);
}

/* Every op of every subject on 1, 2 and 5 threads and every supported ISA: the bits of one
   thread on the first ISA; and the batched ops are their rows' calls with pt_key_fold_in(K, b). */
Test(noise_options, every_thread_count_isa_and_batch_gives_the_same_bits) {
  subjects all;
  make_subjects(&all);
  const pt_key key = pt_key_make(321);
  const pt_isa before = pt_isa_active();
  const size_t before_threads = pt_get_num_threads();
  static float want[64 * 64], got[64 * 64], xs[2 * 64], vs[2 * 64], rows[2 * 64], row[64];
  const size_t threads[3] = {1, 2, 5};
  for (size_t k = 0; k < SUBJECTS; k++)
    for (int op = 0; op <= PT_OP_HESSIAN; op++) {
      const subject *s = &all.s[k];
      if (!has_op(s, (pt_op)op)) continue;
      float x[64], y_bar[64], x_dot[64];
      point_of(x, pt_fn_n_in(s->f), 31);
      const float *v = subject_v(s, (pt_op)op, y_bar, x_dot);
      int first = 1;
      for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
        if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
        for (size_t t = 0; t < 3; t++) {
          cr_assert_eq(pt_set_num_threads(threads[t]), PT_OK);
          const size_t n = one_call(s, (pt_op)op, key, x, v, first ? want : got);
          if (!first)
            cr_assert(same_bits(got, want, n), "%s op %d on %s with %zu threads", s->name, op,
                      pt_isa_name((pt_isa)isa), threads[t]);
          first = 0;
        }
      }
      if (op == PT_OP_JACOBIAN || op == PT_OP_HESSIAN) continue;
      /* two rows: this x and another, each with its own folded key */
      const size_t n_in = pt_fn_n_in(s->f), n_out = pt_fn_n_out(s->f);
      const size_t nv = op == PT_OP_VJP ? n_out : n_in, no = op == PT_OP_VJP ? n_in : n_out;
      memcpy(xs, x, n_in * sizeof *x);
      point_of(xs + n_in, n_in, 41);
      if (v) {
        memcpy(vs, v, nv * sizeof *v);
        point_of(vs + nv, nv, 42);
      }
      pt_status st = op == PT_OP_EVAL ? pt_fn_eval_batch(s->f, key, 2, xs, rows)
                     : op == PT_OP_VJP ? pt_fn_vjp_batch(s->f, key, 2, xs, vs, rows)
                                       : pt_fn_jvp_batch(s->f, key, 2, xs, vs, rows);
      cr_assert_eq(st, PT_OK, "%s op %d batch", s->name, op);
      for (size_t b = 0; b < 2; b++) {
        one_call(s, (pt_op)op, pt_key_fold_in(key, b), xs + b * n_in, v ? vs + b * nv : NULL, row);
        cr_assert(same_bits(rows + b * no, row, no), "%s op %d: batch row %zu", s->name, op, b);
      }
    }
  pt_set_num_threads(before_threads);
  pt_isa_select(before);
  free_subjects(&all);
}

/* ---- refusals -------------------------------------------------------------------------------- */

Test(noise_options, bad_options_and_points_are_refused_with_nothing_written) {
  static size_t d = 4;
  const size_t sizes[2] = {2, 2};
  pt_fn *argmax, *segs, *mx, *id = box(4, 4, identity_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  cr_assert_eq(pt_fn_argmax_one_hot(4, &argmax), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 2, &segs), PT_OK);
  cr_assert_eq(pt_fn_max(4, &mx), PT_OK);
  pt_fn *const sentinel = argmax;
  const struct {
    const pt_fn *f;
    size_t m;
    pt_noise noise;
    pt_baseline baseline;
    int antithetic, multiplicative, block_diagonal;
    pt_status want;
    const char *why;
  } cases[] = {
      {argmax, 999, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 1, 0, 0, PT_EINVAL, "odd M, antithetic"},
      {id, 1, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 0, 0, PT_EINVAL, "one sample, antithetic"},
      {mx, 999, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 0, 0, PT_EINVAL, "odd M, pathwise"},
      {argmax, 100, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 0, 1, 0, PT_EINVAL, "multiplicative Gumbel"},
      {id, 100, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 1, 1, 0, PT_EINVAL, "multiplicative Gumbel"},
      {argmax, 2, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT, 1, 0, 0, PT_EINVAL,
       "one antithetic pair, leaving out its pair"},
      {id, 2, PT_NOISE_NORMAL, PT_BASELINE_LEAVE_ONE_OUT, 1, 1, 0, PT_EINVAL,
       "one antithetic pair, leaving out its pair"},
      {segs, 100, PT_NOISE_NORMAL, PT_BASELINE_F_X, 0, 1, 1, PT_EUNSUPPORTED,
       "multiplicative block-diagonal"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    pt_perturb_options o = options(cases[c].m, 0.5f, cases[c].noise, cases[c].baseline,
                                   cases[c].antithetic, cases[c].multiplicative);
    o.block_diagonal = cases[c].block_diagonal;
    o.gradient = PT_GRADIENT_AUTO;
    pt_fn *out = sentinel;
    cr_expect_eq(pt_make_perturbed_fun_ex(cases[c].f, &o, &out), cases[c].want, "case %zu: %s", c,
                 cases[c].why);
    cr_expect_eq(out, sentinel, "case %zu: nothing written", c);
  }
  /* an input of 0: the multiplicative score function's derivatives divide by it, so they are
     refused with nothing written (the shards' too); its value, and the pathwise derivatives
     (J f(x~) diag(w): no division), are fine */
  pt_perturb_options o = options(100, 0.5f, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 1);
  pt_fn *p = pt_ref_perturbed(id, &o);
  const float x[4] = {1.0f, 0.0f, -2.0f, 0.5f}, v[4] = {1, 1, 1, 1};
  float out[16], before[16];
  for (size_t i = 0; i < 16; i++) out[i] = before[i] = -7.0f;
  const pt_key key = pt_key_make(3);
  cr_expect_eq(pt_fn_vjp(p, key, x, v, out), PT_EINVAL);
  cr_expect_eq(pt_fn_jvp(p, key, x, v, out), PT_EINVAL);
  cr_expect_eq(pt_fn_jacobian(p, key, x, out), PT_EINVAL);
  cr_expect_eq(pt_fn_vjp_batch(p, key, 1, x, v, out), PT_EINVAL);
  pt_partial *part = NULL;
  cr_expect_eq(pt_fn_partial(p, PT_OP_JACOBIAN, key, x, NULL, 0, 100, &part), PT_EINVAL);
  cr_expect(part == NULL, "no partial");
  cr_expect(same_bits(out, before, 16), "nothing written");
  cr_expect_eq(pt_fn_eval(p, key, x, out), PT_OK);
  cr_expect_eq(out[1], 0.0f, "0 times any factor");
  cr_expect_eq(pt_fn_hessian(p, key, x, out), PT_EUNSUPPORTED,
               "no Hessian of multiplicative noise");
  pt_fn_free(p);
  o.gradient = PT_GRADIENT_AUTO;
  p = pt_ref_perturbed(mx, &o);
  cr_expect_eq(pt_fn_vjp(p, key, x, v, out), PT_OK, "pathwise at x_i = 0");
  pt_fn_free(p);
  pt_fn_free(argmax);
  pt_fn_free(segs);
  pt_fn_free(mx);
  pt_fn_free(id);
}

/* A partial's options word names no perturbation of one antithetic pair (M = 2) leaving out its
   pair, or with multiplicative noise and block_diagonal: relabelled so (its checksum made
   right) it is refused, and relabelled back it loads. */
static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void relabel(unsigned char *bytes, size_t size, uint32_t word) {
  bytes[20] = (unsigned char)word; /* the options word: offset 8 + 3 * 4 (pt_fn_partial(3)) */
  bytes[21] = (unsigned char)(word >> 8);
  const uint64_t sum = fnv1a(bytes, size - 8);
  for (int b = 0; b < 8; b++) bytes[size - 8 + b] = (unsigned char)(sum >> (8 * b));
}

Test(noise_options, a_partial_naming_a_refused_combination_is_refused) {
  static size_t d = 4;
  pt_fn *id = box(4, 4, identity_eval, NULL, &d, PT_CALLBACK_THREAD_SAFE);
  pt_perturb_options o = options(2, 0.5f, PT_NOISE_NORMAL, PT_BASELINE_F_X, 1, 1);
  pt_fn *p = pt_ref_perturbed(id, &o);
  const float x[4] = {1.0f, -0.5f, 2.0f, 0.25f};
  pt_partial *part, *loaded;
  cr_assert_eq(pt_fn_partial(p, PT_OP_EVAL, pt_key_make(4), x, NULL, 0, 2, &part), PT_OK);
  const size_t size = pt_partial_size(part);
  unsigned char *bytes = malloc(size);
  cr_assert(bytes);
  cr_assert_eq(pt_partial_save(part, bytes, size), PT_OK);
  const uint32_t word = bytes[20] | (uint32_t)bytes[21] << 8;
  cr_assert_eq(word, 1u | 1u << 3 | 1u << 4, "F_X, antithetic, multiplicative");
  /* the value's cells are the same for every baseline and block_diagonal */
  const uint32_t refused[2] = {(word & ~3u) | 2u, word | 1u << 5};
  for (int r = 0; r < 2; r++) {
    relabel(bytes, size, refused[r]);
    loaded = NULL;
    cr_expect_eq(pt_partial_load(bytes, size, &loaded), PT_EINVAL, "options word %#x", refused[r]);
    cr_expect_null(loaded);
  }
  relabel(bytes, size, word);
  cr_assert_eq(pt_partial_load(bytes, size, &loaded), PT_OK);
  pt_partial_free(loaded);
  pt_partial_free(part);
  free(bytes);
  pt_fn_free(p);
  pt_fn_free(id);
}

/* SPDX-License-Identifier: MIT */
/* The pt_fn object layer without perturbation: black boxes, custom gradients, built-ins,
   composition (exact chain rule), reference counting, every bad input (a status and nothing
   written), and several threads using one object. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"

static const pt_key key = {12345, 0};

/* ---- a linear map y = A x + c given as callbacks ------------------------------------------- */

typedef struct linear {
  size_t n_in, n_out;
  const float *a, *c; /* a: n_out x n_in */
  int fail;           /* 1: eval fails, 2: vjp fails */
  size_t calls, largest_batch;
} linear;

/* y_j = c_j + sum_i a_ji x_i, in double in index order (the tests' own truth) */
static void linear_apply(const linear *l, const float *x, float *y) {
  for (size_t j = 0; j < l->n_out; j++) {
    double s = l->c[j];
    for (size_t i = 0; i < l->n_in; i++) s += (double)l->a[j * l->n_in + i] * (double)x[i];
    y[j] = (float)s;
  }
}

static int linear_eval(void *user, size_t batch, const float *x, float *y) {
  linear *l = user;
  if (l->fail == 1) return -1;
  __atomic_add_fetch(&l->calls, 1, __ATOMIC_RELAXED);
  if (batch > __atomic_load_n(&l->largest_batch, __ATOMIC_RELAXED))
    __atomic_store_n(&l->largest_batch, batch, __ATOMIC_RELAXED);
  for (size_t b = 0; b < batch; b++) linear_apply(l, x + b * l->n_in, y + b * l->n_out);
  return 0;
}

/* x_bar = A^T y_bar */
static void linear_transpose(const linear *l, const float *y_bar, float *x_bar) {
  for (size_t i = 0; i < l->n_in; i++) {
    double s = 0;
    for (size_t j = 0; j < l->n_out; j++) s += (double)l->a[j * l->n_in + i] * (double)y_bar[j];
    x_bar[i] = (float)s;
  }
}

static int linear_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)x;
  linear *l = user;
  if (l->fail == 2) return 3;
  linear_transpose(l, y_bar, x_bar);
  return 0;
}

static const float a23[6] = {1.5f, -2.0f, 0.25f, 3.0f, 0.5f, -1.0f};
static const float c2[2] = {0.125f, -4.0f};
static const float b34[12] = {0.5f, 1.0f, -1.5f, 2.0f, -0.75f, 0.0f, 1.25f, 3.0f, 2.5f, -2.0f, 0.125f, 1.0f};
static const float c3[3] = {1.0f, 0.0f, -0.5f};

static pt_fn *make_linear(linear *l, int with_gradient) {
  pt_fn *f = NULL;
  const pt_status s = with_gradient
                          ? pt_custom_gradient(l->n_in, l->n_out, linear_eval, linear_vjp, l, &f)
                          : pt_fn_from_callback(l->n_in, l->n_out, linear_eval, l, &f);
  cr_assert_eq(s, PT_OK);
  cr_assert_not_null(f);
  return f;
}

static void expect_bits(const float *got, const float *want, size_t n, const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(memcmp(&got[i], &want[i], sizeof got[i]) == 0, "%s[%zu]: got %a, want %a", what, i,
              (double)got[i], (double)want[i]);
}

static void expect_untouched(const float *p, size_t n) {
  for (size_t i = 0; i < n; i++) cr_assert_eq(p[i], -99.0f, "output %zu was written", i);
}

static void poison(float *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = -99.0f;
}

/* ---- black boxes --------------------------------------------------------------------------- */

Test(fn, black_box_evaluates_and_has_no_derivatives) {
  linear l = {3, 2, a23, c2, 0, 0, 0};
  pt_fn *f = make_linear(&l, 0);
  cr_assert_eq(pt_fn_n_in(f), 3);
  cr_assert_eq(pt_fn_n_out(f), 2);
  const float x[3] = {1, 2, -3};
  float y[2], want[2], out[6];
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_OK);
  linear_apply(&l, x, want);
  expect_bits(y, want, 2, "y");
  poison(out, 6);
  const float y_bar[2] = {1, 1};
  cr_assert_eq(pt_fn_vjp(f, key, x, y_bar, out), PT_EUNSUPPORTED);
  cr_assert_eq(pt_fn_jvp(f, key, x, x, out), PT_EUNSUPPORTED);
  cr_assert_eq(pt_fn_jacobian(f, key, x, out), PT_EUNSUPPORTED);
  cr_assert_eq(pt_fn_hessian(f, key, x, out), PT_EUNSUPPORTED);
  expect_untouched(out, 6);
  pt_fn_free(f);
}

/* A deterministic function takes a whole batch in one callback. */
Test(fn, eval_batch_passes_the_batch_through) {
  linear l = {3, 2, a23, c2, 0, 0, 0};
  pt_fn *f = make_linear(&l, 0);
  float x[5 * 3], y[5 * 2], want[2];
  for (size_t i = 0; i < 15; i++) x[i] = (float)i * 0.5f - 3.0f;
  cr_assert_eq(pt_fn_eval_batch(f, key, 5, x, y), PT_OK);
  cr_assert_eq(l.calls, 1);
  cr_assert_eq(l.largest_batch, 5);
  for (size_t b = 0; b < 5; b++) {
    linear_apply(&l, x + 3 * b, want);
    expect_bits(y + 2 * b, want, 2, "row");
  }
  cr_assert_eq(pt_fn_eval_batch(f, key, 0, NULL, NULL), PT_OK, "batch 0 writes nothing");
  pt_fn_free(f);
}

Test(fn, failing_callback_writes_nothing) {
  linear l = {3, 2, a23, c2, 1, 0, 0};
  pt_fn *f = make_linear(&l, 1);
  const float x[3] = {1, 2, 3}, y_bar[2] = {1, 0};
  float y[4], out[6];
  poison(y, 4);
  poison(out, 6);
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_ECALLBACK);
  cr_assert_eq(pt_fn_eval_batch(f, key, 2, x, y), PT_ECALLBACK);
  expect_untouched(y, 4);
  l.fail = 2;
  cr_assert_eq(pt_fn_vjp(f, key, x, y_bar, out), PT_ECALLBACK);
  cr_assert_eq(pt_fn_jvp(f, key, x, x, out), PT_ECALLBACK);
  cr_assert_eq(pt_fn_jacobian(f, key, x, out), PT_ECALLBACK);
  expect_untouched(out, 6);
  l.fail = 0; /* and the object is still usable */
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_OK);
  pt_fn_free(f);
}

/* ---- custom gradients ---------------------------------------------------------------------- */

Test(fn, custom_gradient_value_and_derivatives_exact) {
  linear l = {3, 2, a23, c2, 0, 0, 0};
  pt_fn *f = make_linear(&l, 1);
  const float x[3] = {0.5f, -1.25f, 2.0f}, y_bar[2] = {-0.75f, 1.5f}, x_dot[3] = {1.0f, 0.25f, -3.0f};
  float y[2], want[6], got[6];
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_OK);
  linear_apply(&l, x, want);
  expect_bits(y, want, 2, "value");
  cr_assert_eq(pt_fn_vjp(f, key, x, y_bar, got), PT_OK);
  linear_transpose(&l, y_bar, want);
  expect_bits(got, want, 3, "vjp");
  cr_assert_eq(pt_fn_jacobian(f, key, x, got), PT_OK);
  expect_bits(got, a23, 6, "jacobian");
  cr_assert_eq(pt_fn_jvp(f, key, x, x_dot, got), PT_OK);
  const linear no_offset = {3, 2, a23, (const float[2]){0, 0}, 0, 0, 0};
  linear_apply(&no_offset, x_dot, want);
  expect_bits(got, want, 2, "jvp");
  float h[9];
  cr_assert_eq(pt_fn_hessian(f, key, x, h), PT_EUNSUPPORTED);
  pt_fn_free(f);
}

/* fx's own derivative is never used: a gradient unrelated to fx is what comes back. */
static int square_eval(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) y[b] = x[2 * b] * x[2 * b] + x[2 * b + 1];
  return 0;
}
static int stop_second(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  x_bar[0] = 7.0f * x[0] * y_bar[0]; /* deliberately not 2 x0 */
  x_bar[1] = 0.0f;                   /* a partial gradient: stopped */
  return 0;
}

Test(fn, value_and_grad_of_a_partial_custom_gradient) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_custom_gradient(2, 1, square_eval, stop_second, NULL, &f), PT_OK);
  const float x[2] = {3.0f, 5.0f};
  float v = 0, g[2] = {0, 0};
  cr_assert_eq(pt_fn_value_and_grad(f, key, x, &v, g), PT_OK);
  cr_assert_eq(v, 14.0f);
  cr_assert_eq(g[0], 21.0f);
  cr_assert_eq(g[1], 0.0f);
  pt_fn_free(f);
}

Test(fn, value_and_grad_needs_one_output) {
  linear l = {3, 2, a23, c2, 0, 0, 0};
  pt_fn *f = make_linear(&l, 1);
  const float x[3] = {1, 2, 3};
  float v = -99.0f, g[3];
  poison(g, 3);
  cr_assert_eq(pt_fn_value_and_grad(f, key, x, &v, g), PT_EINVAL);
  cr_assert_eq(v, -99.0f);
  expect_untouched(g, 3);
  pt_fn_free(f);
}

/* ---- built-ins ------------------------------------------------------------------------------ */

Test(fn, argmax_one_hot_values_and_zero_derivatives) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(5, &f), PT_OK);
  cr_assert_eq(pt_fn_n_in(f), 5);
  cr_assert_eq(pt_fn_n_out(f), 5);
  const float x[3 * 5] = {0.1f, 2.0f, -1.0f, 2.0f, 0.3f,   /* tie: the first, 1 */
                          -0.0f, 0.0f, -1.0f, -2.0f, -3.0f, /* -0 == +0: 0 */
                          1.0f, 2.0f, NAN, 9.0f, 1.0f};     /* NaN is greatest: 2 */
  const int want[3] = {1, 0, 2};
  float y[15], out[25];
  cr_assert_eq(pt_fn_eval_batch(f, key, 3, x, y), PT_OK);
  for (size_t b = 0; b < 3; b++)
    for (size_t i = 0; i < 5; i++) cr_assert_eq(y[b * 5 + i], (int)i == want[b] ? 1.0f : 0.0f);
  cr_assert_eq(pt_fn_eval(f, key, x + 5, y), PT_OK);
  cr_assert_eq(y[0], 1.0f);
  poison(out, 25);
  cr_assert_eq(pt_fn_jacobian(f, key, x, out), PT_OK);
  for (size_t i = 0; i < 25; i++) cr_assert_eq(out[i], 0.0f);
  poison(out, 25);
  cr_assert_eq(pt_fn_vjp(f, key, x, x, out), PT_OK);
  for (size_t i = 0; i < 5; i++) cr_assert_eq(out[i], 0.0f);
  cr_assert_eq(pt_fn_jvp(f, key, x, x, out), PT_OK);
  for (size_t i = 0; i < 5; i++) cr_assert_eq(out[i], 0.0f);
  cr_assert_eq(pt_fn_hessian(f, key, x, out), PT_EUNSUPPORTED);
  pt_fn_free(f);
}

Test(fn, argmax_one_hot_segments) {
  const size_t sizes[3] = {2, 4, 1};
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 3, &f), PT_OK);
  cr_assert_eq(pt_fn_n_in(f), 7);
  cr_assert_eq(pt_fn_n_out(f), 7);
  const float x[2 * 7] = {1, 2, /**/ 5, -1, 5, 7, /**/ -3,
                          4, 4, /**/ NAN, 0, 9, 1, /**/ 0};
  const float want[2 * 7] = {0, 1, 0, 0, 0, 1, 1, /**/ 1, 0, 1, 0, 0, 0, 1};
  float y[14];
  cr_assert_eq(pt_fn_eval_batch(f, key, 2, x, y), PT_OK);
  expect_bits(y, want, 14, "one-hot segments");
  pt_fn_free(f);
}

Test(fn, ranking_values) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_ranking(6, &f), PT_OK);
  const float x[2 * 6] = {0.5f, -1.0f, 3.0f, 0.5f, NAN, -0.0f,
                          2.0f, 1.0f, 0.0f, -1.0f, -2.0f, 0.0f};
  const float want[2 * 6] = {2, 0, 4, 3, 5, 1, /**/ 5, 4, 2, 1, 0, 3};
  float y[12];
  cr_assert_eq(pt_fn_eval_batch(f, key, 2, x, y), PT_OK);
  expect_bits(y, want, 12, "ranks");
  pt_fn_free(f);
}

Test(fn, builtin_bad_sizes) {
  pt_fn *f = (pt_fn *)&f; /* a sentinel: refused calls leave *out alone */
  pt_fn *const sentinel = f;
  const size_t zero_in_middle[3] = {2, 0, 1}, huge[2] = {(size_t)INT32_MAX, 1}, one = 1;
  cr_assert_eq(pt_fn_argmax_one_hot(0, &f), PT_EINVAL);
  cr_assert_eq(pt_fn_ranking(0, &f), PT_EINVAL);
  cr_assert_eq(pt_fn_argmax_one_hot(1, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(zero_in_middle, 3, &f), PT_EINVAL);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(&one, 0, &f), PT_EINVAL);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(NULL, 1, &f), PT_EINVAL);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(huge, 2, &f), PT_EOVERFLOW);
  cr_assert_eq(pt_fn_argmax_one_hot((size_t)INT32_MAX + 1, &f), PT_EOVERFLOW);
  cr_assert_eq(pt_fn_ranking(SIZE_MAX, &f), PT_EOVERFLOW);
  cr_assert_eq(f, sentinel);
}

/* ---- composition ------------------------------------------------------------------------------ */

/* outer(inner(x)) = A (B x + c3) + c2 with A 2x3, B 3x4: every derivative is the chain rule on
   the parts' own results, computed here in the same order. */
Test(fn, compose_chain_rule_exact) {
  linear la = {3, 2, a23, c2, 0, 0, 0}, lb = {4, 3, b34, c3, 0, 0, 0};
  pt_fn *a = make_linear(&la, 1), *b = make_linear(&lb, 1), *ab = NULL;
  cr_assert_eq(pt_fn_compose(a, b, &ab), PT_OK);
  cr_assert_eq(pt_fn_n_in(ab), 4);
  cr_assert_eq(pt_fn_n_out(ab), 2);
  const float x[4] = {0.5f, -1.0f, 2.0f, 0.75f}, y_bar[2] = {1.25f, -0.5f},
              x_dot[4] = {-1.0f, 0.5f, 0.25f, 2.0f};
  float u[3], want[8], got[8];

  linear_apply(&lb, x, u);
  linear_apply(&la, u, want);
  cr_assert_eq(pt_fn_eval(ab, key, x, got), PT_OK);
  expect_bits(got, want, 2, "value");

  float u_bar[3];
  linear_transpose(&la, y_bar, u_bar);
  linear_transpose(&lb, u_bar, want);
  cr_assert_eq(pt_fn_vjp(ab, key, x, y_bar, got), PT_OK);
  expect_bits(got, want, 4, "vjp");

  /* jvp: u_dot = B x_dot, y_dot = A u_dot (custom gradients sum in double in index order) */
  float u_dot[3];
  const float zero[3] = {0, 0, 0};
  const linear b0 = {4, 3, b34, zero, 0, 0, 0}, a0 = {3, 2, a23, zero, 0, 0, 0};
  linear_apply(&b0, x_dot, u_dot);
  linear_apply(&a0, u_dot, want);
  cr_assert_eq(pt_fn_jvp(ab, key, x, x_dot, got), PT_OK);
  expect_bits(got, want, 2, "jvp");

  /* Jacobian: A B, each entry summed in double over the middle index */
  for (size_t j = 0; j < 2; j++)
    for (size_t i = 0; i < 4; i++) {
      double s = 0;
      for (size_t k = 0; k < 3; k++) s += (double)a23[j * 3 + k] * (double)b34[k * 4 + i];
      want[j * 4 + i] = (float)s;
    }
  cr_assert_eq(pt_fn_jacobian(ab, key, x, got), PT_OK);
  expect_bits(got, want, 8, "jacobian");
  cr_assert_eq(pt_fn_hessian(ab, key, x, got), PT_EUNSUPPORTED);
  pt_fn_free(ab);
  pt_fn_free(a);
  pt_fn_free(b);
}

Test(fn, compose_needs_matching_sizes_and_differentiable_parts) {
  linear la = {3, 2, a23, c2, 0, 0, 0}, lb = {4, 3, b34, c3, 0, 0, 0};
  pt_fn *a = make_linear(&la, 1), *b = make_linear(&lb, 0), *out = NULL;
  cr_assert_eq(pt_fn_compose(b, a, &out), PT_EINVAL);
  cr_assert_eq(pt_fn_compose(NULL, a, &out), PT_EINVAL);
  cr_assert_eq(pt_fn_compose(a, NULL, &out), PT_EINVAL);
  cr_assert_eq(pt_fn_compose(a, b, NULL), PT_EINVAL);
  cr_assert_null(out);
  cr_assert_eq(pt_fn_compose(a, b, &out), PT_OK);
  const float x[4] = {1, 2, 3, 4};
  float y[2], g[8];
  poison(g, 8);
  cr_assert_eq(pt_fn_eval(out, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_vjp(out, key, x, y, g), PT_EUNSUPPORTED, "the black-box inner part");
  cr_assert_eq(pt_fn_jacobian(out, key, x, g), PT_EUNSUPPORTED);
  expect_untouched(g, 8);
  pt_fn_free(out);
  pt_fn_free(b);
  pt_fn_free(a);
}

/* The parts are kept alive by the composition: freeing them first is fine (ASan and valgrind
   runs of the suite check the memory). */
Test(fn, parts_freed_in_any_order) {
  linear la = {3, 2, a23, c2, 0, 0, 0}, lb = {4, 3, b34, c3, 0, 0, 0};
  pt_fn *a = make_linear(&la, 1), *b = make_linear(&lb, 1), *ab = NULL, *twice = NULL;
  cr_assert_eq(pt_fn_compose(a, b, &ab), PT_OK);
  pt_fn *id = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(2, &id), PT_OK);
  cr_assert_eq(pt_fn_compose(id, ab, &twice), PT_OK);
  pt_fn_free(a);
  pt_fn_free(ab);
  pt_fn_free(b);
  pt_fn_free(id);
  const float x[4] = {1, 2, 3, 4};
  float y[2], want_u[3], want[2];
  cr_assert_eq(pt_fn_eval(twice, key, x, y), PT_OK);
  linear_apply(&lb, x, want_u);
  linear_apply(&la, want_u, want);
  cr_assert_eq(y[0], want[0] >= want[1] ? 1.0f : 0.0f);
  cr_assert_eq(y[1], want[0] >= want[1] ? 0.0f : 1.0f);
  pt_fn_free(twice);
  pt_fn_free(NULL);
}

/* ---- bad inputs ------------------------------------------------------------------------------- */

Test(fn, null_arguments_and_sizes) {
  linear l = {3, 2, a23, c2, 0, 0, 0};
  pt_fn *f = make_linear(&l, 1), *g = NULL;
  const float x[3] = {1, 2, 3};
  float y[9];
  poison(y, 9);
  cr_assert_eq(pt_fn_from_callback(0, 2, linear_eval, &l, &g), PT_EINVAL);
  cr_assert_eq(pt_fn_from_callback(3, 0, linear_eval, &l, &g), PT_EINVAL);
  cr_assert_eq(pt_fn_from_callback(3, 2, NULL, &l, &g), PT_EINVAL);
  cr_assert_eq(pt_fn_from_callback(3, 2, linear_eval, &l, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_from_callback(SIZE_MAX / 2, 2, linear_eval, &l, &g), PT_EOVERFLOW);
  cr_assert_eq(pt_custom_gradient(3, 2, linear_eval, NULL, &l, &g), PT_EINVAL);
  cr_assert_eq(pt_custom_gradient(3, 2, NULL, linear_vjp, &l, &g), PT_EINVAL);
  cr_assert_null(g);
  cr_assert_eq(pt_fn_n_in(NULL), 0);
  cr_assert_eq(pt_fn_n_out(NULL), 0);
  cr_assert_eq(pt_fn_eval(NULL, key, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_eval(f, key, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_eval(f, key, x, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_eval_batch(NULL, key, 1, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_eval_batch(f, key, 1, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_eval_batch(f, key, 1, x, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_eval_batch(f, key, SIZE_MAX / 2, x, y), PT_EOVERFLOW);
  cr_assert_eq(pt_fn_vjp(NULL, key, x, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_vjp(f, key, NULL, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_vjp(f, key, x, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_vjp(f, key, x, x, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_jvp(NULL, key, x, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_jvp(f, key, NULL, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_jvp(f, key, x, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_jvp(f, key, x, x, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_jacobian(NULL, key, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_jacobian(f, key, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_jacobian(f, key, x, NULL), PT_EINVAL);
  cr_assert_eq(pt_fn_value_and_grad(NULL, key, x, y, y), PT_EINVAL);
  cr_assert_eq(pt_fn_hessian(NULL, key, x, y), PT_EINVAL);
  cr_assert_eq(pt_fn_hessian(f, key, NULL, y), PT_EINVAL);
  cr_assert_eq(pt_fn_hessian(f, key, x, NULL), PT_EINVAL);
  expect_untouched(y, 9);
  pt_fn_free(f);
}

/* A mistaken PERTURB_ISA refuses the function layer's calls too (Criterion runs each test in
   its own process, so the variable is read afresh). */
Test(fn, isa_override_refused) {
  setenv("PERTURB_ISA", "sse9", 1);
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(3, &f), PT_OK, "building computes nothing");
  const float x[3] = {1, 3, 2};
  float y[3] = {-99, -99, -99};
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_EUNSUPPORTED);
  expect_untouched(y, 3);
  cr_assert_eq(pt_isa_select(PT_ISA_SCALAR), PT_OK);
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_OK);
  cr_assert_eq(y[1], 1.0f);
  pt_fn_free(f);
}

/* ---- threads ------------------------------------------------------------------------------- */

typedef struct thread_job {
  const pt_fn *f;
  const pt_fn *part;
  int ok;
} thread_job;

/* Each thread evaluates the shared composition and differentiates it, and builds and frees
   its own compositions of the shared part (reference counts changing concurrently). */
static void *thread_body(void *p) {
  thread_job *job = p;
  const float x[4] = {0.5f, -1.0f, 2.0f, 0.75f}, y_bar[2] = {1, -1};
  float y0[2], g0[4], y[2], g[4];
  job->ok = pt_fn_eval(job->f, key, x, y0) == PT_OK && pt_fn_vjp(job->f, key, x, y_bar, g0) == PT_OK;
  for (int i = 0; i < 2000 && job->ok; i++) {
    pt_fn *mine = NULL;
    job->ok = pt_fn_compose(job->part, job->f, &mine) == PT_OK &&
              pt_fn_eval(job->f, key, x, y) == PT_OK && pt_fn_vjp(job->f, key, x, y_bar, g) == PT_OK &&
              memcmp(y, y0, sizeof y) == 0 && memcmp(g, g0, sizeof g) == 0;
    pt_fn_free(mine);
  }
  return NULL;
}

Test(fn, threads_share_one_function) {
  linear la = {3, 2, a23, c2, 0, 0, 0}, lb = {4, 3, b34, c3, 0, 0, 0};
  pt_fn *a = make_linear(&la, 1), *b = make_linear(&lb, 1), *ab = NULL, *part = NULL;
  cr_assert_eq(pt_fn_compose(a, b, &ab), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot(2, &part), PT_OK);
  enum { N = 4 };
  pthread_t t[N];
  thread_job jobs[N];
  for (int i = 0; i < N; i++) {
    jobs[i] = (thread_job){ab, part, 0};
    cr_assert_eq(pthread_create(&t[i], NULL, thread_body, &jobs[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(t[i], NULL);
    cr_assert(jobs[i].ok, "thread %d saw a failure or a different result", i);
  }
  pt_fn_free(part);
  pt_fn_free(ab);
  pt_fn_free(a);
  pt_fn_free(b);
}

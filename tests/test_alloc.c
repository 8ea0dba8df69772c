/* SPDX-License-Identifier: MIT */
/* Allocation failure, through src/runtime/alloc.h's fault injection.  Each call below runs first
   without failures, then again with its first allocation failing, then its second, and so
   on until it succeeds: every failing run must return PT_ENOMEM with its outputs untouched,
   and the run that finally succeeds must give the first run's bits (so the objects it used
   came through every failure intact). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "perturb.h"

#define D 23          /* inputs of the perturbed functions */
#define SORT_D 1000   /* a row too long for the row kernels' stack scratch */
#define UNTOUCHED 0xA5

/* The objects and inputs every call shares, built without failures. */
typedef struct world {
  pt_fn *argmax, *ranking, *box, *scalar_box, *perturbed_argmax, *perturbed_ranking,
      *perturbed_box, *perturbed_scalar_box, *custom, *loss, *many_samples, *max, *sort,
      *permutation, *pathwise_custom, *top_k;
  float x[D], y_bar[D], x_dot[D];
  float rows[2 * SORT_D];
} world;

static int square_rows(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t i = 0; i < batch * D; i++) y[i] = x[i] * x[i];
  return 0;
}

static int half_square_norm(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0;
    for (size_t i = 0; i < D; i++) s += 0.5 * x[b * D + i] * x[b * D + i];
    y[b] = (float)s;
  }
  return 0;
}

static int half_square_norm_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  for (size_t i = 0; i < D; i++) x_bar[i] = x[i] * y_bar[0];
  return 0;
}

static world w;

static void build(void) {
  const size_t sizes[3] = {5, 10, 8};
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 3, &w.argmax), PT_OK);
  cr_assert_eq(pt_fn_ranking(D, &w.ranking), PT_OK);
  cr_assert_eq(pt_fn_from_callback(D, D, square_rows, NULL, &w.box), PT_OK);
  cr_assert_eq(pt_fn_from_callback(D, 1, half_square_norm, NULL, &w.scalar_box), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(w.argmax, 300, 0.5f, PT_NOISE_GUMBEL, 1, &w.perturbed_argmax),
               PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(w.ranking, 300, 0.5f, PT_NOISE_NORMAL, 1, &w.perturbed_ranking),
               PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(w.box, 300, 0.5f, PT_NOISE_NORMAL, 1, &w.perturbed_box), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(w.scalar_box, 300, 0.5f, PT_NOISE_GUMBEL, 0,
                                     &w.perturbed_scalar_box),
               PT_OK);
  cr_assert_eq(pt_custom_gradient(D, 1, half_square_norm, half_square_norm_vjp, NULL, &w.custom),
               PT_OK);
  cr_assert_eq(pt_fn_compose(w.custom, w.perturbed_argmax, &w.loss), PT_OK);
  /* enough samples to be split among threads */
  cr_assert_eq(pt_make_perturbed_fun(w.argmax, 4000, 0.5f, PT_NOISE_GUMBEL, 1, &w.many_samples),
               PT_OK);
  /* the v0.2 optimizers' fused paths (max, sort: pathwise) and the generic pathwise one */
  pt_fn *max, *sort, *permutation;
  cr_assert_eq(pt_fn_max_segments(sizes, 3, &max), PT_OK);
  cr_assert_eq(pt_fn_sort(D, &sort), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix(D, &permutation), PT_OK);
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 300;
  cr_assert_eq(pt_make_perturbed_fun_ex(max, &o, &w.max), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun_ex(sort, &o, &w.sort), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun_ex(permutation, &o, &w.permutation), PT_OK);
  o.gradient = PT_GRADIENT_PATHWISE;
  cr_assert_eq(pt_make_perturbed_fun_ex(w.custom, &o, &w.pathwise_custom), PT_OK);
  /* the fused top-k's segments, block-diagonal with the leave-one-out (10 >= 8 k: the bound) */
  const size_t ks[3] = {2, 1, 8};
  pt_fn *top_k;
  cr_assert_eq(pt_fn_top_k_segments(sizes, ks, 3, &top_k), PT_OK);
  o.gradient = PT_GRADIENT_SCORE;
  o.baseline = PT_BASELINE_LEAVE_ONE_OUT;
  o.block_diagonal = 1;
  cr_assert_eq(pt_make_perturbed_fun_ex(top_k, &o, &w.top_k), PT_OK);
  pt_fn_free(top_k);
  pt_fn_free(max);
  pt_fn_free(sort);
  pt_fn_free(permutation);
  cr_assert_eq(pt_set_num_threads(2), PT_OK);
  for (size_t i = 0; i < D; i++) {
    w.x[i] = (float)((i * 7) % 11) * 0.1f - 0.5f;
    w.y_bar[i] = (float)(i % 3) - 1.0f;
    w.x_dot[i] = (float)(i % 5) * 0.25f;
  }
  for (size_t i = 0; i < 2 * SORT_D; i++) w.rows[i] = (float)((i * 37) % 101);
}

static void tear_down(void) {
  pt_fn *all[] = {w.argmax, w.ranking, w.box, w.scalar_box, w.perturbed_argmax,
                  w.perturbed_ranking, w.perturbed_box, w.perturbed_scalar_box, w.custom, w.loss,
                  w.many_samples, w.max, w.sort, w.permutation, w.pathwise_custom, w.top_k};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) pt_fn_free(all[i]);
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
}

TestSuite(alloc, .init = build, .fini = tear_down);

/* One call writing `bytes` bytes at out; returns its status. */
typedef pt_status (*call_fn)(void *out);

/* The runs described at the top; returns how many failed. */
static size_t each_failure(const char *what, call_fn call, size_t bytes) {
  unsigned char *want = malloc(bytes), *got = malloc(bytes), *untouched = malloc(bytes);
  cr_assert(want && got && untouched);
  memset(untouched, UNTOUCHED, bytes);
  cr_assert_eq(call(want), PT_OK, "%s without failures", what);
  size_t failures = 0;
  for (;; failures++) {
    cr_assert_lt(failures, 100, "%s: still failing after 100 allocations", what);
    memset(got, UNTOUCHED, bytes);
    pt_alloc_fail_after(failures);
    const pt_status s = call(got);
    pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
    if (s == PT_OK) break;
    cr_assert_eq(s, PT_ENOMEM, "%s, allocation %zu failing: %s", what, failures,
                 pt_strerror(s));
    cr_assert(memcmp(got, untouched, bytes) == 0, "%s wrote after allocation %zu failed", what,
              failures);
  }
  cr_assert(memcmp(got, want, bytes) == 0, "%s after %zu failures differs", what, failures);
  free(want);
  free(got);
  free(untouched);
  return failures;
}

static const pt_key key = {0x5eed, 3};

static pt_status argsort_long_rows(void *out) {
  return pt_argsort_rows(w.rows, 2, SORT_D, SORT_D, out, SORT_D);
}
static pt_status fused_argmax_eval(void *out) { return pt_fn_eval(w.perturbed_argmax, key, w.x, out); }
static pt_status fused_argmax_vjp(void *out) {
  return pt_fn_vjp(w.perturbed_argmax, key, w.x, w.y_bar, out);
}
static pt_status fused_argmax_jvp(void *out) {
  return pt_fn_jvp(w.perturbed_argmax, key, w.x, w.x_dot, out);
}
static pt_status fused_argmax_jacobian(void *out) {
  return pt_fn_jacobian(w.perturbed_argmax, key, w.x, out);
}
static pt_status fused_ranking_vjp(void *out) {
  return pt_fn_vjp(w.perturbed_ranking, key, w.x, w.y_bar, out);
}
static pt_status fused_ranking_jacobian(void *out) {
  return pt_fn_jacobian(w.perturbed_ranking, key, w.x, out);
}
static pt_status fused_max_eval(void *out) { return pt_fn_eval(w.max, key, w.x, out); }
static pt_status fused_max_vjp(void *out) {
  const float y_bar[3] = {1.0f, -0.5f, 2.0f};
  return pt_fn_vjp(w.max, key, w.x, y_bar, out);
}
static pt_status fused_sort_jacobian(void *out) { return pt_fn_jacobian(w.sort, key, w.x, out); }
static pt_status fused_permutation_jvp(void *out) {
  return pt_fn_jvp(w.permutation, key, w.x, w.x_dot, out);
}
static pt_status fused_top_k_vjp(void *out) { return pt_fn_vjp(w.top_k, key, w.x, w.y_bar, out); }
static pt_status fused_top_k_jacobian(void *out) { return pt_fn_jacobian(w.top_k, key, w.x, out); }
static pt_status generic_pathwise_value_and_grad(void *out) {
  float *o = out;
  return pt_fn_value_and_grad(w.pathwise_custom, key, w.x, o, o + 1);
}
static pt_status generic_eval_batch(void *out) {
  float x2[2 * D];
  memcpy(x2, w.x, sizeof w.x);
  memcpy(x2 + D, w.x_dot, sizeof w.x_dot);
  return pt_fn_eval_batch(w.perturbed_box, key, 2, x2, out);
}
static pt_status generic_jvp(void *out) { return pt_fn_jvp(w.perturbed_box, key, w.x, w.x_dot, out); }
static pt_status generic_hessian(void *out) {
  return pt_fn_hessian(w.perturbed_scalar_box, key, w.x, out);
}
static pt_status custom_gradient_jvp(void *out) { return pt_fn_jvp(w.custom, key, w.x, w.x_dot, out); }
static pt_status custom_gradient_jacobian(void *out) { return pt_fn_jacobian(w.custom, key, w.x, out); }
static pt_status composed_value_and_grad(void *out) {
  float *o = out;
  return pt_fn_value_and_grad(w.loss, key, w.x, o, o + 1);
}

static pt_status threaded_vjp_batch(void *out) {
  float x2[2 * D], y_bar2[2 * D];
  memcpy(x2, w.x, sizeof w.x);
  memcpy(x2 + D, w.x_dot, sizeof w.x_dot);
  memcpy(y_bar2, w.y_bar, sizeof w.y_bar);
  memcpy(y_bar2 + D, w.x, sizeof w.x);
  return pt_fn_vjp_batch(w.many_samples, key, 2, x2, y_bar2, out);
}
static pt_status generic_value_and_grad_batch(void *out) {
  float x2[2 * D], *o = out;
  memcpy(x2, w.x, sizeof w.x);
  memcpy(x2 + D, w.x_dot, sizeof w.x_dot);
  return pt_fn_value_and_grad_batch(w.perturbed_scalar_box, key, 2, x2, o, o + 2);
}
/* A shard's whole life: made, saved, loaded, merged as bytes with an empty one, finished. */
static pt_status shard_round_trip(void *out) {
  pt_partial *whole = NULL, *empty = NULL, *back = NULL;
  unsigned char *a = NULL, *b = NULL;
  pt_status s = pt_fn_partial(w.many_samples, PT_OP_VJP, key, w.x, w.y_bar, 0, 4000, &whole);
  if (s == PT_OK) s = pt_fn_partial(w.many_samples, PT_OP_VJP, key, w.x, w.y_bar, 0, 0, &empty);
  const size_t size = pt_partial_size(whole);
  if (s == PT_OK && (!(a = malloc(size)) || !(b = malloc(size)))) s = PT_ENOMEM;
  if (s == PT_OK) s = pt_partial_save(whole, a, size);
  if (s == PT_OK) s = pt_partial_save(empty, b, size);
  if (s == PT_OK) s = pt_partial_merge_bytes(b, a, size);
  if (s == PT_OK) s = pt_partial_load(a, size, &back);
  if (s == PT_OK) s = pt_partial_finish(back, out);
  pt_partial_free(whole);
  pt_partial_free(empty);
  pt_partial_free(back);
  free(a);
  free(b);
  return s;
}

/* Building objects: out receives the built function's value at x, so a failure must leave
   both the output and the caller's pointer alone. */
static pt_status build_then_eval(pt_status (*make)(pt_fn **), void *out) {
  pt_fn *sentinel = (pt_fn *)&w, *f = sentinel;
  const pt_status s = make(&f);
  if (s != PT_OK) {
    if (f != sentinel) memset(out, 0, 1); /* a failed build wrote its pointer */
    return s;
  }
  const pt_status e = pt_fn_eval(f, key, w.x, out);
  pt_fn_free(f);
  return e;
}
static pt_status make_perturbed(pt_fn **f) {
  return pt_make_perturbed_fun(w.ranking, 50, 0.3f, PT_NOISE_GUMBEL, 1, f);
}
static pt_status make_segments(pt_fn **f) {
  const size_t sizes[2] = {D - 3, 3};
  return pt_fn_argmax_one_hot_segments(sizes, 2, f);
}
static pt_status make_compose(pt_fn **f) { return pt_fn_compose(w.custom, w.box, f); }
static pt_status make_callback(pt_fn **f) { return pt_fn_from_callback(D, D, square_rows, NULL, f); }
static pt_status build_perturbed(void *out) { return build_then_eval(make_perturbed, out); }
static pt_status build_segments(void *out) { return build_then_eval(make_segments, out); }
static pt_status build_compose(void *out) { return build_then_eval(make_compose, out); }
static pt_status build_callback(void *out) { return build_then_eval(make_callback, out); }

/* Each call allocates at least once: a table row that never failed would test nothing. */
#define EVERY_FAILURE(call, bytes) cr_expect_gt(each_failure(#call, call, bytes), 0, #call)

Test(alloc, row_kernels) { EVERY_FAILURE(argsort_long_rows, 2 * SORT_D * sizeof(int32_t)); }

Test(alloc, fused_perturbed_builtins) {
  EVERY_FAILURE(fused_argmax_eval, D * sizeof(float));
  EVERY_FAILURE(fused_argmax_vjp, D * sizeof(float));
  EVERY_FAILURE(fused_argmax_jvp, D * sizeof(float));
  EVERY_FAILURE(fused_argmax_jacobian, D * D * sizeof(float));
  EVERY_FAILURE(fused_ranking_vjp, D * sizeof(float));
  EVERY_FAILURE(fused_ranking_jacobian, D * D * sizeof(float));
  EVERY_FAILURE(fused_max_eval, 3 * sizeof(float));
  EVERY_FAILURE(fused_max_vjp, D * sizeof(float));
  EVERY_FAILURE(fused_sort_jacobian, D * D * sizeof(float));
  EVERY_FAILURE(fused_permutation_jvp, D * D * sizeof(float));
  EVERY_FAILURE(fused_top_k_vjp, D * sizeof(float));
  EVERY_FAILURE(fused_top_k_jacobian, D * D * sizeof(float));
}

Test(alloc, generic_perturbed_functions) {
  EVERY_FAILURE(generic_eval_batch, 2 * D * sizeof(float));
  EVERY_FAILURE(generic_jvp, D * sizeof(float));
  EVERY_FAILURE(generic_hessian, D * D * sizeof(float));
  EVERY_FAILURE(generic_pathwise_value_and_grad, (1 + D) * sizeof(float));
}

Test(alloc, threads_batches_and_shards) {
  EVERY_FAILURE(threaded_vjp_batch, 2 * D * sizeof(float));
  EVERY_FAILURE(generic_value_and_grad_batch, (2 + 2 * D) * sizeof(float));
  EVERY_FAILURE(shard_round_trip, D * sizeof(float));
}

Test(alloc, custom_gradients_and_compositions) {
  EVERY_FAILURE(custom_gradient_jvp, sizeof(float));
  EVERY_FAILURE(custom_gradient_jacobian, D * sizeof(float));
  EVERY_FAILURE(composed_value_and_grad, (1 + D) * sizeof(float));
}

Test(alloc, building_functions) {
  EVERY_FAILURE(build_perturbed, D * sizeof(float));
  EVERY_FAILURE(build_segments, D * sizeof(float));
  EVERY_FAILURE(build_compose, sizeof(float));
  EVERY_FAILURE(build_callback, D * sizeof(float));
}

/* A non-finite x is refused before anything is allocated: with every allocation failing, each
   call must still say PT_EINVAL (not PT_ENOMEM), and write nothing.  A Jacobian of d = 10^5
   would otherwise first take 40 GB of scratch to find the NaN. */
Test(alloc, bad_input_is_refused_before_allocating) {
  pt_fn *fy = NULL, *onehot = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &onehot), PT_OK);
  cr_assert_eq(pt_fenchel_young_loss(onehot, NULL, &fy), PT_OK);
  float x[2 * D], out[2 * D * D], value[2];
  memcpy(x, w.x, sizeof w.x);
  memcpy(x + D, w.x, sizeof w.x);
  x[7] = NAN;
  memset(out, UNTOUCHED, sizeof out);
  memset(value, UNTOUCHED, sizeof value);
  pt_fn *fs[] = {w.perturbed_argmax, w.perturbed_box, w.loss, w.max, w.pathwise_custom, fy};
  pt_alloc_fail_after(0);
  for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
    const pt_fn *f = fs[k];
    const pt_key key = pt_key_make(k);
    const int scalar = pt_fn_n_out(f) == 1;
    cr_assert_eq(pt_fn_eval(f, key, x, out), PT_EINVAL, "function %zu", k);
    cr_assert_eq(pt_fn_eval_batch(f, key, 2, x, out), PT_EINVAL);
    cr_assert_eq(pt_fn_vjp(f, key, x, w.y_bar, out), PT_EINVAL);
    cr_assert_eq(pt_fn_jvp(f, key, x, w.x_dot, out), PT_EINVAL);
    cr_assert_eq(pt_fn_jacobian(f, key, x, out), PT_EINVAL);
    cr_assert_eq(pt_fn_vjp_batch(f, key, 2, x, w.y_bar, out), PT_EINVAL);
    cr_assert_eq(pt_fn_jvp_batch(f, key, 2, x, w.x_dot, out), PT_EINVAL);
    if (scalar) {
      cr_assert_eq(pt_fn_value_and_grad(f, key, x, value, out), PT_EINVAL);
      cr_assert_eq(pt_fn_value_and_grad_batch(f, key, 2, x, value, out), PT_EINVAL);
    }
  }
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
  /* a zero input of a multiplicative perturbation, for its derivatives (its score divides by
     x) */
  pt_fn *mult = NULL;
  pt_perturb_options o = pt_perturb_defaults();
  o.noise = PT_NOISE_NORMAL;
  o.multiplicative = 1;
  o.gradient = PT_GRADIENT_SCORE;
  cr_assert_eq(pt_make_perturbed_fun_ex(w.box, &o, &mult), PT_OK);
  memcpy(x, w.x, sizeof w.x);
  x[4] = 0.0f;
  pt_alloc_fail_after(0);
  cr_assert_eq(pt_fn_vjp(mult, pt_key_make(1), x, w.y_bar, out), PT_EINVAL);
  cr_assert_eq(pt_fn_jacobian(mult, pt_key_make(1), x, out), PT_EINVAL);
  cr_assert_eq(pt_fn_vjp_batch(mult, pt_key_make(1), 1, x, w.y_bar, out), PT_EINVAL);
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
  cr_assert(strstr(pt_last_error(), "x[4] is 0"), "\"%s\"", pt_last_error());
  pt_fn_free(mult);
  /* the loss's y_true half is checked as well */
  memcpy(x, w.x, sizeof w.x);
  x[D + 3] = INFINITY;
  pt_alloc_fail_after(0);
  cr_assert_eq(pt_fn_vjp(fy, pt_key_make(1), x, w.y_bar, out), PT_EINVAL);
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
  for (size_t i = 0; i < sizeof out; i++)
    cr_assert_eq(((unsigned char *)out)[i], UNTOUCHED, "wrote byte %zu", i);
  for (size_t i = 0; i < sizeof value; i++)
    cr_assert_eq(((unsigned char *)value)[i], UNTOUCHED, "wrote a value");
  pt_fn_free(fy);
  pt_fn_free(onehot);
}

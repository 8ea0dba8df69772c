/* SPDX-License-Identifier: MIT */
/* The built-ins beside argmax and ranking (top-k, max, sort, the permutation matrix, and the
   segments of top-k, max, ranking and sort), unperturbed: values against the reference order of
   tests/reference.c (ties by index, NaN greatest), their derivatives (max: the argmax one-hot;
   sort: the permutation; the others zero), and every bad size refused with nothing written. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "perturb.h"
#include "reference.h"

static const pt_key key = {7, 0};

/* Rows with ties, -0/+0, NaN and infinities: where the order's rules decide. */
#define D 9
static const float rows[][D] = {
    {3.0f, -1.0f, 3.0f, 0.5f, -0.0f, 0.0f, 7.0f, 3.0f, -2.0f},
    {1.0f, NAN, 2.0f, -INFINITY, NAN, INFINITY, 0.0f, 1.0f, 1.0f},
    {5.0f, 5.0f, 5.0f, 5.0f, 5.0f, 5.0f, 5.0f, 5.0f, 5.0f},
    {-3.5f, 2.25f, 8.0f, -0.0f, 1e-30f, -1e30f, 4.0f, 4.0f, 0.125f},
};
#define ROWS (sizeof rows / sizeof rows[0])

/* rank[i]: the position of element i in the reference's stable ascending order */
static void ref_ranks(const float *x, size_t d, int32_t *rank) {
  int32_t perm[64], tmp[64];
  pt_ref_argsort(x, d, perm, tmp);
  for (size_t p = 0; p < d; p++) rank[perm[p]] = (int32_t)p;
}

static void check_eval(pt_fn *f, const float *x, const float *want, size_t n_out) {
  float y[D * D];
  cr_assert_eq(pt_fn_eval(f, key, x, y), PT_OK);
  for (size_t j = 0; j < n_out; j++)
    cr_expect(memcmp(&y[j], &want[j], sizeof y[j]) == 0 || (isnan(y[j]) && isnan(want[j])),
              "output %zu: %g, want %g", j, (double)y[j], (double)want[j]);
}

Test(optimizers, top_k_is_the_last_k_of_the_stable_order) {
  for (size_t k = 1; k <= D; k++) {
    pt_fn *f;
    cr_assert_eq(pt_fn_top_k(D, k, &f), PT_OK);
    cr_assert_eq(pt_fn_n_out(f), D);
    for (size_t r = 0; r < ROWS; r++) {
      int32_t rank[D];
      float want[D];
      ref_ranks(rows[r], D, rank);
      for (size_t i = 0; i < D; i++) want[i] = (size_t)rank[i] >= D - k ? 1.0f : 0.0f;
      check_eval(f, rows[r], want, D);
    }
    pt_fn_free(f);
  }
}

Test(optimizers, top_k_segments_take_k_per_segment) {
  const size_t sizes[3] = {4, 1, 4}, ks[3] = {2, 1, 3};
  pt_fn *f;
  cr_assert_eq(pt_fn_top_k_segments(sizes, ks, 3, &f), PT_OK);
  for (size_t r = 0; r < ROWS; r++) {
    float want[D];
    for (size_t s = 0, o = 0; s < 3; o += sizes[s], s++) {
      int32_t rank[D];
      ref_ranks(rows[r] + o, sizes[s], rank);
      for (size_t i = 0; i < sizes[s]; i++)
        want[o + i] = (size_t)rank[i] >= sizes[s] - ks[s] ? 1.0f : 0.0f;
    }
    check_eval(f, rows[r], want, D);
  }
  pt_fn_free(f);
}

Test(optimizers, max_and_its_derivative_follow_the_argmax) {
  const size_t sizes[3] = {2, 5, 2};
  pt_fn *f, *g;
  cr_assert_eq(pt_fn_max(D, &f), PT_OK);
  cr_assert_eq(pt_fn_max_segments(sizes, 3, &g), PT_OK);
  cr_assert_eq(pt_fn_n_out(f), 1);
  cr_assert_eq(pt_fn_n_out(g), 3);
  for (size_t r = 0; r < ROWS; r++) {
    const float *x = rows[r];
    const int32_t w = pt_ref_argmax(x, D);
    check_eval(f, x, &x[w], 1);
    float grad[D], value, want[D] = {0};
    want[w] = 1.0f;
    cr_assert_eq(pt_fn_value_and_grad(f, key, x, &value, grad), PT_OK);
    cr_expect(memcmp(grad, want, sizeof grad) == 0, "row %zu: the gradient is not e_%d", r, w);
    float seg_want[3], y_bar[3] = {1.0f, -2.0f, 0.5f}, x_bar[D], x_bar_want[D] = {0};
    for (size_t s = 0, o = 0; s < 3; o += sizes[s], s++) {
      const size_t at = o + (size_t)pt_ref_argmax(x + o, sizes[s]);
      seg_want[s] = x[at];
      x_bar_want[at] = y_bar[s];
    }
    check_eval(g, x, seg_want, 3);
    cr_assert_eq(pt_fn_vjp(g, key, x, y_bar, x_bar), PT_OK);
    cr_expect(memcmp(x_bar, x_bar_want, sizeof x_bar) == 0, "row %zu: segment vjp", r);
    float jac[3 * D];
    cr_assert_eq(pt_fn_jacobian(g, key, x, jac), PT_OK);
    for (size_t s = 0; s < 3; s++)
      for (size_t i = 0; i < D; i++)
        cr_expect_eq(jac[s * D + i], x_bar_want[i] != 0.0f && x_bar_want[i] == y_bar[s] ? 1.0f : 0.0f);
  }
  pt_fn_free(f);
  pt_fn_free(g);
}

/* The derivatives of a sort at x (row r of the table) whose output at[i] is input i: the
   permutation, x_bar_i = y_bar[at_i], y_dot[at_i] = x_dot_i and J[at_i][i] = 1. */
static void expect_permutation_derivatives(pt_fn *f, const float *x, const int32_t *at, size_t r) {
  float y_bar[D], x_bar[D], x_dot[D], y_dot[D], jac[D * D];
  for (size_t i = 0; i < D; i++) {
    y_bar[i] = (float)(i * i) - 3.0f;
    x_dot[i] = 0.25f * (float)i + 1.0f;
  }
  cr_assert_eq(pt_fn_vjp(f, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(f, key, x, x_dot, y_dot), PT_OK);
  cr_assert_eq(pt_fn_jacobian(f, key, x, jac), PT_OK);
  for (size_t i = 0; i < D; i++) {
    cr_expect_eq(x_bar[i], y_bar[at[i]], "row %zu: x_bar[%zu]", r, i);
    cr_expect_eq(y_dot[at[i]], x_dot[i], "row %zu: y_dot", r);
    for (size_t p = 0; p < D; p++) cr_expect_eq(jac[p * D + i], (int32_t)p == at[i] ? 1.0f : 0.0f);
  }
}

Test(optimizers, sort_and_its_derivative_are_the_permutation) {
  pt_fn *f;
  cr_assert_eq(pt_fn_sort(D, &f), PT_OK);
  for (size_t r = 0; r < ROWS; r++) {
    const float *x = rows[r];
    int32_t rank[D];
    ref_ranks(x, D, rank);
    float want[D];
    for (size_t i = 0; i < D; i++) want[rank[i]] = x[i];
    check_eval(f, x, want, D);
    expect_permutation_derivatives(f, x, rank, r);
  }
  pt_fn_free(f);
}

/* Ranks and sorts per segment: each segment ranked and sorted as a row of its own (ties, NaN
   and -0 by the reference order), in place; the sort's derivative each segment's permutation. */
Test(optimizers, ranking_and_sort_segments_rank_each_segment) {
  const size_t sizes[3] = {4, 1, 4};
  pt_fn *rank, *sort;
  cr_assert_eq(pt_fn_ranking_segments(sizes, 3, &rank), PT_OK);
  cr_assert_eq(pt_fn_sort_segments(sizes, 3, &sort), PT_OK);
  cr_assert_eq(pt_fn_n_out(rank), D);
  cr_assert_eq(pt_fn_n_out(sort), D);
  for (size_t r = 0; r < ROWS; r++) {
    const float *x = rows[r];
    int32_t at[D]; /* each input's position in the output: its segment's start plus its rank */
    float ranks[D], sorted[D];
    for (size_t s = 0, o = 0; s < 3; o += sizes[s], s++) {
      int32_t rk[D];
      ref_ranks(x + o, sizes[s], rk);
      for (size_t i = 0; i < sizes[s]; i++) {
        ranks[o + i] = (float)rk[i];
        at[o + i] = (int32_t)o + rk[i];
        sorted[at[o + i]] = x[o + i];
      }
    }
    check_eval(rank, x, ranks, D);
    check_eval(sort, x, sorted, D);
    expect_permutation_derivatives(sort, x, at, r);
  }
  pt_fn_free(rank);
  pt_fn_free(sort);
}

Test(optimizers, permutation_matrix_has_one_one_per_row_and_column) {
  pt_fn *f;
  cr_assert_eq(pt_fn_permutation_matrix(D, &f), PT_OK);
  cr_assert_eq(pt_fn_n_out(f), D * D);
  for (size_t r = 0; r < ROWS; r++) {
    int32_t rank[D];
    ref_ranks(rows[r], D, rank);
    float want[D * D] = {0};
    for (size_t i = 0; i < D; i++) want[(size_t)rank[i] * D + i] = 1.0f;
    check_eval(f, rows[r], want, D * D);
    float x_bar[D], y_bar[D * D];
    for (size_t j = 0; j < D * D; j++) y_bar[j] = 1.0f;
    cr_assert_eq(pt_fn_vjp(f, key, rows[r], y_bar, x_bar), PT_OK);
    for (size_t i = 0; i < D; i++) cr_expect_eq(x_bar[i], 0.0f, "piecewise constant");
  }
  pt_fn_free(f);
}

/* Segments {4, 1, 4} of the rows: a block of cells per segment, each the permutation matrix
   of its segment's ranks, and one segment of D the whole matrix. */
Test(optimizers, permutation_matrix_segments_have_a_block_per_segment) {
  const size_t sizes[3] = {4, 1, 4}, cells = 16 + 1 + 16, whole = D;
  pt_fn *f, *one, *plain;
  cr_assert_eq(pt_fn_permutation_matrix_segments(sizes, 3, &f), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix_segments(&whole, 1, &one), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix(D, &plain), PT_OK);
  cr_assert_eq(pt_fn_n_in(f), D);
  cr_assert_eq(pt_fn_n_out(f), cells);
  for (size_t r = 0; r < ROWS; r++) {
    float want[16 + 1 + 16] = {0};
    for (size_t s = 0, o = 0, c = 0; s < 3; c += sizes[s] * sizes[s], o += sizes[s], s++) {
      int32_t rank[D];
      ref_ranks(rows[r] + o, sizes[s], rank);
      for (size_t i = 0; i < sizes[s]; i++) want[c + (size_t)rank[i] * sizes[s] + i] = 1.0f;
    }
    check_eval(f, rows[r], want, cells);
    float a[D * D], b[D * D];
    cr_assert_eq(pt_fn_eval(one, key, rows[r], a), PT_OK);
    cr_assert_eq(pt_fn_eval(plain, key, rows[r], b), PT_OK);
    cr_expect(memcmp(a, b, sizeof a) == 0, "row %zu: one segment is the matrix", r);
  }
  pt_fn_free(f);
  pt_fn_free(one);
  pt_fn_free(plain);
}

Test(optimizers, a_batch_equals_its_rows) {
  pt_fn *fs[4];
  cr_assert_eq(pt_fn_top_k(D, 3, &fs[0]), PT_OK);
  cr_assert_eq(pt_fn_max(D, &fs[1]), PT_OK);
  cr_assert_eq(pt_fn_sort(D, &fs[2]), PT_OK);
  cr_assert_eq(pt_fn_permutation_matrix(D, &fs[3]), PT_OK);
  for (int k = 0; k < 4; k++) {
    const size_t n_out = pt_fn_n_out(fs[k]);
    float batch[ROWS * D * D], one[D * D];
    cr_assert_eq(pt_fn_eval_batch(fs[k], key, ROWS, &rows[0][0], batch), PT_OK);
    for (size_t r = 0; r < ROWS; r++) {
      cr_assert_eq(pt_fn_eval(fs[k], key, rows[r], one), PT_OK);
      cr_expect(memcmp(one, batch + r * n_out, n_out * sizeof *one) == 0 ||
                    (k == 1 && isnan(one[0]) && isnan(batch[r])),
                "function %d row %zu", k, r);
    }
    pt_fn_free(fs[k]);
  }
}

Test(optimizers, bad_sizes_are_refused_and_write_nothing) {
  pt_fn *f = (pt_fn *)&f; /* a sentinel: never overwritten on failure */
  pt_fn *const sentinel = f;
  const size_t sizes[2] = {3, 4}, ks[2] = {1, 5}, zero[2] = {3, 0}, bad_k[2] = {0, 1};
  cr_expect_eq(pt_fn_top_k(D, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k(D, D + 1, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k(0, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k(D, 1, NULL), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, ks, 2, &f), PT_EINVAL);    /* k 5 > size 4 */
  cr_expect_eq(pt_fn_top_k_segments(sizes, bad_k, 2, &f), PT_EINVAL); /* k 0 */
  cr_expect_eq(pt_fn_top_k_segments(zero, ks, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, NULL, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, ks, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_max(0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_max_segments(zero, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_max_segments(NULL, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_sort(0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_sort_segments(zero, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_sort_segments(sizes, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_sort_segments(NULL, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_ranking_segments(zero, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_ranking_segments(sizes, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_ranking_segments(sizes, 2, NULL), PT_EINVAL);
  cr_expect_eq(pt_fn_permutation_matrix(0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_max((size_t)INT32_MAX + 1, &f), PT_EOVERFLOW);
  cr_expect_eq(pt_fn_sort((size_t)INT32_MAX + 1, &f), PT_EOVERFLOW);
  cr_expect_eq(pt_fn_permutation_matrix(46341, &f), PT_EOVERFLOW); /* 46341^2 > INT32_MAX */
  cr_expect_eq(pt_fn_permutation_matrix_segments(zero, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_permutation_matrix_segments(sizes, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_permutation_matrix_segments(NULL, 2, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_permutation_matrix_segments(sizes, 2, NULL), PT_EINVAL);
  /* 46340^2 + 297^2 cells pass INT32_MAX (46340^2 + 296^2 do not) */
  const size_t past[2] = {46340, 297}, last[2] = {46340, 296};
  cr_expect_eq(pt_fn_permutation_matrix_segments(past, 2, &f), PT_EOVERFLOW);
  cr_expect_eq(f, sentinel, "a refused constructor wrote its output");
  cr_assert_eq(pt_fn_permutation_matrix(46340, &f), PT_OK);
  cr_expect_eq(pt_fn_n_out(f), (size_t)46340 * 46340);
  pt_fn_free(f);
  cr_assert_eq(pt_fn_permutation_matrix_segments(last, 2, &f), PT_OK);
  cr_expect_eq(pt_fn_n_out(f), (size_t)46340 * 46340 + 296 * 296);
  pt_fn_free(f);
}

/* ---- the options of a perturbation ----------------------------------------------------------- */

Test(options, defaults_are_optax_s) {
  const pt_perturb_options o = pt_perturb_defaults();
  cr_expect_eq(o.size, sizeof(pt_perturb_options));
  cr_expect_eq(o.num_samples, 1000);
  cr_expect_eq(o.sigma, 0.1f);
  cr_expect_eq(o.noise, PT_NOISE_GUMBEL);
  cr_expect_eq(o.baseline, PT_BASELINE_F_X);
  cr_expect_eq(o.gradient, PT_GRADIENT_AUTO);
  cr_expect(!o.antithetic && !o.multiplicative && !o.block_diagonal && !o.independent_jacobian);
}

/* pt_make_perturbed_fun is _ex with the score function: the same bits for every op. */
Test(options, the_v01_call_is_ex_with_the_score_function) {
  pt_fn *f, *a, *b;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &f), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(f, 300, 0.5f, PT_NOISE_NORMAL, 0, &a), PT_OK);
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 300;
  o.sigma = 0.5f;
  o.noise = PT_NOISE_NORMAL;
  o.baseline = PT_BASELINE_NONE;
  o.gradient = PT_GRADIENT_SCORE;
  cr_assert_eq(pt_make_perturbed_fun_ex(f, &o, &b), PT_OK);
  const float *x = rows[3];
  float y_bar[D], ya[D * D], yb[D * D];
  for (size_t i = 0; i < D; i++) y_bar[i] = (float)i - 4.0f;
  cr_assert_eq(pt_fn_eval(a, key, x, ya), PT_OK);
  cr_assert_eq(pt_fn_eval(b, key, x, yb), PT_OK);
  cr_expect(memcmp(ya, yb, D * sizeof *ya) == 0);
  cr_assert_eq(pt_fn_jacobian(a, key, x, ya), PT_OK);
  cr_assert_eq(pt_fn_jacobian(b, key, x, yb), PT_OK);
  cr_expect(memcmp(ya, yb, D * D * sizeof *ya) == 0);
  cr_assert_eq(pt_fn_vjp(a, key, x, y_bar, ya), PT_OK);
  cr_assert_eq(pt_fn_vjp(b, key, x, y_bar, yb), PT_OK);
  cr_expect(memcmp(ya, yb, D * sizeof *ya) == 0);
  pt_fn_free(a);
  pt_fn_free(b);
  pt_fn_free(f);
}

static int identity(void *user, size_t batch, const float *x, float *y) {
  memcpy(y, x, batch * *(const size_t *)user * sizeof *y);
  return 0;
}

Test(options, options_that_do_not_apply_are_refused) {
  static size_t d = D;
  const size_t sizes[2] = {4, 5}, ks[2] = {1, 2};
  pt_fn *argmax, *segs, *top, *mx, *box, *out = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &argmax), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 2, &segs), PT_OK);
  cr_assert_eq(pt_fn_top_k_segments(sizes, ks, 2, &top), PT_OK);
  cr_assert_eq(pt_fn_max(D, &mx), PT_OK);
  cr_assert_eq(pt_fn_from_callback(D, D, identity, &d, &box), PT_OK);
  const pt_perturb_options def = pt_perturb_defaults();
  pt_perturb_options o;
#define REFUSED(fn, change)                                                            \
  do {                                                                                 \
    o = def;                                                                           \
    change;                                                                            \
    cr_expect_eq(pt_make_perturbed_fun_ex(fn, &o, &out), PT_EINVAL, "%s", #change);    \
    cr_expect_null(out);                                                               \
  } while (0)
  REFUSED(argmax, o.size = sizeof o - 1);
  REFUSED(argmax, o.size = 0);
  REFUSED(argmax, o.num_samples = 0);
  REFUSED(argmax, o.sigma = 0.0f);
  REFUSED(argmax, o.sigma = NAN);
  REFUSED(argmax, o.noise = PT_NOISE_UNIFORM);
  REFUSED(argmax, o.baseline = (pt_baseline)3);
  REFUSED(argmax, o.gradient = (pt_gradient)3);
  REFUSED(argmax, o.gradient = PT_GRADIENT_PATHWISE); /* piecewise constant */
  REFUSED(box, o.gradient = PT_GRADIENT_PATHWISE);    /* a black box has no derivative */
  REFUSED(mx, o.baseline = PT_BASELINE_LEAVE_ONE_OUT); /* max is pathwise by default */
  REFUSED(argmax, (o.baseline = PT_BASELINE_LEAVE_ONE_OUT, o.num_samples = 1));
  REFUSED(argmax, (o.antithetic = 1, o.num_samples = 999));
  REFUSED(argmax, o.multiplicative = 1); /* Gumbel */
  REFUSED(argmax, o.block_diagonal = 1); /* one segment: no cross terms */
  REFUSED(box, o.block_diagonal = 1);
  REFUSED(mx, o.block_diagonal = 1);     /* pathwise: no cross terms */
  REFUSED(NULL, (void)0);
  cr_expect_eq(pt_make_perturbed_fun_ex(argmax, NULL, &out), PT_EINVAL);
  cr_expect_eq(pt_make_perturbed_fun_ex(argmax, &def, NULL), PT_EINVAL);
  /* the permutation matrix of one segment has no cross terms to drop */
  pt_fn *perm;
  cr_assert_eq(pt_fn_permutation_matrix(D, &perm), PT_OK);
  o = def;
  o.block_diagonal = 1;
  cr_expect_eq(pt_make_perturbed_fun_ex(perm, &o, &out), PT_EINVAL);
  cr_expect_null(out);
  pt_fn_free(perm);
  /* a larger struct (a later header's) is read when its further bytes are zero */
  struct {
    pt_perturb_options o;
    unsigned char later[16];
  } big;
  memset(&big, 0, sizeof big);
  big.o = def;
  big.o.size = sizeof big;
  cr_expect_eq(pt_make_perturbed_fun_ex(argmax, &big.o, &out), PT_OK);
  pt_fn_free(out);
  out = NULL;
  big.later[3] = 1;
  cr_expect_eq(pt_make_perturbed_fun_ex(argmax, &big.o, &out), PT_EINVAL);
  cr_expect_null(out);
#undef REFUSED
  pt_fn_free(argmax);
  pt_fn_free(segs);
  pt_fn_free(top);
  pt_fn_free(mx);
  pt_fn_free(box);
}

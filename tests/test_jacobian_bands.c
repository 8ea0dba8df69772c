/* SPDX-License-Identifier: MIT */
/* A perturbed Jacobian too large for one band of sums (PT_JACOBIAN_TILE_BYTES, src/fn/estimate.h)
   is summed once per band of output rows.  With the tile made small enough to cut these small
   Jacobians into bands (pt_estimate_set_jacobian_tile; Criterion runs each test in its own
   process), every path gives the one-pass Jacobian bit for bit, on one thread and on two; the
   progress handler counts every band's groups, and a cancellation in the second band, like
   any allocation failure, leaves the output untouched. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fn/estimate.h"
#include "perturb.h"
#include "runtime/alloc.h"

#define D 24         /* inputs of most functions */
#define M 4000       /* samples: enough for the library to split them between two threads */
#define UNTOUCHED 0xA5

static int square_rows(void *user, size_t batch, const float *x, float *y) {
  const size_t n = *(const size_t *)user;
  for (size_t i = 0; i < batch * n; i++) y[i] = x[i] * x[i];
  return 0;
}

static int square_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const size_t n = *(const size_t *)user;
  for (size_t i = 0; i < n; i++) x_bar[i] = 2.0f * x[i] * y_bar[i];
  return 0;
}

static int sum_rows(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0.0;
    for (size_t i = 0; i < D; i++) s += x[b * D + i];
    y[b] = (float)s;
  }
  return 0;
}

static int sum_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user;
  (void)x;
  for (size_t i = 0; i < D; i++) x_bar[i] = y_bar[0];
  return 0;
}

static const size_t d = D;

/* The functions perturbed: which path and options each exercises. */
enum {
  ARGMAX, ARGMAX_SEGMENTS, TOP_K, TOP_K_SEGMENTS, RANKING, PERMUTATION, SORT, MAX_SEGMENTS,
  SQUARE, SQUARE_ORDERED, SQUARE_DERIVATIVE, SQUARE_DERIVATIVE_ORDERED, SUM_DERIVATIVE, BASES
};

/* the base function of kind b (a new reference) */
static pt_fn *base(int b) {
  const size_t sizes[3] = {5, 10, 9}, ks[3] = {2, 1, 3};
  pt_fn *f = NULL;
  pt_status s = PT_OK;
  switch (b) {
    case ARGMAX: s = pt_fn_argmax_one_hot(D, &f); break;
    case ARGMAX_SEGMENTS: s = pt_fn_argmax_one_hot_segments(sizes, 3, &f); break;
    case TOP_K: s = pt_fn_top_k(D, 5, &f); break;
    case TOP_K_SEGMENTS: s = pt_fn_top_k_segments(sizes, ks, 3, &f); break;
    case RANKING: s = pt_fn_ranking(D, &f); break;
    case PERMUTATION: s = pt_fn_permutation_matrix(6, &f); break;
    case SORT: s = pt_fn_sort(D, &f); break;
    case MAX_SEGMENTS: s = pt_fn_max_segments(sizes, 3, &f); break;
    case SQUARE:
      s = pt_fn_from_callback_ex(D, D, square_rows, NULL, (void *)&d, NULL,
                                 PT_CALLBACK_THREAD_SAFE, &f);
      break;
    case SQUARE_ORDERED: s = pt_fn_from_callback(D, D, square_rows, (void *)&d, &f); break;
    case SQUARE_DERIVATIVE:
      s = pt_fn_from_callback_ex(D, D, square_rows, square_vjp, (void *)&d, NULL,
                                 PT_CALLBACK_THREAD_SAFE, &f);
      break;
    case SQUARE_DERIVATIVE_ORDERED:
      s = pt_custom_gradient(D, D, square_rows, square_vjp, (void *)&d, &f);
      break;
    case SUM_DERIVATIVE: s = pt_custom_gradient(D, 1, sum_rows, sum_vjp, NULL, &f); break;
  }
  cr_assert_eq(s, PT_OK, "base %d: %s", b, pt_last_error());
  return f;
}

typedef struct band_case {
  const char *name;
  int base;
  pt_noise noise;
  pt_baseline baseline;
  pt_gradient gradient;
  int antithetic, multiplicative, block_diagonal, independent_jacobian;
  int composed; /* pt_fn_jacobian of SUM_DERIVATIVE after it: the perturbed value is wanted */
} band_case;

static const band_case cases[] = {
    {"argmax", ARGMAX, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"argmax antithetic", ARGMAX, PT_NOISE_GUMBEL, PT_BASELINE_NONE, PT_GRADIENT_SCORE, 1, 0, 0,
     0, 0},
    {"argmax independent", ARGMAX, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0,
     1, 0},
    {"argmax leave-one-out", ARGMAX, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT,
     PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"argmax composed", ARGMAX, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0,
     1},
    {"argmax segments", ARGMAX_SEGMENTS, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 1,
     0, 0, 0, 0},
    {"argmax block-diagonal", ARGMAX_SEGMENTS, PT_NOISE_GUMBEL, PT_BASELINE_F_X,
     PT_GRADIENT_SCORE, 0, 0, 1, 0, 0},
    {"argmax block-diagonal leave-one-out", ARGMAX_SEGMENTS, PT_NOISE_GUMBEL,
     PT_BASELINE_LEAVE_ONE_OUT, PT_GRADIENT_SCORE, 0, 0, 1, 0, 0},
    {"argmax block-diagonal pairs leave-one-out", ARGMAX_SEGMENTS, PT_NOISE_GUMBEL,
     PT_BASELINE_LEAVE_ONE_OUT, PT_GRADIENT_SCORE, 1, 0, 1, 0, 0},
    {"top-k", TOP_K, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"top-k segments block-diagonal leave-one-out", TOP_K_SEGMENTS, PT_NOISE_NORMAL,
     PT_BASELINE_LEAVE_ONE_OUT, PT_GRADIENT_SCORE, 0, 0, 1, 0, 0},
    {"ranking", RANKING, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"ranking leave-one-out", RANKING, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT,
     PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"permutation", PERMUTATION, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0,
     0},
    {"permutation without baseline", PERMUTATION, PT_NOISE_NORMAL, PT_BASELINE_NONE,
     PT_GRADIENT_SCORE, 1, 0, 0, 0, 0},
    {"sort, pathwise", SORT, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_AUTO, 0, 0, 0, 0, 0},
    {"max segments, pathwise", MAX_SEGMENTS, PT_NOISE_GUMBEL, PT_BASELINE_F_X, PT_GRADIENT_AUTO,
     0, 0, 0, 0, 0},
    {"generic score", SQUARE, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"generic score, calling thread", SQUARE_ORDERED, PT_NOISE_GUMBEL, PT_BASELINE_F_X,
     PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"generic score leave-one-out", SQUARE, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT,
     PT_GRADIENT_SCORE, 0, 0, 0, 0, 0},
    {"generic score pairs leave-one-out", SQUARE, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT,
     PT_GRADIENT_SCORE, 1, 0, 0, 0, 0},
    {"ranking pairs leave-one-out", RANKING, PT_NOISE_GUMBEL, PT_BASELINE_LEAVE_ONE_OUT,
     PT_GRADIENT_SCORE, 1, 0, 0, 0, 0},
    {"generic score multiplicative", SQUARE, PT_NOISE_NORMAL, PT_BASELINE_F_X, PT_GRADIENT_SCORE,
     0, 1, 0, 0, 0},
    {"generic score antithetic", SQUARE, PT_NOISE_NORMAL, PT_BASELINE_NONE, PT_GRADIENT_SCORE, 1,
     0, 0, 0, 0},
    {"generic pathwise", SQUARE_DERIVATIVE, PT_NOISE_NORMAL, PT_BASELINE_F_X,
     PT_GRADIENT_PATHWISE, 0, 0, 0, 0, 0},
    {"generic pathwise, calling thread", SQUARE_DERIVATIVE_ORDERED, PT_NOISE_GUMBEL,
     PT_BASELINE_F_X, PT_GRADIENT_PATHWISE, 0, 0, 0, 0, 0},
    {"generic pathwise multiplicative", SQUARE_DERIVATIVE, PT_NOISE_NORMAL, PT_BASELINE_F_X,
     PT_GRADIENT_PATHWISE, 0, 1, 0, 0, 0},
};
#define CASES (sizeof cases / sizeof cases[0])

/* The case named `name`. */
static const band_case *named(const char *name) {
  for (size_t k = 0; k < CASES; k++)
    if (!strcmp(cases[k].name, name)) return &cases[k];
  cr_assert_fail("no case %s", name);
  return NULL;
}

/* The function whose Jacobian case c takes. */
static pt_fn *build(const band_case *c) {
  pt_fn *f = base(c->base), *p = NULL, *out = NULL;
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = M;
  o.sigma = 0.5f;
  o.noise = c->noise;
  o.baseline = c->baseline;
  o.gradient = c->gradient;
  o.antithetic = c->antithetic;
  o.multiplicative = c->multiplicative;
  o.block_diagonal = c->block_diagonal;
  o.independent_jacobian = c->independent_jacobian;
  cr_assert_eq(pt_make_perturbed_fun_ex(f, &o, &p), PT_OK, "%s: %s", c->name, pt_last_error());
  pt_fn_free(f);
  if (!c->composed) return p;
  pt_fn *outer = base(SUM_DERIVATIVE);
  cr_assert_eq(pt_fn_compose(outer, p, &out), PT_OK, "%s: %s", c->name, pt_last_error());
  pt_fn_free(outer);
  pt_fn_free(p);
  return out;
}

/* nonzero (the multiplicative score divides by x), no ties */
static void point(float *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = (float)((i * 7) % 11) * 0.1f - 0.45f + 0.001f * (float)i;
}

/* pt_fn_jacobian of f with the given tile (0: the real one), into a new buffer. */
static float *jacobian(const pt_fn *f, size_t tile) {
  float x[D];
  point(x, D);
  const size_t cells = pt_fn_n_out(f) * pt_fn_n_in(f);
  float *jac = malloc(cells * sizeof *jac);
  cr_assert(jac);
  pt_estimate_set_jacobian_tile(tile);
  const pt_status s = pt_fn_jacobian(f, pt_key_make(7), x, jac);
  pt_estimate_set_jacobian_tile(0);
  cr_assert_eq(s, PT_OK, "%s", pt_last_error());
  return jac;
}

/* Case c in bands of one row and of three (the tile of three rows' exact sums and doubles, or
   of one and a half with the block-diagonal leave-one-out's second Jacobian of sums) against
   one pass, on `threads` threads. */
static void check_bands(size_t threads) {
  cr_assert_eq(pt_set_num_threads(threads), PT_OK);
  for (size_t k = 0; k < CASES; k++) {
    pt_fn *f = build(&cases[k]);
    const size_t n_in = pt_fn_n_in(f), cells = pt_fn_n_out(f) * n_in;
    const size_t tiles[2] = {1, 3 * n_in * (sizeof(pt_xsum) + sizeof(double))};
    float *whole = jacobian(f, 0);
    for (size_t t = 0; t < 2; t++) {
      float *banded = jacobian(f, tiles[t]);
      cr_expect(memcmp(whole, banded, cells * sizeof *whole) == 0,
                "%s, %zu threads, tile %zu: the banded Jacobian differs", cases[k].name, threads,
                tiles[t]);
      free(banded);
    }
    free(whole);
    pt_fn_free(f);
  }
}

Test(jacobian_bands, every_path_one_thread) { check_bands(1); }
Test(jacobian_bands, every_path_two_threads) { check_bands(2); }

/* The real tile, crossed: a ranking of 460 inputs has 460 x 460 cells, 8.5 MB of sums (two
   bands); its bands give the Jacobian the one pass gives with a tile of the whole. */
Test(jacobian_bands, the_real_tile) {
  enum { N = 460 };
  pt_fn *r, *p;
  cr_assert_eq(pt_fn_ranking(N, &r), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(r, 256, 0.5f, PT_NOISE_NORMAL, 1, &p), PT_OK);
  cr_assert_gt((size_t)N * N * (sizeof(pt_xsum) + sizeof(double)), PT_JACOBIAN_TILE_BYTES);
  float x[N];
  for (size_t i = 0; i < N; i++) x[i] = (float)((i * 37) % 101) * 0.01f;
  float *banded = malloc(N * N * sizeof *banded), *whole = malloc(N * N * sizeof *whole);
  cr_assert(banded && whole);
  cr_assert_eq(pt_fn_jacobian(p, pt_key_make(3), x, banded), PT_OK);
  pt_estimate_set_jacobian_tile(SIZE_MAX);
  cr_assert_eq(pt_fn_jacobian(p, pt_key_make(3), x, whole), PT_OK);
  pt_estimate_set_jacobian_tile(0);
  cr_expect(memcmp(banded, whole, N * N * sizeof *whole) == 0, "the banded Jacobian differs");
  free(banded);
  free(whole);
  pt_fn_free(p);
  pt_fn_free(r);
}

/* ---- progress, cancellation and allocation failure ------------------------------------------ */

typedef struct watch {
  uint64_t stop_past; /* cancel at the first report with done above this (0: never) */
  uint64_t total, last_done;
  size_t reports;
} watch;

static int on_progress(void *user, uint64_t done, uint64_t total) {
  watch *w = user;
  w->total = total;
  w->last_done = done;
  w->reports++;
  return w->stop_past && done > w->stop_past;
}

/* The argmax's Jacobian in bands of one row (D bands of M / 128 groups each), reported at every
   checkpoint: the total counts every band's groups, the last report all of them. */
static void check_progress(size_t threads) {
  cr_assert_eq(pt_set_num_threads(threads), PT_OK);
  pt_fn *f = build(named("argmax"));
  const uint64_t groups = (M - 1) / pt_fn_sample_group(f) + 1;
  float x[D], jac[D * D];
  point(x, D);
  watch w = {0};
  pt_set_progress_handler(on_progress, &w, 0.0);
  pt_estimate_set_jacobian_tile(1);
  cr_assert_eq(pt_fn_jacobian(f, pt_key_make(7), x, jac), PT_OK, "%s", pt_last_error());
  cr_expect_eq(w.total, D * groups, "total %llu, not %d bands of %llu groups",
               (unsigned long long)w.total, D, (unsigned long long)groups);
  cr_expect_eq(w.last_done, w.total, "the last report is at %llu of %llu",
               (unsigned long long)w.last_done, (unsigned long long)w.total);

  /* canceled in the second band: PT_ECANCELED, and the canary intact */
  watch stop = {.stop_past = groups};
  pt_set_progress_handler(on_progress, &stop, 0.0);
  memset(jac, UNTOUCHED, sizeof jac);
  cr_expect_eq(pt_fn_jacobian(f, pt_key_make(7), x, jac), PT_ECANCELED);
  cr_expect(stop.last_done > groups && stop.last_done <= 2 * groups,
            "canceled at %llu of %llu groups, not in the second band",
            (unsigned long long)stop.last_done, (unsigned long long)stop.total);
  for (size_t i = 0; i < sizeof jac; i++)
    cr_assert_eq(((unsigned char *)jac)[i], UNTOUCHED, "byte %zu written after the cancellation",
                 i);
  pt_set_progress_handler(NULL, NULL, 0.0);
  pt_estimate_set_jacobian_tile(0);
  pt_fn_free(f);
}

Test(jacobian_bands, progress_and_cancellation_one_thread) { check_progress(1); }
Test(jacobian_bands, progress_and_cancellation_two_threads) { check_progress(2); }

/* Every allocation of a banded call failing in turn: PT_ENOMEM and nothing written, then the
   bits of the call without failures (the leave-one-out's block-diagonal argmax and the generic
   path, on two threads). */
Test(jacobian_bands, allocation_failure) {
  cr_assert_eq(pt_set_num_threads(2), PT_OK);
  const char *picks[2] = {"argmax block-diagonal leave-one-out", "generic score"};
  for (size_t k = 0; k < 2; k++) {
    const band_case *c = named(picks[k]);
    pt_fn *f = build(c);
    float x[D], want[D * D], got[D * D];
    point(x, D);
    pt_estimate_set_jacobian_tile(1);
    cr_assert_eq(pt_fn_jacobian(f, pt_key_make(7), x, want), PT_OK);
    size_t failures = 0;
    for (;; failures++) {
      cr_assert_lt(failures, 200, "%s: still failing after 200 allocations", c->name);
      memset(got, UNTOUCHED, sizeof got);
      pt_alloc_fail_after(failures);
      const pt_status s = pt_fn_jacobian(f, pt_key_make(7), x, got);
      pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
      if (s == PT_OK) break;
      cr_assert_eq(s, PT_ENOMEM, "%s, allocation %zu failing: %s", c->name, failures,
                   pt_strerror(s));
      for (size_t i = 0; i < sizeof got; i++)
        cr_assert_eq(((unsigned char *)got)[i], UNTOUCHED, "%s wrote after allocation %zu failed",
                     c->name, failures);
    }
    /* bands of one row allocate each band's sums: more failures than bands */
    cr_expect_gt(failures, D, "%s: %zu allocations, fewer than its %d bands", c->name, failures,
                 D);
    cr_expect(memcmp(got, want, sizeof got) == 0, "%s after %zu failures differs", c->name,
              failures);
    pt_estimate_set_jacobian_tile(0);
    pt_fn_free(f);
  }
}

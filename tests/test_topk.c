/* SPDX-License-Identifier: MIT */
/* The fused perturbed top-k (pt_fn_top_k, pt_fn_top_k_segments under pt_make_perturbed_fun_ex)
   against independent truth: a plain top-k of the stable order through the generic path on the
   same samples (the value bit for bit, the derivatives within rounding), the independent
   reference estimator of tests/estimator.c, the closed forms of the Gumbel top-k (k = 1: the
   softmax and its Jacobian; k = 2 of 3: one minus the Plackett-Luce probability of being last)
   at 5 standard errors, exact sums of k, ties of the perturbed keys, segments, block_diagonal,
   the leave-one-out, and refusals with nothing written.  Shards, threads and ISAs of top-k
   subjects are tests/test_options.c's; the kernel's parity, tests/parity_fused.c's.  Keys are
   fixed, so every statistical bound is one deterministic run. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "estimator.h"
#include "perturb.h"

/* ---- a plain top-k, the truth of the order -------------------------------------------------- */

/* The segments of a top-k: sizes and ks, at most 8 of them and 256 inputs. */
typedef struct top_k {
  size_t count, sizes[8], ks[8], n;
} top_k;

/* (a, i) < (b, j) in the row kernels' order: by value, NaN greatest, ties by index */
static int before(float a, size_t i, float b, size_t j) {
  if (isnan(a) || isnan(b)) return isnan(b) && (!isnan(a) || i < j);
  return a < b || (a == b && i < j);
}

/* y = the one-hot of the k greatest of each segment: an input wins when fewer than k of its
   segment come after it in the order (O(d^2), nothing shared with the library). */
static void top_k_point(const void *ctx, const float *x, float *y) {
  const top_k *t = ctx;
  size_t o = 0;
  for (size_t s = 0; s < t->count; s++) {
    for (size_t i = o; i < o + t->sizes[s]; i++) {
      size_t after = 0;
      for (size_t j = o; j < o + t->sizes[s]; j++) after += j != i && before(x[i], i, x[j], j);
      y[i] = after < t->ks[s] ? 1.0f : 0.0f;
    }
    o += t->sizes[s];
  }
}

static int top_k_batch(void *user, size_t batch, const float *x, float *y) {
  const top_k *t = user;
  for (size_t b = 0; b < batch; b++) top_k_point(t, x + b * t->n, y + b * t->n);
  return 0;
}

static top_k make_top_k(size_t count, const size_t *sizes, const size_t *ks) {
  top_k t = {count, {0}, {0}, 0};
  for (size_t s = 0; s < count; s++) {
    t.sizes[s] = sizes[s];
    t.ks[s] = ks[s];
    t.n += sizes[s];
  }
  return t;
}

static pt_fn *builtin_of(const top_k *t) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_top_k_segments(t->sizes, t->ks, t->count, &f), PT_OK);
  return f;
}

/* the same top-k as a thread-safe black box: the generic path */
static pt_fn *black_box_of(top_k *t) {
  pt_fn *f = NULL;
  cr_assert_eq(pt_fn_from_callback_ex(t->n, t->n, top_k_batch, NULL, t, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &f), PT_OK);
  return f;
}

static pt_perturb_options options(size_t m, float sigma, pt_noise noise, pt_baseline b) {
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = m;
  o.sigma = sigma;
  o.noise = noise;
  o.baseline = b;
  return o;
}

static pt_fn *perturbed(const pt_fn *f, const pt_perturb_options *o) {
  pt_fn *p = NULL;
  cr_assert_eq(pt_make_perturbed_fun_ex(f, o, &p), PT_OK);
  return p;
}

static void point_of(float *x, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(seed >> 40) / (double)(1u << 24)) - 0.5f;
  }
}

static int same_bits(const float *a, const float *b, size_t n) {
  return memcmp(a, b, n * sizeof *a) == 0;
}

static void expect_near(const float *got, const float *want, size_t n, double tol,
                        const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs((double)got[i] - want[i]) <= tol * (1.0 + fabs(want[i])),
              "%s[%zu]: fused %.9g, reference %.9g", what, i, (double)got[i], (double)want[i]);
}

static void expect_truth(const double *mean, const double *se, const double *truth, size_t n,
                         const char *what) {
  for (size_t i = 0; i < n; i++)
    cr_assert(fabs(mean[i] - truth[i]) <= 5.0 * se[i] + 1e-9,
              "%s[%zu]: estimate %.6g +- %.2g, closed form %.6g (%.1f standard errors)", what, i,
              mean[i], se[i], truth[i], fabs(mean[i] - truth[i]) / se[i]);
}

/* ---- the fused path against the generic one ------------------------------------------------- */

/* Every op of the fused top-k against the black box on the same samples: the value bit for
   bit (both count the same winners of the same keys x + sigma z), the Jacobian within the
   rounding of its sums, and the vjp and jvp within rounding of J^T y_bar and J x_dot.  The
   Jacobian's terms differ only in the order of float sums (the fused vjp's float runs of 32
   samples), each |term| <= 17 / sigma. */
static void check_against_generic(top_k *t, pt_noise noise, pt_baseline baseline, size_t m,
                                  int antithetic) {
  const size_t n = t->n;
  pt_fn *f = builtin_of(t), *box = black_box_of(t);
  const float sigma = 0.5f;
  pt_perturb_options o = options(m, sigma, noise, baseline);
  o.antithetic = antithetic;
  pt_fn *fused = perturbed(f, &o), *generic = perturbed(box, &o);
  static float x[256], y_bar[256], x_dot[256], yf[256], yg[256], jf[256 * 256], jg[256 * 256];
  point_of(x, n, 7);
  point_of(y_bar, n, 8);
  point_of(x_dot, n, 9);
  const pt_key key = pt_key_make(77);
  cr_assert_eq(pt_fn_eval(fused, key, x, yf), PT_OK);
  cr_assert_eq(pt_fn_eval(generic, key, x, yg), PT_OK);
  cr_assert(same_bits(yf, yg, n), "the value is the generic path's bit for bit");
  cr_assert_eq(pt_fn_jacobian(fused, key, x, jf), PT_OK);
  cr_assert_eq(pt_fn_jacobian(generic, key, x, jg), PT_OK);
  expect_near(jf, jg, n * n, 1e-5 + 32 * 0x1p-24 * 17 / sigma, "jacobian");
  float xb[256], yd[256], vjp[256], jvp[256];
  cr_assert_eq(pt_fn_vjp(fused, key, x, y_bar, xb), PT_OK);
  cr_assert_eq(pt_fn_jvp(fused, key, x, x_dot, yd), PT_OK);
  double size = 0;
  for (size_t i = 0; i < n; i++) {
    double v = 0, j = 0;
    for (size_t r = 0; r < n; r++) {
      v += (double)jg[r * n + i] * y_bar[r];
      j += (double)jg[i * n + r] * x_dot[r];
      size += fabs((double)jg[r * n + i]);
    }
    vjp[i] = (float)v;
    jvp[i] = (float)j;
  }
  /* |c| <= sum |y_bar| <= n / 2 per sample in the vjp's float runs */
  expect_near(xb, vjp, n, 1e-4 + 32 * 0x1p-24 * (double)n * 17 / sigma, "vjp");
  expect_near(yd, jvp, n, 1e-4, "jvp");
  (void)size;
  pt_fn_free(fused);
  pt_fn_free(generic);
  pt_fn_free(f);
  pt_fn_free(box);
}

Test(topk, one_segment_is_the_generic_path) {
  const size_t sizes[1] = {100}, ks[1] = {5}; /* 100 >= 8 k: selected through the bound */
  top_k t = make_top_k(1, sizes, ks);
  for (int noise = 0; noise < 2; noise++)
    check_against_generic(&t, (pt_noise)noise, PT_BASELINE_F_X, 700, 0);
  const size_t whole[1] = {20}, many[1] = {7}; /* ranked whole */
  t = make_top_k(1, whole, many);
  check_against_generic(&t, PT_NOISE_GUMBEL, PT_BASELINE_NONE, 700, 0);
}

Test(topk, segments_are_the_generic_path) {
  const size_t sizes[5] = {3, 64, 1, 17, 40}, ks[5] = {2, 4, 1, 17, 1};
  top_k t = make_top_k(5, sizes, ks);
  check_against_generic(&t, PT_NOISE_GUMBEL, PT_BASELINE_F_X, 500, 0);
  check_against_generic(&t, PT_NOISE_NORMAL, PT_BASELINE_LEAVE_ONE_OUT, 500, 0);
}

/* Antithetic pairs (samples 2p and 2p + 1 on u and 1 - u, or z and -z) on the fused path: the
   same samples as the generic path's, whose tiles hold whole pairs too. */
Test(topk, antithetic_pairs_are_the_generic_path) {
  const size_t sizes[3] = {100, 9, 30}, ks[3] = {4, 3, 2};
  top_k t = make_top_k(3, sizes, ks);
  for (int noise = 0; noise < 2; noise++)
    check_against_generic(&t, (pt_noise)noise, PT_BASELINE_F_X, 600, 1);
}

/* ---- closed forms --------------------------------------------------------------------------- */

/* k = 1 is the argmax: softmax(x / sigma) and (diag p - p p^T) / sigma under Gumbel noise; the
   library matches the reference on the same samples, and the reference the closed form. */
Test(topk, k_one_is_the_softmax) {
  const size_t sizes[1] = {5}, ks[1] = {1};
  top_k t = make_top_k(1, sizes, ks);
  const float x[5] = {0.5f, -0.2f, 1.0f, 0.1f, -1.0f}, sigma = 0.5f;
  const size_t m = 100000;
  const pt_key key = pt_key_make(2026);
  pt_fn *f = builtin_of(&t);
  const pt_perturb_options o = options(m, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
  pt_fn *p = perturbed(f, &o);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_estimate_run(top_k_point, &t, 5, 5, m, sigma, PT_NOISE_GUMBEL,
                                   PT_BASELINE_F_X, key, x, &ref), 0);
  float y[5], jac[25], rv[5], rj[25];
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
  for (size_t i = 0; i < 5; i++) rv[i] = (float)ref.value[i];
  for (size_t i = 0; i < 25; i++) rj[i] = (float)ref.jac[i];
  expect_near(y, rv, 5, 1e-6, "value");
  expect_near(jac, rj, 25, 1e-4, "jacobian");
  double mx = x[0], z = 0, prob[5], truth[25];
  for (size_t i = 1; i < 5; i++) mx = fmax(mx, x[i]);
  for (size_t i = 0; i < 5; i++) z += exp((x[i] - mx) / sigma);
  for (size_t i = 0; i < 5; i++) prob[i] = exp((x[i] - mx) / sigma) / z;
  for (size_t j = 0; j < 5; j++)
    for (size_t i = 0; i < 5; i++)
      truth[j * 5 + i] = ((i == j ? prob[i] : 0.0) - prob[i] * prob[j]) / sigma;
  expect_truth(ref.value, ref.value_se, prob, 5, "softmax");
  expect_truth(ref.jac, ref.jac_se, truth, 25, "softmax jacobian");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

/* The 2 greatest of 3 under Gumbel noise: the keys' order is Plackett-Luce with weights
   p = softmax(x / sigma), and input i is left out when it comes last, which the orders (j, l, i)
   give with probability p_j p_l / (1 - p_j).  M = 100000 at 5 standard errors of the reference
   on the library's samples, and the library's value is the reference's. */
Test(topk, two_of_three_is_plackett_luce) {
  const size_t sizes[1] = {3}, ks[1] = {2};
  top_k t = make_top_k(1, sizes, ks);
  const float x[3] = {0.3f, -0.4f, 0.1f}, sigma = 0.5f;
  const size_t m = 100000;
  const pt_key key = pt_key_make(3);
  pt_fn *f = builtin_of(&t);
  const pt_perturb_options o = options(m, sigma, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
  pt_fn *p = perturbed(f, &o);
  pt_ref_estimate ref;
  cr_assert_eq(pt_ref_estimate_run(top_k_point, &t, 3, 3, m, sigma, PT_NOISE_GUMBEL,
                                   PT_BASELINE_F_X, key, x, &ref), 0);
  float y[3], rv[3];
  cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
  for (size_t i = 0; i < 3; i++) rv[i] = (float)ref.value[i];
  cr_assert(same_bits(y, rv, 3), "the value is the reference's");
  double w[3], z = 0, truth[3];
  for (size_t i = 0; i < 3; i++) z += w[i] = exp(x[i] / sigma);
  for (size_t i = 0; i < 3; i++) w[i] /= z;
  for (size_t i = 0; i < 3; i++) {
    const size_t j = (i + 1) % 3, l = (i + 2) % 3;
    truth[i] = 1.0 - (w[j] * w[l] / (1.0 - w[j]) + w[l] * w[j] / (1.0 - w[l]));
  }
  expect_truth(ref.value, ref.value_se, truth, 3, "inclusion probability");
  pt_ref_estimate_free(&ref);
  pt_fn_free(p);
  pt_fn_free(f);
}

/* ---- exact invariants ----------------------------------------------------------------------- */

/* Each segment's estimate sums to exactly its k: the values are counts over M, exact in float
   when M is a power of two (and within the roundings of its n entries otherwise). */
Test(topk, each_segment_sums_to_k) {
  const size_t sizes[4] = {200, 7, 1, 33}, ks[4] = {9, 3, 1, 33};
  top_k t = make_top_k(4, sizes, ks);
  pt_fn *f = builtin_of(&t);
  float x[241], y[241];
  point_of(x, t.n, 4);
  const size_t ms[2] = {1024, 1000};
  for (size_t c = 0; c < 2; c++)
    for (int noise = 0; noise < 2; noise++) {
      const pt_perturb_options o = options(ms[c], 0.3f, (pt_noise)noise, PT_BASELINE_F_X);
      pt_fn *p = perturbed(f, &o);
      cr_assert_eq(pt_fn_eval(p, pt_key_make(40 + c), x, y), PT_OK);
      size_t o0 = 0;
      for (size_t s = 0; s < 4; s++) {
        double sum = 0, counted = 0;
        for (size_t i = o0; i < o0 + sizes[s]; i++) {
          sum += y[i];
          counted += nearbyint((double)y[i] * (double)ms[c]);
        }
        cr_assert_eq(counted, (double)(ks[s] * ms[c]), "segment %zu: %g samples counted", s,
                     counted);
        if (c == 0) cr_assert_eq(sum, (double)ks[s], "segment %zu sums to %.9g", s, sum);
        else cr_assert(fabs(sum - (double)ks[s]) <= (double)sizes[s] * 0x1p-24, "segment %zu", s);
        o0 += sizes[s];
      }
      pt_fn_free(p);
    }
  pt_fn_free(f);
}

/* Perturbed keys that all tie: x = 2^20 and sigma 2^-10 leave x + sigma z = x for every noise
   the stream gives (|z| < 20), so every sample takes the last k of each segment, the greater
   of equal keys being the later index; on both the bound's path and the whole ranking, with
   the baseline's ties the same, so the derivatives are exactly 0. */
Test(topk, tied_keys_take_the_last_indices) {
  const size_t sizes[3] = {100, 9, 16}, ks[3] = {3, 4, 2};
  top_k t = make_top_k(3, sizes, ks);
  pt_fn *f = builtin_of(&t);
  float x[125], y[125], jac[125 * 125];
  for (size_t i = 0; i < t.n; i++) x[i] = 0x1p20f;
  for (int noise = 0; noise < 2; noise++) {
    const pt_perturb_options o = options(300, 0x1p-10f, (pt_noise)noise, PT_BASELINE_F_X);
    pt_fn *p = perturbed(f, &o);
    cr_assert_eq(pt_fn_eval(p, pt_key_make(5), x, y), PT_OK);
    cr_assert_eq(pt_fn_jacobian(p, pt_key_make(5), x, jac), PT_OK);
    size_t o0 = 0;
    for (size_t s = 0; s < 3; s++) {
      for (size_t i = o0; i < o0 + sizes[s]; i++)
        cr_assert_eq(y[i], i >= o0 + sizes[s] - ks[s] ? 1.0f : 0.0f, "input %zu: %g", i,
                     (double)y[i]);
      o0 += sizes[s];
    }
    for (size_t c = 0; c < t.n * t.n; c++) cr_assert_eq(jac[c], 0.0f, "jacobian entry %zu", c);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* ---- block_diagonal and the leave-one-out --------------------------------------------------- */

/* The cross-segment entries are exactly 0, the diagonal blocks are the full estimate's bit for
   bit, the value does not change, and the vjp and jvp are the block-diagonal Jacobian's
   products. */
static void check_block_diagonal(pt_noise noise, pt_baseline baseline) {
  const size_t sizes[4] = {3, 48, 1, 12}, ks[4] = {1, 5, 1, 6};
  top_k t = make_top_k(4, sizes, ks);
  const size_t n = t.n;
  size_t seg_of[64] = {0}, at = 0; /* zeroed: cppcheck cannot see the loop set the first n */
  for (size_t s = 0; s < 4; s++)
    for (size_t i = 0; i < sizes[s]; i++) seg_of[at++] = s;
  pt_fn *f = builtin_of(&t);
  pt_perturb_options o = options(700, 0.4f, noise, baseline);
  pt_fn *full = perturbed(f, &o);
  o.block_diagonal = 1;
  pt_fn *bd = perturbed(f, &o);
  float x[64], y_bar[64], x_dot[64], yf[64], yb[64], x_bar[64], y_dot[64];
  point_of(x, n, 1);
  point_of(y_bar, n, 2);
  point_of(x_dot, n, 3);
  const pt_key key = pt_key_make(31);
  static float jf[64 * 64], jb[64 * 64];
  cr_assert_eq(pt_fn_jacobian(full, key, x, jf), PT_OK);
  cr_assert_eq(pt_fn_jacobian(bd, key, x, jb), PT_OK);
  cr_assert_eq(pt_fn_eval(full, key, x, yf), PT_OK);
  cr_assert_eq(pt_fn_eval(bd, key, x, yb), PT_OK);
  cr_assert(same_bits(yf, yb, n), "the value does not depend on block_diagonal");
  double vjp[64] = {0}, jvp[64] = {0}, size_vjp[64] = {0}, size_jvp[64] = {0};
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      const float got = jb[j * n + i];
      if (seg_of[i] != seg_of[j])
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
  /* the vjp's float runs of 32 samples: within 32 2^-24 |c g| a term, |c| <= k max|y_bar| <= 3,
     E|g| <= 2 */
  cr_assert_eq(pt_fn_vjp(bd, key, x, y_bar, x_bar), PT_OK);
  cr_assert_eq(pt_fn_jvp(bd, key, x, x_dot, y_dot), PT_OK);
  for (size_t i = 0; i < n; i++) {
    cr_assert(fabs(x_bar[i] - vjp[i]) <= 1e-5 * size_vjp[i] + 32 * 0x1p-24 * 6 / 0.4 + 1e-6,
              "vjp[%zu] %.9g, J^T y_bar %.9g", i, (double)x_bar[i], vjp[i]);
    cr_assert(fabs(y_dot[i] - jvp[i]) <= 1e-5 * size_jvp[i] + 1e-6, "jvp[%zu] %.9g, J x_dot %.9g",
              i, (double)y_dot[i], jvp[i]);
  }
  pt_fn_free(full);
  pt_fn_free(bd);
  pt_fn_free(f);
}

Test(topk, block_diagonal_drops_exactly_the_cross_segment_terms) {
  for (int noise = 0; noise < 2; noise++)
    for (int b = 0; b < 3; b++) check_block_diagonal((pt_noise)noise, (pt_baseline)b);
}

/* The leave-one-out on the reference's samples: the value bit for bit and the Jacobian within
   the rounding of its sums (M = 5000, |term| <= 2 k 17 / ((M - 1) sigma)); with antithetic
   pairs too, each sample leaving out its pair (normal ones, whose pair's terms cancel, and
   Gumbel ones, whose partners' noise the reference forms within an ulp or two: no key of this
   key's samples is that near a tie). */
Test(topk, leave_one_out_is_the_reference) {
  const size_t sizes[2] = {40, 6}, ks[2] = {3, 2};
  top_k t = make_top_k(2, sizes, ks);
  const size_t n = t.n, m = 5000;
  const float sigma = 0.5f;
  pt_fn *f = builtin_of(&t);
  float x[46], y[46], rv[46] = {0}; /* zeroed: cppcheck cannot see the loop set them */
  static float jac[46 * 46], rj[46 * 46];
  point_of(x, n, 6);
  for (int noise = 0; noise < 4; noise++) {
    const int anti = noise >= 2; /* then pairs of either noise */
    const pt_key key = pt_key_make(600 + (uint64_t)noise);
    pt_perturb_options o = options(m, sigma, (pt_noise)(noise % 2), PT_BASELINE_LEAVE_ONE_OUT);
    o.antithetic = anti;
    pt_fn *p = perturbed(f, &o);
    pt_ref_estimate ref;
    cr_assert_eq(pt_ref_pairs_run(top_k_point, &t, n, n, m, sigma, o.noise,
                                  PT_BASELINE_LEAVE_ONE_OUT, anti, key, x, &ref), 0);
    cr_assert_eq(pt_fn_eval(p, key, x, y), PT_OK);
    cr_assert_eq(pt_fn_jacobian(p, key, x, jac), PT_OK);
    for (size_t i = 0; i < n; i++) rv[i] = (float)ref.value[i];
    for (size_t i = 0; i < n * n; i++) rj[i] = (float)ref.jac[i];
    cr_assert(same_bits(y, rv, n), "the value is the reference's");
    expect_near(jac, rj, n * n, 1e-4, "leave-one-out jacobian");
    pt_ref_estimate_free(&ref);
    pt_fn_free(p);
  }
  pt_fn_free(f);
}

/* ---- refusals ------------------------------------------------------------------------------- */

Test(topk, bad_input_is_refused_with_nothing_written) {
  pt_fn *f = NULL, *sentinel = (pt_fn *)&f;
  pt_fn *out = sentinel;
  const size_t sizes[2] = {4, 5}, zero_k[2] = {1, 0}, big_k[2] = {5, 2}, zero_size[2] = {0, 5};
  cr_expect_eq(pt_fn_top_k(9, 0, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k(9, 10, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k(0, 1, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, zero_k, 2, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, big_k, 2, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(zero_size, zero_k, 2, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, NULL, 2, &out), PT_EINVAL);
  cr_expect_eq(pt_fn_top_k_segments(sizes, big_k, 0, &out), PT_EINVAL);
  cr_expect_eq(out, sentinel, "nothing written");

  /* a perturbed top-k refuses a non-finite point and a missing vector, writing nothing */
  const size_t ks[2] = {2, 3};
  cr_assert_eq(pt_fn_top_k_segments(sizes, ks, 2, &f), PT_OK);
  pt_perturb_options o = options(100, 0.5f, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
  o.block_diagonal = 1;
  pt_fn *p = perturbed(f, &o);
  float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, v[9] = {0}, got[81], before[81];
  for (size_t i = 0; i < 81; i++) got[i] = before[i] = -7.0f;
  const float bad[3] = {NAN, INFINITY, -INFINITY};
  for (size_t b = 0; b < 3; b++) {
    x[4] = bad[b];
    cr_expect_eq(pt_fn_eval(p, pt_key_make(1), x, got), PT_EINVAL);
    cr_expect_eq(pt_fn_vjp(p, pt_key_make(1), x, v, got), PT_EINVAL);
    cr_expect_eq(pt_fn_jacobian(p, pt_key_make(1), x, got), PT_EINVAL);
  }
  x[4] = 4;
  cr_expect_eq(pt_fn_vjp(p, pt_key_make(1), x, NULL, got), PT_EINVAL);
  cr_expect_eq(pt_fn_jvp(p, pt_key_make(1), x, NULL, got), PT_EINVAL);
  cr_expect(same_bits(got, before, 81), "nothing written");
  /* top-k has no derivative of its own to follow */
  pt_perturb_options pw = options(100, 0.5f, PT_NOISE_GUMBEL, PT_BASELINE_F_X);
  pw.gradient = PT_GRADIENT_PATHWISE;
  pt_fn *q = sentinel;
  cr_expect_eq(pt_make_perturbed_fun_ex(f, &pw, &q), PT_EINVAL);
  cr_expect_eq(q, sentinel, "nothing written");
  pt_fn_free(p);
  pt_fn_free(f);
}

/* SPDX-License-Identifier: MIT */
/* pt_noise_fill through the public API: the stream against the independent reference
   (tests/reference.c) at offsets chosen to break the chunked layout, pinned hashes on every
   ISA, statistics of fixed keys at 5 standard errors, Kolmogorov-Smirnov, independence of
   derived keys and of words, and every bad input.  Parity of every ISA on the whole case
   battery is tests/test_parity.c; Philox and keys are tests/test_keys.c. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "parity_noise.h"
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */
#include "reference.h"

/* ---- The stream against the reference, on every ISA ----------------------------------------- */

static const pt_noise kinds[3] = {PT_NOISE_UNIFORM, PT_NOISE_GUMBEL, PT_NOISE_NORMAL};

static int within_bound(pt_noise kind, float got, pt_key key, uint64_t k) {
  if (kind == PT_NOISE_UNIFORM) return got == pt_ref_uniform(key.seed, key.stream, k);
  const double truth = kind == PT_NOISE_GUMBEL ? pt_ref_gumbel(key.seed, key.stream, k)
                                               : pt_ref_normal(key.seed, key.stream, k);
  const double tol = kind == PT_NOISE_GUMBEL ? 1e-6 : 1e-5;
  return fabs(got - truth) <= tol * fmax(1.0, fabs(truth));
}

Test(noise, stream_matches_reference_on_every_isa) {
  static const uint64_t offsets[] = {
      0, 1, 15, 16, 17, 63, 64, 65, 127, 1000003,
      ((uint64_t)1 << 34) - 100, /* the counter's low word wraps at word 2^34 */
      ((uint64_t)1 << 38) + 5,   /* counter high word 16 */
      ((uint64_t)1 << 62) + 33, UINT64_MAX - 299};
  static const pt_key keys[] = {{0, 0}, {UINT64_MAX, UINT64_MAX}, {0x9E3779B97F4A7C15ull, 3},
                                {5, 0xFFFFFFFF00000000ull}};
  float out[300];
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
      for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++)
        for (int kd = 0; kd < 3; kd++) {
          cr_assert_eq(pt_noise_fill(kinds[kd], keys[q], offsets[o], out, 300), PT_OK);
          for (size_t i = 0; i < 300; i++)
            cr_assert(within_bound(kinds[kd], out[i], keys[q], offsets[o] + i),
                      "%s kind %d key %zu offset %#llx word %zu: %a", pt_isa_name((pt_isa)isa),
                      kinds[kd], q, (unsigned long long)offsets[o], i, out[i]);
        }
  }
}

/* Any window of the stream equals the same words of one long fill: every head, tail and
   block boundary of the chunked kernels. */
Test(noise, every_window_is_a_slice_of_one_fill) {
  enum { LONG = 1200 };
  const pt_key key = {0xC0FFEE, 77};
  float whole[LONG], part[LONG];
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    for (int kd = 0; kd < 3; kd++) {
      cr_assert_eq(pt_noise_fill(kinds[kd], key, 0, whole, LONG), PT_OK);
      for (size_t start = 0; start < 300; start += 1 + start / 40)
        for (size_t n = 1; start + n <= LONG; n += 1 + n / 3) {
          cr_assert_eq(pt_noise_fill(kinds[kd], key, start, part, n), PT_OK);
          cr_assert(memcmp(part, whole + start, n * sizeof *part) == 0,
                    "%s kind %d: window [%zu, %zu) differs", pt_isa_name((pt_isa)isa), kinds[kd],
                    start, start + n);
        }
    }
  }
}

/* The pinned hashes of tests/parity_noise.c, through the public API on every ISA; the uniform
   ones are also rebuilt from the reference, so the constants are independent truth. */
Test(noise, known_hashes_on_every_isa) {
  for (size_t i = 0; i < pt_noise_known_count; i++) {
    const pt_noise_known *f = &pt_noise_known_fills[i];
    float *out = malloc(f->n * sizeof *out);
    cr_assert_not_null(out);
    for (size_t j = 0; j < f->n; j++) out[j] = pt_ref_uniform(f->key.seed, f->key.stream, f->offset + j);
    cr_assert_eq(pt_hash32(PT_HASH_START, out, f->n), f->uniform, "reference uniform hash of fill %zu", i);
    const uint64_t want[3] = {f->uniform, f->gumbel, f->normal};
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      for (int kd = 0; kd < 3; kd++) {
        cr_assert_eq(pt_noise_fill(kinds[kd], f->key, f->offset, out, f->n), PT_OK);
        cr_assert_eq(pt_hash32(PT_HASH_START, out, f->n), want[kd], "%s kind %d fill %zu",
                     pt_isa_name((pt_isa)isa), kinds[kd], i);
      }
    }
    free(out);
  }
}

/* ---- Statistics of fixed keys: deterministic, bounds at 5 standard errors ------------------- */

enum { SAMPLES = 1 << 22 };

static float *sample(pt_noise kind, pt_key key, size_t n) {
  float *x = malloc(n * sizeof *x);
  cr_assert_not_null(x);
  cr_assert_eq(pt_noise_fill(kind, key, 12345, x, n), PT_OK);
  return x;
}

typedef struct moments {
  double mean, var, m4; /* central moments */
} moments;

static moments moments_of(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  moments m = {s / (double)n, 0, 0};
  for (size_t i = 0; i < n; i++) {
    const double d = x[i] - m.mean;
    m.var += d * d;
    m.m4 += d * d * d * d;
  }
  m.var /= (double)n;
  m.m4 /= (double)n;
  return m;
}

/* mean, variance and fraction below `at`, against their true values, each within 5 SE */
static void expect_moments(const float *x, size_t n, double mean, double var, double m4,
                           double at, double p_below, const char *what) {
  const moments m = moments_of(x, n);
  const double se_mean = sqrt(var / (double)n), se_var = sqrt((m4 - var * var) / (double)n);
  cr_assert(fabs(m.mean - mean) < 5 * se_mean, "%s mean %.6f, want %.6f +- %.2g", what, m.mean,
            mean, 5 * se_mean);
  cr_assert(fabs(m.var - var) < 5 * se_var, "%s variance %.6f, want %.6f +- %.2g", what, m.var,
            var, 5 * se_var);
  size_t below = 0;
  for (size_t i = 0; i < n; i++) below += x[i] <= at;
  const double p = (double)below / (double)n, se_p = sqrt(p_below * (1 - p_below) / (double)n);
  cr_assert(fabs(p - p_below) < 5 * se_p, "%s P(X <= %g) = %.6f, want %.6f +- %.2g", what, at, p,
            p_below, 5 * se_p);
}

static int cmp_float(const void *a, const void *b) {
  const float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* sqrt(n) * sup |F_n - F| below 1.95, the 0.1% point of Kolmogorov's distribution */
static void expect_ks(float *x, size_t n, double (*cdf)(double), const char *what) {
  qsort(x, n, sizeof *x, cmp_float);
  double d = 0;
  for (size_t i = 0; i < n; i++) {
    const double f = cdf(x[i]);
    d = fmax(d, fmax(f - (double)i / (double)n, (double)(i + 1) / (double)n - f));
  }
  cr_assert(sqrt((double)n) * d < 1.95, "%s: Kolmogorov-Smirnov sqrt(n) D = %.3f", what,
            sqrt((double)n) * d);
}

static double gumbel_cdf(double g) { return exp(-exp(-g)); }
static double normal_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

#define EULER_GAMMA 0.57721566490153286061
#define PI 3.14159265358979323846

Test(noise_stats, uniform) {
  float *x = sample(PT_NOISE_UNIFORM, (pt_key){1, 0}, SAMPLES);
  for (size_t i = 0; i < SAMPLES; i++) cr_assert(x[i] >= 0x1p-24f && x[i] <= 1 - 0x1p-24f);
  expect_moments(x, SAMPLES, 0.5, 1.0 / 12, 1.0 / 80, 0.25, 0.25, "uniform");
  free(x);
}

Test(noise_stats, gumbel) {
  float *x = sample(PT_NOISE_GUMBEL, (pt_key){2, 0}, SAMPLES);
  const double var = PI * PI / 6;
  /* Gumbel's excess kurtosis is 12/5, so the fourth central moment is 5.4 var^2 */
  expect_moments(x, SAMPLES, EULER_GAMMA, var, 5.4 * var * var, 0.0, exp(-1.0), "gumbel");
  expect_ks(x, 1 << 20, gumbel_cdf, "gumbel");
  free(x);
}

Test(noise_stats, normal) {
  float *x = sample(PT_NOISE_NORMAL, (pt_key){3, 0}, SAMPLES);
  expect_moments(x, SAMPLES, 0.0, 1.0, 3.0, 1.0, normal_cdf(1.0), "normal");
  size_t above = 0;
  for (size_t i = 0; i < SAMPLES; i++) above += x[i] > 3.0f;
  const double p3 = 1 - normal_cdf(3.0), se = sqrt(p3 * (1 - p3) / SAMPLES);
  cr_assert(fabs((double)above / SAMPLES - p3) < 5 * se, "normal P(Z > 3) = %.6f, want %.6f",
            (double)above / SAMPLES, p3);
  expect_ks(x, 1 << 20, normal_cdf, "normal");
  free(x);
}

/* Pearson correlation of x and y, within 5 SE (1/sqrt(n)) of 0 */
static void expect_uncorrelated(const float *x, const float *y, size_t n, const char *what) {
  const moments mx = moments_of(x, n), my = moments_of(y, n);
  double c = 0;
  for (size_t i = 0; i < n; i++) c += (x[i] - mx.mean) * (y[i] - my.mean);
  const double r = c / (double)n / sqrt(mx.var * my.var);
  cr_assert(fabs(r) < 5 / sqrt((double)n), "%s: correlation %.5f", what, r);
}

Test(noise_stats, independent_keys_and_words) {
  enum { N = 1 << 20 };
  const pt_key k = {0xABCDEF, 0};
  float *a = sample(PT_NOISE_NORMAL, pt_key_fold_in(k, 0), N);
  float *b = sample(PT_NOISE_NORMAL, pt_key_fold_in(k, 1), N);
  float *p = sample(PT_NOISE_NORMAL, k, N);
  expect_uncorrelated(a, b, N, "fold_in(k, 0) and fold_in(k, 1)");
  expect_uncorrelated(p, a, N, "k and fold_in(k, 0)");
  expect_uncorrelated(p, p + 1, N - 1, "neighbouring words");
  /* the two halves of one Box-Muller pair: words k and k ^ 16 */
  float *even = malloc(N / 2 * sizeof *even), *odd = malloc(N / 2 * sizeof *odd);
  cr_assert(even && odd);
  size_t m = 0;
  for (size_t i = 0; i + 16 < N && m < N / 2; i++)
    if (((i + 12345) & 16) == 0) {
      even[m] = p[i];
      odd[m++] = p[i + 16];
    }
  expect_uncorrelated(even, odd, m, "the even and odd word of one counter");
  /* one seed, two streams */
  float *s0 = sample(PT_NOISE_GUMBEL, (pt_key){99, 0}, N), *s1 = sample(PT_NOISE_GUMBEL, (pt_key){99, 1}, N);
  expect_uncorrelated(s0, s1, N, "streams 0 and 1 of one seed");
  free(a);
  free(b);
  free(p);
  free(even);
  free(odd);
  free(s0);
  free(s1);
}

/* ---- Bad input: a status and nothing written ----------------------------------------------- */

static void expect_fill_refused(pt_status want, pt_noise kind, uint64_t offset, size_t n) {
  float out[4] = {-5, -5, -5, -5};
  cr_assert_eq(pt_noise_fill(kind, (pt_key){1, 2}, offset, out, n), want,
               "kind %d offset %#llx n %zu", kind, (unsigned long long)offset, n);
  for (int i = 0; i < 4; i++) cr_assert_eq(out[i], -5, "wrote out[%d] on error", i);
}

Test(noise, bad_input) {
  expect_fill_refused(PT_EINVAL, (pt_noise)3, 0, 4);
  expect_fill_refused(PT_EINVAL, (pt_noise)-1, 0, 4);
  expect_fill_refused(PT_EINVAL, (pt_noise)3, 0, 0);
  cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, (pt_key){1, 2}, 0, NULL, 4), PT_EINVAL);
  /* words past 2^64 - 1 do not exist */
  expect_fill_refused(PT_EOVERFLOW, PT_NOISE_UNIFORM, UINT64_MAX, 2);
  expect_fill_refused(PT_EOVERFLOW, PT_NOISE_NORMAL, UINT64_MAX - 2, 4);
  expect_fill_refused(PT_EOVERFLOW, PT_NOISE_GUMBEL, 2, SIZE_MAX);
  /* more floats than an object can hold */
  expect_fill_refused(PT_EOVERFLOW, PT_NOISE_GUMBEL, 0, (size_t)PTRDIFF_MAX / 2);
}

Test(noise, empty_and_last_words) {
  cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, (pt_key){1, 2}, UINT64_MAX, NULL, 0), PT_OK);
  float out[4] = {-5, -5, -5, -5};
  cr_assert_eq(pt_noise_fill(PT_NOISE_NORMAL, (pt_key){1, 2}, 7, out, 0), PT_OK);
  cr_assert_eq(out[0], -5);
  /* the very last words: 2^64 - 4 .. 2^64 - 1 */
  for (int kd = 0; kd < 3; kd++) {
    cr_assert_eq(pt_noise_fill(kinds[kd], (pt_key){1, 2}, UINT64_MAX - 3, out, 4), PT_OK);
    for (int i = 0; i < 4; i++)
      cr_assert(within_bound(kinds[kd], out[i], (pt_key){1, 2}, UINT64_MAX - 3 + (uint64_t)i));
  }
}

Test(noise, env_unknown_isa_refuses_until_select) {
  setenv("PERTURB_ISA", "sse9", 1);
  expect_fill_refused(PT_EUNSUPPORTED, PT_NOISE_GUMBEL, 0, 4);
  cr_assert_eq(pt_isa_select(PT_ISA_SCALAR), PT_OK);
  float out[4];
  cr_assert_eq(pt_noise_fill(PT_NOISE_UNIFORM, (pt_key){0, 0}, 0, out, 4), PT_OK);
  cr_assert_eq(out[0], (float)((0x6627e8d5u >> 8) | 1) * 0x1p-24f);
}

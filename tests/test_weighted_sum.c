/* SPDX-License-Identifier: MIT */
/* pt_weighted_sum_rows through the public API: exact known answers, NaN and infinity, accuracy
   against float64 up to 10^7 rows with bitwise agreement across ISAs and with the reference of
   the order of operations, and every bad input (a clear status and nothing written). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */
#include "reference.h"

static uint32_t bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

/* Every supported ISA must give exactly `want`. */
static void expect_sums(const float *x, size_t rows, size_t d, size_t ld, const float *w,
                        const float *want) {
  float out[8];
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    cr_assert_eq(pt_weighted_sum_rows(x, rows, d, ld, w, out), PT_OK);
    for (size_t j = 0; j < d; j++)
      cr_assert_eq(bits(out[j]), bits(want[j]), "%s: out[%zu] = %a, want %a",
                   pt_isa_name((pt_isa)isa), j, out[j], want[j]);
  }
}

Test(weighted_sum, exact_small) {
  /* 3 rows of 4 with ld 5; the gap holds a value that would show if it were read */
  const float x[15] = {1, 2, 3, 4, 1e30f, 10, 20, 30, 40, 1e30f, 0.5f, -0.25f, 8, -16};
  const float w[3] = {1, -2, 0.5f};
  expect_sums(x, 3, 4, 5, w, (const float[]){1 - 20 + 0.25f, 2 - 40 - 0.125f, 3 - 60 + 4, 4 - 80 - 8});
  expect_sums(x, 3, 4, 5, NULL, (const float[]){11.5f, 21.75f, 41, 28});
  expect_sums(x, 1, 4, 5, w, (const float[]){1, 2, 3, 4});
}

Test(weighted_sum, nan_and_infinity) {
  const float x[4 * 3] = {1, INFINITY, -NAN, 1, 2, -INFINITY, 3, 1, INFINITY, 4, -INFINITY, 1};
  float nan;
  const uint32_t canonical = 0x7fc00000u; /* every NaN result has these bits */
  memcpy(&nan, &canonical, sizeof nan);
  /* with weights 1: finite; inf - inf is NaN; a NaN input (of either sign); inf + finite */
  const float x4[4 * 4] = {1, INFINITY, -NAN, 1, 2, 5, 3, INFINITY, 3, -INFINITY, 0, 1, 4, 1, 1, 1};
  expect_sums(x4, 4, 4, 4, NULL, (const float[]){10, nan, nan, INFINITY});
  const float w[3] = {1, 0, 1}; /* 0 * inf is NaN */
  expect_sums(x, 3, 4, 4, w, (const float[]){1 + INFINITY, nan, nan, 2});
}

/* rows x d uniform values in [-1, 1) plus `mean`, weights in [-1, 1) (or NULL): every ISA gives
   the same bits, equal to the reference of the order, within 1e-5 sum|w x| of float64. */
static void check_accuracy(size_t rows, size_t d, size_t ld, int weighted, float mean) {
  float *x = malloc(rows * ld * sizeof *x), *w = weighted ? malloc(rows * sizeof *w) : NULL;
  float *out = malloc(d * sizeof *out), *first = malloc(d * sizeof *first);
  cr_assert(x && (w || !weighted) && out && first);
  uint64_t s = rows * 31 + d;
  for (size_t i = 0; i < rows * ld; i++) x[i] = mean + (float)(pt_test_rand(&s) >> 40) * 0x1p-23f - 1.0f;
  for (size_t r = 0; weighted && r < rows; r++) w[r] = (float)(pt_test_rand(&s) >> 40) * 0x1p-23f - 1.0f;
  int seen = 0;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    cr_assert_eq(pt_weighted_sum_rows(x, rows, d, ld, w, out), PT_OK);
    if (!seen++) memcpy(first, out, d * sizeof *out);
    cr_assert_arr_eq(out, first, d * sizeof *out, "%s differs from scalar", pt_isa_name((pt_isa)isa));
  }
  for (size_t j = 0; j < d; j++) {
    double magnitude;
    const double truth = pt_ref_weighted_sum(x, rows, ld, w, j, &magnitude);
    cr_assert_leq(fabs((double)out[j] - truth), 1e-5 * magnitude,
                  "rows=%zu d=%zu column %zu: %a, float64 %a, sum|wx| %g", rows, d, j, out[j], truth,
                  magnitude);
    const float ordered = pt_ref_weighted_sum_ordered(x, rows, d, ld, w, j);
    cr_assert_eq(bits(out[j]), bits(ordered), "column %zu: %a, reference of the order %a", j,
                 out[j], ordered);
  }
  free(x);
  free(w);
  free(out);
  free(first);
}

Test(weighted_sum, accuracy_a_million_rows) {
  check_accuracy(1000000, 3, 3, 1, 0.0f);
  check_accuracy(1000000, 3, 4, 0, 0.25f);
  check_accuracy(1000003, 1, 1, 1, 0.5f);
}

Test(weighted_sum, accuracy_wide_rows) {
  check_accuracy(20000, 300, 301, 1, 0.0f);
  check_accuracy(3000, 1500, 1500, 0, 1.0f);
}

Test(weighted_sum, accuracy_ten_million_rows_one_column) {
  check_accuracy(10000000, 1, 1, 1, 0.0f);
  check_accuracy(10000000, 1, 1, 0, 1.0f);
}

/* 0.1f added 10^7 times: float accumulation in one sequence ends near 1.09e6 instead of 1e6
   (each addition rounds by a growing fraction of the term); the blocked sum is within the bound. */
Test(weighted_sum, constant_column_does_not_drift) {
  const size_t rows = 10000000;
  float *x = malloc(rows * sizeof *x);
  cr_assert(x);
  for (size_t r = 0; r < rows; r++) x[r] = 0.1f;
  const double truth = (double)rows * (double)0.1f;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    float out;
    cr_assert_eq(pt_weighted_sum_rows(x, rows, 1, 1, NULL, &out), PT_OK);
    cr_assert_leq(fabs((double)out - truth), 1e-5 * truth, "%s: %a, want %a",
                  pt_isa_name((pt_isa)isa), out, truth);
  }
  free(x);
}

/* ---- bad input: a status, and not one element written ---- */

static void expect_refused(pt_status want, const float *x, size_t rows, size_t d, size_t ld,
                           const float *w, float *out) {
  float before[4];
  if (out) memcpy(before, out, sizeof before);
  cr_assert_eq(pt_weighted_sum_rows(x, rows, d, ld, w, out), want, "rows=%zu d=%zu ld=%zu", rows,
               d, ld);
  if (out) cr_assert_arr_eq(out, before, sizeof before, "wrote on error");
}

Test(weighted_sum, bad_input) {
  const float x[8] = {0}, w[2] = {1, 1};
  float out[4] = {-5, -5, -5, -5};
  expect_refused(PT_EINVAL, NULL, 2, 4, 4, w, out);
  expect_refused(PT_EINVAL, x, 2, 4, 4, w, NULL);
  expect_refused(PT_EINVAL, x, 2, 0, 4, w, out);
  expect_refused(PT_EINVAL, x, 2, 4, 3, w, out);
  expect_refused(PT_EOVERFLOW, x, 1, (size_t)INT32_MAX + 1, (size_t)INT32_MAX + 1, w, out);
  expect_refused(PT_EOVERFLOW, x, SIZE_MAX / 2, 4, 4, NULL, out);
  expect_refused(PT_EOVERFLOW, x, 2, 4, SIZE_MAX / 4, w, out);
}

Test(weighted_sum, zero_rows_writes_nothing) {
  float out[4] = {-5, -5, -5, -5};
  expect_refused(PT_OK, NULL, 0, 4, 4, NULL, out);
  expect_refused(PT_OK, NULL, 0, 4, 4, NULL, NULL);
  expect_refused(PT_EINVAL, NULL, 0, 0, 4, NULL, out);
  expect_refused(PT_EINVAL, NULL, 0, 4, 3, NULL, out);
}

/* ---- weighted_sum: block sums are added to the double in block order -------------------------
   With inputs in [-1, 1) the double accumulation is exact, so it shows no order; these block
   sums do: 2^60, 0, 1, -2^60 give 0 in order and 1 with pairs swapped (the block sums of one
   GROUP, 4 blocks on AVX-512 and 2 on AVX2, taken in another order), and 2^60, 1, -2^60, 1 give
   1 in order and 0 reversed.  Truth: the reference of the order, on every ISA. */
Test(weighted_sum, block_sums_added_in_block_order) {
  static const float patterns[2][4] = {{0x1p60f, 0, 1, -0x1p60f}, {0x1p60f, 1, -0x1p60f, 1}};
  const size_t rows = 8 * 512;
  float *x = calloc(rows, sizeof *x);
  cr_assert(x);
  for (int p = 0; p < 2; p++) {
    memset(x, 0, rows * sizeof *x);
    for (size_t b = 0; b < 8; b++) x[b * 512 + 7] = patterns[p][b % 4]; /* one term per block */
    const float want = pt_ref_weighted_sum_ordered(x, rows, 1, 1, NULL, 0);
    cr_assert_eq(want, p == 0 ? 0.0f : 1.0f, "the reference itself");
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      float out = -5;
      cr_assert_eq(pt_weighted_sum_rows(x, rows, 1, 1, NULL, &out), PT_OK);
      cr_assert_eq(bits(out), bits(want), "%s pattern %d: %a, want %a", pt_isa_name((pt_isa)isa), p,
                   out, want);
    }
  }
  free(x);
}

/* SPDX-License-Identifier: MIT */
/* pt_argsort_rows and pt_rank_rows through the public API: known answers for every ordering
   rule at lengths that reach each method (counting, register network, merges, radix), the identity
   rank = argsort(argsort(x)), strides, long rows, and every bad input (a clear status and
   nothing written).  Parity across ISAs on the full battery is tests/test_parity.c. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */
#include "reference.h"

/* The row lengths of the known-answer tests: each method, its edges (the radix crossovers of
   gen/kernel_table.py among them) and non-powers of two. */
static const size_t lengths[] = {1, 2, 3, 5, 8, 16, 17, 31, 32, 33, 64, 65, 100, 128, 129, 256,
                                 300, 383, 384, 1000, 1023, 1024, 1025, 2049, 4095, 4096, 4099};
#define N_LENGTHS (sizeof lengths / sizeof lengths[0])

/* Checks one row on every supported ISA against the wanted permutation (and its inverse). */
static void expect_sorted(const float *x, size_t d, const int32_t *want_perm) {
  int32_t *perm = malloc(d * sizeof *perm), *rank = malloc(d * sizeof *rank);
  cr_assert(perm && rank);
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    cr_assert_eq(pt_argsort_rows(x, 1, d, d, perm, d), PT_OK);
    cr_assert_eq(pt_rank_rows(x, 1, d, d, rank, d), PT_OK);
    for (size_t p = 0; p < d; p++) {
      cr_assert_eq(perm[p], want_perm[p], "%s d=%zu: perm[%zu] = %d, want %d",
                   pt_isa_name((pt_isa)isa), d, p, perm[p], want_perm[p]);
      cr_assert_eq(rank[want_perm[p]], (int32_t)p, "%s d=%zu: rank[%d] = %d, want %zu",
                   pt_isa_name((pt_isa)isa), d, want_perm[p], rank[want_perm[p]], p);
    }
  }
  free(perm);
  free(rank);
}

Test(sort, small_known_answers) {
  const float a[3] = {3, 1, 2};
  expect_sorted(a, 3, (const int32_t[]){1, 2, 0});
  const float b[4] = {1, 0, 1, 0};
  expect_sorted(b, 4, (const int32_t[]){1, 3, 0, 2});
  const float zeros[4] = {0.0f, -0.0f, -1.0f, 0.0f}; /* -0 == +0: index order */
  expect_sorted(zeros, 4, (const int32_t[]){2, 0, 1, 3});
  const float nans[6] = {NAN, 1, -NAN, -INFINITY, INFINITY, -0.0f};
  expect_sorted(nans, 6, (const int32_t[]){3, 5, 1, 4, 0, 2});
  const float tiny[5] = {0x1p-149f, -0x1p-149f, 0.0f, 0x1p-148f, -FLT_MAX};
  expect_sorted(tiny, 5, (const int32_t[]){4, 1, 2, 0, 3});
  const float one = NAN;
  expect_sorted(&one, 1, (const int32_t[]){0});
}

/* x_i = the residue class i % m (as m values with signed zeros and NaNs among them): the
   stable order lists class 0's indices ascending, then class 1's, ...  */
Test(sort, residue_classes_at_every_method) {
  const float value[7] = {-INFINITY, -2.5f, -0.0f, 0.0f, 0x1p-140f, 7.0f, NAN};
  const int rank_of[7] = {0, 1, 2, 2, 3, 4, 5}; /* -0 and +0 are one class */
  for (size_t m = 1; m <= 7; m++) {
    for (size_t n = 0; n < N_LENGTHS; n++) {
      const size_t d = lengths[n];
      float *x = malloc(d * sizeof *x);
      int32_t *want = malloc(d * sizeof *want);
      cr_assert(x && want);
      /* class order: by rank_of, so the members of -0 and +0 interleave by index */
      for (size_t i = 0; i < d; i++) x[i] = value[(i * 5 + 3) % m + (7 - m)];
      size_t p = 0;
      for (int cls = 0; cls <= 5; cls++)
        for (size_t i = 0; i < d; i++)
          if (rank_of[(i * 5 + 3) % m + (7 - m)] == cls) want[p++] = (int32_t)i;
      cr_assert_eq(p, d);
      expect_sorted(x, d, want);
      free(x);
      free(want);
    }
  }
}

Test(sort, sorted_and_reversed_rows) {
  for (size_t n = 0; n < N_LENGTHS; n++) {
    const size_t d = lengths[n];
    float *x = malloc(d * sizeof *x);
    int32_t *want = malloc(d * sizeof *want);
    cr_assert(x && want);
    for (size_t i = 0; i < d; i++) {
      x[i] = (float)i - 50.0f;
      want[i] = (int32_t)i;
    }
    expect_sorted(x, d, want);
    for (size_t i = 0; i < d; i++) {
      x[i] = 50.0f - (float)i;
      want[i] = (int32_t)(d - 1 - i);
    }
    expect_sorted(x, d, want);
    free(x);
    free(want);
  }
}

/* Rows long enough for the radix sort whose keys share digits, so that its passes are skipped:
   one value throughout (every digit constant: index order), and values a few ulps apart, of
   either sign and around zero (only the low digits vary), against the wanted permutation. */
Test(sort, radix_rows_with_constant_digits) {
  static const float base[] = {1.0f, -3.0f, 0.0f, 0x1p-130f};
  const size_t d = 5003;
  float *x = malloc(d * sizeof *x);
  int32_t *want = malloc(d * sizeof *want);
  cr_assert(x && want);
  for (size_t i = 0; i < d; i++) {
    x[i] = i % 2 ? -0.0f : 0.0f; /* one class */
    want[i] = (int32_t)i;
  }
  expect_sorted(x, d, want);
  for (size_t b = 0; b < sizeof base / sizeof base[0]; b++) {
    for (size_t i = 0; i < d; i++) {
      x[i] = base[b];
      want[i] = (int32_t)i;
    }
    expect_sorted(x, d, want);
    /* x_i = base + (i % 7) ulps upwards: classes 0..6 in index order */
    for (size_t i = 0; i < d; i++) x[i] = base[b];
    for (size_t i = 0; i < d; i++)
      for (size_t u = 0; u < i % 7; u++) x[i] = nextafterf(x[i], INFINITY);
    size_t p = 0;
    for (size_t cls = 0; cls < 7; cls++)
      for (size_t i = cls; i < d; i += 7) want[p++] = (int32_t)i;
    expect_sorted(x, d, want);
  }
  free(x);
  free(want);
}

/* rank = argsort(argsort(x)), with the permutation itself sorted as floats (exact below 2^24),
   and both against the plain merge sort of tests/reference.c; random rows with many ties. */
Test(sort, rank_is_argsort_of_argsort) {
  uint64_t s = 99;
  for (size_t n = 0; n < N_LENGTHS; n++) {
    const size_t d = lengths[n], rows = 3;
    float *x = malloc(rows * d * sizeof *x), *pf = malloc(d * sizeof *pf);
    int32_t *perm = malloc(rows * d * sizeof *perm), *rank = malloc(rows * d * sizeof *rank);
    int32_t *again = malloc(d * sizeof *again), *ref = malloc(d * sizeof *ref),
            *tmp = malloc(d * sizeof *tmp);
    cr_assert(x && pf && perm && rank && again && ref && tmp);
    for (size_t i = 0; i < rows * d; i++) x[i] = (float)(pt_test_rand(&s) % 23) - 11.0f;
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      cr_assert_eq(pt_argsort_rows(x, rows, d, d, perm, d), PT_OK);
      cr_assert_eq(pt_rank_rows(x, rows, d, d, rank, d), PT_OK);
      for (size_t r = 0; r < rows; r++) {
        pt_ref_argsort(x + r * d, d, ref, tmp);
        cr_assert_arr_eq(perm + r * d, ref, d * sizeof *ref, "%s d=%zu", pt_isa_name((pt_isa)isa), d);
        for (size_t i = 0; i < d; i++) pf[i] = (float)perm[r * d + i];
        cr_assert_eq(pt_argsort_rows(pf, 1, d, d, again, d), PT_OK);
        cr_assert_arr_eq(rank + r * d, again, d * sizeof *again, "%s d=%zu",
                         pt_isa_name((pt_isa)isa), d);
      }
    }
    free(x);
    free(pf);
    free(perm);
    free(rank);
    free(again);
    free(ref);
    free(tmp);
  }
}

/* Long rows (the allocated work space) and strided input and output: the gaps stay as they were. */
Test(sort, long_strided_rows) {
  const size_t rows = 2, d = 70001, ld = d + 3, ld_out = d + 5;
  float *x = malloc(rows * ld * sizeof *x);
  int32_t *out = malloc(rows * ld_out * sizeof *out), *ref = malloc(d * sizeof *ref),
          *tmp = malloc(d * sizeof *tmp);
  cr_assert(x && out && ref && tmp);
  uint64_t s = 5;
  for (size_t i = 0; i < rows * ld; i++)
    x[i] = i % ld >= d ? -INFINITY : (float)(pt_test_rand(&s) >> 40) * 0x1p-20f - 8.0f;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    for (int ranks = 0; ranks < 2; ranks++) {
      for (size_t i = 0; i < rows * ld_out; i++) out[i] = -3;
      cr_assert_eq((ranks ? pt_rank_rows : pt_argsort_rows)(x, rows, d, ld, out, ld_out), PT_OK);
      for (size_t r = 0; r < rows; r++) {
        pt_ref_argsort(x + r * ld, d, ref, tmp);
        for (size_t p = 0; p < d; p++) {
          const int32_t got = ranks ? out[r * ld_out + ref[p]] : out[r * ld_out + p];
          const int32_t want = ranks ? (int32_t)p : ref[p];
          cr_assert_eq(got, want, "%s ranks=%d row %zu p=%zu", pt_isa_name((pt_isa)isa), ranks, r, p);
        }
        for (size_t i = d; i < ld_out && r * ld_out + i < rows * ld_out; i++)
          cr_assert_eq(out[r * ld_out + i], -3, "wrote into the gap");
      }
    }
  }
  free(x);
  free(out);
  free(ref);
  free(tmp);
}

/* ---- bad input: a status, and not one element written ---- */

static void expect_refused(pt_status want, const float *x, size_t rows, size_t d, size_t ld,
                           int32_t *out, size_t ld_out) {
  int32_t before[8];
  if (out) memcpy(before, out, sizeof before);
  cr_assert_eq(pt_argsort_rows(x, rows, d, ld, out, ld_out), want, "argsort rows=%zu d=%zu ld=%zu ld_out=%zu",
               rows, d, ld, ld_out);
  cr_assert_eq(pt_rank_rows(x, rows, d, ld, out, ld_out), want, "rank rows=%zu d=%zu ld=%zu ld_out=%zu",
               rows, d, ld, ld_out);
  if (out) cr_assert_arr_eq(out, before, sizeof before, "wrote on error");
}

Test(sort, bad_input) {
  const float x[8] = {0};
  int32_t out[8] = {-5, -5, -5, -5, -5, -5, -5, -5};
  expect_refused(PT_EINVAL, NULL, 2, 4, 4, out, 4);
  expect_refused(PT_EINVAL, x, 2, 4, 4, NULL, 4);
  expect_refused(PT_EINVAL, x, 2, 0, 4, out, 4);
  expect_refused(PT_EINVAL, x, 2, 4, 3, out, 4);
  expect_refused(PT_EINVAL, x, 2, 4, 4, out, 3);
  expect_refused(PT_EOVERFLOW, x, 1, (size_t)INT32_MAX + 1, (size_t)INT32_MAX + 1, out,
                 (size_t)INT32_MAX + 1);
  expect_refused(PT_EOVERFLOW, x, SIZE_MAX / 2, 4, 4, out, 4);
  expect_refused(PT_EOVERFLOW, x, 2, 4, SIZE_MAX / 4, out, 4);
  expect_refused(PT_EOVERFLOW, x, 2, 4, 4, out, SIZE_MAX / 4);
}

Test(sort, zero_rows_writes_nothing) {
  int32_t out[8] = {-5, -5, -5, -5, -5, -5, -5, -5};
  expect_refused(PT_OK, NULL, 0, 4, 4, out, 4);
  expect_refused(PT_OK, NULL, 0, 4, 4, NULL, 4);
  /* the shape must still be consistent */
  expect_refused(PT_EINVAL, NULL, 0, 0, 4, NULL, 4);
  expect_refused(PT_EINVAL, NULL, 0, 4, 4, NULL, 3);
}

/* ---- argument checks (src/api/rows.c, shared by the four row kernels): the exact edge of "rows
   of ld elements fit in PTRDIFF_MAX bytes" ---------------------------------------------------
   The largest x that fits must pass the x check: with out == NULL the call then fails on out
   (PT_EINVAL) without touching memory; one row more must be PT_EOVERFLOW. */
Test(sort, overflow_bound_is_exact) {
  static const float dummy[4];
  const size_t limit = (size_t)PTRDIFF_MAX / sizeof(float);
  static const size_t ds[][2] = {{4, 4}, {3, 1000}, {1, 1}};
  for (size_t k = 0; k < 3; k++) {
    const size_t d = ds[k][0], ld = ds[k][1], fit = (limit - d) / ld + 1; /* rows that fit */
    cr_assert_eq(pt_argsort_rows(dummy, fit, d, ld, NULL, d), PT_EINVAL, "d=%zu ld=%zu rows=%zu", d, ld, fit);
    cr_assert_eq(pt_rank_rows(dummy, fit, d, ld, NULL, d), PT_EINVAL);
    cr_assert_eq(pt_argmax_rows(dummy, fit, d, ld, NULL), PT_EINVAL);
    cr_assert_eq(pt_weighted_sum_rows(dummy, fit, d, ld, NULL, NULL), PT_EINVAL);
    cr_assert_eq(pt_argsort_rows(dummy, fit + 1, d, ld, NULL, d), PT_EOVERFLOW, "d=%zu ld=%zu", d, ld);
    cr_assert_eq(pt_argmax_rows(dummy, fit + 1, d, ld, NULL), PT_EOVERFLOW);
    cr_assert_eq(pt_weighted_sum_rows(dummy, fit + 1, d, ld, NULL, NULL), PT_EOVERFLOW);
  }
  /* one row spans d elements whatever its stride: ld up to SIZE_MAX passes, on every ISA (and
     no kernel forms x + ld past the row: clang's UBSan caught the short-row ranks doing so,
     tests/fuzz/corpus/rows/count-rows-pointer-wraps) */
  const float x[4] = {0.5f, -1.0f, 3.0f, 2.0f};
  const int32_t want_perm[4] = {1, 0, 3, 2}, want_rank[4] = {1, 0, 3, 2};
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    float sum[4];
    int32_t idx = -1, perm[4], rank[4];
    cr_assert_eq(pt_argmax_rows(x, 1, 4, SIZE_MAX, &idx), PT_OK);
    cr_assert_eq(idx, 2);
    cr_assert_eq(pt_argsort_rows(x, 1, 4, SIZE_MAX, perm, SIZE_MAX), PT_OK);
    cr_assert(memcmp(perm, want_perm, sizeof perm) == 0);
    cr_assert_eq(pt_rank_rows(x, 1, 4, limit, rank, SIZE_MAX / 2), PT_OK);
    cr_assert(memcmp(rank, want_rank, sizeof rank) == 0);
    cr_assert_eq(pt_weighted_sum_rows(x, 1, 4, SIZE_MAX, NULL, sum), PT_OK);
    cr_assert(memcmp(sum, x, sizeof sum) == 0);
    /* a stride whose one step would leave the address space (x - 2^62 bytes): only stepping
       past the last row computes it, which the sanitizers' pointer-overflow check traps */
    const size_t wrap = (size_t)0x3000000000000000u;
    cr_assert_eq(pt_argsort_rows(x, 1, 4, wrap, perm, wrap), PT_OK);
    cr_assert(memcmp(perm, want_perm, sizeof perm) == 0);
    cr_assert_eq(pt_rank_rows(x, 1, 4, wrap, rank, wrap), PT_OK);
    cr_assert(memcmp(rank, want_rank, sizeof rank) == 0);
    cr_assert_eq(pt_argmax_rows(x, 1, 4, wrap, &idx), PT_OK);
    cr_assert_eq(pt_weighted_sum_rows(x, 1, 4, wrap, NULL, sum), PT_OK);
  }
}

/* ---- argsort/rank through the API at the lengths where rows.c's on-stack work space ends ----
   (rows up to 256 use it, longer ones a heap buffer; the parity battery passes its own work
   space, so only these calls cross that edge).  Truth: the reference merge sort, at every
   length around 256 and 512 (under ASan in CI). */
Test(sort, lengths_around_the_stack_work_space) {
  static const size_t lengths[] = {255, 256, 257, 384, 449, 480, 500, 511, 512, 513};
  float x[513];
  int32_t perm[513], rank[513], ref[513], tmp[513];
  uint64_t s = 7;
  for (size_t n = 0; n < sizeof lengths / sizeof lengths[0]; n++) {
    const size_t d = lengths[n];
    for (size_t i = 0; i < d; i++) x[i] = (float)(pt_test_rand(&s) % 97) - 48.0f;
    pt_ref_argsort(x, d, ref, tmp);
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      cr_assert_eq(pt_argsort_rows(x, 1, d, d, perm, d), PT_OK);
      cr_assert_eq(pt_rank_rows(x, 1, d, d, rank, d), PT_OK);
      for (size_t p = 0; p < d; p++) {
        cr_assert_eq(perm[p], ref[p], "%s d=%zu perm[%zu]", pt_isa_name((pt_isa)isa), d, p);
        cr_assert_eq(rank[ref[p]], (int32_t)p, "%s d=%zu rank", pt_isa_name((pt_isa)isa), d);
      }
    }
  }
}

/* SPDX-License-Identifier: MIT */
/* pt_argmax_rows through the public API: known answers for every ordering rule, strides, and
   every bad input (a clear status and nothing written).  Parity across ISAs on the full
   battery is tests/test_parity.c. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */

/* Each known answer is checked on every supported ISA. */
static void expect_argmax(const float *x, size_t d, int32_t want) {
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    int32_t got = -1;
    cr_assert_eq(pt_argmax_rows(x, 1, d, d, &got), PT_OK);
    cr_assert_eq(got, want, "%s: d=%zu: got %d, want %d", pt_isa_name((pt_isa)isa), d, got, want);
  }
}

/* A row of n zeros with the given values placed, checked at several lengths and positions so
   that both the one-vector and the long-row paths and every tail see it. */
Test(argmax, first_of_equal_maxima) {
  float x[300];
  for (size_t d = 2; d <= 300; d += 7) {
    memset(x, 0, sizeof x);
    x[d / 3] = 5;
    x[d - 1] = 5;
    expect_argmax(x, d, (int32_t)(d / 3 == d - 1 ? d - 1 : d / 3));
  }
}

Test(argmax, nan_is_greatest_first_nan_wins) {
  float x[200];
  for (size_t d = 3; d <= 200; d += 13) {
    for (size_t j = 0; j < d; j++) x[j] = (float)j;
    x[d - 1] = INFINITY;
    x[d / 2] = -NAN;
    x[d - 2] = NAN;
    expect_argmax(x, d, (int32_t)(d / 2));
  }
}

Test(argmax, signed_zeros_tie) {
  const float x[4] = {-1.0f, -0.0f, 0.0f, -3.0f};
  expect_argmax(x, 4, 1);
  const float y[4] = {-1.0f, 0.0f, -0.0f, -3.0f};
  expect_argmax(y, 4, 1);
}

Test(argmax, all_negative_infinity_and_single_element) {
  float x[70];
  for (size_t j = 0; j < 70; j++) x[j] = -INFINITY;
  expect_argmax(x, 70, 0);
  expect_argmax(x, 5, 0);
  const float one = NAN;
  expect_argmax(&one, 1, 0);
}

Test(argmax, subnormals_and_extremes) {
  const float x[5] = {-FLT_MAX, 0x1p-149f, 0.0f, 0x1p-148f, -INFINITY};
  expect_argmax(x, 5, 3);
}

Test(argmax, strided_rows) {
  /* 3 rows of 5 with ld 8; the gaps hold values that would win if read */
  float x[3 * 8];
  for (size_t k = 0; k < 24; k++) x[k] = 100.0f;
  const float rows[3][5] = {{1, 2, 3, 2, 1}, {9, 0, 0, 0, 9}, {-1, -2, -3, -4, -0.5f}};
  for (size_t r = 0; r < 3; r++) memcpy(x + r * 8, rows[r], sizeof rows[r]);
  int32_t idx[3];
  cr_assert_eq(pt_argmax_rows(x, 3, 5, 8, idx), PT_OK);
  cr_assert_eq(idx[0], 2);
  cr_assert_eq(idx[1], 0);
  cr_assert_eq(idx[2], 4);
}

/* ---- bad input: a status, and not one element written ---- */

static void expect_refused(pt_status want, const float *x, size_t rows, size_t d, size_t ld) {
  int32_t idx[4] = {-5, -5, -5, -5};
  cr_assert_eq(pt_argmax_rows(x, rows, d, ld, idx), want, "rows=%zu d=%zu ld=%zu", rows, d, ld);
  for (size_t r = 0; r < 4; r++) cr_assert_eq(idx[r], -5, "wrote idx[%zu] on error", r);
}

Test(argmax, bad_input) {
  const float x[8] = {0};
  expect_refused(PT_EINVAL, NULL, 2, 4, 4);
  expect_refused(PT_EINVAL, x, 2, 0, 4);
  expect_refused(PT_EINVAL, x, 2, 4, 3);
  expect_refused(PT_EOVERFLOW, x, 1, (size_t)INT32_MAX + 1, (size_t)INT32_MAX + 1);
  expect_refused(PT_EOVERFLOW, x, SIZE_MAX / 2, 4, 4);
  expect_refused(PT_EOVERFLOW, x, 2, 4, SIZE_MAX / 4);
  cr_assert_eq(pt_argmax_rows(x, 2, 4, 4, NULL), PT_EINVAL);
}

Test(argmax, zero_rows_writes_nothing) {
  expect_refused(PT_OK, NULL, 0, 4, 4);
  cr_assert_eq(pt_argmax_rows(NULL, 0, 4, 4, NULL), PT_OK);
  /* the shape must still be consistent */
  cr_assert_eq(pt_argmax_rows(NULL, 0, 0, 4, NULL), PT_EINVAL);
}

/* ---- argmax: rows that end at an unmapped page ----------------------------------------------
   The columns path loads whole vectors of PT_LANES floats from each of PT_LANES rows where those
   reads stay within x, and gathers the last rows' columns: with x's last float just before a
   page that is not mapped, a read past it faults.  Every short length (both sides of each
   ISA's argmax_columns_max), dense and strided rows, row counts around whole vectors; truth: the
   row's known greatest. */
Test(argmax, short_rows_read_nothing_past_x) {
  const long page = sysconf(_SC_PAGESIZE);
  const size_t span = 4 * (size_t)page;
  float *map = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
  cr_assert_neq(map, MAP_FAILED);
  float *const end = map + span / sizeof *map; /* the unmapped page's first float */
  cr_assert_eq(mprotect(end, (size_t)page, PROT_NONE), 0);
  for (size_t d = 1; d <= 20; d++)
    for (size_t pad = 0; pad <= 3; pad += 3)
      for (size_t rows = 15; rows <= 41; rows += 13) {
        const size_t ld = d + pad, floats = (rows - 1) * ld + d;
        float *x = end - floats;
        for (size_t r = 0; r < rows; r++)
          for (size_t j = 0; j < d; j++) x[r * ld + j] = j == (r * 7) % d ? 2.0f : (float)j * 0.1f;
        for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
          if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
          int32_t idx[41];
          cr_assert_eq(pt_argmax_rows(x, rows, d, ld, idx), PT_OK);
          for (size_t r = 0; r < rows; r++)
            cr_assert_eq(idx[r], (int32_t)((r * 7) % d), "%s d %zu ld %zu row %zu: %d",
                         pt_isa_name((pt_isa)isa), d, ld, r, idx[r]);
        }
      }
  munmap(map, span + (size_t)page);
}

/* ---- argmax: rows far apart (ld * PT_LANES past 2^31 elements) -------------------------------
   The columns path (short rows, PT_LANES rows at a time) gathers with 32-bit offsets i * ld; a guard
   sends larger strides to the row-at-a-time path.  Truth: the known argmax of each row, on a
   sparse mapping of 20 GB (MAP_NORESERVE: only the 16 touched pages are real). */
Test(argmax, rows_with_a_huge_stride) {
  const size_t rows = 16, d = 5, ld = (size_t)320 << 20; /* 7 * ld and 15 * ld exceed INT32_MAX */
  const size_t bytes = ((rows - 1) * ld + d) * sizeof(float);
  float *x = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (x == MAP_FAILED) cr_skip_test("cannot map %zu bytes", bytes);
  for (size_t r = 0; r < rows; r++)
    for (size_t j = 0; j < d; j++) x[r * ld + j] = j == (r * 3) % d ? 1.0f + (float)r : -(float)j;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    int32_t idx[16];
    cr_assert_eq(pt_argmax_rows(x, rows, d, ld, idx), PT_OK);
    for (size_t r = 0; r < rows; r++)
      cr_assert_eq(idx[r], (int32_t)((r * 3) % d), "%s row %zu: %d", pt_isa_name((pt_isa)isa), r, idx[r]);
  }
  munmap(x, bytes);
}

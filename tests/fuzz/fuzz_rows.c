/* SPDX-License-Identifier: MIT */
/* Fuzzes the row kernels (pt_argmax_rows, pt_argsort_rows, pt_rank_rows, pt_weighted_sum_rows)
   through the public calls: shapes, strides (one row with a huge ld included), floats of every
   kind, thread counts and allocation failures from the input.  Every call must refuse bad
   shapes with nothing written, agree with a plain reference (the order: ascending, -0 == +0,
   ties by index, NaN greatest), with the scalar kernels bit for bit, and with itself on a
   compact copy of its rows. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"

/* a < b in the rows' order, equal values by index (i < j) */
static int before(float a, size_t i, float b, size_t j) {
  const int na = isnan(a), nb = isnan(b);
  if (na != nb) return nb;
  if (!na && a != b) return a < b;
  return i < j;
}

static void reference_perm(const float *x, size_t d, int32_t *perm) {
  for (size_t i = 0; i < d; i++) { /* insertion: stable by construction */
    size_t p = i;
    for (; p > 0 && before(x[i], i, x[perm[p - 1]], (size_t)perm[p - 1]); p--) perm[p] = perm[p - 1];
    perm[p] = (int32_t)i;
  }
}

enum { ARGMAX, ARGSORT, RANK, WEIGHTED_SUM, OPS };

/* The call on rows at x with stride ld into out (ld_out for the sorts). */
static pt_status call(int op, const float *x, size_t rows, size_t d, size_t ld, const float *w,
                      void *out, size_t ld_out) {
  switch (op) {
    case ARGMAX: return pt_argmax_rows(x, rows, d, ld, out);
    case ARGSORT: return pt_argsort_rows(x, rows, d, ld, out, ld_out);
    case RANK: return pt_rank_rows(x, rows, d, ld, out, ld_out);
    default: return pt_weighted_sum_rows(x, rows, d, ld, w, out);
  }
}

static size_t out_bytes(int op, size_t rows, size_t d, size_t ld_out) {
  if (op == ARGMAX) return rows * sizeof(int32_t);
  if (op == WEIGHTED_SUM) return d * sizeof(float);
  return rows ? ((rows - 1) * ld_out + d) * sizeof(int32_t) : 0;
}

static void check_reference(int op, const float *x, size_t rows, size_t d, size_t ld,
                            const float *w, const void *out, size_t ld_out) {
  int32_t *perm = malloc(d * sizeof *perm);
  fuzz_check(perm != NULL);
  for (size_t r = 0; r < rows && op != WEIGHTED_SUM; r++) {
    const float *row = x + r * ld;
    reference_perm(row, d, perm);
    if (op == ARGMAX) {
      /* the greatest is last in the order but the first of equal maxima wins: the least index
         among the elements equal to (or, for NaN, as NaN as) the last */
      size_t first = (size_t)perm[d - 1];
      for (size_t i = 0; i < d; i++)
        if ((isnan(row[i]) && isnan(row[first])) || row[i] == row[first]) {
          first = i;
          break;
        }
      fuzz_check(((const int32_t *)out)[r] == (int32_t)first);
    } else {
      const int32_t *o = (const int32_t *)out + r * ld_out;
      for (size_t p = 0; p < d; p++)
        fuzz_check(op == ARGSORT ? o[p] == perm[p] : o[perm[p]] == (int32_t)p);
    }
  }
  if (op == WEIGHTED_SUM)
    for (size_t j = 0; j < d; j++) {
      double sum = 0.0, mag = 0.0;
      for (size_t r = 0; r < rows; r++) {
        const double t = (double)(w ? w[r] : 1.0f) * (double)x[r * ld + j];
        sum += t;
        mag += fabs(t);
      }
      const float got = ((const float *)out)[j];
      /* inf - inf, or terms past the float range (the kernels multiply in float): IEEE's
         answers, which tests/parity holds every ISA to */
      if (isnan(sum) || !(mag <= FLT_MAX)) continue;
      fuzz_check(fabs((double)got - sum) <= 1e-5 * mag + 1e-30);
    }
  free(perm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  const int op = (int)fuzz_below(&in, OPS);
  size_t rows = fuzz_below(&in, 9), d = fuzz_below(&in, 41);
  const unsigned shape = (unsigned)fuzz_bits(&in, 1);
  size_t ld = d + (shape & 3), ld_out = d + (shape >> 2 & 3);
  if (shape >> 4 == 1 && d > 0) ld = d - 1;               /* refused */
  if (shape >> 4 == 2 && d > 0) ld_out = d - 1;           /* refused by the sorts */
  const int huge = shape >> 4 == 3;                       /* one row, any ld: accepted */
  if (huge) {
    rows = 1;
    ld = SIZE_MAX / sizeof(float) - 7; /* x + ld would wrap the address space */
  }
  const int weighted = (int)fuzz_bits(&in, 1) & 1;
  pt_set_num_threads(1 + fuzz_below(&in, 2));
  const size_t failing = fuzz_failing_allocation(&in);

  const size_t extent = rows && d ? (rows - 1) * (huge ? 0 : ld) + d : 1;
  float *x = malloc(extent * sizeof *x), *w = malloc((rows ? rows : 1) * sizeof *w);
  fuzz_check(x && w);
  for (size_t i = 0; i < extent; i++) x[i] = fuzz_float(&in);
  for (size_t r = 0; r < rows; r++) w[r] = fuzz_finite(&in);
  const float *wp = weighted ? w : NULL;
  const size_t bytes = out_bytes(op, rows, d, ld_out) + 1;
  unsigned char *out = malloc(bytes), *again = malloc(bytes);
  fuzz_check(out && again);
  fuzz_fill_canary(out, bytes);

  pt_alloc_fail_after(failing);
  const pt_status s = call(op, x, rows, d, ld, wp, out, ld_out);
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
  const int bad = d == 0 || ld < d || ((op == ARGSORT || op == RANK) && ld_out < d);
  if (s != PT_OK) { /* refused or out of memory: nothing written, and a sentence */
    fuzz_check(fuzz_untouched(out, bytes) && pt_last_error()[0] != '\0');
    fuzz_check(bad ? s == PT_EINVAL : s == PT_ENOMEM && failing != PT_ALLOC_NEVER_FAIL);
  } else {
    fuzz_check(!bad && out[bytes - 1] == FUZZ_CANARY); /* nothing past the output */
    if (rows == 0) fuzz_check(fuzz_untouched(out, bytes)); /* no rows: nothing written */
    else check_reference(op, x, rows, d, ld, wp, out, ld_out);
    /* the scalar kernels agree bit for bit, and so does the call on a compact copy */
    const pt_isa isa = pt_isa_active();
    fuzz_check(pt_isa_select(PT_ISA_SCALAR) == PT_OK);
    fuzz_fill_canary(again, bytes);
    fuzz_check(call(op, x, rows, d, ld, wp, again, ld_out) == PT_OK);
    fuzz_check(pt_isa_select(isa) == PT_OK);
    fuzz_check(memcmp(out, again, bytes) == 0);
    if (!huge && rows > 0 && ld > d) {
      float *compact = malloc(rows * d * sizeof *compact);
      fuzz_check(compact != NULL);
      for (size_t r = 0; r < rows; r++) memcpy(compact + r * d, x + r * ld, d * sizeof *x);
      fuzz_fill_canary(again, bytes);
      fuzz_check(call(op, compact, rows, d, d, wp, again, ld_out) == PT_OK);
      fuzz_check(memcmp(out, again, bytes) == 0);
      free(compact);
    }
  }
  free(x);
  free(w);
  free(out);
  free(again);
  return 0;
}

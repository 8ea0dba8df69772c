/* SPDX-License-Identifier: MIT */
#include "parity.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "reference.h"
#include "kernels/sort.h"

/* Counts the current check as failed (once), and says whether this is the first failure of the
   run, whose message is kept. */
static int count_failure(pt_parity_result *res) {
  if (res->failed_at != res->checked) {
    res->failed++;
    res->failed_at = res->checked;
  }
  return res->first_failure[0] == '\0';
}

void pt_parity_fail(pt_parity_result *res, const char *fmt, ...) {
  if (!count_failure(res)) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->first_failure, sizeof res->first_failure, fmt, ap);
  va_end(ap);
}

/* pt_parity_fail, naming the case */
static void fail(pt_parity_result *res, const pt_case *c, const char *fmt, ...) {
  if (!count_failure(res)) return;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char where[200];
  pt_case_describe(c, where, sizeof where);
  snprintf(res->first_failure, sizeof res->first_failure, "%s (%s)", what, where);
}

/* One function per kernel family (PT_FOR_EACH_OP below makes a missing one a compile error):
   run the ISA's kernel and the scalar one on the case and compare both with the reference. */

void parity_argmax_rows(const pt_kernel_table *k, const pt_kernel_table *scalar,
                        const pt_case *c, const float *x, pt_parity_result *res) {
  /* one sentinel past the end catches a write beyond `rows` */
  int32_t *got = malloc((c->rows + 1) * sizeof *got), *want = malloc(c->rows * sizeof *want);
  if (!got || !want) {
    fail(res, c, "out of memory");
    goto out;
  }
  got[c->rows] = -7;
  k->argmax_rows(x, c->rows, c->d, c->ld, got, &k->rows);
  scalar->argmax_rows(x, c->rows, c->d, c->ld, want, &scalar->rows);
  for (size_t r = 0; r < c->rows; r++) {
    const int32_t truth = pt_ref_argmax(x + r * c->ld, c->d);
    if (got[r] != want[r] || got[r] != truth) {
      fail(res, c, "argmax_rows row %zu: %s %d, scalar %d, reference %d", r,
           pt_isa_name(k->isa), got[r], want[r], truth);
      break;
    }
  }
  if (got[c->rows] != -7) fail(res, c, "argmax_rows wrote past the last row");
out:
  free(got);
  free(want);
}

/* argsort_rows and rank_rows: the ISA's kernel, the scalar one and the reference permutation
   (or its inverse) must agree on every row; the gaps between output rows and one element past
   the last row must stay untouched. */
static void parity_sort(const pt_kernel_table *k, const pt_kernel_table *scalar,
                        const pt_case *c, const float *x, int ranks, pt_parity_result *res) {
  const char *what = ranks ? "rank_rows" : "argsort_rows";
  const size_t d = c->d, ld_out = c->ld + 1, n = (c->rows - 1) * ld_out + d;
  int32_t *got = malloc((n + 1) * sizeof *got), *want = malloc((n + 1) * sizeof *want);
  int32_t *perm = malloc(d * sizeof *perm), *tmp = malloc(d * sizeof *tmp);
  int64_t *work = malloc(PT_SORT_WORK(d) * sizeof *work);
  if (!got || !want || !perm || !tmp || !work) {
    fail(res, c, "out of memory");
    goto out;
  }
  for (size_t i = 0; i <= n; i++) got[i] = want[i] = -7;
  if (ranks) {
    k->rank_rows(x, c->rows, d, c->ld, got, ld_out, work, &k->rows);
    scalar->rank_rows(x, c->rows, d, c->ld, want, ld_out, work, &scalar->rows);
  } else {
    k->argsort_rows(x, c->rows, d, c->ld, got, ld_out, work, &k->rows);
    scalar->argsort_rows(x, c->rows, d, c->ld, want, ld_out, work, &scalar->rows);
  }
  for (size_t r = 0; r < c->rows; r++) {
    pt_ref_argsort(x + r * c->ld, d, perm, tmp);
    if (ranks) {
      for (size_t p = 0; p < d; p++) tmp[perm[p]] = (int32_t)p;
      memcpy(perm, tmp, d * sizeof *perm);
    }
    const int32_t *g = got + r * ld_out, *s = want + r * ld_out;
    for (size_t i = 0; i < d; i++) {
      if (g[i] != s[i] || g[i] != perm[i]) {
        fail(res, c, "%s row %zu [%zu]: %s %d, scalar %d, reference %d", what, r, i,
             pt_isa_name(k->isa), g[i], s[i], perm[i]);
        goto out;
      }
    }
  }
  for (size_t i = 0; i <= n; i++) {
    if (i % ld_out >= d && (got[i] != -7 || want[i] != -7)) {
      fail(res, c, "%s wrote outside the rows at %zu", what, i);
      break;
    }
  }
out:
  free(got);
  free(want);
  free(perm);
  free(tmp);
  free(work);
}

void parity_argsort_rows(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  parity_sort(k, scalar, c, x, 0, res);
}

void parity_rank_rows(const pt_kernel_table *k, const pt_kernel_table *scalar,
                      const pt_case *c, const float *x, pt_parity_result *res) {
  parity_sort(k, scalar, c, x, 1, res);
}

static uint32_t float_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

/* weighted_sum_rows of x, with the weights w and with w == NULL: bit for bit equal to the scalar
   kernel and to the reference of its order; within 1e-5 of sum |w x| of the float64 truth where
   that is finite and nothing can overflow.  got: d + 1 floats, want: d.  0 after a failure. */
static int check_weighted_sums(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               const pt_case *c, const float *x, const float *w, float *got,
                               float *want, pt_parity_result *res) {
  const size_t d = c->d;
  for (int weighted = 0; weighted < 2; weighted++) {
    const float *wr = weighted ? w : NULL;
    got[d] = -7.0f;
    k->weighted_sum_rows(x, c->rows, d, c->ld, wr, got);
    scalar->weighted_sum_rows(x, c->rows, d, c->ld, wr, want);
    if (got[d] != -7.0f) fail(res, c, "weighted_sum_rows wrote past out[d - 1]");
    for (size_t j = 0; j < d; j++) {
      const float ordered = pt_ref_weighted_sum_ordered(x, c->rows, d, c->ld, wr, j);
      double magnitude;
      const double truth = pt_ref_weighted_sum(x, c->rows, c->ld, wr, j, &magnitude);
      const double bound = 1e-5 * magnitude + (double)c->rows * 0x1p-149;
      /* a NaN term makes the sum NaN; infinities and overflow have no accuracy to check */
      if (float_bits(got[j]) != float_bits(want[j]) || float_bits(got[j]) != float_bits(ordered) ||
          (isnan(truth) && !isnan(got[j])) ||
          (magnitude < 0x1p126 && fabs((double)got[j] - truth) > bound)) {
        fail(res, c, "weighted_sum_rows%s column %zu: %s %a, scalar %a, ordered reference %a, "
             "float64 %a (bound %a)", weighted ? "" : " (w NULL)", j, pt_isa_name(k->isa),
             got[j], want[j], ordered, truth, bound);
        return 0;
      }
    }
  }
  return 1;
}

/* The case as it is, then, when it holds infinities or NaNs, a copy with those replaced by
   finite values: a mixed case has a row of -inf in every column, which would hide the order of
   the other terms behind a non-finite sum. */
void parity_weighted_sum_rows(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res) {
  const size_t d = c->d, n = (c->rows - 1) * c->ld + d;
  float *got = malloc((d + 1) * sizeof *got), *want = malloc(d * sizeof *want);
  float *w = malloc(c->rows * sizeof *w), *finite = malloc(n * sizeof *finite);
  if (!got || !want || !w || !finite) {
    fail(res, c, "out of memory");
    goto out;
  }
  uint64_t s = c->seed ^ 0xa5a5a5a5u;
  for (size_t r = 0; r < c->rows; r++) w[r] = (float)(pt_test_rand(&s) >> 40) * 0x1p-23f - 1.0f;
  int replaced = 0;
  for (size_t i = 0; i < n; i++) {
    replaced |= !isfinite(x[i]);
    finite[i] = isfinite(x[i]) ? x[i] : (float)(i % 7) * 0.375f - 1.0f;
  }
  if (check_weighted_sums(k, scalar, c, x, w, got, want, res) && replaced)
    check_weighted_sums(k, scalar, c, finite, w, got, want, res);
out:
  free(got);
  free(want);
  free(w);
  free(finite);
}

/* ---- known answers -------------------------------------------------------------------------
   FNV-1a hashes of the outputs on fixed inputs, computed once from the independent references
   (tests/reference.c) and checked for every ISA's kernel and for the references themselves, so
   that a run on another machine (AArch64 under qemu) is held to the same constants as x86-64. */


typedef struct known_answer {
  pt_case input;      /* seed 0: the seed is the answer's index */
  uint64_t sort_hash; /* argsort of every row, then ranks of every row */
  uint64_t sum_hash;  /* weighted sums with random weights, then with w == NULL */
} known_answer;

static const known_answer known[] = {
    {{.rows = 40, .d = 300, .ld = 301, .fill = PT_FILL_TIES},
     0x3a6763efa9ff4ad5ull, 0xdde6b1c976d52fc0ull},
    {{.rows = 20, .d = 77, .ld = 77, .fill = PT_FILL_SPECIAL},
     0x95ac370696fb73c5ull, 0xdacdf835c919e79bull},
    {{.rows = 2, .d = 20000, .ld = 20000, .fill = PT_FILL_RANDOM},
     0xf1343a31680b3479ull, 0x4969459a614a5314ull},
    {{.rows = 3000, .d = 37, .ld = 40, .fill = PT_FILL_RANDOM},
     0xd8e1cb470ac96325ull, 0x33e707e06d362f7aull},
    {{.rows = 700, .d = 1100, .ld = 1100, .fill = PT_FILL_RANDOM},
     0x27d8b0e884cd0fc9ull, 0xbcea34519add031cull},
    {{.rows = 9000, .d = 1, .ld = 1, .fill = PT_FILL_RANDOM},
     0xd2caa64e76f47c25ull, 0xf9e40527122eea2bull},
};

/* The hashes of one input, from the kernels of k, or from the references when k is NULL. */
static int known_hashes(const pt_kernel_table *k, const pt_case *c, const float *x,
                        uint64_t *sort_hash, uint64_t *sum_hash) {
  const size_t d = c->d;
  int32_t *out = malloc(c->rows * d * sizeof *out), *tmp = malloc(d * sizeof *tmp);
  int64_t *work = malloc(PT_SORT_WORK(d) * sizeof *work);
  float *w = malloc(c->rows * sizeof *w), *sums = malloc(d * sizeof *sums);
  const int ok = out && tmp && work && w && sums;
  if (ok) {
    uint64_t s = c->seed;
    for (size_t r = 0; r < c->rows; r++) w[r] = (float)(pt_test_rand(&s) >> 40) * 0x1p-23f - 1.0f;
    *sort_hash = *sum_hash = PT_HASH_START;
    for (int ranks = 0; ranks < 2; ranks++) {
      if (k && ranks) k->rank_rows(x, c->rows, d, c->ld, out, d, work, &k->rows);
      if (k && !ranks) k->argsort_rows(x, c->rows, d, c->ld, out, d, work, &k->rows);
      for (size_t r = 0; !k && r < c->rows; r++) {
        int32_t *o = out + r * d;
        pt_ref_argsort(x + r * c->ld, d, o, tmp);
        if (ranks) {
          for (size_t p = 0; p < d; p++) tmp[o[p]] = (int32_t)p;
          memcpy(o, tmp, d * sizeof *o);
        }
      }
      *sort_hash = pt_hash32(*sort_hash, out, c->rows * d);
    }
    for (int weighted = 1; weighted >= 0; weighted--) {
      if (k) k->weighted_sum_rows(x, c->rows, d, c->ld, weighted ? w : NULL, sums);
      for (size_t j = 0; !k && j < d; j++)
        sums[j] = pt_ref_weighted_sum_ordered(x, c->rows, d, c->ld, weighted ? w : NULL, j);
      *sum_hash = pt_hash32(*sum_hash, sums, d);
    }
  }
  free(out);
  free(tmp);
  free(work);
  free(w);
  free(sums);
  return ok ? 0 : -1;
}

static void check_known_answers(const pt_kernel_table *k, pt_parity_result *res) {
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    res->checked++;
    pt_case c = known[i].input;
    c.seed = i + 1;
    void *block;
    const float *x = pt_case_data(&c, &block);
    uint64_t sort_ref = 0, sum_ref = 0, sort_got = 0, sum_got = 0;
    if (!x || known_hashes(NULL, &c, x, &sort_ref, &sum_ref) != 0 ||
        known_hashes(k, &c, x, &sort_got, &sum_got) != 0) {
      fail(res, &c, "out of memory");
    } else if (sort_ref != known[i].sort_hash || sum_ref != known[i].sum_hash) {
      fail(res, &c, "known answer %zu: the references hash to %#llx, %#llx, want %#llx, %#llx", i,
           (unsigned long long)sort_ref, (unsigned long long)sum_ref,
           (unsigned long long)known[i].sort_hash, (unsigned long long)known[i].sum_hash);
    } else if (sort_got != known[i].sort_hash || sum_got != known[i].sum_hash) {
      fail(res, &c, "known answer %zu: %s hashes to %#llx, %#llx, want %#llx, %#llx", i,
           pt_isa_name(k->isa), (unsigned long long)sort_got, (unsigned long long)sum_got,
           (unsigned long long)known[i].sort_hash, (unsigned long long)known[i].sum_hash);
    }
    free(block);
  }
}

int pt_parity_check(pt_isa isa, pt_parity_result *res) {
  memset(res, 0, sizeof *res);
  const pt_kernel_table *k = pt_kernels_for(isa), *scalar = pt_kernels_for(PT_ISA_SCALAR);
  if (!k) return -1;
  for (size_t i = 0; i < pt_cases_count(); i++) {
    const pt_case c = pt_cases_get(i);
    void *block;
    const float *x = pt_case_data(&c, &block);
    if (!x) return -1;
    res->checked++;
#define PT_PARITY(op, ret, params) parity_##op(k, scalar, &c, x, res);
    PT_FOR_EACH_OP(PT_PARITY)
#undef PT_PARITY
    free(block);
  }
  pt_parity_noise_known(k, res);
  pt_parity_fused_known(k, res);
  check_known_answers(k, res);
  return 0;
}

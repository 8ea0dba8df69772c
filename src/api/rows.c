/* SPDX-License-Identifier: MIT */
/* The kernels on batches of rows: argument checks, then the active ISA's kernel, its work split
   between threads when there is enough of it (src/dispatch/split.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"
#include "runtime/progress.h"
#include "api/error.h"
#include "api/rows.h"
#include "kernels/sort.h"
#include "dispatch/split.h"
#include "kernels/weighted_sum.h"

pt_status pt_check_matrix(const char *name, const void *p, size_t rows, size_t d, size_t ld,
                          size_t size) {
  if (d == 0) return pt_fail(PT_EINVAL, "d is 0");
  if (d > INT32_MAX) return pt_fail(PT_EOVERFLOW, "d is %zu, past INT32_MAX", d);
  if (ld < d) return pt_fail(PT_EINVAL, "the stride of %s is %zu, less than d = %zu", name, ld, d);
  if (rows == 0) return PT_OK;
  if (!p) return pt_fail(PT_EINVAL, "%s is NULL with %zu rows", name, rows);
  /* the extent, (rows - 1) ld + d elements, must be addressable from p: a single row's stride
     is never used, so it may be anything from d up */
  const size_t limit = (size_t)PTRDIFF_MAX / size; /* elements addressable from p */
  if (d > limit || rows - 1 > (limit - d) / ld)
    return pt_fail(PT_EOVERFLOW, "%s spans %zu rows of stride %zu, past PTRDIFF_MAX bytes", name,
                   rows, ld);
  return PT_OK;
}

/* ---- the kernels, split between threads (src/dispatch/split.h) ---------------------------------------
   Argmax and the sorts give each task a run of whole rows: a row's answer is exact and its own,
   so any cut gives the same bits. */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

typedef struct argmax_job {
  const pt_kernel_table *k;
  const float *x;
  size_t rows, d, ld, tasks;
  int32_t *idx;
} argmax_job;

static void argmax_task(void *p, size_t i) {
  const argmax_job *j = p;
  const size_t r0 = pt_split_start(i, j->tasks, j->rows, 1, 0),
               r1 = pt_split_start(i + 1, j->tasks, j->rows, 1, 0);
  j->k->argmax_rows(j->x + r0 * j->ld, r1 - r0, j->d, j->ld, j->idx + r0, &j->k->rows);
}

void pt_split_argmax_rows(const pt_kernel_table *k, const float *x, size_t rows, size_t d,
                          size_t ld, int32_t *idx) {
  const size_t tasks = min_size(pt_split_tasks(rows * d, PT_GRAIN_ARGMAX), rows);
  argmax_job j = {k, x, rows, d, ld, tasks, idx};
  if (tasks == 1) k->argmax_rows(x, rows, d, ld, idx, &k->rows);
  else pt_parallel_for(tasks, argmax_task, &j);
}

/* ---- with a progress handler ------------------------------------------------------------------
   The rows run in blocks of about PROGRESS_BLOCK elements, a checkpoint after each, into
   scratch copied out only once every block has run, so that a canceled call writes nothing.
   Rows are independent, so the blocks give the bits of one call. */
#define PROGRESS_BLOCK ((size_t)1 << 20)

static size_t block_rows(size_t d) { return d < PROGRESS_BLOCK ? PROGRESS_BLOCK / d : 1; }

static pt_status argmax_in_blocks(const pt_kernel_table *k, const float *x, size_t rows, size_t d,
                                  size_t ld, int32_t *idx) {
  int32_t *scratch = pt_malloc(rows * sizeof *scratch);
  if (!scratch) return pt_fail(PT_ENOMEM, "no memory for %zu rows' results", rows);
  const int units = pt_progress_units(rows);
  pt_status s = PT_OK;
  for (size_t r = 0, n; r < rows && s == PT_OK; r += n) {
    n = min_size(block_rows(d), rows - r);
    pt_split_argmax_rows(k, x + r * ld, n, d, ld, scratch + r);
    s = pt_progress_step(units, n);
  }
  if (s == PT_OK) memcpy(idx, scratch, rows * sizeof *idx);
  free(scratch);
  return s;
}

static pt_status sort_in_blocks(const pt_kernel_table *k, int ranks, const float *x, size_t rows,
                                size_t d, size_t ld, int32_t *out, size_t ld_out) {
  int32_t *scratch = pt_malloc(rows * d * sizeof *scratch); /* rows * d fits: x's extent did */
  if (!scratch) return pt_fail(PT_ENOMEM, "no memory for %zu rows' results", rows);
  const int units = pt_progress_units(rows);
  pt_status s = PT_OK;
  for (size_t r = 0, n; r < rows && s == PT_OK; r += n) {
    n = min_size(block_rows(d), rows - r);
    s = pt_split_sort_rows(k, ranks, x + r * ld, n, d, ld, scratch + r * d, d);
    if (s == PT_OK) s = pt_progress_step(units, n);
  }
  for (size_t r = 0; s == PT_OK && r < rows; r++)
    memcpy(out + r * ld_out, scratch + r * d, d * sizeof *out);
  free(scratch);
  return s;
}

pt_status pt_argmax_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *idx) {
  PT_CALL("pt_argmax_rows");
  const pt_kernel_table *k;
  pt_status s = pt_kernels_ready(&k);
  if (s == PT_OK) s = pt_check_matrix("x", x, rows, d, ld, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix("idx", idx, rows, 1, 1, sizeof(int32_t));
  if (s != PT_OK || rows == 0) return s;
  if (pt_progress_current()) return argmax_in_blocks(k, x, rows, d, ld, idx);
  pt_split_argmax_rows(k, x, rows, d, ld, idx);
  return PT_OK;
}

typedef void (*sort_kernel)(const float *x, size_t rows, size_t d, size_t ld, int32_t *out,
                            size_t ld_out, int64_t *work, const pt_row_thresholds *t);

/* The sorting kernels' work space (src/kernels/sort.h) is on each task's stack for rows up to this
   length; for longer ones it is allocated once per call, a part for each task. */
#define SORT_STACK_D 256

typedef struct sort_job {
  sort_kernel kernel;
  const pt_row_thresholds *t;
  const float *x;
  size_t rows, d, ld, ld_out, tasks;
  int32_t *out;
  int64_t *work; /* NULL: on the stack */
} sort_job;

static void sort_task(void *p, size_t i) {
  const sort_job *j = p;
  const size_t r0 = pt_split_start(i, j->tasks, j->rows, 1, 0),
               r1 = pt_split_start(i + 1, j->tasks, j->rows, 1, 0);
  int64_t local[PT_SORT_WORK(SORT_STACK_D)];
  int64_t *work = j->work ? j->work + i * PT_SORT_WORK(j->d) : local;
  j->kernel(j->x + r0 * j->ld, r1 - r0, j->d, j->ld, j->out + r0 * j->ld_out, j->ld_out, work,
            j->t);
}

pt_status pt_split_sort_rows(const pt_kernel_table *k, int ranks, const float *x, size_t rows,
                             size_t d, size_t ld, int32_t *out, size_t ld_out) {
  if (d > SIZE_MAX / (2 * sizeof(int64_t)) - PT_SORT_SLACK - PT_SORT_COUNTS)
    return pt_fail(PT_EOVERFLOW, "d is %zu, too long a row for the sort's work space", d);
  sort_job j = {ranks ? k->rank_rows : k->argsort_rows, &k->rows, x, rows, d, ld, ld_out,
                min_size(pt_split_tasks(pt_sort_units(rows, d), PT_GRAIN_SORT), rows), out, NULL};
  if (d > SORT_STACK_D) {
    const size_t part = PT_SORT_WORK(d) * sizeof *j.work;
    j.tasks = min_size(j.tasks, SIZE_MAX / part);
    j.work = pt_malloc(j.tasks * part);
    if (!j.work) return pt_fail(PT_ENOMEM, "no memory for the sort's work space");
  }
  if (j.tasks == 1) sort_task(&j, 0);
  else pt_parallel_for(j.tasks, sort_task, &j);
  free(j.work);
  return PT_OK;
}

static pt_status sort_rows(int ranks, const float *x, size_t rows, size_t d, size_t ld,
                           int32_t *out, size_t ld_out) {
  const pt_kernel_table *k;
  pt_status s = pt_kernels_ready(&k);
  if (s == PT_OK) s = pt_check_matrix("x", x, rows, d, ld, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix(ranks ? "rank" : "perm", out, rows, d, ld_out, sizeof(int32_t));
  if (s != PT_OK || rows == 0) return s;
  if (pt_progress_current()) return sort_in_blocks(k, ranks, x, rows, d, ld, out, ld_out);
  return pt_split_sort_rows(k, ranks, x, rows, d, ld, out, ld_out);
}

pt_status pt_argsort_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *perm,
                          size_t ld_out) {
  PT_CALL("pt_argsort_rows");
  return sort_rows(0, x, rows, d, ld, perm, ld_out);
}

pt_status pt_rank_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *rank,
                       size_t ld_out) {
  PT_CALL("pt_rank_rows");
  return sort_rows(1, x, rows, d, ld, rank, ld_out);
}

/* Weighted sums are split between blocks of columns that start at multiples of COL_ALIGN (a
   64-byte line of floats: two threads never write one line of out), and a row of the wide order
   (more than PT_WSUM_NARROW_MAX columns) only into blocks of more than PT_WSUM_NARROW_MAX, which
   stay in the wide order: shares of WIDE_SHARE columns do it, as rounding a start down takes
   at most COL_ALIGN - 1 columns from a block. */
#define COL_ALIGN 16
#define WIDE_SHARE (PT_WSUM_NARROW_MAX + COL_ALIGN)

typedef struct weighted_sum_job {
  const pt_kernel_table *k;
  const float *x, *w;
  size_t rows, d, ld, tasks;
  float *out;
} weighted_sum_job;

static void weighted_sum_task(void *p, size_t i) {
  const weighted_sum_job *j = p;
  const size_t c0 = pt_split_start(i, j->tasks, j->d, COL_ALIGN, 0),
               c1 = pt_split_start(i + 1, j->tasks, j->d, COL_ALIGN, 0);
  j->k->weighted_sum_rows(j->x + c0, j->rows, c1 - c0, j->ld, j->w, j->out + c0);
}

/* Split by columns only: a column's sum is one chain of operations over all the rows
   (src/kernels/weighted_sum_rows.c.j2), so cutting the rows would change it, while a block of
   columns summed alone gets the same operations as inside the whole row, as long as it stays
   in the row's order (narrow or wide). */
void pt_split_weighted_sum_rows(const pt_kernel_table *k, const float *x, size_t rows, size_t d,
                                size_t ld, const float *w, float *out) {
  const size_t shares = d / (d > PT_WSUM_NARROW_MAX ? WIDE_SHARE : COL_ALIGN);
  const size_t tasks =
      shares > 1 ? min_size(pt_split_tasks(rows * d, PT_GRAIN_WEIGHTED_SUM), shares) : 1;
  weighted_sum_job j = {k, x, w, rows, d, ld, tasks, out};
  if (tasks == 1) k->weighted_sum_rows(x, rows, d, ld, w, out);
  else pt_parallel_for(tasks, weighted_sum_task, &j);
}

pt_status pt_weighted_sum_rows(const float *x, size_t rows, size_t d, size_t ld, const float *w,
                               float *out) {
  PT_CALL("pt_weighted_sum_rows");
  const pt_kernel_table *k;
  pt_status s = pt_kernels_ready(&k);
  if (s == PT_OK) s = pt_check_matrix("x", x, rows, d, ld, sizeof(float));
  if (s == PT_OK && w) s = pt_check_matrix("w", w, rows, 1, 1, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix("out", out, rows ? 1 : 0, d, d, sizeof(float));
  if (s != PT_OK || rows == 0) return s;
  pt_split_weighted_sum_rows(k, x, rows, d, ld, w, out);
  return PT_OK;
}

/* The kernels on batches of rows: argument checks, then the active ISA's kernel. */
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "kernels.h"
#include "pool.h"
#include "rows.h"
#include "sort.h"

pt_status pt_check_matrix(const void *p, size_t rows, size_t d, size_t ld, size_t size) {
  if (d == 0) return PT_EINVAL;
  if (d > INT32_MAX) return PT_EOVERFLOW;
  if (ld < d) return PT_EINVAL;
  if (rows == 0) return PT_OK;
  if (!p) return PT_EINVAL;
  const size_t limit = (size_t)PTRDIFF_MAX / size; /* elements addressable from p */
  if (ld > limit || rows - 1 > (limit - d) / ld) return PT_EOVERFLOW;
  return PT_OK;
}

pt_status pt_argmax_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *idx) {
  const pt_kernel_table *k = pt_kernels_active();
  if (!k) return PT_EUNSUPPORTED;
  if (pt_threads_ready() != PT_OK) return PT_EINVAL;
  pt_status s = pt_check_matrix(x, rows, d, ld, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix(idx, rows, 1, 1, sizeof(int32_t));
  if (s != PT_OK || rows == 0) return s;
  k->argmax_rows(x, rows, d, ld, idx);
  return PT_OK;
}

typedef void (*sort_kernel)(const float *x, size_t rows, size_t d, size_t ld, int32_t *out,
                            size_t ld_out, int64_t *work);

/* The sorting kernels' work space (src/sort.h) is on the stack for rows up to this length,
   allocated once per call for longer ones. */
#define SORT_STACK_D 256

static pt_status sort_rows(const pt_kernel_table *k, sort_kernel kernel, const float *x,
                           size_t rows, size_t d, size_t ld, int32_t *out, size_t ld_out) {
  if (!k) return PT_EUNSUPPORTED;
  if (pt_threads_ready() != PT_OK) return PT_EINVAL;
  pt_status s = pt_check_matrix(x, rows, d, ld, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix(out, rows, d, ld_out, sizeof(int32_t));
  if (s != PT_OK || rows == 0) return s;
  if (d > SIZE_MAX / (2 * sizeof(int64_t)) - PT_SORT_SLACK) return PT_EOVERFLOW;
  int64_t local[PT_SORT_WORK(SORT_STACK_D)];
  int64_t *work = d <= SORT_STACK_D ? local : pt_malloc(PT_SORT_WORK(d) * sizeof *work);
  if (!work) return PT_ENOMEM;
  kernel(x, rows, d, ld, out, ld_out, work);
  if (work != local) free(work);
  return PT_OK;
}

pt_status pt_argsort_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *perm,
                          size_t ld_out) {
  const pt_kernel_table *k = pt_kernels_active();
  return sort_rows(k, k ? k->argsort_rows : NULL, x, rows, d, ld, perm, ld_out);
}

pt_status pt_rank_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *rank,
                       size_t ld_out) {
  const pt_kernel_table *k = pt_kernels_active();
  return sort_rows(k, k ? k->rank_rows : NULL, x, rows, d, ld, rank, ld_out);
}

pt_status pt_weighted_sum_rows(const float *x, size_t rows, size_t d, size_t ld, const float *w,
                               float *out) {
  const pt_kernel_table *k = pt_kernels_active();
  if (!k) return PT_EUNSUPPORTED;
  if (pt_threads_ready() != PT_OK) return PT_EINVAL;
  pt_status s = pt_check_matrix(x, rows, d, ld, sizeof(float));
  if (s == PT_OK && w) s = pt_check_matrix(w, rows, 1, 1, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix(out, rows ? 1 : 0, d, d, sizeof(float));
  if (s != PT_OK || rows == 0) return s;
  k->weighted_sum_rows(x, rows, d, ld, w, out);
  return PT_OK;
}

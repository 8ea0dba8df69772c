/* The kernels on batches of rows: argument checks, then the active ISA's kernel. */
#include <stdint.h>

#include "kernels.h"
#include "rows.h"

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
  pt_status s = pt_check_matrix(x, rows, d, ld, sizeof(float));
  if (s == PT_OK) s = pt_check_matrix(idx, rows, 1, 1, sizeof(int32_t));
  if (s != PT_OK || rows == 0) return s;
  k->argmax_rows(x, rows, d, ld, idx);
  return PT_OK;
}

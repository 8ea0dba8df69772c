/* SPDX-License-Identifier: MIT */
/* Argument checks shared by the kernels on batches of rows (pt_argmax_rows(3)). */
#ifndef PT_ROWS_H
#define PT_ROWS_H

#include <stddef.h>

#include "perturb.h"

/* Checks `rows` rows of `d` elements of `size` bytes at p, row stride `ld` elements:
   PT_EINVAL for d == 0, ld < d, or p == NULL with rows > 0; PT_EOVERFLOW for d > INT32_MAX or
   an extent past PTRDIFF_MAX bytes; else PT_OK.  rows == 0 needs no pointer.  A refusal's
   sentence calls the matrix `name`. */
pt_status pt_check_matrix(const char *name, const void *p, size_t rows, size_t d, size_t ld,
                          size_t size);

#endif

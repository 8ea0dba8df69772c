/* SPDX-License-Identifier: MIT */
/* What the public wrapper must know of the weighted sums' order of operations
   (src/kernels/weighted_sum_rows.c.j2) to split a call between threads without changing it. */
#ifndef PT_WEIGHTED_SUM_H
#define PT_WEIGHTED_SUM_H

/* Rows of at most this many elements are summed in the narrow order, longer ones in the wide
   order; within either order, a column's operations depend on neither d nor the column's
   position. */
#define PT_WSUM_NARROW_MAX 128

#endif

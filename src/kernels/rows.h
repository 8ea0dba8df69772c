/* SPDX-License-Identifier: MIT */
/* The row kernels' thresholds of speed, never of the bits (argmax_rows, argsort_rows,
   rank_rows): gen/kernel_table.py's ROW_THRESHOLDS, one per ISA in its pt_kernel_table, which
   every call passes on; perturb-bench --thresholds times each path on either side of each and
   prints the crossover beside the table's value, and the parity tests force every path on every
   ISA.  Any setting gives the same output bits: each path computes the one stable order. */
#ifndef PT_KERNELS_ROWS_H
#define PT_KERNELS_ROWS_H

#include <stddef.h>

/* The longest rows the counting paths take, whatever a threshold asks: their keys live on the
   stack (the generator checks every table value against them). */
#define PT_ROWS_COUNT_CAP 128
#define PT_ROWS_COUNT_COLUMNS_CAP 16

typedef struct pt_row_thresholds {
  /* argmax_rows: rows of at most this many elements go PT_LANES rows at a time, one per lane
     (0: never) */
  size_t argmax_columns_max;
  /* argsort_rows, rank_rows: rows of at most count_max elements (and PT_ROWS_COUNT_CAP; rows of
     one always) are ranked by counting comparisons, no sort; of these, rows of at most
     count_columns_max (and PT_ROWS_COUNT_COLUMNS_CAP) are counted PT_LANES rows at a time
     (0: never); rows of at least radix_min (and more than PT_SORT_RADIX_FLOOR, where the work
     space holds the counts) are radix sorted; the rest go through networks and merges. */
  size_t count_max, count_columns_max, radix_min;
} pt_row_thresholds;

#endif

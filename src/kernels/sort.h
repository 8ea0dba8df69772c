/* SPDX-License-Identifier: MIT */
/* The work space of the row-sorting kernels (argsort_rows, rank_rows): shared by the public
   wrappers that allocate it and the templates that use it. */
#ifndef PT_SORT_H
#define PT_SORT_H

#include <stddef.h>

/* Room past each copy of a row's keys: a kernel rounds a row up to its register block of keys
   and may store one vector beyond that.  Every template checks its block fits. */
#define PT_SORT_SLACK 256

/* Rows longer than this may be radix sorted (every ISA's radix_min exceeds it: the templates
   check), and only their work space holds the radix counts. */
#define PT_SORT_RADIX_FLOOR 256

/* The radix sort's digits: 11, 11 and 10 bits of a 32-bit key, one table of counts per digit,
   all counted in one read of the row (PT_SORT_COUNTS int64_t elements hold them). */
#define PT_SORT_DIGIT_BITS 11
#define PT_SORT_PASSES 3
#define PT_SORT_COUNTS (PT_SORT_PASSES * (1 << PT_SORT_DIGIT_BITS) / 2)

/* int64_t elements of work space a sorting kernel needs for rows of d elements: two copies of
   the keys (a merge or radix pass reads one and writes the other), each with its slack, and
   for rows that may be radix sorted the counts. */
#define PT_SORT_WORK(d)                                                                            \
  (2 * ((size_t)(d) + PT_SORT_SLACK) + ((size_t)(d) > PT_SORT_RADIX_FLOOR ? PT_SORT_COUNTS : 0))

#endif

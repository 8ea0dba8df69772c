/* SPDX-License-Identifier: MIT */
/* The work space of the row-sorting kernels (argsort_rows, rank_rows): shared by the public
   wrappers that allocate it and the templates that use it. */
#ifndef PT_SORT_H
#define PT_SORT_H

#include <stddef.h>

/* Room past each copy of a row's keys: a kernel rounds a row up to its register block of keys
   and may store one vector beyond that.  Every template checks its block fits. */
#define PT_SORT_SLACK 256

/* int64_t elements of work space a sorting kernel needs for rows of d elements: two copies of
   the keys (a merge pass reads one and writes the other), each with its slack. */
#define PT_SORT_WORK(d) (2 * ((size_t)(d) + PT_SORT_SLACK))

#endif

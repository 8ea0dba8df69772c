/* SPDX-License-Identifier: MIT */
/* The row kernels and the noise streams of a kernel table, their work split into tasks for
   pt_parallel_for (src/runtime/pool.h) when it is large enough.  The public wrappers (rows.c, noise.c)
   call these once the arguments are checked; bench/perturb-bench calls them to time a table's
   kernels the way the wrappers run them.  Every split keeps the bits of one thread: rows are
   independent, noise words are a function of their position, and weighted sums are split
   between columns only where a column's order of operations does not change (rows.c).  With
   one task they call the kernel directly: the detour through pt_parallel_for cost 7 ns, 10%,
   on an AVX-512 argmax of 100 rows of 5. */
#ifndef PT_SPLIT_H
#define PT_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"

/* Work per task below which another thread does not pay for waking it, measured with
   bench/perturb-bench --threads 1 and 2 on AVX-512, where a task is the shortest (README,
   "Threads"; on this project's VM a split call took at least 10 to 40 us more than half its
   serial time, the wake-up of a sleeping worker).  Slower ISAs would gain from smaller tasks, but
   one grain per kernel keeps small calls on one thread on every ISA.  Units: elements of x; for
   the sorts, elements times the bit length of d (a row's cost per element grows with its length:
   0.4 ns at d = 5, 5 ns at d = 1024); words of noise, per kind (uniform words are the cheapest
   and the most bound by writing).  The tests size their inputs from these to be sure to split. */
#define PT_GRAIN_ARGMAX ((size_t)1 << 19)
#define PT_GRAIN_SORT ((size_t)1 << 18)
#define PT_GRAIN_WEIGHTED_SUM ((size_t)1 << 19)
#define PT_GRAIN_UNIFORM ((size_t)1 << 17)
#define PT_GRAIN_NORMAL ((size_t)1 << 16)
#define PT_GRAIN_GUMBEL ((size_t)1 << 15)

/* The sorts' units of work: rows x d x the bit length of d (at most SIZE_MAX). */
static inline size_t pt_sort_units(size_t rows, size_t d) {
  size_t bits = 0;
  for (size_t v = d; v; v >>= 1) bits++;
  return rows * d <= SIZE_MAX / bits ? rows * d * bits : SIZE_MAX;
}

/* Tasks for `units` of work, each at least `grain` units: one when the work is too small to
   pay for waking another thread, never more than the thread count. */
static inline size_t pt_split_tasks(size_t units, size_t grain) {
  const size_t threads = pt_threads(), tasks = units / grain;
  return tasks < 1 ? 1 : tasks < threads ? tasks : threads;
}

/* The first item of task i of `tasks` even shares of `count` items (task `tasks` starts at
   `count`), moved down to the nearest item p with (phase + p) % align == 0.  The shares must be
   at least `align` items (a grain of at least align does it), so that the starts increase. */
static inline size_t pt_split_start(size_t i, size_t tasks, size_t count, size_t align,
                                    uint64_t phase) {
  if (i == 0) return 0;
  if (i == tasks) return count;
  const size_t at = i * (count / tasks);
  return at - (size_t)((phase + at) % align);
}

void pt_split_argmax_rows(const pt_kernel_table *k, const float *x, size_t rows, size_t d,
                          size_t ld, int32_t *idx);
/* argsort_rows (ranks == 0) or rank_rows; PT_ENOMEM when the work space cannot be allocated. */
pt_status pt_split_sort_rows(const pt_kernel_table *k, int ranks, const float *x, size_t rows,
                             size_t d, size_t ld, int32_t *out, size_t ld_out);
void pt_split_weighted_sum_rows(const pt_kernel_table *k, const float *x, size_t rows, size_t d,
                                size_t ld, const float *w, float *out);
void pt_split_noise(const pt_kernel_table *k, pt_noise kind, pt_key key, uint64_t offset,
                    float *out, size_t n);

#endif

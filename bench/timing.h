/* SPDX-License-Identifier: MIT */
/* timing.h: the timer shared by perturb-bench and perturbed-bench.  peer_timing.py times
   the numpy peers the same way, so that the ratios compare like with like.

   The including program defines _POSIX_C_SOURCE 200809L before its first #include, for
   clock_gettime. */
#ifndef PT_BENCH_TIMING_H
#define PT_BENCH_TIMING_H

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median nanoseconds per call of call(ctx) over `repeats` (1 to 101) timed batches.
   The batch doubles until it lasts 20 ms, so that a call of a few nanoseconds is timed as
   accurately as one of milliseconds: the clock's resolution and the cost of reading it vanish
   against the batch.  The median, not the mean or the minimum, because a batch that another
   process interrupted is an outlier on one side only, and the median ignores it. */
static inline double bench_median_ns(void (*call)(const void *ctx), const void *ctx,
                                     int repeats) {
  size_t iters = 1;
  for (;;) {
    const double t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) call(ctx);
    if (bench_now_ns() - t0 >= 2e7 || iters >= ((size_t)1 << 30)) break;
    iters *= 2;
  }
  double samples[101];
  if (repeats < 1) repeats = 1;
  if (repeats > 101) repeats = 101;
  for (int r = 0; r < repeats; r++) {
    const double t0 = bench_now_ns();
    for (size_t i = 0; i < iters; i++) call(ctx);
    samples[r] = (bench_now_ns() - t0) / (double)iters;
  }
  qsort(samples, (size_t)repeats, sizeof samples[0], bench_cmp_double);
  return samples[repeats / 2];
}

#endif

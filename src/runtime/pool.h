/* SPDX-License-Identifier: MIT */
/* The library's thread pool and its thread count (perturb.h, "Threads").  Computing calls split
   their work into tasks whose results do not depend on which thread runs them, and hand them to
   pt_parallel_for. */
#ifndef PT_POOL_H
#define PT_POOL_H

#include <stddef.h>

#include "perturb.h"

/* The thread count computing calls use (>= 1): the last pt_set_num_threads, else
   PERTURB_NUM_THREADS (read once, at first use), else the CPUs of the affinity mask. */
size_t pt_threads(void);

/* PT_OK, or PT_EINVAL while PERTURB_NUM_THREADS is not a positive decimal integer (of at most
   1024, perturb.h) and pt_set_num_threads has not been called since. */
pt_status pt_threads_ready(void);

/* Runs task(ctx, i) once for every i < count on up to pt_threads() threads, the calling thread
   among them, and returns when all are done.  Every task runs on the calling thread, in the
   order i = 0, 1, ..., when count <= 1, with one thread, or when the pool is busy with another
   call (another user thread's, or a nested call from inside a task): callers never queue
   behind one another and never oversubscribe the machine. */
void pt_parallel_for(size_t count, void (*task)(void *ctx, size_t i), void *ctx);

#endif

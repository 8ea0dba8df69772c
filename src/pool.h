/* The library's thread pool. */
#ifndef PT_POOL_H
#define PT_POOL_H

#include <stddef.h>

#include "perturb.h"

size_t pt_threads(void);
pt_status pt_threads_ready(void);
void pt_parallel_for(size_t count, void (*task)(void *ctx, size_t i), void *ctx);

#endif

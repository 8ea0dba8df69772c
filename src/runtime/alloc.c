/* SPDX-License-Identifier: MIT */
#include "runtime/alloc.h"

#include <stdlib.h>

#ifdef PT_ALLOC_FAULT_INJECTION
#include <stdatomic.h>

/* How many more allocations may succeed; PT_ALLOC_NEVER_FAIL (the default) is no limit.  The
   normal path costs one relaxed load per allocation, and the library allocates per call,
   never per element. */
static _Atomic size_t budget = PT_ALLOC_NEVER_FAIL;

void pt_alloc_fail_after(size_t successes) { atomic_store(&budget, successes); }

/* 1 if this allocation may go ahead, taking one from a limited budget */
static int allowed(void) {
  size_t left = atomic_load_explicit(&budget, memory_order_relaxed);
  while (left != PT_ALLOC_NEVER_FAIL) {
    if (left == 0) return 0;
    if (atomic_compare_exchange_weak(&budget, &left, left - 1)) return 1;
  }
  return 1;
}

void *pt_malloc(size_t bytes) { return allowed() ? malloc(bytes) : NULL; }

void *pt_calloc(size_t count, size_t size) { return allowed() ? calloc(count, size) : NULL; }
#else
void *pt_malloc(size_t bytes) { return malloc(bytes); }

void *pt_calloc(size_t count, size_t size) { return calloc(count, size); }
#endif

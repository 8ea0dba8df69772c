/* SPDX-License-Identifier: MIT */
/* Every allocation of the library goes through pt_malloc and pt_calloc (freed with free), so
   that the tests can make allocations fail on purpose (fault injection, as SQLite's tests do)
   and check that every call then returns PT_ENOMEM, writes nothing, and leaves its objects
   usable.  alloc.c is built twice (Makefile.am): with PT_ALLOC_FAULT_INJECTION into the tests'
   libperturb_internal.la, and without it, as plain malloc and calloc, into the installed
   libperturb. */
#ifndef PT_ALLOC_H
#define PT_ALLOC_H

#include <stddef.h>

void *pt_malloc(size_t bytes);
void *pt_calloc(size_t count, size_t size);

/* For the tests, in libperturb_internal.la only: the next `successes` allocations succeed and
   every later one fails, until pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL).  Affects every
   thread. */
#define PT_ALLOC_NEVER_FAIL ((size_t)-1)
void pt_alloc_fail_after(size_t successes);

#endif

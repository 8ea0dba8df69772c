/* SPDX-License-Identifier: MIT */
/* Progress and cancellation of long computing calls (pt_set_progress_handler, perturb.h).

   A thread's handler applies to its outermost library call (src/api/error.h's PT_CALL marks
   it).  That call's work reports to one tracker: the first piece of work to declare its size
   (pt_progress_units) owns the units, so a batch counts rows and the estimates inside each row
   only look for cancellation; pool tasks see the tracker of the call that started them
   (pt_parallel_for carries it), so every thread stops at its next checkpoint once the handler
   has asked.  Only the calling thread runs the handler, at a checkpoint at least interval_s
   after the call began and after its last report. */
#ifndef PT_PROGRESS_H
#define PT_PROGRESS_H

#include <stdint.h>

#include "perturb.h"

typedef struct pt_tracker pt_tracker;

/* The tracker of the call running on this thread (NULL: no handler, nothing to do). */
pt_tracker *pt_progress_current(void);
/* Makes t this thread's tracker (a pool task of t's call) and returns the one it replaces. */
pt_tracker *pt_progress_adopt(pt_tracker *t);

/* Called by PT_CALL around the thread's outermost library call. */
void pt_progress_begin_call(void);
void pt_progress_end_call(void);

/* A piece of work of `total` units: 1 if it owns the call's units (the first to ask), else 0. */
int pt_progress_units(uint64_t total);
/* `done` more units of work finished (counted only by the owner of the units): PT_ECANCELED if
   the handler has asked to stop (this call's sentence then says so), else PT_OK. */
pt_status pt_progress_step(int owner, uint64_t done);

#endif

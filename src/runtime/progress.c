/* SPDX-License-Identifier: MIT */
/* Progress reports and cancellation (src/runtime/progress.h). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "runtime/progress.h"

#include <stdatomic.h>
#include <time.h>

#include "api/error.h"

struct pt_tracker {
  pt_progress_fn fn;
  void *user;
  double interval, next; /* seconds on the monotonic clock: the next report is due at `next` */
  uint64_t total;        /* 0 until a piece of work declares it */
  _Atomic uint64_t done;
  atomic_int canceled;
  const void *owner; /* the calling thread (the address of its handler) */
};

static _Thread_local struct {
  pt_progress_fn fn;
  void *user;
  double interval;
} handler;
static _Thread_local pt_tracker own, *current;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void pt_set_progress_handler(pt_progress_fn fn, void *user, double interval_s) {
  handler.fn = fn;
  handler.user = user;
  /* a negative or NaN interval reports at every checkpoint past the start, as 0 does */
  handler.interval = interval_s > 0.0 ? interval_s : 0.0;
}

pt_tracker *pt_progress_current(void) { return current; }

pt_tracker *pt_progress_adopt(pt_tracker *t) {
  pt_tracker *was = current;
  current = t;
  return was;
}

void pt_progress_begin_call(void) {
  if (!handler.fn) {
    current = NULL;
    return;
  }
  own.fn = handler.fn;
  own.user = handler.user;
  own.interval = handler.interval;
  own.next = now() + handler.interval;
  own.total = 0;
  atomic_store_explicit(&own.done, 0, memory_order_relaxed);
  atomic_store_explicit(&own.canceled, 0, memory_order_relaxed);
  own.owner = &handler;
  current = &own;
}

void pt_progress_end_call(void) { current = NULL; }

int pt_progress_units(uint64_t total) {
  pt_tracker *t = current;
  if (!t || t->total || t->owner != &handler) return 0;
  t->total = total ? total : 1;
  return 1;
}

pt_status pt_progress_step(int owner, uint64_t done) {
  pt_tracker *t = current;
  if (!t) return PT_OK;
  if (owner) atomic_fetch_add_explicit(&t->done, done, memory_order_relaxed);
  if (!atomic_load_explicit(&t->canceled, memory_order_relaxed) && t->owner == &handler) {
    const double time = now();
    if (time >= t->next) {
      t->next = time + t->interval;
      uint64_t d = atomic_load_explicit(&t->done, memory_order_relaxed);
      const uint64_t total = t->total ? t->total : 1;
      if (d > total) d = total;
      if (t->fn(t->user, d, total)) atomic_store_explicit(&t->canceled, 1, memory_order_relaxed);
    }
  }
  if (atomic_load_explicit(&t->canceled, memory_order_relaxed))
    return pt_fail(PT_ECANCELED, "the progress handler asked to stop");
  return PT_OK;
}

/* SPDX-License-Identifier: MIT */
/* pt_last_error: a sentence per thread in fixed buffers (src/api/error.h). */
#include "api/error.h"

#include "runtime/progress.h"

#include <stdarg.h>
#include <stdio.h>

/* 200 bytes hold the longest sentence the library makes (PERTURB_ISA's, with every ISA named);
   a longer one is cut short, never overrun. */
static _Thread_local struct {
  const char *call;   /* the outermost public call running on this thread */
  unsigned depth;     /* library calls running on this thread (a callback may make more) */
  int recorded;       /* the outermost call running has recorded its sentence */
  const char *failed; /* the call that recorded `what` */
  char what[200];     /* what was wrong in the last failure, "" before the first */
  char sentence[256];
} state;

int pt_call_enter(const char *name) {
  if (state.depth++ == 0) {
    state.call = name;
    state.recorded = 0;
    pt_progress_begin_call();
  }
  return 1;
}

void pt_call_leave(int *entered) {
  (void)entered;
  if (--state.depth == 0) pt_progress_end_call();
}

pt_status pt_fail(pt_status s, const char *fmt, ...) {
  if (s != PT_OK && !state.recorded) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(state.what, sizeof state.what, fmt, ap);
    va_end(ap);
    state.failed = state.call;
    state.recorded = state.depth > 0;
  }
  return s;
}

pt_status pt_failed(pt_status s) { return pt_fail(s, "%s", pt_strerror(s)); }

const char *pt_last_error(void) {
  if (state.what[0] == '\0') return "";
  snprintf(state.sentence, sizeof state.sentence, "%s: %s",
           state.failed ? state.failed : "libperturb", state.what);
  return state.sentence;
}

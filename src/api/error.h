/* SPDX-License-Identifier: MIT */
/* The sentence of pt_last_error, one per thread (perturb.h).

   Each public call that can fail starts with PT_CALL("its name"), which names the thread's
   outermost library call in any sentence recorded until it returns (calls it makes itself,
   pt_make_perturbed_fun's of _ex say, record under the name the user called).  A refusal
   records what was wrong with pt_fail, which formats into the thread's fixed buffer (a
   failing path allocates nothing) and returns the status, so a failure site reads

       if (!isfinite(x[i])) return pt_fail(PT_EINVAL, "x[%zu] is %g", i, (double)x[i]);

   The first sentence of a call stands: the deepest failure knows most, and the callers that
   pass its status on add nothing; pt_failed gives a status that came back without one its
   pt_strerror sentence.  A successful call leaves the last failure's sentence alone.  A failure in a library thread's own work (a pool worker)
   is recorded by the calling thread when the status reaches it. */
#ifndef PT_ERROR_H
#define PT_ERROR_H

#include "perturb.h"

int pt_call_enter(const char *name);
void pt_call_leave(int *entered);
#define PT_CALL(name)                                                            \
  __attribute__((cleanup(pt_call_leave), unused)) int pt_call_entered_ = \
      pt_call_enter(name)

/* Records the sentence "fmt ..." for the current call (unless it has one) and returns s. */
pt_status pt_fail(pt_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For a status that may have come back without a sentence: pt_strerror(s) unless one was
   recorded; returns s. */
pt_status pt_failed(pt_status s);

#endif

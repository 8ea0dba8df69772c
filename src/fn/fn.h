/* SPDX-License-Identifier: MIT */
/* The pt_fn object layer (pt_fn(3)).

   Every kind of function (callback, custom gradient, built-in, composition, perturbed) is a
   struct whose first member is a pt_fn and whose behaviour is a pt_fn_ops table.  Objects are
   immutable once built; the only mutable field is the reference count, changed atomically, so
   any number of threads may use one object.  A function built from others holds a reference
   to each, so the parts may be freed in any order.

   The operations of a kind always write into buffers the public wrappers (fn.c) own, so an
   operation that fails half-way leaves the caller's outputs untouched: the wrappers copy out
   only on success. */
#ifndef PT_FN_H
#define PT_FN_H

#include <stddef.h>
#include <stdint.h>

#include "perturb.h"

/* The keys of a function's random parts.  A random part is a perturbed function (one made by
   pt_make_perturbed_fun), counted through compositions in evaluation order, inner part first.
   A call with key K gives a function with one random part K itself (so `loss o perturbed`
   draws exactly the samples of `perturbed` alone), and part p of several
   pt_key_fold_in(K, p): each part independent, and the numbering the same however a chain
   of compositions is bracketed. */
typedef struct pt_fn_keys {
  pt_key key;
  uint64_t first; /* index of the receiving function's first random part */
  int split;      /* 0: the whole call has one random part, which gets `key` */
} pt_fn_keys;

typedef struct pt_fn_ops pt_fn_ops;

/* What a function provides (pt_fn.caps).  vjp, jvp and jacobian come together.
   PT_CAP_THREAD_SAFE: its operations may run on several library threads at once (built-ins,
   callbacks made with PT_CALLBACK_THREAD_SAFE, and functions made of such parts only). */
enum { PT_CAP_DERIVATIVES = 1, PT_CAP_HESSIAN = 2, PT_CAP_THREAD_SAFE = 4 };

struct pt_fn {
  const pt_fn_ops *ops;
  size_t n_in, n_out;
  size_t n_random; /* random parts (see pt_fn_keys) */
  unsigned caps;
  double work; /* about how many operations one evaluation costs: when threads pay */
  size_t nesting; /* levels of perturbed functions and losses inside (PT_FN_MAX_NESTING) */
  size_t refs; /* atomic; the object is destroyed when it drops to 0 */
};

/* Operations of one kind.  `y` arguments are optional (NULL: not wanted) and receive f(x),
   computed with the same keys, so a value and its derivative are consistent.  Outputs never
   alias inputs.  An operation is only called when f->caps says the function provides it. */
struct pt_fn_ops {
  /* y (batch x n_out) = f(x) for x (batch x n_in).  batch == 1 when f->n_random > 0:
     deterministic functions ignore keys and take any batch in one call. */
  pt_status (*eval)(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x, float *y);
  /* x_bar = J(x)^T y_bar */
  pt_status (*vjp)(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar, float *y,
                   float *x_bar);
  /* y_dot = J(x) x_dot */
  pt_status (*jvp)(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot, float *y,
                   float *y_dot);
  /* jac (n_out x n_in, row-major) = J(x) */
  pt_status (*jacobian)(const pt_fn *f, pt_fn_keys keys, const float *x, float *y, float *jac);
  /* hess (n_in x n_in) for n_out == 1 */
  pt_status (*hessian)(const pt_fn *f, pt_fn_keys keys, const float *x, float *hess);
  /* Drops the references to the parts and frees the object. */
  void (*destroy)(pt_fn *f);
  /* PT_EINVAL for an input x (n_in floats) that every operation (every derivative, when
     `derivative`) refuses, so that the public calls refuse it before they allocate; NULL: every
     x is accepted.  The operations check it again, as a stage of a composition or a sample of
     a perturbation has no public call. */
  pt_status (*check)(const pt_fn *f, const float *x, int derivative);
};

/* Perturbed functions and losses call their part's operations from their own, so each level
   of them nested in another costs C stack; compositions cost none (they run their stages in a
   loop, fn_compose.c).  A function nested deeper than this is refused with PT_EINVAL, which
   keeps the deepest call within 512 KiB of stack (about 10 KiB a level, most of it the
   estimator's arena); tests/test_deep.c runs it on a 1 MiB thread. */
enum { PT_FN_MAX_NESTING = 32 };

/* Sizes of a new function: PT_EINVAL if one is 0, PT_EOVERFLOW if a vector of that many floats
   could not be addressed. */
pt_status pt_fn_check_sizes(size_t n_in, size_t n_out);

/* Fills the common fields of a new object (one reference, held by the caller). */
void pt_fn_init(pt_fn *f, const pt_fn_ops *ops, size_t n_in, size_t n_out, size_t n_random,
                unsigned caps);

/* Takes one more reference to f (a part of a new function) and returns it. */
pt_fn *pt_fn_retain(const pt_fn *f);

/* Keys of a top-level call of f with `key`; of the random parts after the first `parts`; the
   key of the first random part. */
pt_fn_keys pt_fn_keys_for(const pt_fn *f, pt_key key);
pt_fn_keys pt_fn_keys_skip(pt_fn_keys keys, size_t parts);
pt_key pt_fn_part_key(pt_fn_keys keys);

/* Rows row0 .. row0 + batch - 1 of a batch evaluation with `key`: row r is f at key
   pt_key_fold_in(key, r), as pt_fn_eval_batch defines (a deterministic f in one call). */
pt_status pt_fn_eval_rows(const pt_fn *f, pt_key key, uint64_t row0, size_t batch, const float *x,
                          float *y);

/* The public calls' first check: PT_EUNSUPPORTED while PERTURB_ISA names an ISA this machine
   lacks, PT_EINVAL for a NULL f. */
pt_status pt_fn_ready(const pt_fn *f);

/* The public calls' check of their inputs, before they allocate: each of the batch rows of x
   through f's check. */
pt_status pt_fn_check_input(const pt_fn *f, size_t batch, const float *x, int derivative);

/* PT_EINVAL, with the sentence "name[i] is NaN", if x[i] is the first infinite or NaN entry
   of x[0 .. n); else PT_OK. */
pt_status pt_check_finite(const char *name, const float *x, size_t n);

/* PT_EUNSUPPORTED, with the sentence that f has no `what` ("derivatives", "Hessian"). */
pt_status pt_fn_unsupported(const char *what);

/* On success copies n floats from scratch to out; frees scratch either way; returns s (a
   failure without a sentence gets pt_strerror's). */
pt_status pt_fn_copy_out(pt_status s, float *scratch, float *out, size_t n);

/* malloc(n * m * size) with *status = PT_OK, or NULL with *status = PT_EOVERFLOW if that size
   overflows (past PTRDIFF_MAX bytes) or PT_ENOMEM if the allocation fails. */
void *pt_fn_alloc(size_t n, size_t m, size_t size, pt_status *status);

/* 1 if n * m elements of `size` bytes exceed PTRDIFF_MAX bytes. */
int pt_fn_too_big(size_t n, size_t m, size_t size);

#endif

/* SPDX-License-Identifier: MIT */
/* The built-in functions (argmax one-hot, its segmented form, ranking), as the perturbed layer
   sees them: it recognises a built-in to run it in a fused kernel instead of evaluating it on
   materialised samples. */
#ifndef PT_FN_BUILTIN_H
#define PT_FN_BUILTIN_H

#include <stddef.h>

#include "fn/fn.h"

typedef enum pt_builtin_kind {
  PT_BUILTIN_NONE = 0, /* not a built-in */
  PT_BUILTIN_ARGMAX,   /* one-hot of the argmax of each segment (one segment: pt_fn_argmax_one_hot) */
  PT_BUILTIN_RANKING   /* y_i = rank of x_i */
} pt_builtin_kind;

/* What f is.  For PT_BUILTIN_ARGMAX, *count segments, segment s covering inputs
   [offsets[s], offsets[s + 1]) (offsets[count] == n_in).  Out-pointers may be NULL. */
pt_builtin_kind pt_fn_builtin(const pt_fn *f, size_t *count, const size_t **offsets);

#endif

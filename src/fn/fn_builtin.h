/* SPDX-License-Identifier: MIT */
/* The built-in functions (argmax one-hot, top-k, max, ranking, sort, each also per segment for a
   flattened tree of leaves; the permutation matrix), as the perturbed layer sees them: it
   recognises a built-in to run it in a fused kernel instead of evaluating it on materialised
   samples. */
#ifndef PT_FN_BUILTIN_H
#define PT_FN_BUILTIN_H

#include <stddef.h>

#include "fn/fn.h"

/* The values are part of a partial's identity (src/fn/partial.c): kinds are only appended. */
typedef enum pt_builtin_kind {
  PT_BUILTIN_NONE = 0,    /* not a built-in */
  PT_BUILTIN_ARGMAX = 1,  /* one-hot of the argmax of each segment */
  PT_BUILTIN_RANKING = 2, /* y_i = rank of x_i within its segment */
  PT_BUILTIN_TOP_K = 3,   /* per segment s, one-hot of its k[s] greatest */
  PT_BUILTIN_MAX = 4,     /* y_s = the max of segment s (n_out = segments) */
  PT_BUILTIN_SORT = 5,    /* each segment of y = its x ascending */
  PT_BUILTIN_PERMUTATION = 6 /* y[p*d + i] = [rank of x_i == p] (n_out = d*d) */
} pt_builtin_kind;

/* A built-in's structure: `count` segments, segment s covering inputs [offsets[s],
   offsets[s + 1]) (offsets[count] == n_in; one segment for the kinds without segments), and
   for PT_BUILTIN_TOP_K the k of each segment (NULL for the others). */
typedef struct pt_builtin {
  pt_builtin_kind kind;
  size_t count;
  const size_t *offsets;
  const size_t *k;
} pt_builtin;

/* What f is: its structure, or {PT_BUILTIN_NONE} when f is not a built-in. */
pt_builtin pt_fn_builtin(const pt_fn *f);

/* 1 when the built-in's derivative is its own (max, sort), 0 when it is piecewise constant
   (zero almost everywhere) or f is not a built-in. */
int pt_builtin_differentiable(pt_builtin_kind kind);

#endif

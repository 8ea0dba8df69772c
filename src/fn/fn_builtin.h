/* SPDX-License-Identifier: MIT */
/* The built-in functions (argmax one-hot, top-k, max, ranking, sort, each also per segment for a
   flattened tree of leaves; the permutation matrix), as the perturbed layer sees them: it
   recognises a built-in to run it in a fused kernel instead of evaluating it on materialised
   samples. */
#ifndef PT_FN_BUILTIN_H
#define PT_FN_BUILTIN_H

#include <stddef.h>
#include <stdint.h>

#include "fn/fn.h"

/* The values are part of a partial's identity (src/fn/partial.c): kinds are only appended. */
typedef enum pt_builtin_kind {
  PT_BUILTIN_NONE = 0,    /* not a built-in */
  PT_BUILTIN_ARGMAX = 1,  /* one-hot of the argmax of each segment */
  PT_BUILTIN_RANKING = 2, /* y_i = rank of x_i within its segment */
  PT_BUILTIN_TOP_K = 3,   /* per segment s, one-hot of its k[s] greatest */
  PT_BUILTIN_MAX = 4,     /* y_s = the max of segment s (n_out = segments) */
  PT_BUILTIN_SORT = 5,    /* each segment of y = its x ascending */
  PT_BUILTIN_PERMUTATION = 6 /* per segment s, a d_s x d_s block: [rank of x_i == p] */
} pt_builtin_kind;

/* A built-in's structure: `count` segments, segment s covering inputs [offsets[s],
   offsets[s + 1]) (offsets[count] == n_in; one segment for the kinds without segments), and
   for PT_BUILTIN_TOP_K the k of each segment (NULL for the others); for PT_BUILTIN_PERMUTATION
   the offsets of the segments' blocks of output cells (count + 1, cells[count] == n_out; NULL
   for the others). */
typedef struct pt_builtin {
  pt_builtin_kind kind;
  size_t count;
  const size_t *offsets;
  const size_t *k;
  const size_t *cells;
} pt_builtin;

/* The permutation matrix's cell of input i (of segment s) at position p of its segment: row p,
   column i of the segment's block.  One segment: p*n + i. */
static inline size_t pt_permutation_cell(const size_t *offsets, const size_t *cells, size_t s,
                                         int32_t p, size_t i) {
  const size_t o = offsets[s];
  return cells[s] + (size_t)p * (offsets[s + 1] - o) + (i - o);
}

/* What f is: its structure, or {PT_BUILTIN_NONE} when f is not a built-in. */
pt_builtin pt_fn_builtin(const pt_fn *f);

/* 1 when the built-in's derivative is its own (max, sort), 0 when it is piecewise constant
   (zero almost everywhere) or f is not a built-in. */
int pt_builtin_differentiable(pt_builtin_kind kind);

#endif

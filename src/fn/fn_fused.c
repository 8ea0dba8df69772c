/* SPDX-License-Identifier: MIT */
/* The fused paths of perturbed built-ins (estimate.h's pt_path): the noise of each tile of
   samples is generated, used and dropped inside one kernel (src/kernels/fused_*.c.j2), so memory
   is O(n + tile) per thread, never O(M n) (the Jacobian's n x n sums aside).  Each path
   (fn_fused_argmax.c, fn_fused_rank.c) sets its kernel's job up and turns the kernel's
   per-sample results into the terms of estimate.h, within one group of samples; this file holds
   what they share and chooses the path of a function. */
#include "fn/fn_fused.h"

#include <stdint.h>
#include <string.h>

#include "runtime/alloc.h"
#include "fn/fn_builtin.h"

size_t pt_fused_tile_rows(size_t n, uint64_t group) {
  const size_t rows = n < PT_FUSED_TILE_FLOATS ? PT_FUSED_TILE_FLOATS / n : 1;
  return rows < group ? rows : (size_t)group;
}

/* count * times + extra elements of `size` bytes */
size_t pt_carve_take(pt_carve *c, size_t count, size_t times, size_t extra, size_t size) {
  const size_t at = (c->used + 63) & ~(size_t)63;
  size_t bytes;
  if (c->overflow || at < c->used || __builtin_mul_overflow(count, times, &bytes) ||
      __builtin_add_overflow(bytes, extra, &bytes) || __builtin_mul_overflow(bytes, size, &bytes) ||
      bytes > (size_t)PTRDIFF_MAX - at) {
    c->overflow = 1;
    return 0;
  }
  c->used = at + bytes;
  return at;
}

pt_terms_at pt_fused_take_terms(pt_carve *c, unsigned want, size_t n, size_t tile) {
  const size_t pad = PT_FUSED_PAD;
  pt_terms_at at;
  at.noise = pt_carve_take(c, tile, n, pad, sizeof(float));
  at.partial = pt_carve_take(c, want & PT_WANT_VJP ? n : 0, 1, want & PT_WANT_VJP ? pad : 0, sizeof(float));
  at.t = pt_carve_take(c, want & PT_WANT_JVP ? tile : 0, 1, 0, sizeof(float));
  at.g = pt_carve_take(c, want & PT_WANT_JAC ? tile : 0, n, want & PT_WANT_JAC ? pad : 0, sizeof(float));
  return at;
}

/* The terms of one group's call of a kernel, on a thread's scratch and sums. */
pt_fused_terms pt_fused_terms_of(const pt_estimator *e, const pt_terms_at *at, char *scratch,
                                 double *sums, double c_base) {
  const unsigned want = pt_fused_score_want(e);
  return (pt_fused_terms){
      .key = e->key, .n = e->f->n_in, .sigma = e->p.sigma, .samples = e->p.samples,
      .y_bar = want & PT_WANT_VJP ? e->y_bar : NULL, .c_base = c_base,
      .partial = (float *)(scratch + at->partial), .x_bar_sum = pt_fused_sums_at(sums, e->at_x_bar),
      .x_dot = want & PT_WANT_JVP ? e->x_dot : NULL, .t = (float *)(scratch + at->t),
      .g = want & PT_WANT_JAC ? (float *)(scratch + at->g) : NULL,
      .noise = (float *)(scratch + at->noise)};
}

void pt_fused_prep_free(pt_estimator *e) {
  pt_arena_free(e->arena, e->prep);
  e->prep = NULL;
}

const pt_path *pt_fused_path(const pt_fn *f, const pt_perturbation *p, unsigned want) {
  if (want & PT_WANT_HESS) return NULL;
  switch (pt_fn_builtin(f).kind) {
    case PT_BUILTIN_ARGMAX: return &pt_fused_argmax_path;
    case PT_BUILTIN_RANKING: case PT_BUILTIN_PERMUTATION: return &pt_fused_rank_path;
    /* their score function runs on the generic path, its value too, so that a value and its
       derivative come from the same samples' results */
    case PT_BUILTIN_MAX: return p->pathwise ? &pt_fused_max_path : NULL;
    case PT_BUILTIN_SORT: return p->pathwise ? &pt_fused_sort_path : NULL;
    default: return NULL;
  }
}

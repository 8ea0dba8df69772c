/* SPDX-License-Identifier: MIT */
/* What the fused paths of perturbed built-ins share (src/fn/fn_fused*.c): the tiles of samples,
   the carving of one block of scratch into pieces, and the estimator terms every fused kernel
   computes (src/kernels/fused.h's pt_fused_terms). */
#ifndef PT_FN_FUSED_H
#define PT_FN_FUSED_H

#include <stddef.h>
#include <stdint.h>

#include "fn/estimate.h"
#include "kernels/fused.h"

/* Noise floats a tile holds: about 16 kB, so the tile's noise stays in L1 while it is used. */
#define PT_FUSED_TILE_FLOATS 4096

/* Samples of n inputs a tile of e holds, at most a group's (and M); even with antithetic. */
size_t pt_fused_tile_rows(const pt_estimator *e, size_t n);

/* Pieces of one block of scratch: each starts on a 64-byte boundary.  Sizes are checked here,
   so a request too large to address sets `overflow` instead of wrapping. */
typedef struct pt_carve {
  size_t used;
  int overflow;
} pt_carve;

/* The offset of a piece of count * times + extra elements of `size` bytes. */
size_t pt_carve_take(pt_carve *c, size_t count, size_t times, size_t extra, size_t size);

/* The per-thread pieces of every kernel's pt_fused_terms: the tile's noise, the vjp's float
   partial sums and, per tile, t_m and the rows grad_nu(Z_m), each present only when wanted;
   and the group's sums of the cotangents, t_m and grad_nu that the leave-one-out baseline and
   the paths' baselines use.  The blocks of the cotangent (block_at, blocks + 1 offsets that
   outlive the call's scratch) are one, or a built-in's segments with block_diagonal. */
typedef struct pt_terms_at {
  size_t noise, partial, t, g, g_row, c, c_pair, c_sum, t_sum, g_sum; /* offsets; SIZE_MAX:
                                                                          none */
  size_t blocks;
  const size_t *block_at;
} pt_terms_at;
pt_terms_at pt_fused_take_terms(pt_carve *c, const pt_estimator *e, size_t tile, size_t blocks,
                                const size_t *block_at);

/* The sums of e's wanted derivative terms within `sums`, NULL where not wanted. */
static inline double *pt_fused_sums_at(double *sums, size_t at) {
  return at == SIZE_MAX ? NULL : sums + at;
}

/* What a kernel's pt_fused_terms compute for e: the score function's wanted derivatives; none
   for the pathwise gradient, whose terms the paths form from the samples' results. */
static inline unsigned pt_fused_score_want(const pt_estimator *e) {
  return e->p.pathwise ? 0 : e->want;
}

/* The cotangent's block of a built-in's segment s: its own with block_diagonal, else the one. */
static inline size_t pt_fused_block_of(const pt_estimator *e, size_t s) {
  return e->p.block_diagonal ? s : 0;
}

/* The terms of one group's call of a kernel, on a thread's scratch and sums, with c_base[b]
   subtracted from the cotangent of block b; the group's sums of the terms (pt_terms_at) are
   cleared. */
pt_fused_terms pt_fused_terms_of(const pt_estimator *e, const pt_terms_at *at, char *scratch,
                                 double *sums, const double *c_base);

/* After a group's last tile: the group's sums of the terms into the leave-one-out's cells of
   `sums` (estimate.h), spread over the inputs or outputs of each block with block_diagonal;
   block b's outputs are [out_at[b], out_at[b + 1]) (its inputs, terms->block_at, but for the
   permutation matrix's cells). */
void pt_fused_loo_sums(const pt_estimator *e, const pt_fused_terms *terms, const size_t *out_at,
                       double *sums);

/* The one-hot built-ins' winners (the argmax's and the top-k's paths): segment s of `segments`,
   inputs [offsets[s], offsets[s + 1]), fills the slots [slot_at[s], slot_at[s + 1]) (one for
   the argmax, k[s] for the top-k), sample r's slot j at winner[j * stride + r]; `base` holds
   each slot's unperturbed winner (b's one-hot, the F_X baseline's).  With block_diagonal the
   cotangent's block of segment s is s's own, else the one block of every input. */
typedef struct pt_one_hot {
  size_t segments;
  const size_t *offsets, *slot_at;
  const int32_t *base;
} pt_one_hot;

/* c_base[b] (zeroed by the caller) = b . y_bar over each block, when the vjp's score terms are
   wanted with the F_X baseline. */
void pt_one_hot_c_base(const pt_estimator *e, const pt_one_hot *h, double *c_base);

/* The jvp's and the Jacobian's terms of a tile's samples (the vjp's are the kernel's): each
   winner w of segment s takes, in sample order, y_dot[w] += t of s's block and, in row w of
   the Jacobian, grad_nu over s's block. */
void pt_one_hot_tile(const pt_estimator *e, const pt_one_hot *h, const pt_fused_terms *terms,
                     const int32_t *winner, size_t stride, size_t rows, double *sums);

/* After a group's last tile: the baseline's terms (one-hot on `base`) and the leave-one-out's
   sums. */
void pt_one_hot_group(const pt_estimator *e, const pt_one_hot *h, const pt_fused_terms *terms,
                      double *sums);

/* A path's release: its prep block, from the call's arena. */
void pt_fused_prep_free(pt_estimator *e);

/* The paths, by kernel (fn_fused_argmax.c, fn_fused_rank.c, fn_fused_topk.c) and by whether the
   value is counted. */
extern const pt_path pt_fused_argmax_path, pt_fused_max_path, pt_fused_rank_path,
    pt_fused_sort_path, pt_fused_topk_path;

#endif

/* SPDX-License-Identifier: MIT */
/* The fused paths of perturbed built-ins (estimate.h's pt_path): the noise of each tile of
   samples is generated, used and dropped inside one kernel (src/kernels/fused_*.c.j2), so memory
   is O(n + tile) per thread, never O(M n) (the Jacobian's sums aside: at most
   PT_JACOBIAN_TILE_BYTES a thread, in bands of rows, estimate.c).  Each path (fn_fused_argmax.c,
   fn_fused_topk.c, fn_fused_rank.c) sets its kernel's job up and turns the
   kernel's per-sample results into the terms of estimate.h, within one group of samples; this
   file holds what they share (the one-hot built-ins' terms among them) and chooses the path of
   a function. */
#include "fn/fn_fused.h"

#include <stdint.h>
#include <string.h>

#include "runtime/alloc.h"
#include "fn/fn_builtin.h"

size_t pt_fused_tile_rows(const pt_estimator *e, size_t n) {
  const uint64_t group = e->group < e->p.samples ? e->group : e->p.samples;
  size_t rows = n < PT_FUSED_TILE_FLOATS ? PT_FUSED_TILE_FLOATS / n : 1;
  /* whole antithetic pairs: the group and M are even, so the tile stays within them */
  if (e->p.antithetic) rows = rows < 2 ? 2 : rows & ~(size_t)1;
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

/* a piece of count elements of `size` bytes when `wanted`, else none */
static size_t take_if(pt_carve *c, int wanted, size_t count, size_t times, size_t extra,
                      size_t size) {
  return wanted ? pt_carve_take(c, count, times, extra, size) : SIZE_MAX;
}

pt_terms_at pt_fused_take_terms(pt_carve *c, const pt_estimator *e, size_t tile, size_t blocks,
                                const size_t *block_at) {
  const size_t pad = PT_FUSED_PAD, n = e->f->n_in;
  const unsigned want = pt_fused_score_want(e);
  const int vjp = (want & PT_WANT_VJP) != 0, jvp = (want & PT_WANT_JVP) != 0,
            jac = (want & PT_WANT_JAC) != 0;
  /* the grad_nu sums: the leave-one-out's, and the Jacobian's baseline */
  const int g_sum = jac || e->at_loo_g != SIZE_MAX;
  pt_terms_at at;
  at.noise = pt_carve_take(c, tile, n, pad, sizeof(float));
  at.partial = take_if(c, vjp, n, 1, pad, sizeof(float));
  at.t = take_if(c, jvp, tile, blocks, 0, sizeof(float));
  at.g = take_if(c, jac, tile, n, pad, sizeof(float));
  at.g_row = take_if(c, g_sum && !jac, n, 1, pad, sizeof(float));
  at.c = pt_carve_take(c, blocks, 1, 0, sizeof(double));
  at.c_pair = take_if(c, vjp && pt_estimate_pair_weight(&e->p) != 0.0, blocks, 2, 0,
                      sizeof(double));
  at.c_sum = take_if(c, e->at_loo_c != SIZE_MAX, blocks, 1, 0, sizeof(double));
  at.t_sum = take_if(c, jvp, blocks, 1, 0, sizeof(double));
  at.g_sum = take_if(c, g_sum, n, 1, 0, sizeof(double));
  at.blocks = blocks;
  at.block_at = block_at;
  return at;
}

static void *piece(char *scratch, size_t at) { return at == SIZE_MAX ? NULL : scratch + at; }

pt_fused_terms pt_fused_terms_of(const pt_estimator *e, const pt_terms_at *at, char *scratch,
                                 double *sums, const double *c_base) {
  const size_t n = e->f->n_in;
  const unsigned want = pt_fused_score_want(e);
  const pt_fused_terms terms = {
      .key = e->key, .antithetic = e->p.antithetic, .n = n, .sigma = e->p.sigma,
      .samples = e->p.samples, .blocks = at->blocks, .block_at = at->block_at,
      .y_bar = want & PT_WANT_VJP ? e->y_bar : NULL, .c_base = c_base,
      .pair_weight = pt_estimate_pair_weight(&e->p), .c_pair = piece(scratch, at->c_pair),
      .c_sum = piece(scratch, at->c_sum), .partial = piece(scratch, at->partial),
      .x_bar_sum = pt_fused_sums_at(sums, e->at_x_bar),
      .x_dot = want & PT_WANT_JVP ? e->x_dot : NULL, .t = piece(scratch, at->t),
      .t_sum = piece(scratch, at->t_sum), .g = piece(scratch, at->g),
      .g_sum = piece(scratch, at->g_sum), .g_row = piece(scratch, at->g_row),
      .noise = piece(scratch, at->noise), .c = piece(scratch, at->c)};
  if (terms.c_sum) memset(terms.c_sum, 0, at->blocks * sizeof *terms.c_sum);
  if (terms.t_sum) memset(terms.t_sum, 0, at->blocks * sizeof *terms.t_sum);
  if (terms.g_sum) memset(terms.g_sum, 0, n * sizeof *terms.g_sum);
  return terms;
}

/* cells[0] += the one block's sum, or (spread) cells[i] += the sum of i's block, its range
   [at[b], at[b + 1]) */
static void block_sums_into(size_t blocks, const size_t *at, const double *block_sum,
                            double *cells, int spread) {
  if (!spread) {
    cells[0] += block_sum[0];
    return;
  }
  for (size_t b = 0; b < blocks; b++)
    for (size_t i = at[b]; i < at[b + 1]; i++) cells[i] += block_sum[b];
}

void pt_fused_loo_sums(const pt_estimator *e, const pt_fused_terms *terms, const size_t *out_at,
                       double *sums) {
  const size_t n = terms->n, blocks = terms->blocks, *at = terms->block_at;
  const int spread = e->p.block_diagonal;
  if (e->at_loo_c != SIZE_MAX)
    block_sums_into(blocks, at, terms->c_sum, sums + e->at_loo_c, spread);
  if (e->at_loo_t != SIZE_MAX)
    block_sums_into(blocks, out_at, terms->t_sum, sums + e->at_loo_t, spread);
  if (e->at_loo_g == SIZE_MAX) return;
  double *g = sums + e->at_loo_g;
  if (spread && (e->want & PT_WANT_JAC)) { /* every row of a block's outputs in the band, over
                                              the block's columns */
    for (size_t b = 0; b < blocks; b++)
      for (size_t j = out_at[b]; j < out_at[b + 1]; j++) {
        double *row = pt_jac_row(e, sums, e->at_loo_g, j);
        if (row)
          for (size_t i = at[b]; i < at[b + 1]; i++) row[i] += terms->g_sum[i];
      }
  } else {
    for (size_t i = 0; i < n; i++) g[i] += terms->g_sum[i];
  }
}

void pt_one_hot_c_base(const pt_estimator *e, const pt_one_hot *h, double *c_base) {
  if (!(pt_fused_score_want(e) & PT_WANT_VJP) || e->p.baseline != PT_BASELINE_F_X) return;
  for (size_t s = 0; s < h->segments; s++)
    for (size_t j = h->slot_at[s]; j < h->slot_at[s + 1]; j++)
      c_base[pt_fused_block_of(e, s)] += e->y_bar[h->base[j]];
}

void pt_one_hot_tile(const pt_estimator *e, const pt_one_hot *h, const pt_fused_terms *terms,
                     const int32_t *winner, size_t stride, size_t rows, double *sums) {
  const size_t n = e->f->n_in, blocks = terms->blocks, *o = h->offsets, *slot_at = h->slot_at;
  const int bd = e->p.block_diagonal;
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  if (y_dot)
    for (size_t r = 0; r < rows; r++)
      for (size_t s = 0; s < h->segments; s++)
        for (size_t j = slot_at[s]; j < slot_at[s + 1]; j++)
          y_dot[winner[j * stride + r]] += terms->t[r * blocks + pt_fused_block_of(e, s)];
  if (e->at_jac != SIZE_MAX)
    for (size_t r = 0; r < rows; r++) {
      const float *gr = terms->g + r * n;
      for (size_t s = 0; s < h->segments; s++) {
        const size_t i0 = bd ? o[s] : 0, i1 = bd ? o[s + 1] : n;
        for (size_t j = slot_at[s]; j < slot_at[s + 1]; j++) {
          double *row = pt_jac_row(e, sums, e->at_jac, (size_t)winner[j * stride + r]);
          if (row)
            for (size_t i = i0; i < i1; i++) row[i] += gr[i];
        }
      }
    }
}

void pt_one_hot_group(const pt_estimator *e, const pt_one_hot *h, const pt_fused_terms *terms,
                      double *sums) {
  const size_t n = e->f->n_in, *o = h->offsets;
  const int bd = e->p.block_diagonal;
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  if (e->p.baseline == PT_BASELINE_F_X)
    for (size_t s = 0; s < h->segments; s++)
      for (size_t j = h->slot_at[s]; j < h->slot_at[s + 1]; j++) {
        if (y_dot) y_dot[h->base[j]] -= terms->t_sum[pt_fused_block_of(e, s)];
        double *row = e->at_jac == SIZE_MAX ? NULL : pt_jac_row(e, sums, e->at_jac, h->base[j]);
        if (row) {
          const size_t i0 = bd ? o[s] : 0, i1 = bd ? o[s + 1] : n;
          for (size_t i = i0; i < i1; i++) row[i] -= terms->g_sum[i];
        }
      }
  pt_fused_loo_sums(e, terms, terms->block_at, sums); /* a one-hot's outputs are its inputs */
}

void pt_fused_prep_free(pt_estimator *e) {
  pt_arena_free(e->arena, e->prep);
  e->prep = NULL;
}

const pt_path *pt_fused_path(const pt_fn *f, const pt_perturbation *p, unsigned want) {
  /* the kernels form additive keys x + sigma Z; multiplicative noise runs on the generic path */
  if ((want & PT_WANT_HESS) || p->multiplicative) return NULL;
  switch (pt_fn_builtin(f).kind) {
    case PT_BUILTIN_ARGMAX: return &pt_fused_argmax_path;
    case PT_BUILTIN_TOP_K: return &pt_fused_topk_path;
    case PT_BUILTIN_RANKING: case PT_BUILTIN_PERMUTATION: return &pt_fused_rank_path;
    /* their score function runs on the generic path, its value too, so that a value and its
       derivative come from the same samples' results */
    case PT_BUILTIN_MAX: return p->pathwise ? &pt_fused_max_path : NULL;
    case PT_BUILTIN_SORT: return p->pathwise ? &pt_fused_sort_path : NULL;
    default: return NULL;
  }
}

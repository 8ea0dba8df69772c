/* SPDX-License-Identifier: MIT */
/* The fused path of a perturbed top-k one-hot and its segments (src/kernels/fused_topk.c.j2),
   within one group of samples, by the score function, with Y_m one-hot on the k[s] winners of
   each segment s and b on the unperturbed ones (F_X; zero for the others, the leave-one-out's
   sums beside: estimate.h):
     value     the samples that took input i, counted exactly: the entries of a segment's
               estimate sum to exactly k[s]
     vjp       sum_m c_m grad_nu(Z_m),  c_m = (Y_m - b) . y_bar  (in the kernel)
     jvp       sum_m (Y_m - b) t_m,     t_m = grad_nu(Z_m) . x_dot
     jacobian  sum_m (Y_m - b) grad_nu(Z_m)^T
   all in double in sample order, as the argmax's (fn_fused_argmax.c, whose one-hot terms
   these are with k winners a segment: fn_fused.h's pt_one_hot).  With block_diagonal each
   segment keeps its own cotangent, dot and Jacobian columns; the entries between segments are
   never touched, and those within one are the full estimate's, bit for bit. */
#include <stdint.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn_builtin.h"
#include "fn/fn_fused.h"
#include "fn/fn_fused_bounds.h"
#include "dispatch/dispatch_table.h"
#include "kernels/sort.h"

typedef struct topk_prep {
  void (*kernel)(const pt_fused_topk_job *, uint64_t, size_t);
  pt_row_thresholds rows; /* the kernel's ISA's */
  size_t tile;
  pt_one_hot hot;   /* segments, their slots and the unperturbed winners */
  double *c_base;   /* per block: b . y_bar over it */
  float *a, *margin; /* Gumbel: the bounds' coefficients and margins (fn_fused_bounds.h), or NULL */
  size_t whole[2];  /* the one block of every input, {0, n} */
  pt_terms_at at;   /* and, in a thread's scratch: */
  size_t at_winner, at_count, at_keys, at_bound, at_survivor, at_survivor_at, at_rank, at_work;
} topk_prep;

static pt_status topk_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  const pt_builtin b = pt_fn_builtin(e->f);
  const size_t segments = b.count, *offsets = b.offsets, n = offsets[segments];
  const size_t tile = pt_fused_tile_rows(e, n);
  const size_t blocks = e->p.block_diagonal ? segments : 1;
  size_t slots = 0;
  for (size_t s = 0; s < segments; s++) slots += b.k[s]; /* at most n */

  /* the prep block: the struct, the slots, the unperturbed winners and ranks, c_base */
  pt_carve c = {sizeof(topk_prep), 0};
  const size_t at_slot = pt_carve_take(&c, segments, 1, 1, sizeof(size_t));
  const size_t at_base = pt_carve_take(&c, slots, 1, 0, sizeof(int32_t));
  const size_t at_rank = pt_carve_take(&c, n, 1, 0, sizeof(int32_t));
  const size_t at_work = pt_carve_take(&c, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  const size_t at_c_base = pt_carve_take(&c, blocks, 1, 0, sizeof(double));
  const int gumbel = e->p.noise == PT_NOISE_GUMBEL;
  const size_t at_top = pt_carve_take(&c, gumbel ? segments : 0, 1, 0, sizeof(int32_t));
  const size_t at_a = pt_carve_take(&c, gumbel ? n : 0, 1, 0, sizeof(float));
  const size_t at_tmp = pt_carve_take(&c, gumbel ? n : 0, 1, 0, sizeof(float));
  const size_t at_margin = pt_carve_take(&c, gumbel ? segments : 0, 1, 0, sizeof(float));
  if (c.overflow) return pt_fail(PT_EOVERFLOW, "the fused path's coefficients are too large");
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return pt_fail(PT_ENOMEM, "no memory for the fused path's coefficients");
  topk_prep *pr = (topk_prep *)block;
  pr->kernel = e->p.noise == PT_NOISE_GUMBEL ? k->fused_topk_gumbel : k->fused_topk_normal;
  pr->rows = k->rows;
  pr->tile = tile;
  size_t *slot_at = (size_t *)(block + at_slot);
  int32_t *base = (int32_t *)(block + at_base), *rank = (int32_t *)(block + at_rank);
  pr->c_base = (double *)(block + at_c_base);
  pr->whole[1] = n;
  e->prep = pr;

  /* the unperturbed winners: the last k of each segment's stable order, as the built-in's */
  for (size_t s = 0; s < segments; s++) {
    const size_t o = offsets[s], z = offsets[s + 1] - o;
    slot_at[s + 1] = slot_at[s] + b.k[s];
    k->rank_rows(e->x + o, 1, z, z, rank, z, (int64_t *)(block + at_work), &k->rows);
    size_t j = slot_at[s];
    for (size_t i = 0; i < z; i++)
      if ((size_t)rank[i] >= z - b.k[s]) base[j++] = (int32_t)(o + i);
  }
  pr->hot = (pt_one_hot){segments, offsets, slot_at, base};
  pt_one_hot_c_base(e, &pr->hot, pr->c_base);
  if (gumbel) { /* the bounds of the keys without their logarithms */
    int32_t *top = (int32_t *)(block + at_top);
    pr->a = (float *)(block + at_a);
    pr->margin = (float *)(block + at_margin);
    for (size_t s = 0; s < segments; s++) {
      const size_t o = offsets[s], z = offsets[s + 1] - o;
      k->argmax_rows(e->x + o, 1, z, z, &top[s], &k->rows);
      top[s] += (int32_t)o;
      pr->margin[s] = pt_fused_topk_margin(e->x + o, z, e->p.sigma);
    }
    pt_fused_gumbel_coefficients(k, e->x, segments, offsets, top, e->p.sigma,
                                 (float *)(block + at_tmp), pr->a);
  }

  /* one thread's scratch: the kernel's terms, the winners, a group's counts when they are not
     the value, and one sample's selection buffers */
  pt_carve s = {0, 0};
  pr->at = pt_fused_take_terms(&s, e, tile, blocks, blocks > 1 ? offsets : pr->whole);
  pr->at_winner = pt_carve_take(&s, slots, tile, 0, sizeof(int32_t));
  pr->at_count = pt_carve_take(&s, e->counts ? 0 : n, 1, 0, sizeof(uint64_t));
  pr->at_keys = pt_carve_take(&s, n, 1, PT_FUSED_PAD, sizeof(float));
  pr->at_bound = pt_carve_take(&s, n, 1, PT_FUSED_PAD, sizeof(float));
  pr->at_survivor = pt_carve_take(&s, n, 1, 1, sizeof(float));
  pr->at_survivor_at = pt_carve_take(&s, n, 1, 1, sizeof(int32_t));
  pr->at_rank = pt_carve_take(&s, n, 1, 0, sizeof(int32_t));
  pr->at_work = pt_carve_take(&s, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  if (s.overflow) {
    pt_fused_prep_free(e);
    return pt_fail(PT_EOVERFLOW, "a thread's scratch of the fused path is too large");
  }
  e->scratch_bytes = s.used;
  e->thread_safe = 1;
  e->work = (double)n * 2.0; /* at most two logarithms an input, the selection beside */
  return PT_OK;
}

static pt_status topk_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                          double *sums, uint64_t *counts) {
  const topk_prep *pr = e->prep;
  const size_t n = e->f->n_in;
  char *sc = scratch;
  /* counts of the value go on; any other counts are this group's */
  uint64_t *count = counts ? counts : (uint64_t *)(sc + pr->at_count);
  if (!counts) memset(count, 0, n * sizeof *count);
  const pt_fused_topk_job job = {
      .terms = pt_fused_terms_of(e, &pr->at, sc, sums, pr->c_base),
      .segments = pr->hot.segments, .offsets = pr->hot.offsets, .slot_at = pr->hot.slot_at,
      .x = e->x, .a = pr->a, .margin = pr->margin, .stride = pr->tile, .winner = (int32_t *)(sc + pr->at_winner), .count = count,
      .keys = (float *)(sc + pr->at_keys), .bound = (float *)(sc + pr->at_bound),
      .survivor = (float *)(sc + pr->at_survivor),
      .survivor_at = (int32_t *)(sc + pr->at_survivor_at), .rank = (int32_t *)(sc + pr->at_rank),
      .work = (int64_t *)(sc + pr->at_work), .rows = pr->rows,
  };
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    pt_one_hot_tile(e, &pr->hot, &job.terms, job.winner, job.stride, rows, sums);
  }
  pt_one_hot_group(e, &pr->hot, &job.terms, sums);
  return PT_OK;
}

const pt_path pt_fused_topk_path = {1, topk_prepare, topk_run, pt_fused_prep_free, NULL, NULL,
                                    NULL};

/* SPDX-License-Identifier: MIT */
/* The fused paths of the functions of the ranks (src/kernels/fused_rank.c.j2), within one group
   of samples, with rank_m the ranks of the perturbed keys x + sigma Z_m within each segment (the
   ranking's cotangent, t_m and Jacobian rows per segment with block_diagonal) and b those of x (F_X;
   zero for the other baselines, the leave-one-out's sums beside: estimate.h):
     ranking, score function: Y_m = rank_m; the rank sums counted exactly, and per sample the
        jvp's (Y_m - b) t_m and the Jacobian's (Y_m - b) grad_nu(Z_m)^T in double in sample order
        (the vjp's terms in the kernel);
     permutation matrix, score function: Y_m[cell(s, p, i)] = [rank_mi == p] for input i of
        segment s (fn_builtin.h's pt_permutation_cell; with block_diagonal segment s's block
        is its inputs and its cells); its ones counted exactly, and the same jvp and Jacobian
        terms, each of a sample's cells taking one of +-t_m (+-grad_nu over the block's
        columns) where Y_m and b differ;
     sort, pathwise: y_(o+p) the key of rank p in the segment from input o, so J = the
        permutation matrix of each segment; per sample in double in sample order, with
        q_i = o + rank_i, value[q_i] += key_i, x_bar_i += y_bar[q_i], y_dot[q_i] += x_dot_i and
        the Jacobian's cell (q_i, i) += 1 (E[P] from exact counts). */
#include <stdint.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn_builtin.h"
#include "fn/fn_fused.h"
#include "dispatch/dispatch_table.h"
#include "kernels/sort.h"

typedef struct rank_prep rank_prep;

/* The terms of the tile's sample r besides the kernel's, for one kind of function. */
typedef void (*sample_fn)(const pt_estimator *e, const rank_prep *pr, const pt_fused_rank_job *job,
                          size_t r, double *sums, uint64_t *counts);

struct rank_prep {
  void (*kernel)(const pt_fused_rank_job *, uint64_t, size_t);
  pt_row_thresholds rows; /* the kernel's ISA's */
  sample_fn sample;
  const size_t *cells; /* the permutation matrix's blocks of cells (the function's); else NULL */
  size_t tile;
  size_t segments;       /* the built-in's */
  const size_t *offsets; /* segments + 1 */
  int32_t *base;  /* n: the unperturbed ranks, b */
  size_t blocks;   /* of the cotangent: the segments with block_diagonal, else one */
  const size_t *block_at; /* blocks + 1: the offsets, or whole */
  const size_t *out_at;   /* blocks + 1: the blocks' outputs (the permutation matrix's cells,
                             or block_at) */
  size_t whole_out[2];    /* the one block's outputs, {0, n_out} */
  double *c_base;  /* blocks: b . y_bar over each */
  size_t whole[2]; /* the cotangent's one block, {0, n} */
  int baseline;    /* b is f(x), else 0 */
  pt_terms_at at;  /* and, in a thread's scratch: */
  size_t at_work, at_rank, at_keys;
};

/* Y_m = rank_m: rank sums, and the jvp's (Y_m - b) t_m and the Jacobian's (Y_m - b) grad_nu^T,
   both over the block of the output (block_diagonal: its segment's t and columns). */
static void ranking_sample(const pt_estimator *e, const rank_prep *pr, const pt_fused_rank_job *job,
                           size_t r, double *sums, uint64_t *counts) {
  const size_t n = e->f->n_in, blocks = pr->blocks, *at = pr->block_at;
  const int32_t *yr = job->rank + r * n;
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  const double baseline = pr->baseline ? 1.0 : 0.0;
  if (counts)
    for (size_t i = 0; i < n; i++) counts[i] += (uint64_t)yr[i];
  const float *gr = e->at_jac == SIZE_MAX ? NULL : job->terms.g + r * n;
  for (size_t b = 0; b < blocks; b++) {
    if (y_dot)
      for (size_t i = at[b]; i < at[b + 1]; i++)
        y_dot[i] += ((double)yr[i] - baseline * (double)pr->base[i]) * job->terms.t[r * blocks + b];
    for (size_t j = at[b]; gr && j < at[b + 1]; j++) {
      double *row = pt_jac_row(e, sums, e->at_jac, j); /* the rows of the band */
      const double d = (double)yr[j] - baseline * (double)pr->base[j];
      if (row && d != 0.0)
        for (size_t i = at[b]; i < at[b + 1]; i++) row[i] += d * gr[i];
    }
  }
}

/* Y_m the permutation matrix: its ones counted, and where Y_m and b differ, +-t_m into the jvp's
   cells and +-grad_nu(Z_m) into the Jacobian's rows (a cell (p, i) is Y_m's and b's at once only
   when rank_mi = b_i = p, and then takes nothing). */
static void permutation_sample(const pt_estimator *e, const rank_prep *pr,
                               const pt_fused_rank_job *job, size_t r, double *sums,
                               uint64_t *counts) {
  const size_t n = e->f->n_in, *o = pr->offsets, blocks = pr->blocks;
  const int32_t *yr = job->rank + r * n;
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  const int jac = e->at_jac != SIZE_MAX;
  for (size_t s = 0; s < pr->segments; s++) {
    const size_t b = pt_fused_block_of(e, s), k0 = pr->block_at[b], k1 = pr->block_at[b + 1];
    const float t = y_dot ? job->terms.t[r * blocks + b] : 0.0f;
    const float *g = jac ? job->terms.g + r * n : NULL;
    for (size_t i = o[s]; i < o[s + 1]; i++) {
      const size_t won = pt_permutation_cell(o, pr->cells, s, yr[i], i);
      if (counts) counts[won]++;
      if (!y_dot && !jac) continue;
      const size_t lost = pt_permutation_cell(o, pr->cells, s, pr->base[i], i);
      const int moved = pr->baseline && won != lost;
      /* the Jacobian's rows won and lost, when in the band */
      double *won_row = jac ? pt_jac_row(e, sums, e->at_jac, won) : NULL;
      double *lost_row = jac ? pt_jac_row(e, sums, e->at_jac, lost) : NULL;
      if (!pr->baseline || moved) {
        if (y_dot) y_dot[won] += t;
        if (won_row)
          for (size_t k = k0; k < k1; k++) won_row[k] += g[k];
      }
      if (moved) {
        if (y_dot) y_dot[lost] -= t;
        if (lost_row)
          for (size_t k = k0; k < k1; k++) lost_row[k] -= g[k];
      }
    }
  }
}

/* The sort, pathwise: its value and f's own derivatives at the sample, the permutation. */
static void sort_sample(const pt_estimator *e, const rank_prep *pr, const pt_fused_rank_job *job,
                        size_t r, double *sums, uint64_t *counts) {
  (void)counts; /* the sort's value is a sum of floats, in cells */
  const size_t n = e->f->n_in;
  const int32_t *yr = job->rank + r * n;
  const float *keys = job->keys + r * n;
  double *value = pt_fused_sums_at(sums, e->at_value);
  double *x_bar = pt_fused_sums_at(sums, e->at_x_bar);
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  for (size_t s = 0; s < pr->segments; s++) {
    const size_t o = pr->offsets[s], end = pr->offsets[s + 1];
    if (value)
      for (size_t i = o; i < end; i++) value[o + (size_t)yr[i]] += keys[i];
    if (x_bar)
      for (size_t i = o; i < end; i++) x_bar[i] += e->y_bar[o + (size_t)yr[i]];
    if (y_dot)
      for (size_t i = o; i < end; i++) y_dot[o + (size_t)yr[i]] += e->x_dot[i];
    if (e->at_jac != SIZE_MAX)
      for (size_t i = o; i < end; i++) {
        double *row = pt_jac_row(e, sums, e->at_jac, o + (size_t)yr[i]);
        if (row) row[i] += 1.0;
      }
  }
}

static pt_status rank_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  const pt_builtin b = pt_fn_builtin(e->f);
  const pt_builtin_kind kind = b.kind;
  const size_t n = e->f->n_in, tile = pt_fused_tile_rows(e, n);
  const size_t blocks = e->p.block_diagonal ? b.count : 1;
  pt_carve c = {sizeof(rank_prep), 0};
  const size_t at_base = pt_carve_take(&c, n, 1, 0, sizeof(int32_t));
  const size_t at_c_base = pt_carve_take(&c, blocks, 1, 0, sizeof(double));
  const size_t at_work = pt_carve_take(&c, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  if (c.overflow) return pt_fail(PT_EOVERFLOW, "the fused path's coefficients are too large");
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return pt_fail(PT_ENOMEM, "no memory for the fused path's coefficients");
  rank_prep *pr = (rank_prep *)block;
  pr->kernel = e->p.noise == PT_NOISE_GUMBEL ? k->fused_rank_gumbel : k->fused_rank_normal;
  pr->sample = kind == PT_BUILTIN_SORT ? sort_sample
               : kind == PT_BUILTIN_PERMUTATION ? permutation_sample : ranking_sample;
  pr->cells = b.cells;
  pr->rows = k->rows;
  pr->tile = tile;
  pr->base = (int32_t *)(block + at_base);
  pr->segments = b.count;
  pr->offsets = b.offsets; /* the function's, which outlives the call */
  pr->whole[1] = n;
  pr->whole_out[1] = e->f->n_out;
  pr->blocks = blocks;
  pr->block_at = blocks > 1 ? b.offsets : pr->whole;
  pr->out_at = blocks == 1 ? pr->whole_out : b.cells ? b.cells : b.offsets;
  pr->c_base = (double *)(block + at_c_base);
  e->prep = pr;
  for (size_t s = 0; s < b.count; s++) {
    const size_t o = b.offsets[s];
    k->rank_rows(e->x + o, 1, b.offsets[s + 1] - o, n, pr->base + o, n,
                 (int64_t *)(block + at_work), &k->rows);
  }
  pr->baseline = e->p.baseline == PT_BASELINE_F_X;
  const int c_base = (pt_fused_score_want(e) & PT_WANT_VJP) && pr->baseline;
  for (size_t s = 0; c_base && b.cells && s < b.count; s++)
    for (size_t i = b.offsets[s]; i < b.offsets[s + 1]; i++)
      pr->c_base[pt_fused_block_of(e, s)] +=
          e->y_bar[pt_permutation_cell(b.offsets, b.cells, s, pr->base[i], i)];
  for (size_t bl = 0; c_base && !b.cells && bl < blocks; bl++)
    for (size_t i = pr->block_at[bl]; i < pr->block_at[bl + 1]; i++)
      pr->c_base[bl] += (double)pr->base[i] * e->y_bar[i];

  pt_carve s = {0, 0};
  pr->at = pt_fused_take_terms(&s, e, tile, blocks, pr->block_at);
  pr->at_work = pt_carve_take(&s, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  pr->at_rank = pt_carve_take(&s, tile, n, 0, sizeof(int32_t));
  pr->at_keys = pt_carve_take(&s, tile, n, PT_FUSED_PAD, sizeof(float));
  if (s.overflow) {
    pt_fused_prep_free(e);
    return pt_fail(PT_EOVERFLOW, "a thread's scratch of the fused path is too large");
  }
  e->scratch_bytes = s.used;
  e->thread_safe = 1;
  e->work = (double)n * 8.0; /* a sort costs several operations per element */
  return PT_OK;
}

static pt_status rank_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                          double *sums, uint64_t *counts) {
  const rank_prep *pr = e->prep;
  char *sc = scratch;
  const pt_fused_rank_job job = {
      .terms = pt_fused_terms_of(e, &pr->at, sc, sums, pr->c_base),
      .segments = pr->segments, .offsets = pr->offsets, .x = e->x,
      .keys = (float *)(sc + pr->at_keys), .work = (int64_t *)(sc + pr->at_work),
      .rows = pr->rows, .rank = (int32_t *)(sc + pr->at_rank),
      .cells = pr->cells,
  };
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    for (size_t r = 0; r < rows; r++) pr->sample(e, pr, &job, r, sums, counts);
  }
  pt_fused_loo_sums(e, &job.terms, pr->out_at, sums);
  return PT_OK;
}

const pt_path pt_fused_rank_path = {1, rank_prepare, rank_run, pt_fused_prep_free, NULL, NULL, NULL};
/* the sort's value is a sum of floats, in cells */
const pt_path pt_fused_sort_path = {0, rank_prepare, rank_run, pt_fused_prep_free, NULL, NULL,
                                    NULL};

/* SPDX-License-Identifier: MIT */
/* The fused paths of a perturbed argmax one-hot and of a perturbed max, each with its segments
   (src/kernels/fused_argmax.c.j2), within one group of samples.  The argmax one-hot, by the
   score function:
     value     the samples whose segment argmax is i, counted exactly
     vjp       sum_m c_m grad_nu(Z_m),  c_m = (Y_m - b) . y_bar  (in the kernel)
     jvp       sum_m (Y_m - b) t_m,     t_m = grad_nu(Z_m) . x_dot
     jacobian  sum_m (Y_m - b) grad_nu(Z_m)^T
   where Y_m is one-hot on each segment's winner and b on the unperturbed argmax (F_X; zero for
   the others, the leave-one-out's sums beside: estimate.h), all in double in sample order.
   With block_diagonal each segment s keeps its own terms: the vjp's c_{m,s} = (Y_m - b) . y_bar
   over s multiplies grad_nu over s only, the jvp's t_{m,s} is the dot over s, and the
   Jacobian's row of a winner of s takes grad_nu over s only; the entries between segments are
   never touched, and those within one are those of the full estimate, bit for bit.
   The max y_s = max_{i in s} x_i, pathwise (its Jacobian is the argmax one-hot, Danskin's
   theorem), with w_ms the winner of segment s in sample m and count_i the samples that input i
   won:
     value     sum_m x_w + sigma Z_w for w = w_ms,  in double in sample order
     vjp       y_bar[s] count_i for i in segment s
     jvp       sum_{i in s} count_i x_dot_i,        in double in index order
     jacobian  count_i in row s, column i
   the derivatives once per group from the group's counts (integers times a float: exact). */
#include <stdint.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn_builtin.h"
#include "fn/fn_fused.h"
#include "fn/fn_fused_bounds.h"
#include "dispatch/dispatch_table.h"

typedef struct argmax_prep {
  int max;         /* the built-in is the max (pathwise), not the argmax one-hot */
  size_t segments;
  const size_t *offsets;
  void (*kernel)(const pt_fused_argmax_job *, uint64_t, size_t);
  pt_fused_thresholds thresholds; /* the kernel's ISA's */
  size_t tile, stride;
  int32_t *base;   /* segments: the unperturbed winners, b's one-hot */
  size_t *slot_at; /* segments + 1: slot s is segment s's winner */
  pt_one_hot hot;  /* the winners as the one-hot terms (fn_fused.h) see them */
  float *a;        /* n: each input's key coefficient */
  double *c_base;  /* per block: b . y_bar over it */
  size_t whole[2]; /* the one block of every input, {0, n} */
  pt_terms_at at;  /* and, in a thread's scratch: */
  size_t at_winner, at_count, at_noise;
} argmax_prep;

static pt_status argmax_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  const pt_builtin b = pt_fn_builtin(e->f);
  const size_t segments = b.count, *offsets = b.offsets;
  const size_t n = offsets[segments], tile = pt_fused_tile_rows(e, n);
  const size_t blocks = e->p.block_diagonal ? segments : 1;
  /* whole vectors of winners, PT_LANES of them at a time on every ISA */
  const size_t stride = (tile + PT_MAX_LANES - 1) / PT_MAX_LANES * PT_MAX_LANES;
  const int gumbel = e->p.noise == PT_NOISE_GUMBEL, max = b.kind == PT_BUILTIN_MAX;

  /* the prep block: the struct, the baseline winners and the coefficients */
  pt_carve c = {sizeof(argmax_prep), 0};
  const size_t at_base = pt_carve_take(&c, segments, 1, 0, sizeof(int32_t));
  const size_t at_slot = pt_carve_take(&c, segments, 1, 1, sizeof(size_t));
  const size_t at_a = pt_carve_take(&c, n, 1, 0, sizeof(float));
  const size_t at_tmp = pt_carve_take(&c, n, 1, 0, sizeof(float));
  const size_t at_c_base = pt_carve_take(&c, blocks, 1, 0, sizeof(double));
  if (c.overflow) return pt_fail(PT_EOVERFLOW, "the fused path's coefficients are too large");
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return pt_fail(PT_ENOMEM, "no memory for the fused path's coefficients");
  argmax_prep *pr = (argmax_prep *)block;
  pr->max = max;
  pr->segments = segments;
  pr->offsets = offsets;
  pr->kernel = gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal;
  pr->thresholds = k->fused;
  pr->tile = tile;
  pr->stride = stride;
  pr->base = (int32_t *)(block + at_base);
  pr->slot_at = (size_t *)(block + at_slot);
  for (size_t seg = 0; seg <= segments; seg++) pr->slot_at[seg] = seg;
  pr->hot = (pt_one_hot){segments, offsets, pr->slot_at, pr->base};
  pr->a = (float *)(block + at_a);
  pr->c_base = (double *)(block + at_c_base);
  pr->whole[1] = n;
  e->prep = pr;

  /* the unperturbed winners (the baseline), and each input's key coefficient */
  const float *x = e->x;
  for (size_t seg = 0; seg < segments; seg++) {
    const size_t o = offsets[seg], z = offsets[seg + 1] - o;
    k->argmax_rows(x + o, 1, z, z, &pr->base[seg], &k->rows);
    pr->base[seg] += (int32_t)o;
  }
  if (gumbel) { /* a_i = exp((max x - x_i) / sigma) */
    pt_fused_gumbel_coefficients(k, x, segments, offsets, pr->base, e->p.sigma,
                                 (float *)(block + at_tmp), pr->a);
  } else {
    memcpy(pr->a, x, n * sizeof *pr->a);
  }
  if (!max) pt_one_hot_c_base(e, &pr->hot, pr->c_base);

  /* one thread's scratch: the kernel's score-function terms (none for the max), the winners,
     a group's counts when they are not the value, and the winners' noise for the max's */
  pt_carve s = {0, 0};
  pr->at = pt_fused_take_terms(&s, e, tile, blocks, blocks > 1 ? offsets : pr->whole);
  pr->at_winner = pt_carve_take(&s, segments, stride, 0, sizeof(int32_t));
  pr->at_count = pt_carve_take(&s, e->counts ? 0 : n, 1, 0, sizeof(uint64_t));
  const int values = max && (e->want & PT_WANT_VALUE);
  pr->at_noise = pt_carve_take(&s, values ? segments : 0, stride, 0, sizeof(float));
  if (s.overflow) {
    pt_fused_prep_free(e);
    return pt_fail(PT_EOVERFLOW, "a thread's scratch of the fused path is too large");
  }
  e->scratch_bytes = s.used;
  e->thread_safe = 1;
  e->work = (double)n;
  return PT_OK;
}

/* The max's values of a tile, x_w + sigma Z_w (a product then a sum, as the generic path forms
   the perturbed inputs), into each segment's cell in sample order. */
static void max_values(const pt_estimator *e, const pt_fused_argmax_job *job, size_t rows,
                       double *sums) {
  const float sigma = e->p.sigma;
  double *value = sums + e->at_value;
  for (size_t seg = 0; seg < job->segments; seg++) {
    const int32_t *won = job->winner + seg * job->stride;
    const float *z = job->winner_noise + seg * job->stride;
    for (size_t r = 0; r < rows; r++) {
      const float step = sigma * z[r];
      value[seg] += (double)(e->x[won[r]] + step);
    }
  }
}

/* The max's pathwise derivatives from the group's counts. */
static void max_derivatives(const pt_estimator *e, const argmax_prep *pr, const uint64_t *count,
                            double *sums) {
  double *x_bar = pt_fused_sums_at(sums, e->at_x_bar);
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot);
  for (size_t seg = 0; seg < pr->segments; seg++) {
    double *row = e->at_jac == SIZE_MAX ? NULL : pt_jac_row(e, sums, e->at_jac, seg);
    for (size_t i = pr->offsets[seg]; i < pr->offsets[seg + 1]; i++) {
      const double won = (double)count[i];
      if (x_bar) x_bar[i] += won * (double)e->y_bar[seg];
      if (y_dot) y_dot[seg] += won * (double)e->x_dot[i];
      if (row) row[i] += won;
    }
  }
}

static pt_status argmax_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                            double *sums, uint64_t *counts) {
  const argmax_prep *pr = e->prep;
  const size_t n = e->f->n_in;
  char *sc = scratch;
  /* counts of the value go on; any other counts are this group's */
  uint64_t *count = counts ? counts : (uint64_t *)(sc + pr->at_count);
  if (!counts) memset(count, 0, n * sizeof *count);
  const int values = pr->max && e->at_value != SIZE_MAX;
  const pt_fused_argmax_job job = {
      .terms = pt_fused_terms_of(e, &pr->at, sc, sums, pr->c_base), .segments = pr->segments,
      .offsets = pr->offsets, .a = pr->a, .stride = pr->stride,
      .winner = (int32_t *)(sc + pr->at_winner), .count = count,
      .winner_noise = values ? (float *)(sc + pr->at_noise) : NULL, .thresholds = pr->thresholds,
  };
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    if (values) max_values(e, &job, rows, sums);
    if (!pr->max) pt_one_hot_tile(e, &pr->hot, &job.terms, job.winner, job.stride, rows, sums);
  }
  if (pr->max) max_derivatives(e, pr, count, sums);
  else pt_one_hot_group(e, &pr->hot, &job.terms, sums);
  return PT_OK;
}

const pt_path pt_fused_argmax_path = {1, argmax_prepare, argmax_run, pt_fused_prep_free, NULL, NULL, NULL};
/* the max's value is a sum of floats, in cells */
const pt_path pt_fused_max_path = {0, argmax_prepare, argmax_run, pt_fused_prep_free, NULL, NULL,
                                   NULL};

/* SPDX-License-Identifier: MIT */
/* The fused path of a perturbed ranking (src/kernels/fused_rank.c.j2), within one group of
   samples: the rank sums counted exactly, and per sample the jvp's (Y_m - b) t_m and the
   Jacobian's (Y_m - b) grad_nu(Z_m)^T in double in sample order (the vjp's terms in the kernel),
   Y_m the ranks of the perturbed x and b those of x (F_X; zero for the others, the
   leave-one-out's sums beside: estimate.h). */
#include <stdint.h>
#include <string.h>

#include "runtime/alloc.h"
#include "fn/fn_fused.h"
#include "dispatch/dispatch_table.h"
#include "kernels/sort.h"

typedef struct rank_prep {
  void (*kernel)(const pt_fused_rank_job *, uint64_t, size_t);
  size_t tile;
  int32_t *base;  /* n: the unperturbed ranks, b */
  double c_base;  /* b . y_bar */
  size_t whole[2]; /* the cotangent's one block, {0, n} */
  int baseline;    /* b is f(x), else 0 */
  pt_terms_at at;  /* and, in a thread's scratch: */
  size_t at_work, at_rank, at_keys;
} rank_prep;

static pt_status rank_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  const size_t n = e->f->n_in, tile = pt_fused_tile_rows(n, e->group < e->p.samples ? e->group : e->p.samples);
  pt_carve c = {sizeof(rank_prep), 0};
  const size_t at_base = pt_carve_take(&c, n, 1, 0, sizeof(int32_t));
  const size_t at_work = pt_carve_take(&c, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  if (c.overflow) return PT_EOVERFLOW;
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return PT_ENOMEM;
  rank_prep *pr = (rank_prep *)block;
  pr->kernel = e->p.noise == PT_NOISE_GUMBEL ? k->fused_rank_gumbel : k->fused_rank_normal;
  pr->tile = tile;
  pr->base = (int32_t *)(block + at_base);
  e->prep = pr;
  k->rank_rows(e->x, 1, n, n, pr->base, n, (int64_t *)(block + at_work));
  pr->baseline = e->p.baseline == PT_BASELINE_F_X;
  pr->whole[1] = n;
  if ((e->want & PT_WANT_VJP) && pr->baseline)
    for (size_t i = 0; i < n; i++) pr->c_base += (double)pr->base[i] * e->y_bar[i];

  pt_carve s = {0, 0};
  pr->at = pt_fused_take_terms(&s, e, tile, 1, pr->whole);
  pr->at_work = pt_carve_take(&s, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  pr->at_rank = pt_carve_take(&s, tile, n, 0, sizeof(int32_t));
  pr->at_keys = pt_carve_take(&s, tile, n, PT_FUSED_PAD, sizeof(float));
  if (s.overflow) {
    pt_fused_prep_free(e);
    return PT_EOVERFLOW;
  }
  e->scratch_bytes = s.used;
  e->thread_safe = 1;
  e->work = (double)n * 8.0; /* a sort costs several operations per element */
  return PT_OK;
}

/* Y_m = rank(x + sigma Z_m), b = rank(x): rank sums (exact integers), and per sample the jvp's
   (Y_m - b) t_m and the Jacobian's (Y_m - b) grad_nu^T. */
static pt_status rank_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                          double *sums, uint64_t *counts) {
  const rank_prep *pr = e->prep;
  const size_t n = e->f->n_in;
  char *sc = scratch;
  double *y_dot = pt_fused_sums_at(sums, e->at_y_dot), *jac = pt_fused_sums_at(sums, e->at_jac);
  const int32_t *rank = (const int32_t *)(sc + pr->at_rank);
  const pt_fused_rank_job job = {
      .terms = pt_fused_terms_of(e, &pr->at, sc, sums, &pr->c_base), .x = e->x,
      .keys = (float *)(sc + pr->at_keys), .work = (int64_t *)(sc + pr->at_work),
      .rank = (int32_t *)rank,
  };
  const float *t = job.terms.t, *g = job.terms.g;
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    for (size_t r = 0; r < rows; r++) {
      const int32_t *yr = rank + r * n;
      if (counts)
        for (size_t i = 0; i < n; i++) counts[i] += (uint64_t)yr[i];
      if (y_dot)
        for (size_t i = 0; i < n; i++)
          y_dot[i] += ((double)yr[i] - (pr->baseline ? (double)pr->base[i] : 0.0)) * t[r];
      if (jac) {
        const float *gr = g + r * n;
        for (size_t j = 0; j < n; j++) {
          const double d = (double)yr[j] - (pr->baseline ? (double)pr->base[j] : 0.0);
          double *row = jac + j * n;
          if (d != 0.0)
            for (size_t i = 0; i < n; i++) row[i] += d * gr[i];
        }
      }
    }
  }
  pt_fused_loo_sums(e, &job.terms, sums);
  return PT_OK;
}

const pt_path pt_fused_rank_path = {1, rank_prepare, rank_run, pt_fused_prep_free, NULL, NULL, NULL};

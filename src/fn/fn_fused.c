/* SPDX-License-Identifier: MIT */
/* The fused paths of perturbed built-ins (estimate.h's pt_path): the noise of each tile of
   samples is generated, used and dropped inside one kernel (src/kernels/fused_argmax.c.j2,
   fused_rank.c.j2), so memory is O(n + tile) per thread, never O(M n) (the Jacobian's n x n
   sums aside).  Here each path sets its kernel's job up and turns the kernel's per-sample
   results into the terms of estimate.h, within one group of samples:
     value     the samples whose segment argmax is i (or the ranks), counted exactly
     vjp       sum_m c_m grad_nu(Z_m),  c_m = (Y_m - b) . y_bar  (in the kernel)
     jvp       sum_m (Y_m - b) t_m,     t_m = grad_nu(Z_m) . x_dot
     jacobian  sum_m (Y_m - b) grad_nu(Z_m)^T
   where Y_m is one-hot on each segment's winner and b on the unperturbed argmax (or the ranks
   of the perturbed and the unperturbed x, for ranking), all in double in sample order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "fn/estimate.h"
#include "fn/fn_builtin.h"
#include "kernels/fused.h"
#include "dispatch/dispatch_table.h"
#include "kernels/sort.h"

/* Noise floats a tile holds: about 16 kB, so the tile's noise stays in L1 while it is used. */
#define PT_FUSED_TILE_FLOATS 4096

static size_t tile_rows(size_t n, uint64_t group) {
  const size_t rows = n < PT_FUSED_TILE_FLOATS ? PT_FUSED_TILE_FLOATS / n : 1;
  return rows < group ? rows : (size_t)group;
}

/* Pieces of one block of scratch: each starts on a 64-byte boundary.  Sizes are checked here,
   so a request too large to address sets `overflow` instead of wrapping. */
typedef struct carve {
  size_t used;
  int overflow;
} carve;

/* count * times + extra elements of `size` bytes */
static size_t take(carve *c, size_t count, size_t times, size_t extra, size_t size) {
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

/* The per-thread pieces of both kernels' pt_fused_terms: the tile's noise, the vjp's float
   partial sums and, per tile, t_m and the rows grad_nu(Z_m), each present only when wanted. */
typedef struct terms_at {
  size_t noise, partial, t, g;
} terms_at;

static terms_at take_terms(carve *c, unsigned want, size_t n, size_t tile) {
  const size_t pad = PT_FUSED_PAD;
  terms_at at;
  at.noise = take(c, tile, n, pad, sizeof(float));
  at.partial = take(c, want & PT_WANT_VJP ? n : 0, 1, want & PT_WANT_VJP ? pad : 0, sizeof(float));
  at.t = take(c, want & PT_WANT_JVP ? tile : 0, 1, 0, sizeof(float));
  at.g = take(c, want & PT_WANT_JAC ? tile : 0, n, want & PT_WANT_JAC ? pad : 0, sizeof(float));
  return at;
}

/* The sums of e's wanted derivative terms within `sums`, NULL where not wanted. */
static double *sums_at(double *sums, size_t at) { return at == SIZE_MAX ? NULL : sums + at; }

/* The terms of one group's call of either kernel, on a thread's scratch and sums. */
static pt_fused_terms terms_of(const pt_estimator *e, const terms_at *at, char *scratch,
                               double *sums, double c_base) {
  return (pt_fused_terms){
      .key = e->key, .n = e->f->n_in, .sigma = e->p.sigma, .samples = e->p.samples,
      .y_bar = e->want & PT_WANT_VJP ? e->y_bar : NULL, .c_base = c_base,
      .partial = (float *)(scratch + at->partial), .x_bar_sum = sums_at(sums, e->at_x_bar),
      .x_dot = e->want & PT_WANT_JVP ? e->x_dot : NULL, .t = (float *)(scratch + at->t),
      .g = e->want & PT_WANT_JAC ? (float *)(scratch + at->g) : NULL,
      .noise = (float *)(scratch + at->noise)};
}

/* ---- perturbed argmax one-hot (and segments) -------------------------------------------------- */

typedef struct argmax_prep {
  size_t segments;
  const size_t *offsets;
  void (*kernel)(const pt_fused_argmax_job *, uint64_t, size_t);
  size_t tile, stride;
  int32_t *base;   /* segments: the unperturbed winners, b's one-hot */
  float *a;        /* n: each input's key coefficient */
  double c_base;   /* b . y_bar */
  terms_at at;     /* and, in a thread's scratch: */
  size_t at_g_sum, at_winner, at_count;
} argmax_prep;

static void prep_free(pt_estimator *e) {
  pt_arena_free(e->arena, e->prep);
  e->prep = NULL;
}

static pt_status argmax_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  size_t segments;
  const size_t *offsets;
  pt_fn_builtin(e->f, &segments, &offsets);
  const size_t n = offsets[segments], tile = tile_rows(n, e->group < e->p.samples ? e->group : e->p.samples);
  /* whole vectors of winners, PT_LANES of them at a time on every ISA */
  const size_t stride = (tile + PT_MAX_LANES - 1) / PT_MAX_LANES * PT_MAX_LANES;
  const int gumbel = e->p.noise == PT_NOISE_GUMBEL;

  /* the prep block: the struct, the baseline winners and the coefficients */
  carve c = {sizeof(argmax_prep), 0};
  const size_t at_base = take(&c, segments, 1, 0, sizeof(int32_t));
  const size_t at_a = take(&c, n, 1, 0, sizeof(float));
  const size_t at_tmp = take(&c, n, 1, 0, sizeof(float));
  if (c.overflow) return PT_EOVERFLOW;
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return PT_ENOMEM;
  argmax_prep *pr = (argmax_prep *)block;
  pr->segments = segments;
  pr->offsets = offsets;
  pr->kernel = gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal;
  pr->tile = tile;
  pr->stride = stride;
  pr->base = (int32_t *)(block + at_base);
  pr->a = (float *)(block + at_a);
  e->prep = pr;

  /* the unperturbed winners (the baseline), and each input's key coefficient */
  const float *x = e->x;
  for (size_t seg = 0; seg < segments; seg++) {
    const size_t o = offsets[seg], z = offsets[seg + 1] - o;
    k->argmax_rows(x + o, 1, z, z, &pr->base[seg]);
    pr->base[seg] += (int32_t)o;
  }
  if (gumbel) { /* a_i = exp((max x - x_i) / sigma), the exp by the generic path's kernel */
    float *tmp = (float *)(block + at_tmp);
    for (size_t seg = 0; seg < segments; seg++)
      for (size_t i = offsets[seg]; i < offsets[seg + 1]; i++)
        tmp[i] = (x[i] - x[pr->base[seg]]) / e->p.sigma;
    k->perturb_tile(tmp, 1, n, NULL, 0.0f, NULL, pr->a);
  } else {
    memcpy(pr->a, x, n * sizeof *pr->a);
  }
  if ((e->want & PT_WANT_VJP) && e->p.baseline)
    for (size_t seg = 0; seg < segments; seg++) pr->c_base += e->y_bar[pr->base[seg]];

  /* one thread's scratch */
  carve s = {0, 0};
  pr->at = take_terms(&s, e->want, n, tile);
  pr->at_g_sum = take(&s, e->want & PT_WANT_JAC ? n : 0, 1, 0, sizeof(double));
  pr->at_winner = take(&s, segments, stride, 0, sizeof(int32_t));
  pr->at_count = take(&s, e->counts ? 0 : n, 1, 0, sizeof(uint64_t));
  if (s.overflow) {
    prep_free(e);
    return PT_EOVERFLOW;
  }
  e->scratch_bytes = s.used;
  e->thread_safe = 1;
  e->work = (double)n;
  return PT_OK;
}

static pt_status argmax_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                            double *sums, uint64_t *counts) {
  const argmax_prep *pr = e->prep;
  const size_t n = e->f->n_in, segments = pr->segments, stride = pr->stride;
  char *sc = scratch;
  double *y_dot = sums_at(sums, e->at_y_dot), *jac = sums_at(sums, e->at_jac);
  double *g_sum = jac ? (double *)(sc + pr->at_g_sum) : NULL;
  const int32_t *winner = (const int32_t *)(sc + pr->at_winner);
  const float *t = (const float *)(sc + pr->at.t), *g = (const float *)(sc + pr->at.g);
  const pt_fused_argmax_job job = {
      .terms = terms_of(e, &pr->at, sc, sums, pr->c_base), .segments = segments,
      .offsets = pr->offsets, .a = pr->a, .stride = stride, .winner = (int32_t *)winner,
      .count = counts ? counts : (uint64_t *)(sc + pr->at_count),
  };
  if (g_sum) memset(g_sum, 0, n * sizeof *g_sum);

  double t_sum = 0.0;
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    if (y_dot)
      for (size_t r = 0; r < rows; r++) {
        for (size_t seg = 0; seg < segments; seg++) y_dot[winner[seg * stride + r]] += t[r];
        t_sum += t[r];
      }
    if (jac)
      for (size_t r = 0; r < rows; r++) {
        const float *gr = g + r * n;
        for (size_t seg = 0; seg < segments; seg++) {
          double *row = jac + (size_t)winner[seg * stride + r] * n;
          for (size_t i = 0; i < n; i++) row[i] += gr[i];
        }
        for (size_t i = 0; i < n; i++) g_sum[i] += gr[i];
      }
  }

  /* the baseline's terms, one-hot on the unperturbed winners: once per group */
  if (e->p.baseline)
    for (size_t seg = 0; seg < segments; seg++) {
      if (y_dot) y_dot[pr->base[seg]] -= t_sum;
      if (jac) {
        double *row = jac + (size_t)pr->base[seg] * n;
        for (size_t i = 0; i < n; i++) row[i] -= g_sum[i];
      }
    }
  return PT_OK;
}

static const pt_path argmax_path = {1, argmax_prepare, argmax_run, prep_free, NULL, NULL, NULL};

/* ---- perturbed ranking ------------------------------------------------------------------------ */

typedef struct rank_prep {
  void (*kernel)(const pt_fused_rank_job *, uint64_t, size_t);
  size_t tile;
  int32_t *base;  /* n: the unperturbed ranks, b */
  double c_base;  /* b . y_bar */
  terms_at at;    /* and, in a thread's scratch: */
  size_t at_work, at_rank, at_keys;
} rank_prep;

static pt_status rank_prepare(pt_estimator *e) {
  const pt_kernel_table *k = pt_kernels_active();
  const size_t n = e->f->n_in, tile = tile_rows(n, e->group < e->p.samples ? e->group : e->p.samples);
  carve c = {sizeof(rank_prep), 0};
  const size_t at_base = take(&c, n, 1, 0, sizeof(int32_t));
  const size_t at_work = take(&c, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  if (c.overflow) return PT_EOVERFLOW;
  char *block = pt_arena_zalloc(e->arena, c.used);
  if (!block) return PT_ENOMEM;
  rank_prep *pr = (rank_prep *)block;
  pr->kernel = e->p.noise == PT_NOISE_GUMBEL ? k->fused_rank_gumbel : k->fused_rank_normal;
  pr->tile = tile;
  pr->base = (int32_t *)(block + at_base);
  e->prep = pr;
  k->rank_rows(e->x, 1, n, n, pr->base, n, (int64_t *)(block + at_work));
  if ((e->want & PT_WANT_VJP) && e->p.baseline)
    for (size_t i = 0; i < n; i++) pr->c_base += (double)pr->base[i] * e->y_bar[i];

  carve s = {0, 0};
  pr->at = take_terms(&s, e->want, n, tile);
  pr->at_work = take(&s, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  pr->at_rank = take(&s, tile, n, 0, sizeof(int32_t));
  pr->at_keys = take(&s, tile, n, PT_FUSED_PAD, sizeof(float));
  if (s.overflow) {
    prep_free(e);
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
  double *y_dot = sums_at(sums, e->at_y_dot), *jac = sums_at(sums, e->at_jac);
  const int32_t *rank = (const int32_t *)(sc + pr->at_rank);
  const float *t = (const float *)(sc + pr->at.t), *g = (const float *)(sc + pr->at.g);
  const pt_fused_rank_job job = {
      .terms = terms_of(e, &pr->at, sc, sums, pr->c_base), .x = e->x,
      .keys = (float *)(sc + pr->at_keys), .work = (int64_t *)(sc + pr->at_work),
      .rank = (int32_t *)rank,
  };
  for (uint64_t m = m0; m < m1; m += pr->tile) {
    const size_t rows = m1 - m < pr->tile ? (size_t)(m1 - m) : pr->tile;
    pr->kernel(&job, m, rows);
    for (size_t r = 0; r < rows; r++) {
      const int32_t *yr = rank + r * n;
      if (counts)
        for (size_t i = 0; i < n; i++) counts[i] += (uint64_t)yr[i];
      if (y_dot)
        for (size_t i = 0; i < n; i++)
          y_dot[i] += ((double)yr[i] - (e->p.baseline ? (double)pr->base[i] : 0.0)) * t[r];
      if (jac) {
        const float *gr = g + r * n;
        for (size_t j = 0; j < n; j++) {
          const double d = (double)yr[j] - (e->p.baseline ? (double)pr->base[j] : 0.0);
          double *row = jac + j * n;
          if (d != 0.0)
            for (size_t i = 0; i < n; i++) row[i] += d * gr[i];
        }
      }
    }
  }
  return PT_OK;
}

static const pt_path rank_path = {1, rank_prepare, rank_run, prep_free, NULL, NULL, NULL};

const pt_path *pt_fused_path(const pt_fn *f, unsigned want) {
  if (want & PT_WANT_HESS) return NULL;
  switch (pt_fn_builtin(f, NULL, NULL)) {
    case PT_BUILTIN_ARGMAX: return &argmax_path;
    case PT_BUILTIN_RANKING: return &rank_path;
    default: return NULL;
  }
}

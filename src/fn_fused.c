/* The fused paths of perturbed built-ins: the noise of each tile of samples is generated,
   used and dropped inside one kernel (templates/fused_argmax.c.j2, fused_rank.c.j2), so memory
   is O(n + tile), never O(M n) (the Jacobian's n x n sums aside).  This file sets the kernels
   up, tile by tile, and turns their per-sample results into the estimator of API.md:
     value     y_i = (samples whose segment argmax is i) / M
     vjp       x_bar = (1/(M s)) sum_m c_m grad_nu(Z_m),  c_m = (Y_m - b) . y_bar
     jvp       y_dot = (1/(M s)) sum_m (Y_m - b) t_m,     t_m = grad_nu(Z_m) . x_dot
     jacobian  J = (1/(M s)) sum_m (Y_m - b) grad_nu(Z_m)^T
   where Y_m is one-hot on each segment's winner and b on the unperturbed argmax (or the ranks
   of the perturbed and the unperturbed x, for ranking).  The sums over
   samples run in double in sample order (the vjp's after float sums of PT_FUSED_GROUP samples
   inside the kernel), so every ISA gives the same bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fn_builtin.h"
#include "fn_perturbed.h"
#include "fused.h"
#include "kernels.h"
#include "sort.h"

/* Noise floats a tile holds: about 16 kB, so the tile's noise stays in L1 while it is used. */
#define PT_FUSED_TILE_FLOATS 4096

static size_t tile_rows(size_t n, size_t samples) {
  const size_t rows = n < PT_FUSED_TILE_FLOATS ? PT_FUSED_TILE_FLOATS / n : 1;
  return rows < samples ? rows : samples;
}

/* Pieces of one allocation: each starts on a 64-byte boundary.  Sizes are checked here, so a
   request too large to address sets `overflow` instead of wrapping. */
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

/* The estimator's part of a fused path's block, shared by the argmax and the ranking: the
   sums over samples and the kernel's per-tile terms, each present only when the call wants
   it.  jac_rows rows of n doubles hold the Jacobian's sum (the argmax keeps one more: the sum
   of grad_nu).  Offsets first, pointers once the block exists. */
typedef struct estimator_at {
  size_t count, x_bar, y_dot, jac, partial, t, g;
} estimator_at;

typedef struct estimator {
  uint64_t *count;              /* n: the sum of Y_m over samples (winners or ranks), exact */
  double *x_bar, *y_dot, *jac;  /* n, n, jac_rows x n: the double sums over samples */
  float *partial, *t, *g;       /* the kernel's: vjp float sums, and per tile t_m and grad_nu */
} estimator;

static estimator_at take_estimator(carve *c, const pt_estimate *want, size_t n, size_t tile,
                                   size_t jac_rows) {
  const size_t pad = PT_FUSED_PAD;
  estimator_at at;
  at.count = take(c, n, 1, 0, sizeof(uint64_t));
  at.x_bar = take(c, want->x_bar ? n : 0, 1, 0, sizeof(double));
  at.y_dot = take(c, want->y_dot ? n : 0, 1, 0, sizeof(double));
  at.jac = take(c, want->jac ? jac_rows : 0, n, 0, sizeof(double));
  at.partial = take(c, want->x_bar ? n : 0, 1, want->x_bar ? pad : 0, sizeof(float));
  at.t = take(c, want->y_dot ? tile : 0, 1, 0, sizeof(float));
  at.g = take(c, want->jac ? tile : 0, n, want->jac ? pad : 0, sizeof(float));
  return at;
}

static estimator place_estimator(char *block, const estimator_at *at) {
  return (estimator){
      .count = (uint64_t *)(block + at->count), .x_bar = (double *)(block + at->x_bar),
      .y_dot = (double *)(block + at->y_dot), .jac = (double *)(block + at->jac),
      .partial = (float *)(block + at->partial), .t = (float *)(block + at->t),
      .g = (float *)(block + at->g)};
}

/* The estimate of M samples from the sums (the baseline's terms already taken off): the
   value is the mean of Y_m, the derivatives are over M sigma. */
static void write_estimate(const pt_estimate *want, size_t n, const estimator *e,
                           const pt_perturbation *p) {
  const double mean = 1.0 / (double)p->samples, per_sigma = mean / (double)p->sigma;
  if (want->y)
    for (size_t i = 0; i < n; i++) want->y[i] = (float)((double)e->count[i] * mean);
  if (want->x_bar)
    for (size_t i = 0; i < n; i++) want->x_bar[i] = (float)(e->x_bar[i] * per_sigma);
  if (want->y_dot)
    for (size_t i = 0; i < n; i++) want->y_dot[i] = (float)(e->y_dot[i] * per_sigma);
  if (want->jac)
    for (size_t i = 0; i < n * n; i++) want->jac[i] = (float)(e->jac[i] * per_sigma);
}

static pt_status fused_argmax(size_t segments, const size_t *offsets, const pt_perturbation *p,
                              pt_key key, const float *x, const pt_estimate *want) {
  const pt_kernel_table *k = pt_kernels_active();
  const size_t n = offsets[segments], m_total = p->samples, tile = tile_rows(n, m_total);
  const size_t stride = (tile + 15) / 16 * 16;
  const int gumbel = p->noise == PT_NOISE_GUMBEL;
  void (*kernel)(const pt_fused_argmax_job *, uint64_t, size_t) =
      gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal;

  /* one zeroed block of scratch, carved into cache-line aligned pieces */
  carve c = {0, 0};
  const estimator_at at_e = take_estimator(&c, want, n, tile, n + 1); /* and grad_nu's sum */
  const size_t at_base = take(&c, segments, stride + 1, 0, sizeof(int32_t)); /* and winners */
  const size_t at_a = take(&c, n, 1, 0, sizeof(float));
  const size_t at_noise = take(&c, tile, n, PT_FUSED_PAD, sizeof(float));
  if (c.overflow) return PT_EOVERFLOW;
  char *block = pt_calloc(1, c.used);
  if (!block) return PT_ENOMEM;
  const estimator e = place_estimator(block, &at_e);
  double *g_sum = want->jac ? e.jac + n * n : NULL;
  int32_t *base = (int32_t *)(block + at_base), *winner = base + segments;
  float *a = (float *)(block + at_a), *noise = (float *)(block + at_noise);
  pt_status s = PT_OK;

  /* the unperturbed winners (the baseline), and each input's key coefficient */
  for (size_t seg = 0; seg < segments && s == PT_OK; seg++) {
    const size_t o = offsets[seg];
    s = pt_argmax_rows(x + o, 1, offsets[seg + 1] - o, offsets[seg + 1] - o, &base[seg]);
    base[seg] += (int32_t)o;
  }
  if (s != PT_OK) goto out;
  if (gumbel) { /* a_i = exp((max x - x_i) / sigma), the exp by the generic path's kernel */
    for (size_t seg = 0; seg < segments; seg++)
      for (size_t i = offsets[seg]; i < offsets[seg + 1]; i++)
        noise[i] = (x[i] - x[base[seg]]) / p->sigma;
    k->perturb_tile(noise, 1, n, NULL, 0.0f, NULL, a);
  } else {
    memcpy(a, x, n * sizeof *a);
  }

  double c_base = 0.0;
  if (want->x_bar && p->baseline)
    for (size_t seg = 0; seg < segments; seg++) c_base += want->y_bar[base[seg]];
  const pt_fused_argmax_job job = {
      .key = key, .n = n, .segments = segments, .offsets = offsets, .a = a, .sigma = p->sigma,
      .samples = m_total, .y_bar = want->x_bar ? want->y_bar : NULL, .c_base = c_base,
      .partial = e.partial, .x_bar_sum = e.x_bar, .x_dot = want->y_dot ? want->x_dot : NULL,
      .t = e.t, .g = want->jac ? e.g : NULL, .noise = noise, .stride = stride,
      .winner = winner, .count = e.count,
  };

  double t_sum = 0.0;
  for (size_t m0 = 0; m0 < m_total; m0 += tile) {
    const size_t rows = m_total - m0 < tile ? m_total - m0 : tile;
    kernel(&job, m0, rows);
    if (want->y_dot)
      for (size_t r = 0; r < rows; r++) {
        for (size_t seg = 0; seg < segments; seg++) e.y_dot[winner[seg * stride + r]] += e.t[r];
        t_sum += e.t[r];
      }
    if (want->jac)
      for (size_t r = 0; r < rows; r++) {
        const float *gr = e.g + r * n;
        for (size_t seg = 0; seg < segments; seg++) {
          double *row = e.jac + (size_t)winner[seg * stride + r] * n;
          for (size_t i = 0; i < n; i++) row[i] += gr[i];
        }
        for (size_t i = 0; i < n; i++) g_sum[i] += gr[i];
      }
  }

  /* the baseline's terms, one-hot on the unperturbed winners: summed once, not per sample */
  if (p->baseline)
    for (size_t seg = 0; seg < segments; seg++) {
      if (want->y_dot) e.y_dot[base[seg]] -= t_sum;
      if (want->jac) {
        double *row = e.jac + (size_t)base[seg] * n;
        for (size_t i = 0; i < n; i++) row[i] -= g_sum[i];
      }
    }
  write_estimate(want, n, &e, p);
out:
  free(block);
  return s;
}

/* Perturbed ranks: Y_m = rank(x + sigma Z_m), b = rank(x).  The kernel ranks each tile's
   samples; here their sums: rank sums (exact integers), and per sample the jvp's
   (Y_m - b) t_m and the Jacobian's (Y_m - b) grad_nu^T, in double in sample order. */
static pt_status fused_rank(size_t n, const pt_perturbation *p, pt_key key, const float *x,
                            const pt_estimate *want) {
  const pt_kernel_table *k = pt_kernels_active();
  const size_t m_total = p->samples, tile = tile_rows(n, m_total);
  void (*kernel)(const pt_fused_rank_job *, uint64_t, size_t) =
      p->noise == PT_NOISE_GUMBEL ? k->fused_rank_gumbel : k->fused_rank_normal;

  carve c = {0, 0};
  const estimator_at at_e = take_estimator(&c, want, n, tile, n);
  const size_t at_work = take(&c, PT_SORT_WORK(n), 1, 0, sizeof(int64_t));
  const size_t at_base = take(&c, n, tile + 1, 0, sizeof(int32_t)); /* and the tile's ranks */
  const size_t at_noise = take(&c, tile, n, PT_FUSED_PAD, sizeof(float));
  const size_t at_keys = take(&c, tile, n, PT_FUSED_PAD, sizeof(float));
  if (c.overflow) return PT_EOVERFLOW;
  char *block = pt_calloc(1, c.used);
  if (!block) return PT_ENOMEM;
  const estimator e = place_estimator(block, &at_e);
  int32_t *base = (int32_t *)(block + at_base), *rank = base + n;

  /* the unperturbed ranks: the baseline */
  k->rank_rows(x, 1, n, n, base, n, (int64_t *)(block + at_work));
  double c_base = 0.0;
  if (want->x_bar && p->baseline)
    for (size_t i = 0; i < n; i++) c_base += (double)base[i] * want->y_bar[i];
  const pt_fused_rank_job job = {
      .key = key, .n = n, .x = x, .sigma = p->sigma, .samples = m_total,
      .y_bar = want->x_bar ? want->y_bar : NULL, .c_base = c_base, .partial = e.partial,
      .x_bar_sum = e.x_bar, .x_dot = want->y_dot ? want->x_dot : NULL, .t = e.t,
      .g = want->jac ? e.g : NULL, .noise = (float *)(block + at_noise),
      .keys = (float *)(block + at_keys), .work = (int64_t *)(block + at_work), .rank = rank,
  };

  for (size_t m0 = 0; m0 < m_total; m0 += tile) {
    const size_t rows = m_total - m0 < tile ? m_total - m0 : tile;
    kernel(&job, m0, rows);
    for (size_t r = 0; r < rows; r++) {
      const int32_t *yr = rank + r * n;
      for (size_t i = 0; i < n; i++) e.count[i] += (uint64_t)yr[i];
      if (want->y_dot)
        for (size_t i = 0; i < n; i++)
          e.y_dot[i] += ((double)yr[i] - (p->baseline ? (double)base[i] : 0.0)) * e.t[r];
      if (want->jac) {
        const float *gr = e.g + r * n;
        for (size_t j = 0; j < n; j++) {
          const double d = (double)yr[j] - (p->baseline ? (double)base[j] : 0.0);
          double *row = e.jac + j * n;
          if (d != 0.0)
            for (size_t i = 0; i < n; i++) row[i] += d * gr[i];
        }
      }
    }
  }
  write_estimate(want, n, &e, p);
  free(block);
  return PT_OK;
}

pt_status pt_fused_estimate(const pt_fn *f, const pt_perturbation *p, pt_key key, const float *x,
                            const pt_estimate *want) {
  size_t segments;
  const size_t *offsets;
  if (want->hess) return PT_EUNSUPPORTED;
  switch (pt_fn_builtin(f, &segments, &offsets)) {
    case PT_BUILTIN_ARGMAX: return fused_argmax(segments, offsets, p, key, x, want);
    case PT_BUILTIN_RANKING: return fused_rank(offsets[1], p, key, x, want);
    default: return PT_EUNSUPPORTED;
  }
}

/* SPDX-License-Identifier: MIT */
#include "parity.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "reference.h"
#include "kernels/sort.h"
#include "fn/fn_fused_bounds.h"

static int same(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)); }

#define GUARD 16
static const float guard = -12345.0f;

/* ---- perturb_tile --------------------------------------------------------------------------- */

void parity_perturb_tile(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  const size_t rows = c->rows, n = c->d, total = rows * n;
  if (total == 0) return;
  float *z = malloc(total * sizeof *z), *xv = malloc(n * sizeof *xv);
  float *out = malloc(4 * (total + GUARD) * sizeof *out);
  if (!z || !xv || !out) {
    pt_parity_fail(res, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < rows; r++) memcpy(z + r * n, x + r * c->ld, n * sizeof *z);
  uint64_t s = c->seed;
  for (size_t i = 0; i < n; i++) xv[i] = (float)(pt_test_rand(&s) >> 40) * 0x1p-22f - 2.0f;
  const float sigma = 0.75f;
  float *xt = out, *e = xt + total + GUARD, *xt_s = e + total + GUARD, *e_s = xt_s + total + GUARD;
  for (size_t i = 0; i < 4 * (total + GUARD); i++) out[i] = guard;
  k->perturb_tile(z, rows, n, xv, sigma, xt, e);
  scalar->perturb_tile(z, rows, n, xv, sigma, xt_s, e_s);
  for (size_t i = total; i < total + GUARD; i++)
    if (xt[i] != guard || e[i] != guard) {
      pt_parity_fail(res, "perturb_tile %s wrote past rows x n (rows %zu, n %zu)",
                     pt_isa_name(k->isa), rows, n);
      goto done;
    }
  for (size_t i = 0; i < total; i++) {
    const float step = sigma * z[i], want_xt = xv[i % n] + step;
    const double want_e = exp(-(double)z[i]);
    const int e_ok = isnan(z[i]) ? isnan(e[i])
                     : want_e > FLT_MAX ? isinf(e[i])
                                     : fabs(e[i] - want_e) <= 2.5e-7 * want_e + 1e-37;
    if (!same(xt[i], xt_s[i]) || !same(e[i], e_s[i]) || !same(xt[i], want_xt) || !e_ok) {
      pt_parity_fail(res,
                     "perturb_tile %s: element %zu of z %a: xt %a (scalar %a, want %a), e %a "
                     "(scalar %a, exp %a)",
                     pt_isa_name(k->isa), i, (double)z[i], (double)xt[i], (double)xt_s[i],
                     (double)want_xt, (double)e[i], (double)e_s[i], want_e);
      goto done;
    }
  }
  /* either output alone gives the same bits */
  k->perturb_tile(z, rows, n, xv, sigma, NULL, xt_s);
  k->perturb_tile(z, rows, n, xv, sigma, e_s, NULL);
  for (size_t i = 0; i < total; i++)
    if (!same(xt_s[i], e[i]) || !same(e_s[i], xt[i])) {
      pt_parity_fail(res, "perturb_tile %s: one output alone differs at %zu", pt_isa_name(k->isa),
                     i);
      break;
    }
done:
  free(z);
  free(xv);
  free(out);
}

/* ---- perturb_tile_multiplicative ------------------------------------------------------------- */

/* w = exp(sigma z - sigma^2/2) (the product and difference in float, as the kernel forms them)
   within the exp's accuracy, xt = x * w bit for bit, the ISA's bits the scalar kernel's, and
   either output alone the same bits. */
void parity_perturb_tile_multiplicative(const pt_kernel_table *k, const pt_kernel_table *scalar,
                                        const pt_case *c, const float *x, pt_parity_result *res) {
  const size_t rows = c->rows, n = c->d, total = rows * n;
  if (total == 0) return;
  float *z = malloc(total * sizeof *z), *xv = malloc(n * sizeof *xv);
  float *out = malloc(4 * (total + GUARD) * sizeof *out);
  if (!z || !xv || !out) {
    pt_parity_fail(res, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < rows; r++) memcpy(z + r * n, x + r * c->ld, n * sizeof *z);
  uint64_t s = c->seed;
  for (size_t i = 0; i < n; i++) xv[i] = (float)(pt_test_rand(&s) >> 40) * 0x1p-22f - 2.0f;
  const float sigma = 0.75f, half_var = 0.5f * sigma * sigma;
  float *xt = out, *w = xt + total + GUARD, *xt_s = w + total + GUARD, *w_s = xt_s + total + GUARD;
  for (size_t i = 0; i < 4 * (total + GUARD); i++) out[i] = guard;
  k->perturb_tile_multiplicative(z, rows, n, xv, sigma, xt, w);
  scalar->perturb_tile_multiplicative(z, rows, n, xv, sigma, xt_s, w_s);
  for (size_t i = total; i < total + GUARD; i++)
    if (xt[i] != guard || w[i] != guard) {
      pt_parity_fail(res, "perturb_tile_multiplicative %s wrote past rows x n (rows %zu, n %zu)",
                     pt_isa_name(k->isa), rows, n);
      goto done;
    }
  for (size_t i = 0; i < total; i++) {
    const float step = sigma * z[i], t = step - half_var, want_xt = xv[i % n] * w[i];
    const double want_w = exp((double)t);
    const int w_ok = isnan(t) ? isnan(w[i])
                     : want_w > FLT_MAX ? isinf(w[i])
                                        : fabs(w[i] - want_w) <= 2.5e-7 * want_w + 1e-37;
    if (!same(xt[i], xt_s[i]) || !same(w[i], w_s[i]) || !same(xt[i], want_xt) || !w_ok) {
      pt_parity_fail(res,
                     "perturb_tile_multiplicative %s: element %zu of z %a: xt %a (scalar %a, "
                     "want %a), w %a (scalar %a, exp %a)",
                     pt_isa_name(k->isa), i, (double)z[i], (double)xt[i], (double)xt_s[i],
                     (double)want_xt, (double)w[i], (double)w_s[i], want_w);
      goto done;
    }
  }
  k->perturb_tile_multiplicative(z, rows, n, xv, sigma, NULL, xt_s);
  k->perturb_tile_multiplicative(z, rows, n, xv, sigma, w_s, NULL);
  for (size_t i = 0; i < total; i++)
    if (!same(xt_s[i], w[i]) || !same(w_s[i], xt[i])) {
      pt_parity_fail(res, "perturb_tile_multiplicative %s: one output alone differs at %zu",
                     pt_isa_name(k->isa), i);
      break;
    }
done:
  free(z);
  free(xv);
  free(out);
}

/* ---- the terms of every fused kernel (pt_fused_terms) -------------------------------------- */

/* The inputs of one fused tile: x finite, segments, and what to accumulate: the cotangent in
   one block or per segment (block_diagonal's), the Jacobian's rows or not, and the group's sums
   of the cotangents, t and grad_nu (the leave-one-out's) or not. */
typedef struct fused_input {
  int gumbel;
  size_t n, segments, offsets[8];
  float x[5000], a[5000], y_bar[5000], x_dot[5000], sigma;
  pt_key key;
  uint64_t m0;
  size_t rows;
  size_t blocks, block_at[9];
  double c_base[8];
  int rows_of_g, sums;
  int permutation; /* the rank kernels' cotangent of the permutation matrix (y_bar: its cells) */
  size_t cells[8];  /* segments + 1: the permutation matrix's blocks of cells */
  size_t ks[8];    /* the top-k kernels' k of each segment */
  float margin[8]; /* and the margins of their bounds (Gumbel) */
  int antithetic;  /* antithetic pairs: m0 and rows even */
  double pair_weight; /* with antithetic, the leave-one-pair-out's w (or 0) */
} fused_input;

/* The buffers a job's terms write. */
typedef struct terms_run {
  float *noise, *g, *g_row, *partial, *t;
  double *x_bar_sum, *c, *c_pair, *c_sum, *t_sum, *g_sum;
} terms_run;

/* The terms of `in` on freshly allocated buffers (terms_ok says whether they all are). */
static pt_fused_terms terms_alloc(terms_run *b, const fused_input *in) {
  const size_t n = in->n, rows = in->rows, blocks = in->blocks;
  b->noise = malloc((rows * n + PT_FUSED_PAD) * sizeof(float));
  b->g = malloc((rows * n + PT_FUSED_PAD) * sizeof(float));
  b->g_row = malloc((n + PT_FUSED_PAD) * sizeof(float));
  b->partial = calloc(n + PT_FUSED_PAD, sizeof(float));
  b->t = malloc(rows * blocks * sizeof(float));
  b->x_bar_sum = calloc(n, sizeof(double));
  b->c = malloc(blocks * sizeof(double));
  b->c_pair = malloc(2 * blocks * sizeof(double));
  b->c_sum = calloc(blocks, sizeof(double));
  b->t_sum = calloc(blocks, sizeof(double));
  b->g_sum = calloc(n, sizeof(double));
  return (pt_fused_terms){
      .key = in->key, .antithetic = in->antithetic, .n = n, .sigma = in->sigma,
      .samples = in->m0 + rows, .blocks = blocks,
      .block_at = in->block_at, .y_bar = in->y_bar, .c_base = in->c_base,
      .pair_weight = in->pair_weight, .c_pair = b->c_pair,
      .c_sum = in->sums ? b->c_sum : NULL, .partial = b->partial, .x_bar_sum = b->x_bar_sum,
      .x_dot = in->x_dot, .t = b->t, .t_sum = in->sums ? b->t_sum : NULL,
      .g = in->rows_of_g ? b->g : NULL, .g_sum = in->sums ? b->g_sum : NULL, .g_row = b->g_row,
      .noise = b->noise, .c = b->c};
}

static int terms_ok(const terms_run *b) {
  return b->noise && b->g && b->g_row && b->partial && b->t && b->x_bar_sum && b->c &&
         b->c_pair && b->c_sum && b->t_sum && b->g_sum;
}

static void terms_free(terms_run *b) {
  free(b->noise);
  free(b->g);
  free(b->g_row);
  free(b->partial);
  free(b->t);
  free(b->x_bar_sum);
  free(b->c);
  free(b->c_pair);
  free(b->c_sum);
  free(b->t_sum);
  free(b->g_sum);
}

static int terms_same(const fused_input *in, const terms_run *a, const terms_run *b) {
  const size_t n = in->n, rows = in->rows, blocks = in->blocks;
  return memcmp(a->t, b->t, rows * blocks * sizeof(float)) == 0 &&
         (!in->rows_of_g || memcmp(a->g, b->g, rows * n * sizeof(float)) == 0) &&
         memcmp(a->partial, b->partial, n * sizeof(float)) == 0 &&
         memcmp(a->x_bar_sum, b->x_bar_sum, n * sizeof(double)) == 0 &&
         memcmp(a->c_sum, b->c_sum, blocks * sizeof(double)) == 0 &&
         memcmp(a->t_sum, b->t_sum, blocks * sizeof(double)) == 0 &&
         memcmp(a->g_sum, b->g_sum, n * sizeof(double)) == 0;
}

/* t, the Jacobian's rows, the vjp's sums, then (when wanted) the group's sums */
static uint64_t terms_hash(uint64_t h, const fused_input *in, const terms_run *b) {
  h = pt_hash32(h, b->t, in->rows * in->blocks);
  if (in->rows_of_g) h = pt_hash32(h, b->g, in->rows * in->n);
  h = pt_hash32(h, b->partial, in->n);
  h = pt_hash64(h, b->x_bar_sum, in->n);
  if (in->sums) {
    h = pt_hash64(h, b->c_sum, in->blocks);
    h = pt_hash64(h, b->t_sum, in->blocks);
    h = pt_hash64(h, b->g_sum, in->n);
  }
  return h;
}

/* The noise of input i of sample r in double, from the independent reference: with antithetic
   pairs sample m has the words of pair m / 2, and an odd one the partner (1 - u, or -z). */
static double ref_noise(const fused_input *in, size_t r, size_t i) {
  const uint64_t m = in->m0 + r, word = (in->antithetic ? m / 2 : m) * in->n + i;
  const int partner = in->antithetic && m % 2;
  if (!in->gumbel) {
    const double z = pt_ref_normal(in->key.seed, in->key.stream, word);
    return partner ? -z : z;
  }
  const double u = pt_ref_uniform(in->key.seed, in->key.stream, word);
  return -log(partner ? 1.0 - u : u);
}

/* The stream's noise of samples m0 .. m0 + rows - 1 (n inputs each) from the scalar kernels,
   into z: the plain words, or the antithetic pairs (m0 and rows even). */
static void stream_noise(const pt_kernel_table *scalar, const fused_input *in, uint64_t m0,
                         size_t rows, float *z) {
  if (in->antithetic)
    (in->gumbel ? scalar->noise_pairs_gumbel : scalar->noise_pairs_normal)(in->key, m0 / 2,
                                                                           rows / 2, in->n, z);
  else
    (in->gumbel ? scalar->noise_gumbel : scalar->noise_normal)(in->key, m0 * in->n, z,
                                                               rows * in->n);
}

/* How far a float grad_nu may be from the reference's: 1 - E cancels near E = 1. */
static double grad_tolerance(const fused_input *in, double z) {
  return in->gumbel ? 4e-6 * fmax(1.0, z) : 1e-5 * fmax(1.0, fabs(z));
}

/* The terms of a run against the reference in double, given each sample's cotangents c[r *
   blocks + b] (from the kernel's own winners or ranks, checked by the caller): the grad_nu
   rows, t per block, the vjp's sums, and the group's sums; with a pair weight w, a pair's vjp
   cotangents and its rows of t and grad_nu are T_m + w (T_2p + T_2p+1), the sums the plain
   terms'.  Returns 0 if all agree. */
static int terms_against_reference(const fused_input *in, const terms_run *run, const double *c,
                                   const char *what, pt_parity_result *res) {
  const size_t n = in->n, rows = in->rows, blocks = in->blocks;
  const double w = in->pair_weight;
  double *x_bar = calloc(n, sizeof *x_bar), *x_bar_size = calloc(n, sizeof *x_bar_size);
  double *g_sum = calloc(n, sizeof *g_sum), *g_sum_size = calloc(n, sizeof *g_sum_size);
  /* each sample's plain grad_nu and its tolerance, t and its size */
  double *g = malloc(rows * n * sizeof *g), *tol = malloc(rows * n * sizeof *tol);
  double *t = calloc(rows * blocks, sizeof *t), *t_size = calloc(rows * blocks, sizeof *t_size);
  int bad = !x_bar || !x_bar_size || !g_sum || !g_sum_size || !g || !tol || !t || !t_size;
  if (bad) pt_parity_fail(res, "out of memory");
  for (size_t r = 0; r < rows && !bad; r++)
    for (size_t b = 0; b < blocks; b++)
      for (size_t i = in->block_at[b]; i < in->block_at[b + 1]; i++) {
        const double z = ref_noise(in, r, i);
        g[r * n + i] = in->gumbel ? 1.0 - z : z;
        tol[r * n + i] = grad_tolerance(in, z);
        t[r * blocks + b] += g[r * n + i] * in->x_dot[i];
        t_size[r * blocks + b] += fabs(g[r * n + i] * in->x_dot[i]);
      }
  /* a pair's term of sample r: T_r + w (T_r + T_partner) */
#define PAIRED(v, r, k, stride) (w == 0.0 ? (v)[(r) * (stride) + (k)] \
    : (v)[(r) * (stride) + (k)] + w * ((v)[(r) * (stride) + (k)] + (v)[((r) ^ 1) * (stride) + (k)]))
  for (size_t b = 0; b < blocks && !bad; b++) {
    double c_sum = 0, t_sum = 0, t_sum_size = 0;
    for (size_t r = 0; r < rows && !bad; r++) {
      const double cf = (float)(PAIRED(c, r, b, blocks) - in->c_base[b]);
      for (size_t i = in->block_at[b]; i < in->block_at[b + 1]; i++) {
        const double gi = g[r * n + i], ti = tol[r * n + i] * (1 + 2 * w);
        if (in->rows_of_g && fabs(run->g[r * n + i] - PAIRED(g, r, i, n)) > ti) {
          pt_parity_fail(res, "%s: grad_nu of sample %zu input %zu: %a, reference %a", what, r, i,
                         (double)run->g[r * n + i], PAIRED(g, r, i, n));
          bad = 1;
          break;
        }
        /* each vjp term is within |c| tol of the reference, besides the float sums' rounding */
        x_bar[i] += cf * gi;
        x_bar_size[i] += fabs(cf * gi) + 1e5 * fabs(cf) * tol[r * n + i];
        g_sum[i] += gi;
        g_sum_size[i] += tol[r * n + i];
      }
      const double want_t = PAIRED(t, r, b, blocks);
      const double t_tol = 1e-5 * PAIRED(t_size, r, b, blocks) + 1e-6 * (1 + 2 * w);
      if (!bad && fabs(run->t[r * blocks + b] - want_t) > t_tol) {
        pt_parity_fail(res, "%s: t of sample %zu block %zu: %a, reference %a", what, r, b,
                       (double)run->t[r * blocks + b], want_t);
        bad = 1;
      }
      c_sum += c[r * blocks + b];
      t_sum += t[r * blocks + b];
      t_sum_size += 1e-5 * t_size[r * blocks + b] + 1e-6;
    }
    if (!bad && in->sums &&
        (run->c_sum[b] != c_sum || fabs(run->t_sum[b] - t_sum) > t_sum_size)) {
      pt_parity_fail(res, "%s: block %zu sums c %.9g, t %.9g; reference %.9g, %.9g", what, b,
                     run->c_sum[b], run->t_sum[b], c_sum, t_sum);
      bad = 1;
    }
  }
#undef PAIRED
  for (size_t i = 0; i < n && !bad; i++)
    if (fabs(run->x_bar_sum[i] + run->partial[i] - x_bar[i]) > 1e-5 * x_bar_size[i] + 1e-6 ||
        (in->sums && fabs(run->g_sum[i] - g_sum[i]) > g_sum_size[i])) {
      pt_parity_fail(res, "%s: input %zu: vjp sum %.9g, grad_nu sum %.9g; reference %.9g, %.9g",
                     what, i, run->x_bar_sum[i] + run->partial[i], run->g_sum[i], x_bar[i],
                     g_sum[i]);
      bad = 1;
    }
  free(x_bar);
  free(x_bar_size);
  free(g_sum);
  free(g_sum_size);
  free(g);
  free(tol);
  free(t);
  free(t_size);
  return bad;
}

/* ---- fused_argmax --------------------------------------------------------------------------- */

typedef void (*fused_kernel)(const pt_fused_argmax_job *job, uint64_t m0, size_t rows);

/* A job and the buffers it writes. */
typedef struct fused_run {
  pt_fused_argmax_job job;
  terms_run terms;
  int32_t *winner;
  float *winner_noise;
  uint64_t *count;
} fused_run;

static int run_alloc(fused_run *run, const fused_input *in) {
  const size_t n = in->n, rows = in->rows;
  memset(run, 0, sizeof *run);
  const pt_fused_terms terms = terms_alloc(&run->terms, in);
  run->winner = malloc((rows + 15) / 16 * 16 * in->segments * sizeof(int32_t));
  run->winner_noise = malloc((rows + 15) / 16 * 16 * in->segments * sizeof(float));
  run->count = calloc(n, sizeof(uint64_t));
  run->job = (pt_fused_argmax_job){
      .terms = terms, .segments = in->segments, .offsets = in->offsets, .a = in->a,
      .stride = (rows + 15) / 16 * 16, .winner = run->winner, .count = run->count,
      .winner_noise = run->winner_noise};
  return terms_ok(&run->terms) && run->winner && run->winner_noise && run->count ? 0 : -1;
}

static void run_free(fused_run *run) {
  terms_free(&run->terms);
  free(run->winner);
  free(run->winner_noise);
  free(run->count);
}

/* a: Gumbel exp((max x - x_i) / sigma) per segment, through `k`'s perturb_tile as the library
   forms it; normal: x itself. */
static void fused_coefficients(fused_input *in, const pt_kernel_table *k) {
  if (!in->gumbel) {
    memcpy(in->a, in->x, in->n * sizeof(float));
    return;
  }
  static float tmp[5000];
  int32_t top[8];
  for (size_t s = 0; s < in->segments; s++) {
    top[s] = (int32_t)in->offsets[s];
    for (size_t i = in->offsets[s]; i < in->offsets[s + 1]; i++)
      if (in->x[i] > in->x[top[s]]) top[s] = (int32_t)i;
    in->margin[s] = pt_fused_topk_margin(in->x + in->offsets[s],
                                         in->offsets[s + 1] - in->offsets[s], in->sigma);
  }
  pt_fused_gumbel_coefficients(k, in->x, in->segments, in->offsets, top, in->sigma, tmp, in->a);
}

/* The cotangent in one block, or per segment (block_diagonal), with its baselines. */
static void fused_blocks(fused_input *in, int per_segment) {
  in->blocks = per_segment ? in->segments : 1;
  for (size_t b = 0; b <= in->blocks; b++) in->block_at[b] = per_segment ? in->offsets[b] : b * in->n;
  for (size_t b = 0; b < in->blocks; b++) in->c_base[b] = 0.25 * (double)(b + 1);
}

/* The case's first row (finite and moderate: a non-finite or huge value becomes 0), cut into
   one to three segments, with a tile at an offset, a key, weights and what to accumulate from
   the case's seed. */
static void fused_from_case(fused_input *in, int gumbel, const pt_case *c, const float *x) {
  uint64_t s = c->seed;
  in->gumbel = gumbel;
  in->n = c->d < 5000 ? c->d : 5000;
  for (size_t i = 0; i < in->n; i++) in->x[i] = isfinite(x[i]) && fabsf(x[i]) < 1e30f ? x[i] : 0.0f;
  const size_t n = in->n, pick = (size_t)(pt_test_rand(&s) % 3);
  in->segments = pick == 2 && n >= 3 ? 3 : pick == 1 && n >= 2 ? 2 : 1;
  in->offsets[0] = 0;
  if (in->segments == 2) in->offsets[1] = 1 + n / 3;
  if (in->segments == 3) {
    in->offsets[1] = 1;
    in->offsets[2] = 1 + (n - 1) / 2;
  }
  in->offsets[in->segments] = n;
  in->sigma = 0.5f;
  in->key = (pt_key){pt_test_rand(&s), pt_test_rand(&s)};
  in->m0 = pt_test_rand(&s) % 5000;
  in->rows = 1 + (size_t)(pt_test_rand(&s) % 37);
  for (size_t i = 0; i < n; i++) {
    in->y_bar[i] = (float)((i * 7) % 5) * 0.25f - 0.5f;
    in->x_dot[i] = (float)((i * 3) % 7) * 0.125f - 0.375f;
  }
  const uint64_t how = pt_test_rand(&s);
  in->antithetic = (how >> 3 & 1) != 0;
  in->pair_weight = 0.0;
  if (in->antithetic) { /* whole pairs, as the paths' tiles hold them */
    in->m0 &= ~(uint64_t)1;
    in->rows += in->rows & 1;
    /* leaving out pairs: a w of some M (any is one) */
    if (how >> 4 & 1) in->pair_weight = 1.0 / (double)(in->m0 + in->rows + 2);
  }
  fused_blocks(in, how & 1);
  in->rows_of_g = (how >> 1 & 1) == 0;
  in->sums = (how >> 2 & 1) != 0;
}

/* Checks one run against the reference: winners (up to float near-ties) and their counts, then
   the terms on the cotangents of those winners.  Returns 0 if all agree. */
static int fused_against_reference(const fused_input *in, const fused_run *run, const char *isa,
                                   pt_parity_result *res) {
  const size_t n = in->n, rows = in->rows, blocks = in->blocks;
  double *key = malloc(n * sizeof *key), *c = calloc(rows * blocks, sizeof *c);
  int bad = !key || !c;
  if (bad) pt_parity_fail(res, "out of memory");
  for (size_t r = 0; r < rows && !bad; r++)
    for (size_t s = 0; s < in->segments && !bad; s++) {
      const size_t o = in->offsets[s], e = in->offsets[s + 1];
      double mx = -INFINITY;
      for (size_t i = o; i < e; i++) mx = fmax(mx, in->x[i]);
      size_t best = o;
      for (size_t i = o; i < e; i++) {
        const double z = ref_noise(in, r, i);
        key[i] = in->gumbel ? z * exp((mx - in->x[i]) / in->sigma) : -(in->x[i] + (double)in->sigma * z);
        if (key[i] < key[best]) best = i;
      }
      const size_t got = (size_t)run->winner[s * run->job.stride + r];
      if (got < o || got >= e ||
          (got != best && fabs(key[got] - key[best]) > 1e-5 * fabs(key[best]) + 1e-30)) {
        pt_parity_fail(res,
                       "fused_argmax %s: sample %zu segment %zu: winner %zu (key %.9g), reference "
                       "%zu (key %.9g)",
                       isa, r, s, got, got < n ? key[got] : NAN, best, key[best]);
        bad = 1;
      } else {
        c[r * blocks + (blocks > 1 ? s : 0)] += in->y_bar[got];
      }
    }
  for (size_t i = 0; i < n && !bad; i++) {
    uint64_t won = 0;
    for (size_t s = 0; s < in->segments; s++)
      for (size_t r = 0; r < rows; r++) won += (size_t)run->winner[s * run->job.stride + r] == i;
    if (run->count[i] != won) {
      pt_parity_fail(res, "fused_argmax %s: input %zu counted %llu times, won %llu", isa, i,
           (unsigned long long)run->count[i], (unsigned long long)won);
      bad = 1;
    }
  }
  if (!bad) {
    char what[64];
    snprintf(what, sizeof what, "fused_argmax %s", isa);
    bad = terms_against_reference(in, &run->terms, c, what, res);
  }
  free(key);
  free(c);
  return bad;
}

/* The same winners, counts and winners' noise, bit for bit. */
static int winners_same(const fused_input *in, const fused_run *a, const fused_run *b) {
  for (size_t s = 0; s < in->segments; s++)
    if (memcmp(a->winner + s * a->job.stride, b->winner + s * b->job.stride,
               in->rows * sizeof(int32_t)) ||
        memcmp(a->winner_noise + s * a->job.stride, b->winner_noise + s * b->job.stride,
               in->rows * sizeof(float)))
      return 0;
  return memcmp(a->count, b->count, in->n * sizeof(uint64_t)) == 0;
}

static int fused_same(const fused_input *in, const fused_run *a, const fused_run *b) {
  return winners_same(in, a, b) && terms_same(in, &a->terms, &b->terms);
}

/* One run of the value alone on the candidates' path (bounded_min 0, whatever the segments'
   length), samples one per lane up to bounded_short_max inputs and along their inputs above. */
static void value_by_path(fused_kernel kernel, const fused_input *in, const fused_run *with,
                          const char *isa, const char *what, size_t bounded_short_max,
                          pt_parity_result *res) {
  fused_run value;
  if (run_alloc(&value, in) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    value.job.thresholds =
        (pt_fused_thresholds){with->job.thresholds.short_max, 0, bounded_short_max};
    pt_fused_terms *t = &value.job.terms;
    t->y_bar = t->x_dot = NULL;
    t->g = NULL;
    t->g_sum = t->c_sum = t->t_sum = NULL;
    kernel(&value.job, in->m0, in->rows);
    if (!winners_same(in, &value, with))
      pt_parity_fail(res, "fused_argmax %s: the value alone differs from the run with terms "
                          "(%s, n %zu, %zu segments, m0 %llu, rows %zu%s, samples %s)",
                     isa, what, in->n, in->segments, (unsigned long long)in->m0, in->rows,
                     in->antithetic ? ", antithetic" : "",
                     in->n <= bounded_short_max ? "one per lane" : "along their inputs");
  }
  run_free(&value);
}

/* The value alone (a job wanting no terms: the Gumbel kernel then scans the uniforms and takes
   a logarithm only where a key may still win) against the same kernel's run with every term,
   which has each input's noise: the same winners, counts and winners' noise, bit for bit. */
static void value_against_terms(fused_kernel kernel, const fused_input *in, const fused_run *with,
                                const char *isa, const char *what, pt_parity_result *res) {
  value_by_path(kernel, in, with, isa, what, 0, res);
  if (in->n <= PT_FUSED_BOUNDED_SHORT)
    value_by_path(kernel, in, with, isa, what, PT_FUSED_BOUNDED_SHORT, res);
}

/* value_against_terms on x scaled by 1e4 (finite): most a_i overflow to +inf and their keys tie
   at +inf, the rest span the floats, where the bound of the skipped inputs is tightest. */
static void value_on_spread(fused_kernel kernel, const pt_kernel_table *scalar, const fused_input *in,
                            pt_fused_thresholds thresholds, const char *isa,
                            pt_parity_result *res) {
  static fused_input wide;
  wide = *in;
  for (size_t i = 0; i < wide.n; i++) wide.x[i] *= 1e4f;
  fused_coefficients(&wide, scalar);
  fused_run with;
  if (run_alloc(&with, &wide) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    with.job.thresholds = thresholds;
    kernel(&with.job, wide.m0, wide.rows);
    value_against_terms(kernel, &wide, &with, isa, "x times 1e4", res);
  }
  run_free(&with);
}

/* Samples short enough for the lanes-per-sample path (short_max) against the same kernel's
   path along the inputs (short_max 0): the same winners, counts and terms, bit for bit. */
static void short_against_long(fused_kernel kernel, const fused_input *in, const fused_run *run,
                               const char *isa, pt_parity_result *res) {
  fused_run lanes, along;
  if (run_alloc(&lanes, in) != 0 || run_alloc(&along, in) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    lanes.job.thresholds = (pt_fused_thresholds){PT_FUSED_SHORT, SIZE_MAX, 0};
    along.job.thresholds = (pt_fused_thresholds){0, SIZE_MAX, 0};
    kernel(&lanes.job, in->m0, in->rows);
    kernel(&along.job, in->m0, in->rows);
    if (!fused_same(in, &lanes, &along) || !fused_same(in, &lanes, run))
      pt_parity_fail(res, "fused_argmax %s: samples of n %zu one per lane differ from along their "
                          "inputs (%zu segments, m0 %llu, rows %zu)",
                     isa, in->n, in->segments, (unsigned long long)in->m0, in->rows);
  }
  run_free(&lanes);
  run_free(&along);
}

/* Each winner's noise is the stream's at its word, bit for bit as the scalar noise kernel
   (checked against the independent reference by parity_noise.c) gives it. */
static void winner_noise_against_stream(const pt_kernel_table *scalar, const fused_input *in,
                                        const fused_run *run, const char *isa,
                                        pt_parity_result *res) {
  float *z = malloc(in->rows * in->n * sizeof *z);
  if (!z) {
    pt_parity_fail(res, "out of memory");
    return;
  }
  stream_noise(scalar, in, in->m0, in->rows, z);
  for (size_t s = 0; s < in->segments; s++)
    for (size_t r = 0; r < in->rows; r++) {
      const size_t at = s * run->job.stride + r, w = (size_t)run->winner[at];
      if (memcmp(&run->winner_noise[at], &z[r * in->n + w], sizeof *z) != 0) {
        pt_parity_fail(res, "fused_argmax %s: noise of sample %zu's winner %zu: %a, stream %a",
                       isa, r, w, (double)run->winner_noise[at], (double)z[r * in->n + w]);
        free(z);
        return;
      }
    }
  free(z);
}

static void parity_fused(int gumbel, const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  static fused_input in;
  fused_from_case(&in, gumbel, c, x);
  fused_coefficients(&in, scalar);
  fused_run run, want;
  if (run_alloc(&run, &in) != 0 || run_alloc(&want, &in) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    const fused_kernel kernel = gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal;
    run.job.thresholds = k->fused;
    want.job.thresholds = scalar->fused;
    kernel(&run.job, in.m0, in.rows);
    (gumbel ? scalar->fused_argmax_gumbel : scalar->fused_argmax_normal)(&want.job, in.m0, in.rows);
    value_against_terms(kernel, &in, &run, pt_isa_name(k->isa), "the case's x", res);
    value_on_spread(kernel, scalar, &in, k->fused, pt_isa_name(k->isa), res);
    if (in.n <= PT_FUSED_SHORT) short_against_long(kernel, &in, &run, pt_isa_name(k->isa), res);
    if (!fused_same(&in, &run, &want))
      pt_parity_fail(
          res, "fused_argmax_%s %s differs from scalar (n %zu, %zu segments in %zu blocks, m0 "
               "%llu, rows %zu)",
          gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), in.n, in.segments, in.blocks,
          (unsigned long long)in.m0, in.rows);
    else if (k->isa == PT_ISA_SCALAR || c->seed % 4 == 0) { /* the reference is slow: a quarter */
      fused_against_reference(&in, &run, pt_isa_name(k->isa), res);
      winner_noise_against_stream(scalar, &in, &run, pt_isa_name(k->isa), res);
    }
  }
  run_free(&run);
  run_free(&want);
}

void parity_fused_argmax_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                                const pt_case *c, const float *x, pt_parity_result *res) {
  parity_fused(1, k, scalar, c, x, res);
}

void parity_fused_argmax_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                                const pt_case *c, const float *x, pt_parity_result *res) {
  parity_fused(0, k, scalar, c, x, res);
}

/* ---- fused_rank ----------------------------------------------------------------------------- */

typedef void (*rank_kernel)(const pt_fused_rank_job *job, uint64_t m0, size_t rows);

typedef struct rank_run {
  pt_fused_rank_job job;
  terms_run terms;
  float *keys;
  int32_t *rank;
  int64_t *work;
} rank_run;

static int rank_alloc(rank_run *run, const fused_input *in) {
  const size_t n = in->n, rows = in->rows;
  memset(run, 0, sizeof *run);
  const pt_fused_terms terms = terms_alloc(&run->terms, in);
  run->keys = malloc((rows * n + PT_FUSED_PAD) * sizeof(float));
  run->rank = malloc(rows * n * sizeof(int32_t));
  run->work = malloc(PT_SORT_WORK(n) * sizeof(int64_t));
  run->job = (pt_fused_rank_job){
      .terms = terms, .segments = in->segments, .offsets = in->offsets, .x = in->x,
      .keys = run->keys, .work = run->work, .rank = run->rank,
      .cells = in->permutation ? in->cells : NULL};
  return terms_ok(&run->terms) && run->keys && run->rank && run->work ? 0 : -1;
}

static void rank_free(rank_run *run) {
  terms_free(&run->terms);
  free(run->keys);
  free(run->rank);
  free(run->work);
}

static int rank_same(const fused_input *in, const rank_run *a, const rank_run *b) {
  const size_t n = in->n, rows = in->rows;
  return memcmp(a->rank, b->rank, rows * n * sizeof(int32_t)) == 0 &&
         memcmp(a->keys, b->keys, rows * n * sizeof(float)) == 0 &&
         terms_same(in, &a->terms, &b->terms);
}

/* Checks one run: the keys are x + sigma * (the stream's noise, from the scalar noise kernel)
   bit for bit, the ranks are the stable ranks of those keys within each segment (the
   independent merge sort of tests/reference.c), and the terms agree with the reference in
   double. */
static int rank_against_reference(const pt_kernel_table *scalar, const fused_input *in,
                                  const rank_run *run, const char *isa, pt_parity_result *res) {
  const size_t n = in->n, rows = in->rows;
  float *z = malloc(rows * n * sizeof *z);
  int32_t *perm = malloc(n * sizeof *perm), *tmp = malloc(n * sizeof *tmp);
  double *c = calloc(rows * in->blocks, sizeof *c);
  int bad = !z || !perm || !tmp || !c;
  if (bad) {
    pt_parity_fail(res, "out of memory");
  } else {
    stream_noise(scalar, in, in->m0, rows, z);
  }
  for (size_t r = 0; r < rows && !bad; r++) {
    const float *keys = run->keys + r * n;
    for (size_t i = 0; i < n; i++) {
      const float step = in->sigma * z[r * n + i], want = in->x[i] + step;
      if (memcmp(&keys[i], &want, sizeof want) != 0) {
        pt_parity_fail(res, "fused_rank %s: key of sample %zu input %zu: %a, x + sigma z %a", isa,
                       r, i, (double)keys[i], (double)want);
        bad = 1;
        break;
      }
    }
    for (size_t s = 0; s < in->segments && !bad; s++) {
      const size_t o = in->offsets[s], z = in->offsets[s + 1] - o;
      pt_ref_argsort(keys + o, z, perm, tmp);
      for (size_t p = 0; p < z && !bad; p++)
        if (run->rank[r * n + o + (size_t)perm[p]] != (int32_t)p) {
          pt_parity_fail(res, "fused_rank %s: sample %zu segment %zu: input %zu has rank %d, not "
                         "%zu", isa, r, s, o + (size_t)perm[p],
                         run->rank[r * n + o + (size_t)perm[p]], p);
          bad = 1;
        }
    }
    for (size_t s = 0; in->permutation && s < in->segments; s++) /* one block, or each's */
      for (size_t i = in->offsets[s]; i < in->offsets[s + 1]; i++) {
        const size_t d = in->offsets[s + 1] - in->offsets[s];
        const size_t p = (size_t)run->rank[r * n + i], column = i - in->offsets[s];
        c[r * in->blocks + (in->blocks > 1 ? s : 0)] +=
            (double)in->y_bar[in->cells[s] + p * d + column];
      }
    for (size_t b = 0; !in->permutation && b < in->blocks; b++) /* one block, or each segment's */
      for (size_t i = in->block_at[b]; i < in->block_at[b + 1]; i++)
        c[r * in->blocks + b] += (double)run->rank[r * n + i] * in->y_bar[i];
  }
  if (!bad) {
    char what[64];
    snprintf(what, sizeof what, "fused_rank %s", isa);
    bad = terms_against_reference(in, &run->terms, c, what, res);
  }
  free(z);
  free(perm);
  free(tmp);
  free(c);
  return bad;
}

static void parity_rank(int gumbel, const pt_kernel_table *k, const pt_kernel_table *scalar,
                        const pt_case *c, const float *x, pt_parity_result *res) {
  static fused_input in;
  fused_from_case(&in, gumbel, c, x);
  if (in.n > 1000) { /* ranking rows of the battery's longest lengths is slow */
    in.n = 1000;
    in.segments = 1;
    in.offsets[1] = in.n;
  }
  in.rows = 1 + in.rows / 4;
  in.rows += in.antithetic && in.rows % 2; /* whole pairs */
  /* a third of the cases whose blocks fit take the permutation matrix's cotangent, over the
     weights of its cells (the segments' d x d blocks) */
  in.cells[0] = 0;
  for (size_t s = 0; s < in.segments; s++) {
    const size_t d = in.offsets[s + 1] - in.offsets[s];
    in.cells[s + 1] = in.cells[s] + d * d;
  }
  in.permutation =
      c->seed % 3 == 0 && in.cells[in.segments] <= sizeof in.y_bar / sizeof in.y_bar[0];
  /* the cotangent in one block, or per segment (block_diagonal) for half the cases */
  fused_blocks(&in, in.segments > 1 && c->seed / 3 % 2);
  for (size_t j = 0; in.permutation && j < in.cells[in.segments]; j++)
    in.y_bar[j] = (float)((j * 7) % 5) * 0.25f - 0.5f;
  rank_run run, want;
  if (rank_alloc(&run, &in) != 0 || rank_alloc(&want, &in) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    (gumbel ? k->fused_rank_gumbel : k->fused_rank_normal)(&run.job, in.m0, in.rows);
    (gumbel ? scalar->fused_rank_gumbel : scalar->fused_rank_normal)(&want.job, in.m0, in.rows);
    if (!rank_same(&in, &run, &want))
      pt_parity_fail(res, "fused_rank_%s %s differs from scalar (n %zu, m0 %llu, rows %zu)",
           gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), in.n, (unsigned long long)in.m0,
           in.rows);
    else if (k->isa == PT_ISA_SCALAR || c->seed % 4 == 0)
      rank_against_reference(scalar, &in, &run, pt_isa_name(k->isa), res);
  }
  rank_free(&run);
  rank_free(&want);
}

void parity_fused_rank_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res) {
  parity_rank(1, k, scalar, c, x, res);
}

void parity_fused_rank_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res) {
  parity_rank(0, k, scalar, c, x, res);
}

/* ---- fused_topk ----------------------------------------------------------------------------- */

typedef struct topk_run {
  pt_fused_topk_job job;
  terms_run terms;
  size_t slot_at[9];
  int32_t *winner, *survivor_at, *rank;
  float *keys, *bound, *survivor;
  int64_t *work;
  uint64_t *count;
} topk_run;

/* A run of in's top-k kernel, with the Gumbel kernels' bounds when `bounded`. */
static int topk_alloc(topk_run *run, const fused_input *in, int bounded) {
  const size_t n = in->n, rows = in->rows;
  memset(run, 0, sizeof *run);
  const pt_fused_terms terms = terms_alloc(&run->terms, in);
  for (size_t s = 0; s < in->segments; s++) run->slot_at[s + 1] = run->slot_at[s] + in->ks[s];
  run->winner = malloc(run->slot_at[in->segments] * rows * sizeof(int32_t));
  run->keys = malloc((n + PT_FUSED_PAD) * sizeof(float));
  run->bound = malloc((n + PT_FUSED_PAD) * sizeof(float));
  run->survivor = malloc((n + 1) * sizeof(float));
  run->survivor_at = malloc((n + 1) * sizeof(int32_t));
  run->rank = malloc(n * sizeof(int32_t));
  run->work = malloc(PT_SORT_WORK(n) * sizeof(int64_t));
  run->count = calloc(n, sizeof(uint64_t));
  run->job = (pt_fused_topk_job){
      .terms = terms, .segments = in->segments, .offsets = in->offsets, .slot_at = run->slot_at,
      .x = in->x, .a = in->gumbel && bounded ? in->a : NULL, .margin = in->margin,
      .stride = rows, .winner = run->winner, .count = run->count, .keys = run->keys,
      .bound = run->bound, .survivor = run->survivor, .survivor_at = run->survivor_at,
      .rank = run->rank, .work = run->work};
  return terms_ok(&run->terms) && run->winner && run->keys && run->bound && run->survivor &&
                 run->survivor_at && run->rank && run->work && run->count
             ? 0
             : -1;
}

static void topk_free(topk_run *run) {
  terms_free(&run->terms);
  free(run->winner);
  free(run->keys);
  free(run->bound);
  free(run->survivor);
  free(run->survivor_at);
  free(run->rank);
  free(run->work);
  free(run->count);
}

/* Each segment's k: half of the cases take at most an eighth of it (the kernel's bound), the
   others any k up to all of it (ranked whole). */
static void topk_ks(fused_input *in, uint64_t seed) {
  for (size_t s = 0; s < in->segments; s++) {
    const size_t z = in->offsets[s + 1] - in->offsets[s];
    const size_t most = pt_test_rand(&seed) & 1 ? z : (z / 8 ? z / 8 : 1);
    in->ks[s] = 1 + (size_t)(pt_test_rand(&seed) % most);
  }
}

static int topk_same(const fused_input *in, const topk_run *a, const topk_run *b) {
  return memcmp(a->winner, b->winner, a->slot_at[in->segments] * in->rows * sizeof(int32_t)) == 0 &&
         memcmp(a->count, b->count, in->n * sizeof(uint64_t)) == 0 &&
         terms_same(in, &a->terms, &b->terms);
}

/* Checks one run: each segment's winners are, in ascending index order, the last k of the
   stable order (the independent merge sort of tests/reference.c) of the keys x + sigma * (the
   stream's noise, from the scalar noise kernel), they are counted, and the terms agree with the
   reference in double on their cotangents (summed per segment, in slot order, as the kernel
   does).  Returns 0 if all agree. */
static int topk_against_reference(const pt_kernel_table *scalar, const fused_input *in,
                                  const topk_run *run, const char *isa, pt_parity_result *res) {
  const size_t n = in->n, rows = in->rows, blocks = in->blocks, stride = run->job.stride;
  float *z = malloc(rows * n * sizeof *z), *keys = malloc(n * sizeof *keys);
  int32_t *perm = malloc(n * sizeof *perm), *tmp = malloc(n * sizeof *tmp);
  unsigned char *won = malloc(n);
  uint64_t *count = calloc(n, sizeof *count);
  double *c = calloc(rows * blocks, sizeof *c);
  int bad = !z || !keys || !perm || !tmp || !won || !count || !c;
  if (bad) pt_parity_fail(res, "out of memory");
  else stream_noise(scalar, in, in->m0, rows, z);
  for (size_t r = 0; r < rows && !bad; r++) {
    for (size_t i = 0; i < n; i++) {
      const float step = in->sigma * z[r * n + i];
      keys[i] = in->x[i] + step;
    }
    memset(won, 0, n);
    for (size_t s = 0; s < in->segments && !bad; s++) {
      const size_t o = in->offsets[s], d = in->offsets[s + 1] - o, k = in->ks[s];
      pt_ref_argsort(keys + o, d, perm, tmp);
      for (size_t p = d - k; p < d; p++) won[o + (size_t)perm[p]] = 1;
      size_t slot = run->slot_at[s];
      double sum = 0.0;
      for (size_t i = o; i < o + d && !bad; i++) {
        if (!won[i]) continue;
        const int32_t got = run->winner[slot++ * stride + r];
        if (got != (int32_t)i) {
          pt_parity_fail(res, "fused_topk %s: sample %zu segment %zu (k %zu of %zu): slot %zu "
                              "holds %d, the reference %zu", isa, r, s, k, d,
                         slot - 1 - run->slot_at[s], got, i);
          bad = 1;
        }
        count[i]++;
        sum += in->y_bar[i];
      }
      if (blocks > 1) c[r * blocks + s] = sum;
      else c[r] += sum;
    }
  }
  if (!bad && memcmp(count, run->count, n * sizeof *count) != 0) {
    pt_parity_fail(res, "fused_topk %s: the counts are not the winners'", isa);
    bad = 1;
  }
  if (!bad) {
    char what[64];
    snprintf(what, sizeof what, "fused_topk %s", isa);
    bad = terms_against_reference(in, &run->terms, c, what, res);
  }
  free(z);
  free(keys);
  free(perm);
  free(tmp);
  free(won);
  free(count);
  free(c);
  return bad;
}

typedef void (*topk_kernel)(const pt_fused_topk_job *job, uint64_t m0, size_t rows);

/* The same kernel on the same tile as `with` (bounded, with every term), with the value alone
   (a Gumbel kernel then keeps the uniforms and bounds the keys from them) and without the
   bounds: the same winners and counts, and without the bounds the same terms, bit for bit. */
static void topk_variants(topk_kernel kernel, const fused_input *in, const topk_run *with,
                          const char *isa, const char *what, pt_parity_result *res) {
  topk_run value, plain;
  if (topk_alloc(&value, in, 1) != 0 || topk_alloc(&plain, in, 0) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    pt_fused_terms *t = &value.job.terms;
    t->y_bar = t->x_dot = NULL;
    t->g = NULL;
    t->g_sum = t->c_sum = t->t_sum = NULL;
    kernel(&value.job, in->m0, in->rows);
    kernel(&plain.job, in->m0, in->rows);
    const size_t slots = with->slot_at[in->segments] * in->rows * sizeof(int32_t);
    if (memcmp(value.winner, with->winner, slots) != 0 ||
        memcmp(value.count, with->count, in->n * sizeof(uint64_t)) != 0)
      pt_parity_fail(res, "fused_topk %s: the value alone differs from the run with terms (%s, "
                          "n %zu, %zu segments, m0 %llu, rows %zu)",
                     isa, what, in->n, in->segments, (unsigned long long)in->m0, in->rows);
    if (!topk_same(in, &plain, with))
      pt_parity_fail(res, "fused_topk %s: the run without bounds differs (%s, n %zu, %zu "
                          "segments, m0 %llu, rows %zu)",
                     isa, what, in->n, in->segments, (unsigned long long)in->m0, in->rows);
  }
  topk_free(&value);
  topk_free(&plain);
}

/* topk_variants and the reference on `in` and on its x scaled by 1e4 (finite): most a_i
   overflow to +inf, and the margins are wide. */
static void topk_checks(topk_kernel kernel, const pt_kernel_table *scalar, const fused_input *in,
                        const topk_run *run, const char *isa, int reference,
                        pt_parity_result *res) {
  topk_variants(kernel, in, run, isa, "the case's x", res);
  if (reference) topk_against_reference(scalar, in, run, isa, res);
  static fused_input wide;
  wide = *in;
  for (size_t i = 0; i < wide.n; i++) wide.x[i] *= 1e4f;
  fused_coefficients(&wide, scalar);
  topk_run spread;
  if (topk_alloc(&spread, &wide, 1) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    kernel(&spread.job, wide.m0, wide.rows);
    topk_variants(kernel, &wide, &spread, isa, "x times 1e4", res);
    if (reference) topk_against_reference(scalar, &wide, &spread, isa, res);
  }
  topk_free(&spread);
}

static void parity_topk(int gumbel, const pt_kernel_table *k, const pt_kernel_table *scalar,
                        const pt_case *c, const float *x, pt_parity_result *res) {
  static fused_input in;
  fused_from_case(&in, gumbel, c, x);
  topk_ks(&in, c->seed ^ 0x70b4);
  /* keys the API never makes but the kernel orders as the row kernels do: a NaN (the
     greatest), and a run of inputs so large that their keys tie (the later index greater) */
  if (c->seed % 5 == 0) in.x[in.n / 2] = NAN;
  if (c->seed % 5 == 1)
    for (size_t i = in.n / 3; i < in.n / 3 + 40 && i < in.n; i++) in.x[i] = 0x1p100f;
  /* and a run of equal inputs whose keys tie in part (sigma G is a few ulps of 2^22): the
     bounds' margin must cover the order of the float keys */
  if (c->seed % 5 == 2)
    for (size_t i = in.n / 4; i < in.n / 4 + 40 && i < in.n; i++) in.x[i] = 0x1p22f;
  /* and a first segment of one input far above the others, whose coefficients straddle the
     float's overflow (some infinite, the rest up to 2^128): the bounds must not rule out an
     input of infinite a */
  if (c->seed % 5 == 3)
    for (size_t i = 1; i < in.offsets[1]; i++)
      in.x[i] = in.x[0] - in.sigma * (88.0f + (float)(i % 10) * 0.1f);
  /* and the same straddle where the margin rests on X / sigma (1e7: lambda near 9.5), on keys
     whose ulp is sigma, so that those near the top tie by rounding: inputs within 9 sigma of
     the top, and others 88 and 92 sigma below it (a finite but near 2^127, or infinite) */
  if (c->seed % 7 == 6) {
    in.sigma = 1.0f;
    in.x[0] = 1e7f;
    for (size_t i = 1; i < in.offsets[1]; i++)
      in.x[i] = 1e7f - (i % 2 ? (float)(i % 10) : i % 4 ? 92.0f : 88.0f);
  }
  /* and sigmas at the float's ends on x = 0: keys that overflow and tie at +inf, or subnormal
     ones that tie by rounding, where relative roundings bound nothing */
  if (c->seed % 7 == 4 || c->seed % 7 == 5) {
    in.sigma = c->seed % 7 == 4 ? 3e38f : 1e-44f;
    memset(in.x, 0, in.n * sizeof *in.x);
  }
  fused_coefficients(&in, scalar);
  const topk_kernel kernel = gumbel ? k->fused_topk_gumbel : k->fused_topk_normal;
  topk_run run, want;
  if (topk_alloc(&run, &in, 1) != 0 || topk_alloc(&want, &in, 1) != 0) {
    pt_parity_fail(res, "out of memory");
  } else {
    kernel(&run.job, in.m0, in.rows);
    (gumbel ? scalar->fused_topk_gumbel : scalar->fused_topk_normal)(&want.job, in.m0, in.rows);
    if (!topk_same(&in, &run, &want))
      pt_parity_fail(res, "fused_topk_%s %s differs from scalar (n %zu, %zu segments in %zu "
                          "blocks, m0 %llu, rows %zu)",
                     gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), in.n, in.segments,
                     in.blocks, (unsigned long long)in.m0, in.rows);
    else /* the reference is slow: a quarter */
      topk_checks(kernel, scalar, &in, &run, pt_isa_name(k->isa),
                  k->isa == PT_ISA_SCALAR || c->seed % 4 == 0, res);
  }
  topk_free(&run);
  topk_free(&want);
}

void parity_fused_topk_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res) {
  parity_topk(1, k, scalar, c, x, res);
}

void parity_fused_topk_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                              const pt_case *c, const float *x, pt_parity_result *res) {
  parity_topk(0, k, scalar, c, x, res);
}

/* ---- known answers ----------------------------------------------------------------------------- */

/* A fixed tile: 40 samples from sample 3 over inputs in 4 segments (or 5 inputs in one, shorter
   than a vector, or the 37 in 4 with a cotangent per segment, the group's sums and no
   Jacobian rows: the terms of block_diagonal and the leave-one-out). */
enum { KNOWN_SEGMENTS, KNOWN_SHORT, KNOWN_BLOCKS, KNOWN_TILES };
static const char *const known_names[KNOWN_TILES] = {"segments", "short", "blocks and sums"};

static void known_input(fused_input *in, int gumbel, int tile) {
  memset(in, 0, sizeof *in);
  const int packed = tile == KNOWN_SHORT;
  in->gumbel = gumbel;
  in->n = packed ? 5 : 37;
  in->segments = packed ? 1 : 4;
  const size_t offsets[5] = {0, 5, 17, 18, 37};
  memcpy(in->offsets, offsets, sizeof offsets);
  if (packed) in->offsets[1] = 5;
  for (size_t i = 0; i < in->n; i++) {
    in->x[i] = (float)((i * 13) % 17) * 0.05f - 0.4f;
    in->y_bar[i] = (float)((i * 7) % 5) * 0.25f - 0.5f;
    in->x_dot[i] = (float)((i * 3) % 7) * 0.125f - 0.375f;
  }
  in->sigma = 0.3f;
  in->key = (pt_key){0x1234, 0x5678};
  in->m0 = 3;
  in->rows = 40;
  fused_blocks(in, tile == KNOWN_BLOCKS);
  in->rows_of_g = tile != KNOWN_BLOCKS;
  in->sums = tile == KNOWN_BLOCKS;
}

/* Hashes of the kernel outputs, [gumbel][tile]: {normal, Gumbel} x {37 inputs in 4 segments, 5
   in one, 37 in 4 blocks with the sums}.  Recorded from this library on the stream's u35 logs
   (the first two: scalar, AVX2, AVX-512 and NEON under qemu agree; the third: scalar and AVX2,
   on a machine without AVX-512 or an emulator); the winners, t, grad_nu, the vjp sums and the
   group's sums are checked against the independent reference first. */
static const uint64_t known_kernel[2][KNOWN_TILES] = {
    {0x4de71d3e14830aa7ull, 0xe748ec250383569bull, 0x433e70d081be2476ull},
    {0xf5b559b468ce01f7ull, 0xfad80a28af967625ull, 0x709fa61dcadcb686ull}};

/* The same for the ranking kernels, [gumbel][tile] (one block: the third tile has the sums
   without the Jacobian's rows); the keys are checked bit for bit against the stream's noise and
   the ranks against the reference's merge sort first. */
static const uint64_t known_rank[2][KNOWN_TILES] = {
    {0x395b654995fcea3dull, 0x9de167608294012eull, 0x672adf36b9314142ull},
    {0xb82959085d18e170ull, 0xa3f177571b06a859ull, 0xc54ca84a7f94f98aull}};

static void known_rank_kernels(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               pt_parity_result *res) {
  static fused_input in;
  for (int gumbel = 0; gumbel < 2; gumbel++)
    for (int tile = 0; tile < KNOWN_TILES; tile++) {
      known_input(&in, gumbel, tile);
      in.segments = 1; /* the known tiles rank whole rows */
      in.offsets[1] = in.n;
      fused_blocks(&in, 0);
      rank_run run;
      res->checked++;
      if (rank_alloc(&run, &in) != 0) {
        pt_parity_fail(res, "out of memory");
        rank_free(&run);
        return;
      }
      (gumbel ? k->fused_rank_gumbel : k->fused_rank_normal)(&run.job, in.m0, in.rows);
      uint64_t h = PT_HASH_START;
      h = pt_hash32(h, run.rank, in.rows * in.n);
      h = pt_hash32(h, run.keys, in.rows * in.n);
      h = terms_hash(h, &in, &run.terms);
      if (rank_against_reference(scalar, &in, &run, pt_isa_name(k->isa), res) == 0 &&
          h != known_rank[gumbel][tile])
        pt_parity_fail(res, "fused_rank_%s %s: known tile (%s) hashes to %#018llx, want %#018llx",
             gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), known_names[tile],
             (unsigned long long)h, (unsigned long long)known_rank[gumbel][tile]);
      rank_free(&run);
    }
}

/* The same for the top-k kernels, [gumbel][tile], with k = {2, 1, 1, 2} of the segments (the
   second and the last through the bound) and 2 of the short tile's 5: recorded from scalar,
   AVX2 and AVX-512, which agree; the winners are checked against the reference's merge sort
   and the terms against the reference first. */
static const uint64_t known_topk[2][KNOWN_TILES] = {
    {0x1b2fa1d391385809ull, 0xea4c296b9030ed35ull, 0x5c25a5aa45298cadull},
    {0x94c7160775bf82c4ull, 0x420a56390c5530c2ull, 0xe72182e34c06fe60ull}};

static void known_topk_kernels(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               pt_parity_result *res) {
  static fused_input in;
  const size_t ks[4] = {2, 1, 1, 2};
  for (int gumbel = 0; gumbel < 2; gumbel++)
    for (int tile = 0; tile < KNOWN_TILES; tile++) {
      known_input(&in, gumbel, tile);
      memcpy(in.ks, ks, sizeof ks);
      if (tile == KNOWN_SHORT) in.ks[0] = 2;
      fused_coefficients(&in, scalar);
      topk_run run;
      res->checked++;
      if (topk_alloc(&run, &in, 1) != 0) {
        pt_parity_fail(res, "out of memory");
        topk_free(&run);
        return;
      }
      (gumbel ? k->fused_topk_gumbel : k->fused_topk_normal)(&run.job, in.m0, in.rows);
      uint64_t h = PT_HASH_START;
      h = pt_hash32(h, run.winner, run.slot_at[in.segments] * in.rows);
      h = terms_hash(h, &in, &run.terms);
      if (topk_against_reference(scalar, &in, &run, pt_isa_name(k->isa), res) == 0 &&
          h != known_topk[gumbel][tile])
        pt_parity_fail(res, "fused_topk_%s %s: known tile (%s) hashes to %#018llx, want %#018llx",
             gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), known_names[tile],
             (unsigned long long)h, (unsigned long long)known_topk[gumbel][tile]);
      topk_free(&run);
    }
}

static void known_kernels(const pt_kernel_table *k, pt_parity_result *res) {
  static fused_input in;
  for (int gumbel = 0; gumbel < 2; gumbel++)
    for (int tile = 0; tile < KNOWN_TILES; tile++) {
      known_input(&in, gumbel, tile);
      fused_coefficients(&in, k);
      fused_run run;
      res->checked++;
      if (run_alloc(&run, &in) != 0) {
        pt_parity_fail(res, "out of memory");
        run_free(&run);
        return;
      }
      (gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal)(&run.job, in.m0, in.rows);
      uint64_t h = PT_HASH_START;
      h = pt_hash32(h, in.a, in.n);
      for (size_t s = 0; s < in.segments; s++)
        for (size_t r = 0; r < in.rows; r++)
          h = pt_hash32(h, &run.winner[s * run.job.stride + r], 1);
      h = terms_hash(h, &in, &run.terms);
      if (fused_against_reference(&in, &run, pt_isa_name(k->isa), res) == 0 &&
          h != known_kernel[gumbel][tile])
        pt_parity_fail(res, "fused_argmax_%s %s: known tile (%s) hashes to %#018llx, want %#018llx",
             gumbel ? "gumbel" : "normal", pt_isa_name(k->isa), known_names[tile],
             (unsigned long long)h, (unsigned long long)known_kernel[gumbel][tile]);
      run_free(&run);
    }
}

/* ranks of one point, stably ascending: the black box of the generic path */
static int rank_callback(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++)
    for (size_t i = 0; i < d; i++) {
      size_t r = 0;
      for (size_t j = 0; j < d; j++) r += x[b * d + j] < x[b * d + i] || (x[b * d + j] == x[b * d + i] && j < i);
      y[b * d + i] = (float)r;
    }
  return 0;
}

/* Hashes of every operation of perturbed functions through the public API: {argmax segments
   Gumbel, argmax segments normal, black-box ranks Gumbel, built-in ranks normal}, recorded as
   above; the Criterion suite checks these functions against closed forms. */
static const uint64_t known_api[4] = {0x5612a0351c0bf1ceull, 0xe51f477b677e720full,
                                      0x616715ba0d63a0acull, 0xab532e5e329576f5ull};

static void known_api_results(const pt_kernel_table *k, pt_parity_result *res) {
  static size_t d = 37;
  const size_t sizes[4] = {5, 12, 1, 19};
  static fused_input in;
  known_input(&in, 1, 0);
  pt_fn *fs[4] = {NULL, NULL, NULL, NULL}, *ps[4] = {NULL, NULL, NULL, NULL};
  const pt_noise noises[4] = {PT_NOISE_GUMBEL, PT_NOISE_NORMAL, PT_NOISE_GUMBEL, PT_NOISE_NORMAL};
  const pt_isa before = pt_isa_active();
  float *out = malloc(4 * 37 * 38 * sizeof *out);
  int ok = out && pt_isa_select(k->isa) == PT_OK &&
           pt_fn_argmax_one_hot_segments(sizes, 4, &fs[0]) == PT_OK &&
           pt_fn_argmax_one_hot_segments(sizes, 4, &fs[1]) == PT_OK &&
           pt_fn_from_callback(d, d, rank_callback, &d, &fs[2]) == PT_OK &&
           pt_fn_ranking(d, &fs[3]) == PT_OK;
  for (int f = 0; f < 4 && ok; f++) {
    res->checked++;
    const pt_key key = {0xabc, (uint64_t)f};
    ok = pt_make_perturbed_fun(fs[f], 700, 0.3f, noises[f], 1, &ps[f]) == PT_OK &&
         pt_fn_eval(ps[f], key, in.x, out) == PT_OK &&
         pt_fn_vjp(ps[f], key, in.x, in.y_bar, out + 37) == PT_OK &&
         pt_fn_jvp(ps[f], key, in.x, in.x_dot, out + 74) == PT_OK &&
         pt_fn_jacobian(ps[f], key, in.x, out + 111) == PT_OK;
    if (!ok) break;
    const uint64_t h = pt_hash32(PT_HASH_START, out, 111 + 37 * 37);
    if (h != known_api[f])
      pt_parity_fail(
          res, "%s: perturbed function %d through the API hashes to %#018llx, want %#018llx",
          pt_isa_name(k->isa), f, (unsigned long long)h, (unsigned long long)known_api[f]);
  }
  if (!ok) pt_parity_fail(res, "%s: the API known answers could not run", pt_isa_name(k->isa));
  for (int f = 0; f < 4; f++) {
    pt_fn_free(ps[f]);
    pt_fn_free(fs[f]);
  }
  free(out);
  pt_isa_select(before);
}

/* Hashes of every first-order operation of the v0.2 optimizers through the public API: {the max
   of 4 segments, Gumbel, pathwise; the sort, normal, pathwise; the permutation matrix, Gumbel,
   score function; the pathwise gradient of a callback, Gumbel}, recorded from this library
   (scalar and AVX2 agree; tests/test_pathwise.c checks the functions against closed forms). */
static const uint64_t known_optimizers[4] = {0x30bd3c8131686a66ull, 0xcb9fee24c1c1a53aull,
                                             0x32b403f05afb7eedull, 0x193fcd711935d916ull};

/* y_i = x_i^2 / 2 for the generic pathwise path: its value and vjp as callbacks */
static int half_squares(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t i = 0; i < batch * d; i++) y[i] = 0.5f * x[i] * x[i];
  return 0;
}

static int half_squares_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const size_t d = *(const size_t *)user;
  for (size_t i = 0; i < d; i++) x_bar[i] = y_bar[i] * x[i];
  return 0;
}

static void known_optimizer_results(const pt_kernel_table *k, pt_parity_result *res) {
  static size_t d = 37;
  const size_t sizes[4] = {5, 12, 1, 19};
  static fused_input in;
  known_input(&in, 1, 0);
  static float v[81], out[81 + 37 + 81 + 81 * 37];
  for (size_t j = 0; j < 81; j++) v[j] = (float)((j * 7) % 5) * 0.25f - 0.5f;
  pt_fn *fs[4] = {NULL, NULL, NULL, NULL}, *ps[4] = {NULL, NULL, NULL, NULL};
  const pt_noise noises[4] = {PT_NOISE_GUMBEL, PT_NOISE_NORMAL, PT_NOISE_GUMBEL, PT_NOISE_GUMBEL};
  const pt_gradient gradients[4] = {PT_GRADIENT_AUTO, PT_GRADIENT_AUTO, PT_GRADIENT_AUTO,
                                    PT_GRADIENT_PATHWISE};
  const pt_isa before = pt_isa_active();
  int ok = pt_isa_select(k->isa) == PT_OK && pt_fn_max_segments(sizes, 4, &fs[0]) == PT_OK &&
           pt_fn_sort(d, &fs[1]) == PT_OK && pt_fn_permutation_matrix(9, &fs[2]) == PT_OK &&
           pt_fn_from_callback_ex(d, d, half_squares, half_squares_vjp, &d, NULL, 0,
                                  &fs[3]) == PT_OK;
  for (int f = 0; f < 4 && ok; f++) {
    res->checked++;
    pt_perturb_options o = pt_perturb_defaults();
    o.num_samples = 700;
    o.sigma = 0.3f;
    o.noise = noises[f];
    o.gradient = gradients[f];
    const pt_key key = {0xabc, (uint64_t)f};
    ok = pt_make_perturbed_fun_ex(fs[f], &o, &ps[f]) == PT_OK;
    const size_t n_in = pt_fn_n_in(fs[f]), n_out = pt_fn_n_out(fs[f]);
    ok = ok && pt_fn_eval(ps[f], key, in.x, out) == PT_OK &&
         pt_fn_vjp(ps[f], key, in.x, v, out + n_out) == PT_OK &&
         pt_fn_jvp(ps[f], key, in.x, v, out + n_out + n_in) == PT_OK &&
         pt_fn_jacobian(ps[f], key, in.x, out + 2 * n_out + n_in) == PT_OK;
    if (!ok) break;
    const uint64_t h = pt_hash32(PT_HASH_START, out, 2 * n_out + n_in + n_out * n_in);
    if (h != known_optimizers[f])
      pt_parity_fail(res, "%s: optimizer %d through the API hashes to %#018llx, want %#018llx",
                     pt_isa_name(k->isa), f, (unsigned long long)h,
                     (unsigned long long)known_optimizers[f]);
  }
  if (!ok)
    pt_parity_fail(res, "%s: the optimizers' known answers could not run", pt_isa_name(k->isa));
  for (int f = 0; f < 4; f++) {
    pt_fn_free(ps[f]);
    pt_fn_free(fs[f]);
  }
  pt_isa_select(before);
}

/* The same for the options of noise, through the public API: {the argmax of 4 segments, Gumbel,
   antithetic (fused); the max of 4 segments, normal, antithetic, pathwise (fused); the ranking,
   normal, multiplicative (the generic path); the callback's pathwise gradient, normal,
   multiplicative and antithetic}, at x + 1/80 (no input 0), recorded from this library (scalar,
   AVX2 and AVX-512 agree; tests/test_noise_options.c checks them against closed forms). */
static const uint64_t known_noise_options[4] = {0xd3a478d72afdce70ull, 0x0beae1a0206a9e14ull,
                                               0xbabf20a4ea14e7b1ull, 0xba2b79f92e98a5edull};

static void known_noise_option_results(const pt_kernel_table *k, pt_parity_result *res) {
  static size_t d = 37;
  const size_t sizes[4] = {5, 12, 1, 19};
  static fused_input in;
  known_input(&in, 1, 0);
  for (size_t i = 0; i < d; i++) in.x[i] += 0.0125f;
  static float v[37], out[37 + 37 + 37 + 37 * 37];
  for (size_t j = 0; j < 37; j++) v[j] = (float)((j * 7) % 5) * 0.25f - 0.5f;
  pt_fn *fs[4] = {NULL, NULL, NULL, NULL}, *ps[4] = {NULL, NULL, NULL, NULL};
  const pt_noise noises[4] = {PT_NOISE_GUMBEL, PT_NOISE_NORMAL, PT_NOISE_NORMAL, PT_NOISE_NORMAL};
  const int antithetic[4] = {1, 1, 0, 1}, multiplicative[4] = {0, 0, 1, 1};
  const pt_isa before = pt_isa_active();
  int ok = pt_isa_select(k->isa) == PT_OK &&
           pt_fn_argmax_one_hot_segments(sizes, 4, &fs[0]) == PT_OK &&
           pt_fn_max_segments(sizes, 4, &fs[1]) == PT_OK && pt_fn_ranking(d, &fs[2]) == PT_OK &&
           pt_fn_from_callback_ex(d, d, half_squares, half_squares_vjp, &d, NULL, 0,
                                  &fs[3]) == PT_OK;
  for (int f = 0; f < 4 && ok; f++) {
    res->checked++;
    pt_perturb_options o = pt_perturb_defaults();
    o.num_samples = 700;
    o.sigma = 0.3f;
    o.noise = noises[f];
    o.antithetic = antithetic[f];
    o.multiplicative = multiplicative[f];
    o.gradient = f == 3 ? PT_GRADIENT_PATHWISE : PT_GRADIENT_AUTO;
    const pt_key key = {0xdef, (uint64_t)f};
    ok = pt_make_perturbed_fun_ex(fs[f], &o, &ps[f]) == PT_OK;
    const size_t n_in = pt_fn_n_in(fs[f]), n_out = pt_fn_n_out(fs[f]);
    ok = ok && pt_fn_eval(ps[f], key, in.x, out) == PT_OK &&
         pt_fn_vjp(ps[f], key, in.x, v, out + n_out) == PT_OK &&
         pt_fn_jvp(ps[f], key, in.x, v, out + n_out + n_in) == PT_OK &&
         pt_fn_jacobian(ps[f], key, in.x, out + 2 * n_out + n_in) == PT_OK;
    if (!ok) break;
    const uint64_t h = pt_hash32(PT_HASH_START, out, 2 * n_out + n_in + n_out * n_in);
    if (h != known_noise_options[f])
      pt_parity_fail(res, "%s: noise option %d through the API hashes to %#018llx, want %#018llx",
                     pt_isa_name(k->isa), f, (unsigned long long)h,
                     (unsigned long long)known_noise_options[f]);
  }
  if (!ok)
    pt_parity_fail(res, "%s: the noise options' known answers could not run",
                   pt_isa_name(k->isa));
  for (int f = 0; f < 4; f++) {
    pt_fn_free(ps[f]);
    pt_fn_free(fs[f]);
  }
  pt_isa_select(before);
}

/* The saved bytes of shards are portable: the same on every ISA and machine (the byte order
   included), recorded here as hashes of {a VJP shard of the segments argmax over samples
   [128, 384), a JVP shard of the black-box ranks over [0, 256)} of M = 700; and the shards of
   a partition merged as bytes finish to the one call's bits.  (Format version 2.) */
static const uint64_t known_shards[2] = {0x88fbc089b5ed60caull, 0x6a708af5244e0d94ull};

static void known_shard_bytes(const pt_kernel_table *k, pt_parity_result *res) {
  static size_t d = 37;
  const size_t sizes[4] = {5, 12, 1, 19};
  static fused_input in;
  known_input(&in, 1, 0);
  const pt_isa before = pt_isa_active();
  pt_fn *f[2] = {NULL, NULL}, *p[2] = {NULL, NULL};
  pt_partial *part[3] = {NULL, NULL, NULL}, *merged = NULL;
  unsigned char *bytes[3] = {NULL, NULL, NULL};
  float one_call[37], finished[37];
  const pt_key key = {0xdef, 1};
  int ok = pt_isa_select(k->isa) == PT_OK &&
           pt_fn_argmax_one_hot_segments(sizes, 4, &f[0]) == PT_OK &&
           pt_fn_from_callback(d, d, rank_callback, &d, &f[1]) == PT_OK &&
           pt_make_perturbed_fun(f[0], 700, 0.3f, PT_NOISE_GUMBEL, 1, &p[0]) == PT_OK &&
           pt_make_perturbed_fun(f[1], 700, 0.3f, PT_NOISE_NORMAL, 0, &p[1]) == PT_OK;
  const pt_op ops[2] = {PT_OP_VJP, PT_OP_JVP};
  const uint64_t ranges[2][2] = {{128, 384}, {0, 256}};
  for (int s = 0; s < 2 && ok; s++) {
    res->checked++;
    const float *v = s == 0 ? in.y_bar : in.x_dot;
    ok = pt_fn_partial(p[s], ops[s], key, in.x, v, ranges[s][0], ranges[s][1], &part[0]) == PT_OK;
    const size_t size = ok ? pt_partial_size(part[0]) : 0;
    for (int b = 0; b < 3 && ok; b++) ok = (bytes[b] = malloc(size)) != NULL;
    ok = ok && pt_partial_save(part[0], bytes[0], size) == PT_OK;
    if (!ok) break;
    const uint64_t h = pt_hash_bytes(PT_HASH_START, bytes[0], size);
    if (h != known_shards[s])
      pt_parity_fail(res, "%s: shard %d's bytes hash to %#018llx, want %#018llx",
                     pt_isa_name(k->isa), s, (unsigned long long)h,
                     (unsigned long long)known_shards[s]);
    /* the rest of the samples in two more shards, merged as bytes in another order */
    ok = pt_fn_partial(p[s], ops[s], key, in.x, v, 0, ranges[s][0], &part[1]) == PT_OK &&
         pt_fn_partial(p[s], ops[s], key, in.x, v, ranges[s][1], 700, &part[2]) == PT_OK &&
         pt_partial_save(part[1], bytes[1], size) == PT_OK &&
         pt_partial_save(part[2], bytes[2], size) == PT_OK &&
         pt_partial_merge_bytes(bytes[0], bytes[2], size) == PT_OK &&
         pt_partial_merge_bytes(bytes[1], bytes[2], size) == PT_OK &&
         pt_partial_load(bytes[2], size, &merged) == PT_OK &&
         pt_partial_finish(merged, finished) == PT_OK &&
         (s == 0 ? pt_fn_vjp(p[s], key, in.x, v, one_call) : pt_fn_jvp(p[s], key, in.x, v, one_call)) == PT_OK;
    if (ok && memcmp(finished, one_call, sizeof one_call) != 0)
      pt_parity_fail(res, "%s: shard %d's merged bytes finish to other bits than the one call",
                     pt_isa_name(k->isa), s);
    for (int b = 0; b < 3; b++) {
      pt_partial_free(part[b]);
      part[b] = NULL;
      free(bytes[b]);
      bytes[b] = NULL;
    }
    pt_partial_free(merged);
    merged = NULL;
  }
  if (!ok) pt_parity_fail(res, "%s: the shard known answers could not run", pt_isa_name(k->isa));
  for (int s = 0; s < 2; s++) {
    pt_fn_free(p[s]);
    pt_fn_free(f[s]);
  }
  pt_isa_select(before);
}

void pt_parity_fused_known(const pt_kernel_table *k, pt_parity_result *res) {
  known_kernels(k, res);
  known_rank_kernels(k, pt_kernels_for(PT_ISA_SCALAR), res);
  known_topk_kernels(k, pt_kernels_for(PT_ISA_SCALAR), res);
  known_api_results(k, res);
  known_optimizer_results(k, res);
  known_noise_option_results(k, res);
  known_shard_bytes(k, res);
}

/* SPDX-License-Identifier: MIT */
/* pt_make_perturbed_fun: the Monte-Carlo perturbed function of Berthet et al. (2020), as
   optax.perturbations.make_perturbed_fun computes it (perturb.h, "Differentiable functions").

   With Z_m = noise(K, m*n_in + i), Y_m = f(x + sigma Z_m) and b = f(x) (or 0 without baseline):
     value    (1/M) sum_m Y_m
     jacobian (1/(M sigma)) sum_m (Y_m - b) grad_nu(Z_m)^T       (vjp J^T y_bar, jvp J x_dot)
     hessian  (1/(M sigma^2)) sum_m (Y_m - b) (grad_nu grad_nu^T - diag nu'')(Z_m)    (n_out 1)
   grad_nu(z) = 1 - exp(-z), nu'' = exp(-z) for Gumbel noise; z and 1 for normal noise.  The
   leave-one-out baseline b_m = (sum_k Y_k - Y_m)/(M - 1) is summed as b = 0 plus the sums of
   estimate.h that finishing combines (with antithetic pairs, each pair's Y adjusted so that it
   leaves out its pair: estimate.h); independent_jacobian draws the derivatives' samples from
   pt_key_fold_in(K, 1) (pt_estimate).
   With the pathwise gradient the derivatives are instead f's own at the samples, with no 1/sigma:
     jacobian (1/M) sum_m J f(x + sigma Z_m)                     (vjp, jvp likewise; no hessian)
   Antithetic pairs: samples 2p and 2p + 1 take the two rows of pair p (noise words p*n_in + i;
   normal z and -z, Gumbel from u and 1 - u: the noise_pairs kernels), every tile holding whole
   pairs.  Multiplicative noise (normal): x~ = x * w, w = exp(sigma Z - sigma^2/2), whose score
   is grad_nu(Z)/x = Z/x (x_i != 0) and whose pathwise Jacobian is J f(x~) diag(w); the fused
   kernels form additive keys only, so it runs here for every function.

   Every operation of one key walks the same samples, so a value and its derivatives agree; the
   sums over samples are estimate.c's, in groups whose order no split can change.  This file
   holds the object and the generic path, which runs f (any pt_fn) on tiles of samples: the
   noise of a tile from the stream kernels, its inputs and exp(-z) from the perturb_tile
   kernel, f's batch evaluation (score function) or its vjp, jvp or Jacobian sample by sample
   (pathwise), and each sample's terms added in double in index order.  Memory is
   O(tile (n_in + n_out)) per thread plus the outputs (a pathwise Jacobian's tile holds each
   sample's n_out x n_in), never O(M n_in). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/estimate.h"
#include "fn/fn.h"
#include "fn/fn_builtin.h"
#include "fn/fn_perturbed.h"
#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"

typedef struct perturbed_fn {
  pt_fn base;
  pt_fn *f;
  pt_perturbation p;
} perturbed_fn;

static const pt_fn_ops perturbed_ops;

const pt_perturbation *pt_fn_perturbation(const pt_fn *f, const pt_fn **inner) {
  if (!f || f->ops != &perturbed_ops) return NULL;
  const perturbed_fn *pf = (const perturbed_fn *)f;
  if (inner) *inner = pf->f;
  return &pf->p;
}

/* ---- the generic path ------------------------------------------------------------------------ */

/* Floats of scratch one tile of samples may take: z, the perturbed inputs, exp(-z) or f's
   derivatives, outputs. */
#define PT_TILE_FLOATS 16384
/* Bytes the staged groups of one round may take (a function that stays on the calling thread,
   estimate.c): beyond, the whole path stays there too. */
#define PT_STAGED_MAX ((size_t)64 << 20)

typedef struct generic_prep {
  pt_key f_key;      /* f's own random parts: sample m is row m of a batch with this key */
  size_t tile;
  int pathwise;      /* the terms are f's own derivatives at the samples (pathwise_terms) */
  int factors;       /* multiplicative pathwise: each sample's d xt / d x = w in ez */
  size_t ez, dy;     /* floats per sample of exp(-z) (the score function's) or w (factors), and
                        of f's derivatives (pathwise) */
  size_t row_floats; /* per sample: z, xt, exp(-z), y and f's derivatives */
  double b[];        /* n_out: the baseline f(x), or zeros */
} generic_prep;

static void generic_release(pt_estimator *e) {
  pt_arena_free(e->arena, e->prep);
  e->prep = NULL;
}

static int derivative(const pt_estimator *e) { return (e->want & ~(unsigned)PT_WANT_VALUE) != 0; }

/* Samples whose cotangents c = (y - b) . y_bar are summed side by side (cotangents below). */
enum { CHAINS = 4 };

/* A buffer of `rows` samples: the doubles y - b of CHAINS samples, grad_nu of one sample, then per
   sample z, the perturbed inputs xt, exp(-z) (multiplicative pathwise: the factors w), the
   outputs y and f's derivatives dy (x_bar, then y_dot, then the Jacobian, those wanted).  The
   one sample's grad_nu is the pathwise multiplicative jvp's tangent instead. */
typedef struct rows_buffer {
  double *d;
  float *g, *z, *xt, *ez, *y, *dy;
} rows_buffer;

/* The bytes of a buffer of `rows` samples; 0 when they overflow a size_t. */
static size_t buffer_bytes(const pt_estimator *e, const generic_prep *pr, size_t rows) {
  size_t floats, bytes;
  size_t d_bytes;
  if (__builtin_mul_overflow(rows, pr->row_floats, &floats) ||
      __builtin_add_overflow(floats, e->f->n_in, &floats) ||
      __builtin_mul_overflow(floats, sizeof(float), &bytes) ||
      __builtin_mul_overflow(e->f->n_out, CHAINS * sizeof(double), &d_bytes) ||
      __builtin_add_overflow(bytes, d_bytes, &bytes))
    return 0;
  return bytes;
}

static rows_buffer buffer_at(const pt_estimator *e, void *buffer, size_t rows) {
  const generic_prep *pr = e->prep;
  const size_t n_in = e->f->n_in, n_out = e->f->n_out;
  rows_buffer b;
  b.d = buffer;
  b.g = (float *)(b.d + CHAINS * n_out);
  b.z = b.g + n_in;
  b.xt = b.z + rows * n_in;
  b.ez = b.xt + rows * n_in;
  b.y = b.ez + rows * pr->ez;
  b.dy = b.y + rows * n_out;
  return b;
}

static pt_status generic_prepare(pt_estimator *e) {
  const pt_fn *f = e->f;
  const size_t n_in = f->n_in, n_out = f->n_out;
  pt_status s = PT_OK;
  if (pt_fn_too_big(n_out, 1, 2 * sizeof(double)))
    return pt_fail(PT_EOVERFLOW, "the baseline of %zu outputs is too large", n_out);
  generic_prep *pr = pt_arena_zalloc(e->arena, sizeof *pr + n_out * sizeof(double));
  if (!pr) return pt_fail(PT_ENOMEM, "no memory for the generic path's buffers");
  /* sample m is row m of a batch with f's key, the baseline the row after the last sample
     (perturb.h, "Keys") */
  pr->f_key = f->n_random ? pt_key_fold_in(e->key, 0) : e->key;
  /* a value alone is the same mean whichever gradient the function takes */
  pr->pathwise = e->p.pathwise && derivative(e);
  pr->factors = pr->pathwise && e->p.multiplicative;
  pr->ez = pr->pathwise && !pr->factors ? 0 : n_in;
  /* one sample's derivatives: as many floats as their cells, which fit (pt_estimator_begin
     checked them) */
  pr->dy = !pr->pathwise ? 0
           : (e->at_x_bar != SIZE_MAX ? n_in : 0) + (e->at_y_dot != SIZE_MAX ? n_out : 0) +
                 (e->at_jac != SIZE_MAX ? n_out * n_in : 0);
  e->prep = pr;
  if (__builtin_add_overflow(2 * n_in + n_out + pr->ez, pr->dy, &pr->row_floats) ||
      !buffer_bytes(e, pr, 1)) {
    generic_release(e);
    return pt_fail(PT_EOVERFLOW, "a sample's buffers of %zu inputs and %zu outputs are too large",
                   n_in, n_out);
  }
  size_t tile = PT_TILE_FLOATS / pr->row_floats;
  /* whole antithetic pairs: the group and M are even, so a tile never splits one */
  if (e->p.antithetic) tile = tile < 2 ? 2 : tile & ~(size_t)1;
  pr->tile = tile == 0 ? 1 : tile < e->group ? tile : (size_t)e->group;
  for (size_t j = 0; j < n_out; j++) pr->b[j] = 0.0;
  if (derivative(e) && !pr->pathwise && e->p.baseline == PT_BASELINE_F_X) {
    float *fx = pt_fn_alloc(n_out, 1, sizeof *fx, &s);
    if (fx) s = pt_fn_eval_rows(f, pr->f_key, e->p.samples, 1, e->x, fx);
    if (s == PT_OK)
      for (size_t j = 0; j < n_out; j++) pr->b[j] = fx[j];
    free(fx);
    if (s != PT_OK) {
      generic_release(e);
      return s;
    }
  }
  e->scratch_bytes = buffer_bytes(e, pr, pr->tile);
  e->thread_safe = (f->caps & PT_CAP_THREAD_SAFE) != 0;
  /* a whole group staged per thread, when a round of them stays within PT_STAGED_MAX */
  const size_t staged = buffer_bytes(e, pr, (size_t)e->group);
  e->staged_bytes = staged && staged <= PT_STAGED_MAX / pt_threads() ? staged : 0;
  e->work = f->work;
  return PT_OK;
}

/* The cotangents c_k = d_k . y_bar of `chain` (at most CHAINS) rows d_k of n_out doubles, each
   in double in index order, the rows' additions interleaved: one row's sum is a chain of
   dependent additions (a quarter of the generic path's time at n_out = 100), four of them
   overlap.  A missing row repeats the first, and its sum is dropped. */
static void cotangents(const double *d, size_t chain, size_t n_out, const float *y_bar,
                       double c[CHAINS]) {
  const double *d0 = d, *d1 = d + (chain > 1) * n_out, *d2 = d + (chain > 2) * 2 * n_out,
               *d3 = d + (chain > 3) * 3 * n_out;
  double c0 = 0.0, c1 = 0.0, c2 = 0.0, c3 = 0.0;
  for (size_t j = 0; j < n_out; j++) {
    const double v = (double)y_bar[j];
    c0 += d0[j] * v;
    c1 += d1[j] * v;
    c2 += d2[j] * v;
    c3 += d3[j] * v;
  }
  c[0] = c0;
  c[1] = c1;
  c[2] = c2;
  c[3] = c3;
}

/* Adds sample (y = f(x + sigma z), g = grad_nu(z), h = nu''(z), NULL for 1) to the group's
   sums, with d = y - b in double (with w != 0, pt_estimate_pair_weight, the leave-one-pair-out's
   Y' of estimate.h) and its cotangent c = d . y_bar (cotangents; for the vjp), and the
   leave-one-out's sums of c, t, g and the Hessian's term beside them, of the plain y. */
static void accumulate(const pt_estimator *e, double *sums, const float *y, const double *d,
                       double c, double w, const float *g, const float *h) {
  const size_t n_in = e->f->n_in, n_out = e->f->n_out;
  if (e->at_value != SIZE_MAX)
    for (size_t j = 0; j < n_out; j++) sums[e->at_value + j] += y[j];
  if (e->at_x_bar != SIZE_MAX) {
    double *x_bar = sums + e->at_x_bar;
    for (size_t i = 0; i < n_in; i++) x_bar[i] += c * (double)g[i];
    if (e->at_loo_c != SIZE_MAX) {
      double plain = c; /* of d = y, unless d is the pair's Y' */
      if (w != 0.0) {
        plain = 0.0;
        for (size_t j = 0; j < n_out; j++) plain += (double)y[j] * (double)e->y_bar[j];
      }
      sums[e->at_loo_c] += plain;
    }
  }
  if (e->at_y_dot != SIZE_MAX) {
    double t = 0.0;
    for (size_t i = 0; i < n_in; i++) t += (double)g[i] * (double)e->x_dot[i];
    double *y_dot = sums + e->at_y_dot;
    for (size_t j = 0; j < n_out; j++) y_dot[j] += d[j] * t;
    if (e->at_loo_t != SIZE_MAX) sums[e->at_loo_t] += t;
  }
  if (e->at_jac != SIZE_MAX) /* the rows of the band */
    for (size_t j = e->jac_row0; j < e->jac_row0 + e->jac_rows; j++) {
      double *row = pt_jac_row(e, sums, e->at_jac, j);
      for (size_t i = 0; i < n_in; i++) row[i] += d[j] * (double)g[i];
    }
  if (e->at_loo_g != SIZE_MAX)
    for (size_t i = 0; i < n_in; i++) sums[e->at_loo_g + i] += (double)g[i];
  if (e->at_hess != SIZE_MAX) {
    double *hess = sums + e->at_hess;
    double *term = e->at_loo_h != SIZE_MAX ? sums + e->at_loo_h : NULL;
    for (size_t i = 0; i < n_in; i++) {
      const double dg = d[0] * (double)g[i], nu2 = h ? (double)h[i] : 1.0;
      double *row = hess + i * n_in;
      for (size_t k = 0; k < n_in; k++) row[k] += dg * (double)g[k];
      row[i] -= d[0] * nu2;
      if (term) {
        double *t_row = term + i * n_in;
        for (size_t k = 0; k < n_in; k++) t_row[k] += (double)g[i] * (double)g[k];
        t_row[i] -= nu2;
      }
    }
  }
}

/* The pathwise terms of sample m at xt: f's own derivatives there, J f(xt)^T y_bar, J f(xt)
   x_dot and J f(xt), into dy (one after another, those wanted), and the value f(xt) into y
   (NULL: not wanted) from the first of them, as f's operations give a value with its
   derivative.  f's random parts are keyed as its row m of a batch.  With multiplicative noise
   the sample's factors w = d xt / d x (NULL: additive) make its jvp J f(xt) (w x_dot), the
   product formed in `tangent` (n_in floats); pathwise_sums applies w to the vjp and Jacobian. */
static pt_status pathwise_terms(const pt_estimator *e, uint64_t m, const float *xt,
                                const float *w, float *tangent, float *y, float *dy) {
  const generic_prep *pr = e->prep;
  const pt_fn *f = e->f;
  const pt_key key = f->n_random ? pt_key_fold_in(pr->f_key, m) : pr->f_key;
  const pt_fn_keys keys = pt_fn_keys_for(f, key);
  const float *x_dot = e->x_dot;
  if (w && x_dot) {
    for (size_t i = 0; i < f->n_in; i++) tangent[i] = w[i] * x_dot[i];
    x_dot = tangent;
  }
  pt_status s = PT_OK;
  if (e->at_x_bar != SIZE_MAX) {
    s = f->ops->vjp(f, keys, xt, e->y_bar, y, dy);
    dy += f->n_in;
    y = NULL;
  }
  if (s == PT_OK && e->at_y_dot != SIZE_MAX) {
    s = f->ops->jvp(f, keys, xt, x_dot, y, dy);
    dy += f->n_out;
    y = NULL;
  }
  if (s == PT_OK && e->at_jac != SIZE_MAX) s = f->ops->jacobian(f, keys, xt, y, dy);
  return s;
}

/* Adds the pathwise terms of one sample, its value y and the derivatives dy of pathwise_terms,
   to the group's sums; with multiplicative noise the vjp's and the Jacobian's column i times
   the sample's factor w_i (in double: J f(xt) diag(w)). */
static void pathwise_sums(const pt_estimator *e, const float *y, const float *dy, const float *w,
                          double *sums) {
  const size_t n_in = e->f->n_in, n_out = e->f->n_out;
  if (e->at_value != SIZE_MAX)
    for (size_t j = 0; j < n_out; j++) sums[e->at_value + j] += y[j];
  if (e->at_x_bar != SIZE_MAX) {
    for (size_t i = 0; i < n_in; i++) sums[e->at_x_bar + i] += w ? (double)dy[i] * w[i] : dy[i];
    dy += n_in;
  }
  if (e->at_y_dot != SIZE_MAX) {
    for (size_t j = 0; j < n_out; j++) sums[e->at_y_dot + j] += dy[j];
    dy += n_out;
  }
  if (e->at_jac != SIZE_MAX) /* the rows of the band, of f's whole Jacobian at the sample */
    for (size_t j = e->jac_row0; j < e->jac_row0 + e->jac_rows; j++) {
      double *row = pt_jac_row(e, sums, e->at_jac, j);
      const float *dj = dy + j * n_in;
      for (size_t i = 0; i < n_in; i++) row[i] += w ? (double)dj[i] * w[i] : dj[i];
    }
}

/* The three steps of samples [m0, m1) in a buffer of at least that many rows: their noise, inputs
   and exp(-z); f (or its derivatives) on the inputs; their terms, in sample order. */
static void generic_stage_rows(const pt_estimator *e, rows_buffer b, uint64_t m0, uint64_t m1) {
  const generic_prep *pr = e->prep;
  const size_t n_in = e->f->n_in, rows = (size_t)(m1 - m0);
  const int gumbel = e->p.noise == PT_NOISE_GUMBEL;
  const pt_kernel_table *k = pt_kernels_active();
  if (e->p.antithetic) /* m0 and rows even: the tiles hold whole pairs */
    (gumbel ? k->noise_pairs_gumbel : k->noise_pairs_normal)(e->key, m0 / 2, rows / 2, n_in, b.z);
  else
    (gumbel ? k->noise_gumbel : k->noise_normal)(e->key, m0 * n_in, b.z, rows * n_in);
  if (e->p.multiplicative)
    k->perturb_tile_multiplicative(b.z, rows, n_in, e->x, e->p.sigma, b.xt,
                                   pr->factors ? b.ez : NULL);
  else
    k->perturb_tile(b.z, rows, n_in, e->x, e->p.sigma, b.xt,
                    gumbel && derivative(e) && !pr->pathwise ? b.ez : NULL);
}

static pt_status generic_call_rows(const pt_estimator *e, rows_buffer b, uint64_t m0, uint64_t m1) {
  const generic_prep *pr = e->prep;
  const size_t n_in = e->f->n_in, n_out = e->f->n_out, rows = (size_t)(m1 - m0);
  if (!pr->pathwise) return pt_fn_eval_rows(e->f, pr->f_key, m0, rows, b.xt, b.y);
  const int value = e->at_value != SIZE_MAX;
  pt_status s = PT_OK;
  /* b.g, the score function's, holds a multiplicative jvp's tangent */
  for (size_t r = 0; r < rows && s == PT_OK; r++)
    s = pathwise_terms(e, m0 + r, b.xt + r * n_in, pr->factors ? b.ez + r * n_in : NULL, b.g,
                       value ? b.y + r * n_out : NULL, b.dy + r * pr->dy);
  return s;
}

/* d = y - b of row r (in double), or leaving out pairs (b = 0) Y'_m = Y_m + w (Y_m + Y_partner),
   the tile's whole pairs */
static void row_differences(const generic_prep *pr, rows_buffer b, size_t r, size_t n_out, double w,
                            double *d) {
  const float *yr = b.y + r * n_out, *partner = b.y + (r ^ 1) * n_out;
  if (w != 0.0) /* a test outside the loops, so that each vectorizes */
    for (size_t j = 0; j < n_out; j++) d[j] = (double)yr[j] + w * ((double)yr[j] + (double)partner[j]);
  else
    for (size_t j = 0; j < n_out; j++) d[j] = (double)yr[j] - pr->b[j];
}

static void generic_finish_rows(const pt_estimator *e, rows_buffer b, uint64_t m0, uint64_t m1,
                                double *sums) {
  const generic_prep *pr = e->prep;
  const size_t n_in = e->f->n_in, n_out = e->f->n_out, rows = (size_t)(m1 - m0);
  const int gumbel = e->p.noise == PT_NOISE_GUMBEL, grads = derivative(e);
  const double w = pt_estimate_pair_weight(&e->p);
  if (pr->pathwise) {
    for (size_t r = 0; r < rows; r++)
      pathwise_sums(e, b.y + r * n_out, b.dy + r * pr->dy, pr->factors ? b.ez + r * n_in : NULL,
                    sums);
    return;
  }
  /* CHAINS rows at a time: their differences, their cotangents side by side, then each row's
     terms in sample order */
  for (size_t r0 = 0; r0 < rows; r0 += CHAINS) {
    const size_t chain = rows - r0 < CHAINS ? rows - r0 : CHAINS;
    double c[CHAINS] = {0.0, 0.0, 0.0, 0.0};
    if (grads) {
      for (size_t k = 0; k < chain; k++) row_differences(pr, b, r0 + k, n_out, w, b.d + k * n_out);
      if (e->at_x_bar != SIZE_MAX) cotangents(b.d, chain, n_out, e->y_bar, c);
    }
    for (size_t k = 0; k < chain; k++) {
      const size_t r = r0 + k;
      const float *zr = b.z + r * n_in, *er = b.ez + r * n_in;
      const float *gr = zr; /* normal noise: grad_nu(z) = z */
      if (grads) {
        if (gumbel) {
          for (size_t i = 0; i < n_in; i++) b.g[i] = 1.0f - er[i];
          gr = b.g;
        } else if (e->p.multiplicative) {
          /* d log p(xt | x) / d x_i = z_i / (sigma x_i): the score carries 1/x_i (x_i != 0,
             pt_estimator_begin), the estimate's 1/sigma as for additive noise */
          for (size_t i = 0; i < n_in; i++) b.g[i] = zr[i] / e->x[i];
          gr = b.g;
        }
      }
      accumulate(e, sums, b.y + r * n_out, b.d + k * n_out, c[k], w, gr, gumbel ? er : NULL);
    }
  }
}

/* A group on one thread, tile by tile. */
static pt_status generic_run(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1,
                             double *sums, uint64_t *counts) {
  (void)counts; /* the generic path sums its value in cells */
  const size_t tile = ((const generic_prep *)e->prep)->tile;
  const rows_buffer b = buffer_at(e, scratch, tile);
  for (uint64_t m = m0; m < m1; m += tile) {
    const uint64_t end = m1 - m < tile ? m1 : m + tile;
    generic_stage_rows(e, b, m, end);
    const pt_status s = generic_call_rows(e, b, m, end);
    if (s != PT_OK) return s;
    generic_finish_rows(e, b, m, end, sums);
  }
  return PT_OK;
}

/* A whole group staged, for a function that stays on the calling thread. */
static void generic_stage(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1) {
  generic_stage_rows(e, buffer_at(e, buffer, (size_t)e->group), m0, m1);
}
static pt_status generic_call(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1) {
  return generic_call_rows(e, buffer_at(e, buffer, (size_t)e->group), m0, m1);
}
static void generic_finish(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1,
                           double *sums) {
  generic_finish_rows(e, buffer_at(e, buffer, (size_t)e->group), m0, m1, sums);
}

const pt_path pt_generic_path = {0, generic_prepare, generic_run, generic_release,
                                 generic_stage, generic_call, generic_finish};

/* ---- the object ------------------------------------------------------------------------------ */

/* x must be finite: x + sigma Z would be NaN in every sample */
static pt_status perturbed_check(const pt_fn *f, const float *x, int derivative) {
  return pt_estimate_check(&((const perturbed_fn *)f)->p, x, f->n_in, derivative);
}

static pt_status estimate_at(const pt_fn *fn, pt_fn_keys keys, const float *x, const float *y_bar,
                             const float *x_dot, const pt_outputs *out) {
  const pt_status s = pt_check_finite("x", x, fn->n_in);
  if (s != PT_OK) return s;
  const perturbed_fn *pf = (const perturbed_fn *)fn;
  return pt_estimate(pf->f, &pf->p, pt_fn_part_key(keys), x, y_bar, x_dot, out);
}

static pt_status perturbed_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                                float *y) {
  (void)batch; /* 1: a perturbed function is random */
  return estimate_at(f, keys, x, NULL, NULL, &(pt_outputs){.y = y});
}

static pt_status perturbed_vjp(const pt_fn *f, pt_fn_keys keys, const float *x,
                               const float *y_bar, float *y, float *x_bar) {
  return estimate_at(f, keys, x, y_bar, NULL, &(pt_outputs){.y = y, .x_bar = x_bar});
}

static pt_status perturbed_jvp(const pt_fn *f, pt_fn_keys keys, const float *x,
                               const float *x_dot, float *y, float *y_dot) {
  return estimate_at(f, keys, x, NULL, x_dot, &(pt_outputs){.y = y, .y_dot = y_dot});
}

static pt_status perturbed_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                    float *jac) {
  return estimate_at(f, keys, x, NULL, NULL, &(pt_outputs){.y = y, .jac = jac});
}

static pt_status perturbed_hessian(const pt_fn *f, pt_fn_keys keys, const float *x, float *hess) {
  return estimate_at(f, keys, x, NULL, NULL, &(pt_outputs){.hess = hess});
}

static void perturbed_destroy(pt_fn *f) {
  pt_fn_free(((perturbed_fn *)f)->f);
  free(f);
}

static const pt_fn_ops perturbed_ops = {
    .eval = perturbed_eval,
    .vjp = perturbed_vjp,
    .jvp = perturbed_jvp,
    .jacobian = perturbed_jacobian,
    .hessian = perturbed_hessian,
    .destroy = perturbed_destroy,
    .check = perturbed_check,
};

pt_perturb_options pt_perturb_defaults(void) {
  return (pt_perturb_options){.size = sizeof(pt_perturb_options), .num_samples = 1000,
                              .sigma = 0.1f, .noise = PT_NOISE_GUMBEL,
                              .baseline = PT_BASELINE_F_X, .gradient = PT_GRADIENT_AUTO};
}

pt_status pt_perturb_options_read(const pt_perturb_options *o, pt_perturb_options *v) {
  if (!o) return pt_fail(PT_EINVAL, "options is NULL");
  if (o->size < sizeof *o)
    return pt_fail(PT_EINVAL,
                   "options->size is %zu, less than this version's %zu (pt_perturb_defaults sets it)",
                   o->size, sizeof *o);
  const unsigned char *past = (const unsigned char *)o + sizeof *o;
  for (size_t i = 0; i < o->size - sizeof *o; i++)
    if (past[i])
      return pt_fail(PT_EINVAL,
                     "options has a non-zero byte at %zu, past the fields this version knows",
                     sizeof *o + i);
  *v = *o;
  v->size = sizeof *v;
  return PT_OK;
}

/* The options checked against f and resolved into a perturbation (pt_make_perturbed_fun_ex(3)
   says which apply to which function). */
static pt_status resolve(const pt_fn *f, const pt_perturb_options *o, pt_perturbation *p) {
  if (o->num_samples == 0) return pt_fail(PT_EINVAL, "num_samples is 0");
  if (!isfinite(o->sigma) || o->sigma <= 0.0f)
    return pt_fail(PT_EINVAL, "sigma is %g, not a positive finite number", (double)o->sigma);
  if (o->noise != PT_NOISE_GUMBEL && o->noise != PT_NOISE_NORMAL)
    return pt_fail(PT_EINVAL, "noise is %d: a perturbation is PT_NOISE_GUMBEL or PT_NOISE_NORMAL",
                   (int)o->noise);
  if ((unsigned)o->baseline > PT_BASELINE_LEAVE_ONE_OUT)
    return pt_fail(PT_EINVAL, "baseline is %d, not a pt_baseline", (int)o->baseline);
  if ((unsigned)o->gradient > PT_GRADIENT_PATHWISE)
    return pt_fail(PT_EINVAL, "gradient is %d, not a pt_gradient", (int)o->gradient);
  const pt_builtin b = pt_fn_builtin(f);
  /* a derivative of its own worth following: max and sort, or any differentiable function that
     is not a piecewise-constant built-in */
  const int own_derivative = b.kind == PT_BUILTIN_NONE ? (f->caps & PT_CAP_DERIVATIVES) != 0
                                                       : pt_builtin_differentiable(b.kind);
  const int pathwise = o->gradient == PT_GRADIENT_PATHWISE ||
                       (o->gradient == PT_GRADIENT_AUTO && pt_builtin_differentiable(b.kind));
  if (pathwise && !own_derivative)
    return pt_fail(PT_EINVAL, "the pathwise gradient needs f's own derivative, which f lacks");
  /* the baseline only acts on the score function's terms: the default is accepted */
  if (pathwise && o->baseline == PT_BASELINE_LEAVE_ONE_OUT)
    return pt_fail(PT_EINVAL,
                   "the leave-one-out baseline is the score function's, not the pathwise gradient's");
  if (o->baseline == PT_BASELINE_LEAVE_ONE_OUT && o->num_samples < 2)
    return pt_fail(PT_EINVAL, "the leave-one-out baseline needs num_samples >= 2");
  if (o->antithetic && o->num_samples % 2)
    return pt_fail(PT_EINVAL, "antithetic pairs need an even num_samples, not %zu", o->num_samples);
  /* with pairs the baseline leaves out a sample's whole pair (estimate.h): another pair at least */
  if (o->antithetic && o->baseline == PT_BASELINE_LEAVE_ONE_OUT && o->num_samples < 4)
    return pt_fail(PT_EINVAL, "the leave-one-out baseline of antithetic pairs needs num_samples "
                              ">= 4, not %zu", o->num_samples);
  if (o->multiplicative && o->noise != PT_NOISE_NORMAL)
    return pt_fail(PT_EINVAL, "multiplicative noise needs PT_NOISE_NORMAL");
  /* cross-segment terms exist only in the score function of a built-in of several segments */
  if (o->block_diagonal &&
      (pathwise ||
       (b.kind != PT_BUILTIN_ARGMAX && b.kind != PT_BUILTIN_TOP_K &&
        b.kind != PT_BUILTIN_RANKING && b.kind != PT_BUILTIN_PERMUTATION) ||
       b.count < 2))
    return pt_fail(PT_EINVAL, "block_diagonal needs the score function of an argmax, top-k, "
                              "ranking or permutation matrix of at least two segments");
  /* every noise position m*n_in + i must be a word of the stream, and the end of a sample's
     positions, (m + 1)*n_in, must not wrap: num_samples * n_in < 2^64 */
  if (o->num_samples > UINT64_MAX / f->n_in)
    return pt_fail(PT_EOVERFLOW, "num_samples %zu x n_in %zu noise words pass 2^64", o->num_samples,
                   f->n_in);
  *p = (pt_perturbation){o->num_samples, o->sigma, o->noise, o->baseline, pathwise,
                         o->antithetic != 0, o->multiplicative != 0, o->block_diagonal != 0,
                         o->independent_jacobian != 0};
  /* block_diagonal is the fused paths' estimator (argmax, top-k, ranks), whose additive keys
     multiplicative noise does not take (it runs on the generic path) */
  if (p->block_diagonal && p->multiplicative)
    return pt_fail(PT_EUNSUPPORTED, "block_diagonal is built for the fused argmax, top-k, "
                                    "ranking and permutation matrix with additive noise only");
  return PT_OK;
}

uint32_t pt_perturbation_bits(const pt_perturbation *p) {
  return (uint32_t)p->baseline | (uint32_t)p->pathwise << 2 | (uint32_t)p->antithetic << 3 |
         (uint32_t)p->multiplicative << 4 | (uint32_t)p->block_diagonal << 5 |
         (uint32_t)p->independent_jacobian << 6;
}

int pt_perturbation_from_bits(uint32_t bits, pt_perturbation *p) {
  if ((bits & 3) > PT_BASELINE_LEAVE_ONE_OUT || bits >> 7) return 0;
  p->baseline = (pt_baseline)(bits & 3);
  p->pathwise = bits >> 2 & 1;
  p->antithetic = bits >> 3 & 1;
  p->multiplicative = bits >> 4 & 1;
  p->block_diagonal = bits >> 5 & 1;
  p->independent_jacobian = bits >> 6 & 1;
  /* combinations resolve() refuses whatever the function (p->samples is M) */
  if (p->antithetic && (p->samples % 2 ||
                        (p->baseline == PT_BASELINE_LEAVE_ONE_OUT && p->samples < 4)))
    return 0;
  if (p->multiplicative && p->block_diagonal) return 0;
  return 1;
}

pt_status pt_make_perturbed_fun_ex(const pt_fn *f, const pt_perturb_options *options,
                                   pt_fn **out) {
  PT_CALL("pt_make_perturbed_fun_ex");
  pt_perturb_options o;
  pt_perturbation pert;
  if (!f || !out) return pt_fail(PT_EINVAL, "f or out is NULL");
  if (f->nesting >= PT_FN_MAX_NESTING)
    return pt_fail(PT_EINVAL, "f holds %zu nested perturbed functions, the most there may be",
                   f->nesting);
  pt_status s = pt_perturb_options_read(options, &o);
  if (s == PT_OK) s = resolve(f, &o, &pert);
  if (s != PT_OK) return s;
  perturbed_fn *p = pt_malloc(sizeof *p);
  if (!p) return pt_fail(PT_ENOMEM, "no memory for the perturbed function");
  /* the Hessian is the score function's second-order estimate, of additive noise */
  const int hessian = f->n_out == 1 && !pert.pathwise && !pert.multiplicative;
  pt_fn_init(&p->base, &perturbed_ops, f->n_in, f->n_out, 1,
             PT_CAP_DERIVATIVES | (hessian ? PT_CAP_HESSIAN : 0) |
                 (f->caps & PT_CAP_THREAD_SAFE));
  p->base.work = (double)pert.samples * f->work;
  p->base.nesting = f->nesting + 1;
  p->f = pt_fn_retain(f);
  p->p = pert;
  *out = &p->base;
  return PT_OK;
}

pt_status pt_make_perturbed_fun(const pt_fn *f, size_t num_samples, float sigma, pt_noise noise,
                                int use_baseline, pt_fn **out) {
  PT_CALL("pt_make_perturbed_fun");
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = num_samples;
  o.sigma = sigma;
  o.noise = noise;
  o.baseline = use_baseline ? PT_BASELINE_F_X : PT_BASELINE_NONE;
  o.gradient = PT_GRADIENT_SCORE;
  return pt_make_perturbed_fun_ex(f, &o, out);
}

uint64_t pt_fn_sample_group(const pt_fn *f) {
  const pt_perturbation *p = pt_fn_perturbation(f, NULL);
  return p ? pt_estimate_group(p->samples) : 0;
}

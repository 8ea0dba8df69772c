/* pt_make_perturbed_fun: the Monte-Carlo perturbed function of Berthet et al. (2020), as
   optax.perturbations.make_perturbed_fun computes it (API.md, "Differentiable functions").

   With Z_m = noise(K, m*n_in + i), Y_m = f(x + sigma Z_m) and b = f(x) (or 0 without baseline):
     value    (1/M) sum_m Y_m
     jacobian (1/(M sigma)) sum_m (Y_m - b) grad_nu(Z_m)^T       (vjp J^T y_bar, jvp J x_dot)
     hessian  (1/(M sigma^2)) sum_m (Y_m - b) (grad_nu grad_nu^T - diag nu'')(Z_m)    (n_out 1)
   grad_nu(z) = 1 - exp(-z), nu'' = exp(-z) for Gumbel noise; z and 1 for normal noise.

   Every operation of one key walks the same samples in the same order, so a value and its
   derivatives agree.  The generic path here runs f (any pt_fn) on tiles of samples: the noise
   of a tile comes from pt_noise_fill, its inputs and exp(-z) from the perturb_tile kernel, and
   the estimator accumulates in double in plain C in a fixed order (sample by sample, index by
   index), so the result is bitwise the same on every ISA.  Memory is O(tile (n_in + n_out))
   plus the outputs, never O(M n_in). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fn.h"
#include "fn_perturbed.h"
#include "kernels.h"

typedef struct perturbed_fn {
  pt_fn base;
  pt_fn *f;
  pt_perturbation p;
} perturbed_fn;

/* Floats of scratch one tile of samples may take: z, the perturbed inputs, exp(-z), outputs. */
#define PT_TILE_FLOATS 16384

typedef struct sums {
  double *y, *x_bar, *y_dot, *jac, *hess;
} sums;

static void free_sums(sums *s) {
  free(s->y);
  free(s->x_bar);
  free(s->y_dot);
  free(s->jac);
  free(s->hess);
}

static double *zeros(int wanted, size_t n, size_t m, pt_status *status) {
  if (!wanted || *status != PT_OK) return NULL;
  double *p = pt_fn_alloc(n, m, sizeof *p, status);
  if (p) memset(p, 0, n * m * sizeof *p);
  return p;
}

/* Adds sample (y = f(x + sigma z), g = grad_nu(z), e = nu''(z)) to the sums, with
   d = y - b in double. */
static void accumulate(const pt_estimate *want, sums *acc, size_t n_in, size_t n_out,
                       const float *y, const double *d, const float *g, const float *e) {
  if (acc->y)
    for (size_t j = 0; j < n_out; j++) acc->y[j] += y[j];
  if (acc->x_bar) {
    double s = 0.0;
    for (size_t j = 0; j < n_out; j++) s += d[j] * (double)want->y_bar[j];
    for (size_t i = 0; i < n_in; i++) acc->x_bar[i] += s * (double)g[i];
  }
  if (acc->y_dot) {
    double t = 0.0;
    for (size_t i = 0; i < n_in; i++) t += (double)g[i] * (double)want->x_dot[i];
    for (size_t j = 0; j < n_out; j++) acc->y_dot[j] += d[j] * t;
  }
  if (acc->jac)
    for (size_t j = 0; j < n_out; j++)
      for (size_t i = 0; i < n_in; i++) acc->jac[j * n_in + i] += d[j] * (double)g[i];
  if (acc->hess) {
    for (size_t i = 0; i < n_in; i++) {
      const double dg = d[0] * (double)g[i];
      double *row = acc->hess + i * n_in;
      for (size_t k = 0; k < n_in; k++) row[k] += dg * (double)g[k];
      row[i] -= d[0] * (e ? (double)e[i] : 1.0);
    }
  }
}

static void scale_out(const double *sum, float *out, size_t n, double by) {
  for (size_t i = 0; i < n; i++) out[i] = (float)(sum[i] * by);
}

static pt_status generic(const pt_fn *f, const pt_perturbation *p, pt_key key, const float *x,
                         const pt_estimate *want) {
  const size_t n_in = f->n_in, n_out = f->n_out, m_total = p->samples;
  const int gumbel = p->noise == PT_NOISE_GUMBEL;
  const int derivative = want->x_bar || want->y_dot || want->jac || want->hess;
  const pt_kernel_table *k = pt_kernels_active();
  /* f's own random parts, if any: sample m is row m of a batch with f_key, the baseline the
     row after the last sample (perturb.h, "Keys"). */
  const pt_key f_key = f->n_random ? pt_key_fold_in(key, 0) : key;

  size_t tile = PT_TILE_FLOATS / (3 * n_in + n_out); /* sizes are checked: no overflow */
  if (tile == 0) tile = 1;
  if (tile > m_total) tile = m_total;

  pt_status s = PT_OK;
  sums acc = {NULL, NULL, NULL, NULL, NULL};
  acc.y = zeros(want->y != NULL, n_out, 1, &s);
  acc.x_bar = zeros(want->x_bar != NULL, n_in, 1, &s);
  acc.y_dot = zeros(want->y_dot != NULL, n_out, 1, &s);
  acc.jac = zeros(want->jac != NULL, n_out, n_in, &s);
  acc.hess = zeros(want->hess != NULL, n_in, n_in, &s);
  /* per tile: z, the perturbed inputs xt, exp(-z), the outputs y; then grad_nu of one row */
  float *z = s == PT_OK ? pt_fn_alloc(tile * (3 * n_in + n_out) + n_in, 1, sizeof *z, &s) : NULL;
  double *d = s == PT_OK ? pt_fn_alloc(2 * n_out, 1, sizeof *d, &s) : NULL;
  if (s != PT_OK) goto out;
  float *xt = z + tile * n_in, *e = xt + tile * n_in, *y = e + tile * n_in, *g = y + tile * n_out;
  double *b = d + n_out;

  for (size_t j = 0; j < n_out; j++) b[j] = 0.0;
  if (derivative && p->baseline) {
    float *fx = y; /* the first output row, free until the first tile */
    s = pt_fn_eval_rows(f, f_key, m_total, 1, x, fx);
    if (s != PT_OK) goto out;
    for (size_t j = 0; j < n_out; j++) b[j] = fx[j];
  }

  for (size_t m0 = 0; m0 < m_total; m0 += tile) {
    const size_t rows = m_total - m0 < tile ? m_total - m0 : tile;
    s = pt_noise_fill(p->noise, key, (uint64_t)m0 * n_in, z, rows * n_in);
    if (s != PT_OK) goto out;
    k->perturb_tile(z, rows, n_in, x, p->sigma, xt, gumbel && derivative ? e : NULL);
    s = pt_fn_eval_rows(f, f_key, m0, rows, xt, y);
    if (s != PT_OK) goto out;
    for (size_t r = 0; r < rows; r++) {
      const float *yr = y + r * n_out, *zr = z + r * n_in, *er = e + r * n_in;
      const float *gr = zr; /* normal noise: grad_nu(z) = z */
      if (derivative) {
        for (size_t j = 0; j < n_out; j++) d[j] = (double)yr[j] - b[j];
        if (gumbel) {
          for (size_t i = 0; i < n_in; i++) g[i] = 1.0f - er[i];
          gr = g;
        }
      }
      accumulate(want, &acc, n_in, n_out, yr, d, gr, gumbel ? er : NULL);
    }
  }

  const double mean = 1.0 / (double)m_total, per_sigma = mean / (double)p->sigma;
  if (acc.y) scale_out(acc.y, want->y, n_out, mean);
  if (acc.x_bar) scale_out(acc.x_bar, want->x_bar, n_in, per_sigma);
  if (acc.y_dot) scale_out(acc.y_dot, want->y_dot, n_out, per_sigma);
  if (acc.jac) scale_out(acc.jac, want->jac, n_out * n_in, per_sigma);
  if (acc.hess) scale_out(acc.hess, want->hess, n_in * n_in, per_sigma / (double)p->sigma);
out:
  free(d);
  free(z);
  free_sums(&acc);
  return s;
}

static pt_status estimate_at(const pt_fn *fn, pt_fn_keys keys, const float *x,
                             const pt_estimate *want) {
  for (size_t i = 0; i < fn->n_in; i++)
    if (!isfinite(x[i])) return PT_EINVAL;
  const perturbed_fn *pf = (const perturbed_fn *)fn;
  const pt_key key = pt_fn_part_key(keys);
  const pt_status s = pt_fused_estimate(pf->f, &pf->p, key, x, want);
  return s != PT_EUNSUPPORTED ? s : generic(pf->f, &pf->p, key, x, want);
}

static pt_status perturbed_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                                float *y) {
  (void)batch; /* 1: a perturbed function is random */
  return estimate_at(f, keys, x, &(pt_estimate){.y = y});
}

static pt_status perturbed_vjp(const pt_fn *f, pt_fn_keys keys, const float *x,
                               const float *y_bar, float *y, float *x_bar) {
  return estimate_at(f, keys, x, &(pt_estimate){.y = y, .y_bar = y_bar, .x_bar = x_bar});
}

static pt_status perturbed_jvp(const pt_fn *f, pt_fn_keys keys, const float *x,
                               const float *x_dot, float *y, float *y_dot) {
  return estimate_at(f, keys, x, &(pt_estimate){.y = y, .x_dot = x_dot, .y_dot = y_dot});
}

static pt_status perturbed_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                    float *jac) {
  return estimate_at(f, keys, x, &(pt_estimate){.y = y, .jac = jac});
}

static pt_status perturbed_hessian(const pt_fn *f, pt_fn_keys keys, const float *x, float *hess) {
  return estimate_at(f, keys, x, &(pt_estimate){.hess = hess});
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
};

pt_status pt_make_perturbed_fun(const pt_fn *f, size_t num_samples, float sigma, pt_noise noise,
                                int use_baseline, pt_fn **out) {
  if (!f || !out || num_samples == 0 || !isfinite(sigma) || sigma <= 0.0f) return PT_EINVAL;
  if (noise != PT_NOISE_GUMBEL && noise != PT_NOISE_NORMAL) return PT_EINVAL;
  /* every noise position m*n_in + i must be a word of the stream, and the end of a sample's
     positions, (m + 1)*n_in, must not wrap: num_samples * n_in < 2^64 */
  if (num_samples > UINT64_MAX / f->n_in) return PT_EOVERFLOW;
  perturbed_fn *p = pt_malloc(sizeof *p);
  if (!p) return PT_ENOMEM;
  pt_fn_init(&p->base, &perturbed_ops, f->n_in, f->n_out, 1,
             PT_CAP_DERIVATIVES | (f->n_out == 1 ? PT_CAP_HESSIAN : 0));
  p->f = pt_fn_retain(f);
  p->p = (pt_perturbation){num_samples, sigma, noise, use_baseline != 0};
  *out = &p->base;
  return PT_OK;
}

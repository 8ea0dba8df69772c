/* SPDX-License-Identifier: MIT */
/* pt_fenchel_young_loss: the perturbed Fenchel-Young loss of an optimizer
   y*(theta) = argmax_{y in C} <y, theta> (Berthet et al. 2020, section 4):

     L(theta; y_true) = F_eps(theta) - <theta, y_true>,   F_eps(theta) = E[<y*(theta_m), theta_m>]

   with theta_m the perturbed inputs of the options' samples.  F_eps is the perturbed support
   function of C, h(theta) = max_{y in C} <y, theta> = <y*(theta), theta>, whose gradient is
   y*(theta) almost everywhere (Danskin): so the pathwise gradient of the perturbed h is
   E[y*(theta_m)] (times d theta_m / d theta when the noise is multiplicative), the perturbed
   optimizer's mean, and the loss's gradient is (E[y*] - y_true, -theta) with no Jacobian of y*.

   The loss holds the perturbed function of h.  For the argmax one-hot (and its segments) h is
   the sum of the segments' maxima, so it perturbs pt_fn_max_segments, which runs fused; for any
   other optimizer (top-k, ranking, a user's solver) it perturbs the support function below,
   which evaluates the optimizer and forms <y*, theta>. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn.h"
#include "fn/fn_builtin.h"
#include "fn/fn_perturbed.h"

/* ---- the support function h(theta) = <y*(theta), theta> of an optimizer ---------------------- */

typedef struct support_fn {
  pt_fn base;
  pt_fn *opt;
} support_fn;

/* y* of each row of theta into ystar (batch x n), and h of each row into h (NULL: not wanted),
   each dot product in double in index order. */
static pt_status support_rows(const support_fn *s, pt_fn_keys keys, size_t batch,
                              const float *theta, float *ystar, float *h) {
  const size_t n = s->base.n_in;
  const pt_status st = s->opt->ops->eval(s->opt, keys, batch, theta, ystar);
  if (st != PT_OK || !h) return st;
  for (size_t r = 0; r < batch; r++) {
    double dot = 0.0;
    for (size_t i = 0; i < n; i++) dot += (double)ystar[r * n + i] * (double)theta[r * n + i];
    h[r] = (float)dot;
  }
  return PT_OK;
}

static pt_status support_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *theta,
                              float *h) {
  pt_status st;
  float *ystar = pt_fn_alloc(batch, f->n_in, sizeof *ystar, &st);
  if (!ystar) return st;
  st = support_rows((const support_fn *)f, keys, batch, theta, ystar, h);
  free(ystar);
  return st;
}

/* The one-row derivative: J h(theta) = y*(theta)^T, and h itself when y is wanted.  `apply`
   forms the derivative's output from y* and the op's vector v. */
typedef void (*support_apply)(const float *ystar, size_t n, const float *v, float *out);

static pt_status support_derivative(const pt_fn *f, pt_fn_keys keys, const float *theta,
                                    const float *v, float *y, float *out, support_apply apply) {
  pt_status st;
  float *ystar = pt_fn_alloc(f->n_in, 1, sizeof *ystar, &st);
  if (!ystar) return st;
  st = support_rows((const support_fn *)f, keys, 1, theta, ystar, y);
  if (st == PT_OK) apply(ystar, f->n_in, v, out);
  free(ystar);
  return st;
}

static void apply_vjp(const float *ystar, size_t n, const float *y_bar, float *x_bar) {
  for (size_t i = 0; i < n; i++) x_bar[i] = y_bar[0] * ystar[i];
}

static void apply_jvp(const float *ystar, size_t n, const float *x_dot, float *y_dot) {
  double dot = 0.0;
  for (size_t i = 0; i < n; i++) dot += (double)ystar[i] * (double)x_dot[i];
  y_dot[0] = (float)dot;
}

static void apply_jacobian(const float *ystar, size_t n, const float *unused, float *jac) {
  (void)unused;
  memcpy(jac, ystar, n * sizeof *jac);
}

static pt_status support_vjp(const pt_fn *f, pt_fn_keys keys, const float *theta,
                             const float *y_bar, float *y, float *x_bar) {
  return support_derivative(f, keys, theta, y_bar, y, x_bar, apply_vjp);
}

static pt_status support_jvp(const pt_fn *f, pt_fn_keys keys, const float *theta,
                             const float *x_dot, float *y, float *y_dot) {
  return support_derivative(f, keys, theta, x_dot, y, y_dot, apply_jvp);
}

static pt_status support_jacobian(const pt_fn *f, pt_fn_keys keys, const float *theta, float *y,
                                  float *jac) {
  return support_derivative(f, keys, theta, NULL, y, jac, apply_jacobian);
}

static void support_destroy(pt_fn *f) {
  pt_fn_free(((support_fn *)f)->opt);
  free(f);
}

static const pt_fn_ops support_ops = {
    .eval = support_eval,
    .vjp = support_vjp,
    .jvp = support_jvp,
    .jacobian = support_jacobian,
    .destroy = support_destroy,
};

static pt_status make_support(const pt_fn *opt, pt_fn **out) {
  support_fn *s = pt_malloc(sizeof *s);
  if (!s) return pt_fail(PT_ENOMEM, "no memory for the loss's support function");
  pt_fn_init(&s->base, &support_ops, opt->n_in, 1, 0,
             PT_CAP_DERIVATIVES | (opt->caps & PT_CAP_THREAD_SAFE));
  s->base.work = opt->work + (double)opt->n_in;
  s->base.nesting = opt->nesting + 1;
  s->opt = pt_fn_retain(opt);
  *out = &s->base;
  return PT_OK;
}

/* ---- the loss --------------------------------------------------------------------------------- */

typedef struct fy_fn {
  pt_fn base;
  pt_fn *smoothed; /* F_eps as `parts` outputs whose sum it is (n inputs) */
  size_t n, parts;
} fy_fn;

/* The y_true half of x = (theta, y_true) must be finite; theta is checked by the perturbed
   function. */
static pt_status check_target(const fy_fn *l, const float *x) {
  return pt_check_finite("y_true", x + l->n, l->n);
}

/* Before a public call allocates: theta and y_true both finite. */
static pt_status fy_check(const pt_fn *f, const float *x, int derivative) {
  (void)derivative; /* the loss's derivative is the smoothed optimizer's mean: no division */
  const fy_fn *l = (const fy_fn *)f;
  const pt_status s = pt_check_finite("theta", x, l->n);
  return s == PT_OK ? check_target(l, x) : s;
}

/* F_eps(theta) - <theta, y_true> from the parts of F_eps, in double. */
static float loss_value(const fy_fn *l, const float *x, const float *parts) {
  double v = 0.0;
  for (size_t s = 0; s < l->parts; s++) v += parts[s];
  for (size_t i = 0; i < l->n; i++) v -= (double)x[i] * (double)x[l->n + i];
  return (float)v;
}

/* The gradient of F_eps at theta (n floats) and, when y is wanted, the loss: one vjp of the
   perturbed function against ones, so that value and gradient share their samples (or not, as
   independent_jacobian asks). */
static pt_status smoothed_gradient(const fy_fn *l, pt_fn_keys keys, const float *x, float *y,
                                   float *grad) {
  pt_status st = check_target(l, x);
  if (st != PT_OK) return st;
  float *buf = pt_fn_alloc(2, l->parts, sizeof *buf, &st);
  if (!buf) return st;
  float *ones = buf, *parts = buf + l->parts;
  for (size_t s = 0; s < l->parts; s++) ones[s] = 1.0f;
  st = l->smoothed->ops->vjp(l->smoothed, keys, x, ones, y ? parts : NULL, grad);
  if (st == PT_OK && y) *y = loss_value(l, x, parts);
  free(buf);
  return st;
}

static pt_status fy_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x, float *y) {
  (void)batch; /* 1: the loss is random */
  const fy_fn *l = (const fy_fn *)f;
  pt_status st = check_target(l, x);
  if (st != PT_OK) return st;
  float *parts = pt_fn_alloc(l->parts, 1, sizeof *parts, &st);
  if (!parts) return st;
  st = l->smoothed->ops->eval(l->smoothed, keys, 1, x, parts);
  if (st == PT_OK) *y = loss_value(l, x, parts);
  free(parts);
  return st;
}

/* x_bar = y_bar (grad F_eps - y_true, -theta) */
static pt_status fy_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                        float *y, float *x_bar) {
  const fy_fn *l = (const fy_fn *)f;
  const size_t n = l->n;
  const pt_status st = smoothed_gradient(l, keys, x, y, x_bar);
  if (st != PT_OK) return st;
  for (size_t i = 0; i < n; i++) {
    x_bar[i] = y_bar[0] * (x_bar[i] - x[n + i]);
    x_bar[n + i] = -y_bar[0] * x[i];
  }
  return PT_OK;
}

/* y_dot = <grad F_eps - y_true, theta_dot> - <theta, y_true_dot> */
static pt_status fy_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                        float *y, float *y_dot) {
  const fy_fn *l = (const fy_fn *)f;
  const size_t n = l->n;
  pt_status st;
  float *grad = pt_fn_alloc(n, 1, sizeof *grad, &st);
  if (!grad) return st;
  st = smoothed_gradient(l, keys, x, y, grad);
  if (st == PT_OK) {
    double dot = 0.0;
    for (size_t i = 0; i < n; i++)
      dot += ((double)grad[i] - (double)x[n + i]) * (double)x_dot[i] -
             (double)x[i] * (double)x_dot[n + i];
    y_dot[0] = (float)dot;
  }
  free(grad);
  return st;
}

static pt_status fy_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                             float *jac) {
  const float one = 1.0f;
  return fy_vjp(f, keys, x, &one, y, jac);
}

static void fy_destroy(pt_fn *f) {
  pt_fn_free(((fy_fn *)f)->smoothed);
  free(f);
}

static const pt_fn_ops fy_ops = {
    .eval = fy_eval,
    .vjp = fy_vjp,
    .jvp = fy_jvp,
    .jacobian = fy_jacobian,
    .destroy = fy_destroy,
    .check = fy_check,
};

/* The function whose perturbation is F_eps, and how many outputs it sums: the segments' maxima
   for the argmax one-hot, the support function of any other optimizer.  Built-ins that are not
   optimizers of the form argmax <y, theta> (max, sort, the permutation matrix, whose n_out is
   not n) and functions with random parts of their own are refused. */
static pt_status support_of(const pt_fn *opt, pt_fn **h, size_t *parts) {
  const pt_builtin b = pt_fn_builtin(opt);
  switch (b.kind) {
    case PT_BUILTIN_ARGMAX: {
      size_t *sizes = pt_malloc(b.count * sizeof *sizes);
      if (!sizes) return pt_fail(PT_ENOMEM, "no memory for %zu segment sizes", b.count);
      for (size_t s = 0; s < b.count; s++) sizes[s] = b.offsets[s + 1] - b.offsets[s];
      const pt_status st = pt_fn_max_segments(sizes, b.count, h);
      free(sizes);
      *parts = b.count;
      return st;
    }
    case PT_BUILTIN_NONE:
    case PT_BUILTIN_TOP_K:
    case PT_BUILTIN_RANKING:
      if (opt->n_in != opt->n_out)
        return pt_fail(PT_EINVAL,
                       "opt has %zu inputs and %zu outputs: an optimizer has as many of each",
                       opt->n_in, opt->n_out);
      if (opt->n_random)
        return pt_fail(PT_EINVAL,
                       "opt is random (it holds a perturbed function): the loss perturbs it itself");
      *parts = 1;
      return make_support(opt, h);
    default:
      return pt_fail(PT_EINVAL, "opt is a max, sort or permutation matrix, not an optimizer "
                                "argmax <y, theta> (argmax one-hot, top-k, ranking or a solver)");
  }
}

pt_status pt_fenchel_young_loss(const pt_fn *opt, const pt_perturb_options *options,
                                pt_fn **out) {
  PT_CALL("pt_fenchel_young_loss");
  if (!opt || !out) return pt_fail(PT_EINVAL, "opt or out is NULL");
  if (opt->n_in > SIZE_MAX / 2 / sizeof(float))
    return pt_fail(PT_EOVERFLOW, "opt's %zu inputs, twice over, are past SIZE_MAX bytes", opt->n_in);
  pt_perturb_options o = pt_perturb_defaults();
  if (options) {
    const pt_status s = pt_perturb_options_read(options, &o);
    if (s != PT_OK) return s;
  }
  /* the loss's gradient is the perturbed optimizer's mean: Danskin's pathwise gradient of F_eps,
     unless the caller asks for the score function's estimate of it */
  if (o.gradient == PT_GRADIENT_AUTO) o.gradient = PT_GRADIENT_PATHWISE;
  pt_fn *h = NULL, *smoothed = NULL;
  size_t parts = 0;
  pt_status st = support_of(opt, &h, &parts);
  if (st == PT_OK) st = pt_make_perturbed_fun_ex(h, &o, &smoothed);
  pt_fn_free(h);
  if (st != PT_OK) return st;
  fy_fn *l = pt_malloc(sizeof *l);
  if (!l) {
    pt_fn_free(smoothed);
    return pt_fail(PT_ENOMEM, "no memory for the loss");
  }
  pt_fn_init(&l->base, &fy_ops, 2 * opt->n_in, 1, smoothed->n_random,
             PT_CAP_DERIVATIVES | (smoothed->caps & PT_CAP_THREAD_SAFE));
  l->base.work = smoothed->work;
  l->base.nesting = smoothed->nesting + 1;
  l->smoothed = smoothed;
  l->n = opt->n_in;
  l->parts = parts;
  *out = &l->base;
  return PT_OK;
}

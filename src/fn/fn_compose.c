/* SPDX-License-Identifier: MIT */
/* pt_fn_compose: outer(inner(x)), with the chain rule for vjp, jvp and the Jacobian.  The inner
   part's random parts come first in the numbering of pt_fn_keys, the outer part's after them. */
#include <stdlib.h>

#include "runtime/alloc.h"
#include "fn/fn.h"

typedef struct compose_fn {
  pt_fn base;
  pt_fn *outer, *inner;
} compose_fn;

#define PARTS(f)                                                                      \
  const compose_fn *c = (const compose_fn *)(f);                                      \
  const pt_fn *outer = c->outer, *inner = c->inner;                                   \
  const pt_fn_keys keys_outer = pt_fn_keys_skip(keys, inner->n_random);               \
  const size_t n_mid = inner->n_out

static pt_status compose_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                              float *y) {
  PARTS(f);
  pt_status s;
  float *u = pt_fn_alloc(batch, n_mid, sizeof *u, &s);
  if (!u) return s;
  s = inner->ops->eval(inner, keys, batch, x, u);
  if (s == PT_OK) s = outer->ops->eval(outer, keys_outer, batch, u, y);
  free(u);
  return s;
}

/* Reverse mode: the inner value u first, then u_bar = J_outer(u)^T y_bar, then
   x_bar = J_inner(x)^T u_bar (a perturbed inner part regenerates its samples for that). */
static pt_status compose_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                             float *y, float *x_bar) {
  PARTS(f);
  pt_status s;
  float *u = pt_fn_alloc(2, n_mid, sizeof *u, &s);
  if (!u) return s;
  float *u_bar = u + n_mid;
  s = inner->ops->eval(inner, keys, 1, x, u);
  if (s == PT_OK) s = outer->ops->vjp(outer, keys_outer, u, y_bar, y, u_bar);
  if (s == PT_OK) s = inner->ops->vjp(inner, keys, x, u_bar, NULL, x_bar);
  free(u);
  return s;
}

/* Forward mode: (u, u_dot) from the inner part, then (y, y_dot) from the outer one. */
static pt_status compose_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                             float *y, float *y_dot) {
  PARTS(f);
  pt_status s;
  float *u = pt_fn_alloc(2, n_mid, sizeof *u, &s);
  if (!u) return s;
  float *u_dot = u + n_mid;
  s = inner->ops->jvp(inner, keys, x, x_dot, u, u_dot);
  if (s == PT_OK) s = outer->ops->jvp(outer, keys_outer, u, u_dot, y, y_dot);
  free(u);
  return s;
}

/* J = J_outer(u) J_inner(x), each entry summed in double over the middle index in order. */
static pt_status compose_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                  float *jac) {
  PARTS(f);
  const size_t n_in = f->n_in, n_out = f->n_out;
  pt_status s = PT_OK;
  float *u = pt_fn_alloc(n_mid, 1, sizeof *u, &s);
  float *j_inner = u ? pt_fn_alloc(n_mid, n_in, sizeof *j_inner, &s) : NULL;
  float *j_outer = j_inner ? pt_fn_alloc(n_out, n_mid, sizeof *j_outer, &s) : NULL;
  double *row = j_outer ? pt_fn_alloc(n_in, 1, sizeof *row, &s) : NULL;
  if (row) s = inner->ops->jacobian(inner, keys, x, u, j_inner);
  if (row && s == PT_OK) s = outer->ops->jacobian(outer, keys_outer, u, y, j_outer);
  if (row && s == PT_OK) {
    for (size_t j = 0; j < n_out; j++) {
      for (size_t i = 0; i < n_in; i++) row[i] = 0.0;
      for (size_t k = 0; k < n_mid; k++) {
        const double a = j_outer[j * n_mid + k];
        const float *b = j_inner + k * n_in;
        for (size_t i = 0; i < n_in; i++) row[i] += a * (double)b[i];
      }
      for (size_t i = 0; i < n_in; i++) jac[j * n_in + i] = (float)row[i];
    }
  }
  free(row);
  free(j_outer);
  free(j_inner);
  free(u);
  return s;
}

static void compose_destroy(pt_fn *f) {
  compose_fn *c = (compose_fn *)f;
  pt_fn_free(c->outer);
  pt_fn_free(c->inner);
  free(c);
}

static const pt_fn_ops compose_ops = {
    .eval = compose_eval,
    .vjp = compose_vjp,
    .jvp = compose_jvp,
    .jacobian = compose_jacobian,
    .destroy = compose_destroy,
};

pt_status pt_fn_compose(const pt_fn *outer, const pt_fn *inner, pt_fn **out) {
  if (!outer || !inner || !out || outer->n_in != inner->n_out) return PT_EINVAL;
  compose_fn *c = pt_malloc(sizeof *c);
  if (!c) return PT_ENOMEM;
  /* A composition is differentiable (and thread-safe) when both parts are; its Hessian would
     need second derivatives of the inner part, which no kind provides. */
  pt_fn_init(&c->base, &compose_ops, inner->n_in, outer->n_out,
             inner->n_random + outer->n_random,
             outer->caps & inner->caps & (PT_CAP_DERIVATIVES | PT_CAP_THREAD_SAFE));
  c->base.work = outer->work + inner->work;
  c->outer = pt_fn_retain(outer);
  c->inner = pt_fn_retain(inner);
  *out = &c->base;
  return PT_OK;
}

/* SPDX-License-Identifier: MIT */
/* Functions given by user callbacks: a black box (pt_fn_from_callback), and a black box with a
   vector-Jacobian product (pt_custom_gradient, as tfp.math.custom_gradient); both, with a
   destructor for the user data and a thread-safety flag, from pt_fn_from_callback_ex.  Without
   PT_CALLBACK_THREAD_SAFE the object lacks PT_CAP_THREAD_SAFE, so the library calls it only
   from the thread of the computing call, in row order; a program that uses one object from
   several threads of its own must still give it callbacks that may run concurrently. */
#include <stdlib.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn.h"

typedef struct callback_fn {
  pt_fn base;
  pt_eval_fn fx;
  pt_vjp_fn gx; /* NULL for a black box */
  void *user;
  pt_free_fn free_user; /* NULL: the caller keeps user */
} callback_fn;

static pt_status callback_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                               float *y) {
  (void)keys;
  const callback_fn *c = (const callback_fn *)f;
  const int r = c->fx(c->user, batch, x, y);
  return r ? pt_fail(PT_ECALLBACK, "the evaluation callback returned %d", r) : PT_OK;
}

static pt_status call_vjp(const callback_fn *c, const float *x, const float *y_bar, float *x_bar) {
  const int r = c->gx(c->user, x, y_bar, x_bar);
  return r ? pt_fail(PT_ECALLBACK, "the vjp callback returned %d", r) : PT_OK;
}

static pt_status custom_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                            float *y, float *x_bar) {
  const callback_fn *c = (const callback_fn *)f;
  const pt_status s = y ? callback_eval(f, keys, 1, x, y) : PT_OK;
  return s == PT_OK ? call_vjp(c, x, y_bar, x_bar) : s;
}

/* Row j of the Jacobian is the VJP against the basis vector e_j.  With `jac` it is stored;
   with x_dot it is only dotted with x_dot (y_dot_j = e_j^T J x_dot), so a jvp needs O(n_in)
   memory, not O(n_out n_in).  Dot products sum in double in index order. */
static pt_status custom_rows(const callback_fn *c, const float *x, const float *x_dot,
                             float *y_dot, float *jac) {
  const size_t n_in = c->base.n_in, n_out = c->base.n_out;
  pt_status s = PT_OK;
  float *e = pt_calloc(n_out, sizeof *e);
  float *row = jac ? NULL : pt_fn_alloc(n_in, 1, sizeof *row, &s);
  if (!e || (!jac && !row)) {
    free(e);
    free(row);
    return e ? s : pt_fail(PT_ENOMEM, "no memory for a basis vector of %zu floats", n_out);
  }
  for (size_t j = 0; j < n_out && s == PT_OK; j++) {
    float *r = jac ? jac + j * n_in : row;
    e[j] = 1.0f;
    s = call_vjp(c, x, e, r);
    e[j] = 0.0f;
    if (s == PT_OK && x_dot) {
      double sum = 0.0;
      for (size_t i = 0; i < n_in; i++) sum += (double)r[i] * (double)x_dot[i];
      y_dot[j] = (float)sum;
    }
  }
  free(e);
  free(row);
  return s;
}

static pt_status custom_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                            float *y, float *y_dot) {
  const pt_status s = y ? callback_eval(f, keys, 1, x, y) : PT_OK;
  if (s != PT_OK) return s;
  return custom_rows((const callback_fn *)f, x, x_dot, y_dot, NULL);
}

static pt_status custom_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                 float *jac) {
  const pt_status s = y ? callback_eval(f, keys, 1, x, y) : PT_OK;
  if (s != PT_OK) return s;
  return custom_rows((const callback_fn *)f, x, NULL, NULL, jac);
}

static void callback_destroy(pt_fn *f) {
  callback_fn *c = (callback_fn *)f;
  if (c->free_user) c->free_user(c->user);
  free(c);
}

static const pt_fn_ops black_box_ops = {
    .eval = callback_eval,
    .destroy = callback_destroy,
};

static const pt_fn_ops custom_gradient_ops = {
    .eval = callback_eval,
    .vjp = custom_vjp,
    .jvp = custom_jvp,
    .jacobian = custom_jacobian,
    .destroy = callback_destroy,
};

static pt_status make(size_t n_in, size_t n_out, pt_eval_fn fx, pt_vjp_fn gx, void *user,
                      pt_free_fn free_user, unsigned flags, pt_fn **out) {
  if (!out) return pt_fail(PT_EINVAL, "out is NULL");
  if (!fx) return pt_fail(PT_EINVAL, "the evaluation callback is NULL");
  if (flags & ~(unsigned)PT_CALLBACK_THREAD_SAFE)
    return pt_fail(PT_EINVAL, "flags are 0x%x: only PT_CALLBACK_THREAD_SAFE is defined", flags);
  const pt_status s = pt_fn_check_sizes(n_in, n_out);
  if (s != PT_OK) return s;
  callback_fn *c = pt_malloc(sizeof *c);
  if (!c) return pt_fail(PT_ENOMEM, "no memory for the function object");
  pt_fn_init(&c->base, gx ? &custom_gradient_ops : &black_box_ops, n_in, n_out, 0,
             (gx ? PT_CAP_DERIVATIVES : 0) |
                 (flags & PT_CALLBACK_THREAD_SAFE ? PT_CAP_THREAD_SAFE : 0));
  c->fx = fx;
  c->gx = gx;
  c->user = user;
  c->free_user = free_user;
  c->base.work = 64.0 * c->base.work; /* unknown: count a user's call as costly */
  *out = &c->base;
  return PT_OK;
}

pt_status pt_fn_from_callback(size_t n_in, size_t n_out, pt_eval_fn f, void *user, pt_fn **out) {
  PT_CALL("pt_fn_from_callback");
  return make(n_in, n_out, f, NULL, user, NULL, 0, out);
}

pt_status pt_custom_gradient(size_t n_in, size_t n_out, pt_eval_fn fx, pt_vjp_fn gx, void *user,
                             pt_fn **out) {
  PT_CALL("pt_custom_gradient");
  if (!gx) return pt_fail(PT_EINVAL, "the vjp callback gx is NULL");
  return make(n_in, n_out, fx, gx, user, NULL, 0, out);
}

pt_status pt_fn_from_callback_ex(size_t n_in, size_t n_out, pt_eval_fn f, pt_vjp_fn gx,
                                 void *user, pt_free_fn free_user, unsigned flags, pt_fn **out) {
  PT_CALL("pt_fn_from_callback_ex");
  return make(n_in, n_out, f, gx, user, free_user, flags, out);
}

/* SPDX-License-Identifier: MIT */
/* The pt_fn object layer: reference counting, the keys of random parts, and the public calls,
   which check their arguments, run the kind's operation into scratch buffers and copy the
   result out only when it succeeded (so a failing call writes nothing). */
#include "fn/fn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"

pt_status pt_fn_check_sizes(size_t n_in, size_t n_out) {
  if (n_in == 0 || n_out == 0) return PT_EINVAL;
  if (pt_fn_too_big(n_in, 1, sizeof(float)) || pt_fn_too_big(n_out, 1, sizeof(float)))
    return PT_EOVERFLOW;
  return PT_OK;
}

void pt_fn_init(pt_fn *f, const pt_fn_ops *ops, size_t n_in, size_t n_out, size_t n_random,
                unsigned caps) {
  f->ops = ops;
  f->n_in = n_in;
  f->n_out = n_out;
  f->n_random = n_random;
  f->caps = caps;
  f->work = (double)n_in + (double)n_out;
  f->nesting = 0;
  f->refs = 1;
}

/* The reference count is the one field that changes after construction, so the const of a
   part handed to a constructor is cast away here and only here. */
pt_fn *pt_fn_retain(const pt_fn *f) {
  pt_fn *g = (pt_fn *)f;
  __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
  return g;
}

void pt_fn_free(pt_fn *f) {
  if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) f->ops->destroy(f);
}

size_t pt_fn_n_in(const pt_fn *f) { return f ? f->n_in : 0; }
size_t pt_fn_n_out(const pt_fn *f) { return f ? f->n_out : 0; }

pt_fn_keys pt_fn_keys_for(const pt_fn *f, pt_key key) {
  return (pt_fn_keys){key, 0, f->n_random > 1};
}

pt_fn_keys pt_fn_keys_skip(pt_fn_keys keys, size_t parts) {
  keys.first += parts;
  return keys;
}

pt_key pt_fn_part_key(pt_fn_keys keys) {
  return keys.split ? pt_key_fold_in(keys.key, keys.first) : keys.key;
}

int pt_fn_too_big(size_t n, size_t m, size_t size) {
  size_t bytes;
  return __builtin_mul_overflow(n, m, &bytes) || __builtin_mul_overflow(bytes, size, &bytes) ||
         bytes > (size_t)PTRDIFF_MAX;
}

void *pt_fn_alloc(size_t n, size_t m, size_t size, pt_status *status) {
  if (pt_fn_too_big(n, m, size)) {
    *status = PT_EOVERFLOW;
    return NULL;
  }
  const size_t bytes = n * m * size;
  void *p = pt_malloc(bytes > 0 ? bytes : 1);
  *status = p ? PT_OK : PT_ENOMEM;
  return p;
}

pt_status pt_fn_eval_rows(const pt_fn *f, pt_key key, uint64_t row0, size_t batch, const float *x,
                          float *y) {
  if (f->n_random == 0) return f->ops->eval(f, pt_fn_keys_for(f, key), batch, x, y);
  for (size_t b = 0; b < batch; b++) {
    const pt_fn_keys keys = pt_fn_keys_for(f, pt_key_fold_in(key, row0 + b));
    const pt_status s = f->ops->eval(f, keys, 1, x + b * f->n_in, y + b * f->n_out);
    if (s != PT_OK) return s;
  }
  return PT_OK;
}

/* ---- the public calls -------------------------------------------------------------------------
   Every computing call refuses to run while PERTURB_ISA names an ISA this machine lacks or
   PERTURB_NUM_THREADS is not a thread count (perturb(7), "ERRORS"), even one that would call
   no kernel or run on one thread, so a mistaken override is never silent. */

pt_status pt_fn_ready(const pt_fn *f) {
  if (!pt_kernels_active()) return PT_EUNSUPPORTED;
  return f && pt_threads_ready() == PT_OK ? PT_OK : PT_EINVAL;
}

pt_status pt_fn_check_input(const pt_fn *f, size_t batch, const float *x) {
  if (!f->ops->check) return PT_OK;
  for (size_t b = 0; b < batch; b++) {
    const pt_status s = f->ops->check(f, x + b * f->n_in);
    if (s != PT_OK) return s;
  }
  return PT_OK;
}

int pt_all_finite(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

pt_status pt_fn_copy_out(pt_status s, float *scratch, float *out, size_t n) {
  if (s == PT_OK) memcpy(out, scratch, n * sizeof *out);
  free(scratch);
  return s;
}

pt_status pt_fn_eval(const pt_fn *f, pt_key key, const float *x, float *y) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !y) return PT_EINVAL;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, 1, sizeof *out, &s);
  if (!out) return s;
  return pt_fn_copy_out(f->ops->eval(f, pt_fn_keys_for(f, key), 1, x, out), out, y, f->n_out);
}

pt_status pt_fn_vjp(const pt_fn *f, pt_key key, const float *x, const float *y_bar, float *x_bar) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !y_bar || !x_bar) return PT_EINVAL;
  if (!(f->caps & PT_CAP_DERIVATIVES)) return PT_EUNSUPPORTED;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, 1, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->vjp(f, pt_fn_keys_for(f, key), x, y_bar, NULL, out);
  return pt_fn_copy_out(s, out, x_bar, f->n_in);
}

pt_status pt_fn_jvp(const pt_fn *f, pt_key key, const float *x, const float *x_dot, float *y_dot) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !x_dot || !y_dot) return PT_EINVAL;
  if (!(f->caps & PT_CAP_DERIVATIVES)) return PT_EUNSUPPORTED;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, 1, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->jvp(f, pt_fn_keys_for(f, key), x, x_dot, NULL, out);
  return pt_fn_copy_out(s, out, y_dot, f->n_out);
}

pt_status pt_fn_jacobian(const pt_fn *f, pt_key key, const float *x, float *jac) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !jac) return PT_EINVAL;
  if (!(f->caps & PT_CAP_DERIVATIVES)) return PT_EUNSUPPORTED;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, f->n_in, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->jacobian(f, pt_fn_keys_for(f, key), x, NULL, out);
  return pt_fn_copy_out(s, out, jac, f->n_out * f->n_in);
}

pt_status pt_fn_value_and_grad(const pt_fn *f, pt_key key, const float *x, float *value,
                               float *grad) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !value || !grad || f->n_out != 1) return PT_EINVAL;
  if (!(f->caps & PT_CAP_DERIVATIVES)) return PT_EUNSUPPORTED;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, 1, sizeof *out, &s);
  if (!out) return s;
  const float one = 1.0f;
  float v;
  s = f->ops->vjp(f, pt_fn_keys_for(f, key), x, &one, &v, out);
  if (s == PT_OK) *value = v;
  return pt_fn_copy_out(s, out, grad, f->n_in);
}

pt_status pt_fn_hessian(const pt_fn *f, pt_key key, const float *x, float *hess) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !hess) return PT_EINVAL;
  if (!(f->caps & PT_CAP_HESSIAN)) return PT_EUNSUPPORTED;
  if ((s = pt_fn_check_input(f, 1, x)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, f->n_in, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->hessian(f, pt_fn_keys_for(f, key), x, out);
  return pt_fn_copy_out(s, out, hess, f->n_in * f->n_in);
}

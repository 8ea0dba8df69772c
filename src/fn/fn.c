/* SPDX-License-Identifier: MIT */
/* The pt_fn object layer: reference counting, the keys of random parts, and the public calls,
   which check their arguments, run the kind's operation into scratch buffers and copy the
   result out only when it succeeded (so a failing call writes nothing). */
#include "fn/fn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"

pt_status pt_fn_check_sizes(size_t n_in, size_t n_out) {
  if (n_in == 0 || n_out == 0)
    return pt_fail(PT_EINVAL, "n_in is %zu and n_out %zu: neither may be 0", n_in, n_out);
  if (pt_fn_too_big(n_in, 1, sizeof(float)) || pt_fn_too_big(n_out, 1, sizeof(float)))
    return pt_fail(PT_EOVERFLOW, "n_in %zu or n_out %zu is past PTRDIFF_MAX bytes of floats",
                   n_in, n_out);
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
    *status = pt_fail(PT_EOVERFLOW, "%zu x %zu elements of %zu bytes are past PTRDIFF_MAX bytes",
                      n, m, size);
    return NULL;
  }
  const size_t bytes = n * m * size;
  void *p = pt_malloc(bytes > 0 ? bytes : 1);
  *status = p ? PT_OK : pt_fail(PT_ENOMEM, "no memory for %zu bytes of scratch", bytes);
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
  const pt_kernel_table *k;
  const pt_status s = pt_kernels_ready(&k);
  if (s != PT_OK) return s;
  return f ? PT_OK : pt_fail(PT_EINVAL, "f is NULL");
}

pt_status pt_fn_check_input(const pt_fn *f, size_t batch, const float *x, int derivative) {
  if (!f->ops->check) return PT_OK;
  for (size_t b = 0; b < batch; b++) {
    const pt_status s = f->ops->check(f, x + b * f->n_in, derivative);
    if (s != PT_OK) return s;
  }
  return PT_OK;
}

pt_status pt_check_finite(const char *name, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return pt_fail(PT_EINVAL, "%s[%zu] is %g", name, i, (double)x[i]);
  return PT_OK;
}

pt_status pt_fn_copy_out(pt_status s, float *scratch, float *out, size_t n) {
  if (s == PT_OK) memcpy(out, scratch, n * sizeof *out);
  free(scratch);
  return pt_failed(s);
}

pt_status pt_fn_unsupported(const char *what) {
  return pt_fail(PT_EUNSUPPORTED, "f has no %s (a black box, or a kind without it)", what);
}

pt_status pt_fn_eval(const pt_fn *f, pt_key key, const float *x, float *y) {
  PT_CALL("pt_fn_eval");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !y) return pt_fail(PT_EINVAL, "x or y is NULL");
  if ((s = pt_fn_check_input(f, 1, x, 0)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, 1, sizeof *out, &s);
  if (!out) return s;
  return pt_fn_copy_out(f->ops->eval(f, pt_fn_keys_for(f, key), 1, x, out), out, y, f->n_out);
}

pt_status pt_fn_vjp(const pt_fn *f, pt_key key, const float *x, const float *y_bar, float *x_bar) {
  PT_CALL("pt_fn_vjp");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !y_bar || !x_bar) return pt_fail(PT_EINVAL, "x, y_bar or x_bar is NULL");
  if (!(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  if ((s = pt_fn_check_input(f, 1, x, 1)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, 1, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->vjp(f, pt_fn_keys_for(f, key), x, y_bar, NULL, out);
  return pt_fn_copy_out(s, out, x_bar, f->n_in);
}

pt_status pt_fn_jvp(const pt_fn *f, pt_key key, const float *x, const float *x_dot, float *y_dot) {
  PT_CALL("pt_fn_jvp");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !x_dot || !y_dot) return pt_fail(PT_EINVAL, "x, x_dot or y_dot is NULL");
  if (!(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  if ((s = pt_fn_check_input(f, 1, x, 1)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, 1, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->jvp(f, pt_fn_keys_for(f, key), x, x_dot, NULL, out);
  return pt_fn_copy_out(s, out, y_dot, f->n_out);
}

pt_status pt_fn_jacobian(const pt_fn *f, pt_key key, const float *x, float *jac) {
  PT_CALL("pt_fn_jacobian");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !jac) return pt_fail(PT_EINVAL, "x or jac is NULL");
  if (!(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  if ((s = pt_fn_check_input(f, 1, x, 1)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_out, f->n_in, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->jacobian(f, pt_fn_keys_for(f, key), x, NULL, out);
  return pt_fn_copy_out(s, out, jac, f->n_out * f->n_in);
}

pt_status pt_fn_value_and_grad(const pt_fn *f, pt_key key, const float *x, float *value,
                               float *grad) {
  PT_CALL("pt_fn_value_and_grad");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !value || !grad) return pt_fail(PT_EINVAL, "x, value or grad is NULL");
  if (f->n_out != 1) return pt_fail(PT_EINVAL, "f has %zu outputs, not one", f->n_out);
  if (!(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  if ((s = pt_fn_check_input(f, 1, x, 1)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, 1, sizeof *out, &s);
  if (!out) return s;
  const float one = 1.0f;
  float v;
  s = f->ops->vjp(f, pt_fn_keys_for(f, key), x, &one, &v, out);
  if (s == PT_OK) *value = v;
  return pt_fn_copy_out(s, out, grad, f->n_in);
}

pt_status pt_fn_hessian(const pt_fn *f, pt_key key, const float *x, float *hess) {
  PT_CALL("pt_fn_hessian");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !hess) return pt_fail(PT_EINVAL, "x or hess is NULL");
  if (!(f->caps & PT_CAP_HESSIAN)) return pt_fn_unsupported("Hessian");
  if ((s = pt_fn_check_input(f, 1, x, 1)) != PT_OK) return s;
  float *out = pt_fn_alloc(f->n_in, f->n_in, sizeof *out, &s);
  if (!out) return s;
  s = f->ops->hessian(f, pt_fn_keys_for(f, key), x, out);
  return pt_fn_copy_out(s, out, hess, f->n_in * f->n_in);
}

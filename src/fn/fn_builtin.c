/* SPDX-License-Identifier: MIT */
/* The built-in piecewise-constant functions: argmax one-hot (also per segment, for a flattened
   tree of leaves) and ranking.  They evaluate through the row kernels, whole batches at once;
   their derivatives are zero almost everywhere, and zero is what they return (as JAX does).
   Made differentiable by pt_make_perturbed_fun, they run in its fused kernels. */
#include "fn/fn_builtin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"

typedef struct builtin_fn {
  pt_fn base;
  pt_builtin_kind kind;
  size_t count;      /* segments (1 for ranking) */
  size_t offsets[];  /* count + 1 */
} builtin_fn;

static pt_status argmax_eval(const builtin_fn *b, size_t batch, const float *x, float *y) {
  const size_t n = b->base.n_in;
  pt_status s;
  int32_t *idx = pt_fn_alloc(batch, 1, sizeof *idx, &s);
  if (!idx) return s;
  memset(y, 0, batch * n * sizeof *y);
  for (size_t g = 0; g < b->count && s == PT_OK; g++) {
    const size_t at = b->offsets[g];
    s = pt_argmax_rows(x + at, batch, b->offsets[g + 1] - at, n, idx);
    for (size_t r = 0; r < batch && s == PT_OK; r++) y[r * n + at + (size_t)idx[r]] = 1.0f;
  }
  free(idx);
  return s;
}

static pt_status ranking_eval(const builtin_fn *b, size_t batch, const float *x, float *y) {
  const size_t d = b->base.n_in;
  pt_status s;
  int32_t *rank = pt_fn_alloc(batch, d, sizeof *rank, &s);
  if (!rank) return s;
  s = pt_rank_rows(x, batch, d, d, rank, d);
  if (s == PT_OK)
    for (size_t i = 0; i < batch * d; i++) y[i] = (float)rank[i];
  free(rank);
  return s;
}

static pt_status builtin_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                              float *y) {
  (void)keys;
  const builtin_fn *b = (const builtin_fn *)f;
  return b->kind == PT_BUILTIN_ARGMAX ? argmax_eval(b, batch, x, y) : ranking_eval(b, batch, x, y);
}

/* Zero derivatives; the value when asked for. */
static pt_status zero_derivative(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                 float *out, size_t n) {
  const pt_status s = y ? builtin_eval(f, keys, 1, x, y) : PT_OK;
  if (s == PT_OK) memset(out, 0, n * sizeof *out);
  return s;
}

static pt_status builtin_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                             float *y, float *x_bar) {
  (void)y_bar;
  return zero_derivative(f, keys, x, y, x_bar, f->n_in);
}

static pt_status builtin_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                             float *y, float *y_dot) {
  (void)x_dot;
  return zero_derivative(f, keys, x, y, y_dot, f->n_out);
}

static pt_status builtin_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                  float *jac) {
  return zero_derivative(f, keys, x, y, jac, f->n_out * f->n_in);
}

static void builtin_destroy(pt_fn *f) { free(f); }

static const pt_fn_ops builtin_ops = {
    .eval = builtin_eval,
    .vjp = builtin_vjp,
    .jvp = builtin_jvp,
    .jacobian = builtin_jacobian,
    .destroy = builtin_destroy,
};

pt_builtin_kind pt_fn_builtin(const pt_fn *f, size_t *count, const size_t **offsets) {
  if (f->ops != &builtin_ops) return PT_BUILTIN_NONE;
  const builtin_fn *b = (const builtin_fn *)f;
  if (count) *count = b->count;
  if (offsets) *offsets = b->offsets;
  return b->kind;
}

/* Every segment (and so the row kernels' d) is at most INT32_MAX, and so is the total, which
   fused kernels index with 32-bit lanes. */
static pt_status make(pt_builtin_kind kind, const size_t *sizes, size_t count, pt_fn **out) {
  if (!out || !sizes || count == 0) return PT_EINVAL;
  size_t total = 0;
  for (size_t g = 0; g < count; g++) {
    if (sizes[g] == 0) return PT_EINVAL;
    if (sizes[g] > INT32_MAX - total) return PT_EOVERFLOW;
    total += sizes[g];
  }
  if (count > (SIZE_MAX - sizeof(builtin_fn)) / sizeof(size_t) - 1) return PT_EOVERFLOW;
  builtin_fn *b = pt_malloc(sizeof *b + (count + 1) * sizeof b->offsets[0]);
  if (!b) return PT_ENOMEM;
  pt_fn_init(&b->base, &builtin_ops, total, total, 0, PT_CAP_DERIVATIVES | PT_CAP_THREAD_SAFE);
  b->kind = kind;
  b->count = count;
  b->offsets[0] = 0;
  for (size_t g = 0; g < count; g++) b->offsets[g + 1] = b->offsets[g] + sizes[g];
  *out = &b->base;
  return PT_OK;
}

pt_status pt_fn_argmax_one_hot(size_t d, pt_fn **out) {
  return make(PT_BUILTIN_ARGMAX, &d, 1, out);
}

/* A segment of size 0 is PT_EINVAL: it would be a leaf with no argmax to take. */
pt_status pt_fn_argmax_one_hot_segments(const size_t *sizes, size_t count, pt_fn **out) {
  return make(PT_BUILTIN_ARGMAX, sizes, count, out);
}

pt_status pt_fn_ranking(size_t d, pt_fn **out) { return make(PT_BUILTIN_RANKING, &d, 1, out); }

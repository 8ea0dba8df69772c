/* SPDX-License-Identifier: MIT */
/* The built-in functions: argmax one-hot, top-k, max, ranking and sort (each also per segment,
   for a flattened tree of leaves) and the permutation matrix (also per segment).  They evaluate through the row
   kernels, whole batches at once.  Argmax, top-k, ranking and the permutation matrix are
   piecewise constant: their derivatives are zero almost everywhere, and zero is what they return
   (as JAX does).  Max and sort are differentiable almost everywhere, with the argmax one-hot and
   the permutation as their Jacobians.  The permutation matrix of segments has one d_s x d_s
   block of cells per segment, one after another.  Made differentiable by pt_make_perturbed_fun, they run in
   its fused kernels. */
#include "api/error.h"
#include "fn/fn_builtin.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"

typedef struct builtin_fn {
  pt_fn base;
  pt_builtin_kind kind;
  size_t count;      /* segments (1 for the kinds without) */
  size_t *k;         /* top-k: count values, after the offsets; else NULL */
  size_t *cells;     /* the permutation matrix: count + 1 offsets of the segments' blocks of
                        cells, after the offsets; else NULL */
  size_t offsets[];  /* count + 1, then the k or the cells */
} builtin_fn;

/* idx (batch x count): the argmax of each segment of each row, as an input index. */
static pt_status segment_argmax(const builtin_fn *b, size_t batch, const float *x, int32_t *idx) {
  const size_t n = b->base.n_in;
  pt_status s = PT_OK;
  int32_t *one = pt_fn_alloc(batch, 1, sizeof *one, &s);
  if (!one) return s;
  for (size_t g = 0; g < b->count && s == PT_OK; g++) {
    const size_t at = b->offsets[g];
    s = pt_argmax_rows(x + at, batch, b->offsets[g + 1] - at, n, one);
    for (size_t r = 0; r < batch && s == PT_OK; r++) idx[r * b->count + g] = (int32_t)at + one[r];
  }
  free(one);
  return s;
}

/* rank (batch x n): the rank of each input within its segment. */
static pt_status segment_ranks(const builtin_fn *b, size_t batch, const float *x, int32_t *rank) {
  const size_t n = b->base.n_in;
  pt_status s = PT_OK;
  for (size_t g = 0; g < b->count && s == PT_OK; g++) {
    const size_t at = b->offsets[g];
    s = pt_rank_rows(x + at, batch, b->offsets[g + 1] - at, n, rank + at, n);
  }
  return s;
}

/* The kinds' values from the argmaxes or ranks of a batch. */
static void argmax_values(const builtin_fn *b, size_t batch, const float *x, const int32_t *idx,
                          float *y) {
  const size_t n = b->base.n_in, count = b->count;
  if (b->kind == PT_BUILTIN_MAX) {
    for (size_t r = 0; r < batch; r++)
      for (size_t g = 0; g < count; g++) y[r * count + g] = x[r * n + (size_t)idx[r * count + g]];
    return;
  }
  memset(y, 0, batch * n * sizeof *y);
  for (size_t r = 0; r < batch; r++)
    for (size_t g = 0; g < count; g++) y[r * n + (size_t)idx[r * count + g]] = 1.0f;
}

static void rank_values(const builtin_fn *b, size_t batch, const float *x, const int32_t *rank,
                        float *y) {
  const size_t n = b->base.n_in, n_out = b->base.n_out;
  if (b->kind == PT_BUILTIN_PERMUTATION) memset(y, 0, batch * n_out * sizeof *y);
  for (size_t r = 0; r < batch; r++) {
    const int32_t *rk = rank + r * n;
    float *yr = y + r * n_out;
    for (size_t g = 0; g < b->count; g++)
      for (size_t i = b->offsets[g]; i < b->offsets[g + 1]; i++) {
        const size_t z = b->offsets[g + 1] - b->offsets[g];
        switch (b->kind) {
          case PT_BUILTIN_RANKING: yr[i] = (float)rk[i]; break;
          case PT_BUILTIN_TOP_K: yr[i] = (size_t)rk[i] >= z - b->k[g] ? 1.0f : 0.0f; break;
          case PT_BUILTIN_SORT: yr[b->offsets[g] + (size_t)rk[i]] = x[r * n + i]; break;
          default: yr[pt_permutation_cell(b->offsets, b->cells, g, rk[i], i)] = 1.0f; break;
        }
      }
  }
}

static int by_argmax(pt_builtin_kind kind) {
  return kind == PT_BUILTIN_ARGMAX || kind == PT_BUILTIN_MAX;
}

static pt_status builtin_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                              float *y) {
  (void)keys;
  const builtin_fn *b = (const builtin_fn *)f;
  pt_status s;
  if (by_argmax(b->kind)) {
    int32_t *idx = pt_fn_alloc(batch, b->count, sizeof *idx, &s);
    if (!idx) return s;
    s = segment_argmax(b, batch, x, idx);
    if (s == PT_OK) argmax_values(b, batch, x, idx, y);
    free(idx);
    return s;
  }
  int32_t *rank = pt_fn_alloc(batch, f->n_in, sizeof *rank, &s);
  if (!rank) return s;
  s = segment_ranks(b, batch, x, rank);
  if (s == PT_OK) rank_values(b, batch, x, rank, y);
  free(rank);
  return s;
}

/* The Jacobian of max and sort at x, as the positions it selects: max's output s is input
   at[s]; sort's output at[i] is input i (its rank).  at has n_in entries. */
static pt_status selection(const builtin_fn *b, const float *x, int32_t *at) {
  return b->kind == PT_BUILTIN_MAX ? segment_argmax(b, 1, x, at) : segment_ranks(b, 1, x, at);
}

/* Runs `apply` on the selection of a differentiable kind, or writes zeros (n floats) for a
   piecewise-constant one; the value too when asked. */
typedef void (*apply_fn)(const builtin_fn *b, const int32_t *at, const float *v, float *out);

static pt_status derivative(const pt_fn *f, pt_fn_keys keys, const float *x, const float *v,
                            float *y, float *out, size_t n, apply_fn apply) {
  const builtin_fn *b = (const builtin_fn *)f;
  pt_status s = y ? builtin_eval(f, keys, 1, x, y) : PT_OK;
  if (s != PT_OK) return s;
  memset(out, 0, n * sizeof *out);
  if (!pt_builtin_differentiable(b->kind)) return PT_OK;
  int32_t *at = pt_fn_alloc(f->n_in, 1, sizeof *at, &s);
  if (!at) return s;
  s = selection(b, x, at);
  if (s == PT_OK) apply(b, at, v, out);
  free(at);
  return s;
}

/* x_bar = J^T y_bar */
static void apply_vjp(const builtin_fn *b, const int32_t *at, const float *y_bar, float *x_bar) {
  if (b->kind == PT_BUILTIN_MAX) {
    for (size_t g = 0; g < b->count; g++) x_bar[at[g]] += y_bar[g];
    return;
  }
  for (size_t g = 0; g < b->count; g++)
    for (size_t i = b->offsets[g]; i < b->offsets[g + 1]; i++)
      x_bar[i] = y_bar[b->offsets[g] + (size_t)at[i]];
}

/* y_dot = J x_dot */
static void apply_jvp(const builtin_fn *b, const int32_t *at, const float *x_dot, float *y_dot) {
  if (b->kind == PT_BUILTIN_MAX) {
    for (size_t g = 0; g < b->count; g++) y_dot[g] = x_dot[at[g]];
    return;
  }
  for (size_t g = 0; g < b->count; g++)
    for (size_t i = b->offsets[g]; i < b->offsets[g + 1]; i++)
      y_dot[b->offsets[g] + (size_t)at[i]] = x_dot[i];
}

/* jac (n_out x n_in) = J */
static void apply_jacobian(const builtin_fn *b, const int32_t *at, const float *unused,
                           float *jac) {
  (void)unused;
  const size_t n = b->base.n_in;
  if (b->kind == PT_BUILTIN_MAX) {
    for (size_t g = 0; g < b->count; g++) jac[g * n + (size_t)at[g]] = 1.0f;
    return;
  }
  for (size_t g = 0; g < b->count; g++)
    for (size_t i = b->offsets[g]; i < b->offsets[g + 1]; i++)
      jac[(b->offsets[g] + (size_t)at[i]) * n + i] = 1.0f;
}

static pt_status builtin_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                             float *y, float *x_bar) {
  return derivative(f, keys, x, y_bar, y, x_bar, f->n_in, apply_vjp);
}

static pt_status builtin_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                             float *y, float *y_dot) {
  return derivative(f, keys, x, x_dot, y, y_dot, f->n_out, apply_jvp);
}

static pt_status builtin_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                  float *jac) {
  return derivative(f, keys, x, NULL, y, jac, f->n_out * f->n_in, apply_jacobian);
}

static void builtin_destroy(pt_fn *f) { free(f); }

static const pt_fn_ops builtin_ops = {
    .eval = builtin_eval,
    .vjp = builtin_vjp,
    .jvp = builtin_jvp,
    .jacobian = builtin_jacobian,
    .destroy = builtin_destroy,
};

pt_builtin pt_fn_builtin(const pt_fn *f) {
  if (!f || f->ops != &builtin_ops) return (pt_builtin){PT_BUILTIN_NONE, 0, NULL, NULL, NULL};
  const builtin_fn *b = (const builtin_fn *)f;
  return (pt_builtin){b->kind, b->count, b->offsets, b->k, b->cells};
}

int pt_builtin_differentiable(pt_builtin_kind kind) {
  return kind == PT_BUILTIN_MAX || kind == PT_BUILTIN_SORT;
}

/* Every segment (and so the row kernels' d) is at most INT32_MAX, and so is the total, which
   fused kernels index with 32-bit lanes; so is the permutation matrix's n_out.  ks: top-k's
   per segment (1 <= k <= size), else NULL.  The sentences of a refusal call the sizes d and k for one segment (segmented: whether the
   caller gave a list). */
static pt_status make(pt_builtin_kind kind, const size_t *sizes, const size_t *ks, size_t count,
                      int segmented, pt_fn **out) {
  if (!out) return pt_fail(PT_EINVAL, "out is NULL");
  if (!sizes || (kind == PT_BUILTIN_TOP_K && !ks)) return pt_fail(PT_EINVAL, "sizes or ks is NULL");
  if (count == 0) return pt_fail(PT_EINVAL, "count is 0");
  size_t total = 0;
  for (size_t g = 0; g < count; g++) {
    if (sizes[g] == 0)
      return segmented ? pt_fail(PT_EINVAL, "sizes[%zu] is 0", g) : pt_fail(PT_EINVAL, "d is 0");
    if (ks && (ks[g] == 0 || ks[g] > sizes[g]))
      return segmented ? pt_fail(PT_EINVAL, "ks[%zu] is %zu, not from 1 to sizes[%zu] = %zu", g,
                                 ks[g], g, sizes[g])
                       : pt_fail(PT_EINVAL, "k is %zu, not from 1 to d = %zu", ks[g], sizes[g]);
    if (sizes[g] > INT32_MAX - total)
      return pt_fail(PT_EOVERFLOW, "the sizes add up past INT32_MAX at %zu", g);
    total += sizes[g];
  }
  size_t n_out = kind == PT_BUILTIN_MAX ? count : total;
  if (kind == PT_BUILTIN_PERMUTATION) { /* the segments' d x d blocks, one after another */
    n_out = 0;
    for (size_t g = 0; g < count; g++) {
      if (sizes[g] > INT32_MAX / sizes[g] || sizes[g] * sizes[g] > INT32_MAX - n_out)
        return segmented ? pt_fail(PT_EOVERFLOW, "the blocks of sizes[0..%zu] pass INT32_MAX "
                                                 "cells in all", g)
                         : pt_fail(PT_EOVERFLOW, "d is %zu: the d x d matrix passes INT32_MAX "
                                                 "entries", total);
      n_out += sizes[g] * sizes[g];
    }
  }
  const int perm = kind == PT_BUILTIN_PERMUTATION;
  const size_t words = count + 1 + (ks ? count : 0) + (perm ? count + 1 : 0);
  if (count > (SIZE_MAX - sizeof(builtin_fn)) / (2 * sizeof(size_t)) - 1)
    return pt_fail(PT_EOVERFLOW, "count is %zu, too many segments", count);
  builtin_fn *b = pt_malloc(sizeof *b + words * sizeof b->offsets[0]);
  if (!b) return pt_fail(PT_ENOMEM, "no memory for the function object");
  pt_fn_init(&b->base, &builtin_ops, total, n_out, 0, PT_CAP_DERIVATIVES | PT_CAP_THREAD_SAFE);
  b->kind = kind;
  b->count = count;
  b->offsets[0] = 0;
  for (size_t g = 0; g < count; g++) b->offsets[g + 1] = b->offsets[g] + sizes[g];
  b->k = ks ? b->offsets + count + 1 : NULL;
  if (ks) memcpy(b->k, ks, count * sizeof *ks);
  b->cells = perm ? b->offsets + count + 1 : NULL;
  if (perm) {
    b->cells[0] = 0;
    for (size_t g = 0; g < count; g++) b->cells[g + 1] = b->cells[g] + sizes[g] * sizes[g];
  }
  *out = &b->base;
  return PT_OK;
}

pt_status pt_fn_argmax_one_hot(size_t d, pt_fn **out) {
  PT_CALL("pt_fn_argmax_one_hot");
  return make(PT_BUILTIN_ARGMAX, &d, NULL, 1, 0, out);
}

/* A segment of size 0 is PT_EINVAL: it would be a leaf with no argmax to take. */
pt_status pt_fn_argmax_one_hot_segments(const size_t *sizes, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_argmax_one_hot_segments");
  return make(PT_BUILTIN_ARGMAX, sizes, NULL, count, 1, out);
}

pt_status pt_fn_ranking(size_t d, pt_fn **out) {
  PT_CALL("pt_fn_ranking");
  return make(PT_BUILTIN_RANKING, &d, NULL, 1, 0, out);
}

pt_status pt_fn_ranking_segments(const size_t *sizes, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_ranking_segments");
  return make(PT_BUILTIN_RANKING, sizes, NULL, count, 1, out);
}

pt_status pt_fn_top_k(size_t d, size_t k, pt_fn **out) {
  PT_CALL("pt_fn_top_k");
  return make(PT_BUILTIN_TOP_K, &d, &k, 1, 0, out);
}

pt_status pt_fn_top_k_segments(const size_t *sizes, const size_t *ks, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_top_k_segments");
  return make(PT_BUILTIN_TOP_K, sizes, ks, count, 1, out);
}

pt_status pt_fn_max(size_t d, pt_fn **out) {
  PT_CALL("pt_fn_max");
  return make(PT_BUILTIN_MAX, &d, NULL, 1, 0, out);
}

pt_status pt_fn_max_segments(const size_t *sizes, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_max_segments");
  return make(PT_BUILTIN_MAX, sizes, NULL, count, 1, out);
}

pt_status pt_fn_sort(size_t d, pt_fn **out) {
  PT_CALL("pt_fn_sort");
  return make(PT_BUILTIN_SORT, &d, NULL, 1, 0, out);
}

pt_status pt_fn_sort_segments(const size_t *sizes, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_sort_segments");
  return make(PT_BUILTIN_SORT, sizes, NULL, count, 1, out);
}

pt_status pt_fn_permutation_matrix(size_t d, pt_fn **out) {
  PT_CALL("pt_fn_permutation_matrix");
  return make(PT_BUILTIN_PERMUTATION, &d, NULL, 1, 0, out);
}

pt_status pt_fn_permutation_matrix_segments(const size_t *sizes, size_t count, pt_fn **out) {
  PT_CALL("pt_fn_permutation_matrix_segments");
  return make(PT_BUILTIN_PERMUTATION, sizes, NULL, count, 1, out);
}

/* SPDX-License-Identifier: MIT */
/* pt_fn_compose: outer(inner(x)), with the chain rule for vjp, jvp and the Jacobian.  The inner
   part's random parts come first in the numbering of pt_fn_keys, the outer part's after them.

   A composition is a binary tree whose leaves (the stages) are functions of other kinds, and a
   user may build it as deep as memory allows (c_k = compose(g, c_{k-1}) a million times).  So
   nothing here recurses on the tree: a call first lists the stages in evaluation order with
   an explicit stack, then runs them in a loop, and freeing walks the dying nodes through a
   list threaded in the nodes themselves.  Running the flat list also evaluates each stage
   once per call, however the tree is bracketed. */
#include <stdlib.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "runtime/progress.h"
#include "fn/fn.h"

typedef struct compose_fn {
  pt_fn base;
  pt_fn *outer, *inner;
  size_t stages;           /* leaves of the tree */
  struct compose_fn *next; /* compose_destroy's list of nodes to free */
} compose_fn;

static const pt_fn_ops compose_ops;

static int is_compose(const pt_fn *f) { return f->ops == &compose_ops; }
static size_t stages_of(const pt_fn *f) {
  return is_compose(f) ? ((const compose_fn *)f)->stages : 1;
}

/* The stages of f in evaluation order (inner first), and the widths a call needs: `widest`,
   the largest vector passed between two stages, and `between`, the sum of those vectors'
   sizes.  NULL with *status set if the list cannot be allocated or a size overflows. */
typedef struct stage_list {
  const pt_fn **stage;
  size_t n, widest, between;
} stage_list;

static pt_status list_stages(const compose_fn *c, stage_list *l) {
  pt_status s;
  const pt_fn **stage = pt_fn_alloc(c->stages, 2, sizeof *stage, &s);
  if (!stage) return s;
  /* the second half of the allocation is the stack of subtrees still to list: a node popped
     pushes its outer part, then its inner one, so the inner part is listed first; the stack
     never holds more entries than there are leaves not yet listed */
  const pt_fn **stack = stage + c->stages;
  size_t n = 0, top = 0, widest = 0, between = 0;
  stack[top++] = &c->base;
  while (top > 0) {
    const pt_fn *f = stack[--top];
    if (is_compose(f)) {
      stack[top++] = ((const compose_fn *)f)->outer;
      stack[top++] = ((const compose_fn *)f)->inner;
      continue;
    }
    if (n > 0) {
      if (f->n_in > widest) widest = f->n_in;
      if (__builtin_add_overflow(between, f->n_in, &between)) {
        free(stage);
        return pt_fail(PT_EOVERFLOW, "the values between the stages are past SIZE_MAX floats");
      }
    }
    stage[n++] = f;
  }
  *l = (stage_list){stage, n, widest, between};
  return PT_OK;
}

/* How many buffers of values between stages alternate: one for two stages, else two. */
static size_t alternating(const stage_list *l) { return l->n > 2 ? 2 : 1; }

/* The keys of each stage follow those of the stages before it. */
static pt_fn_keys next_keys(pt_fn_keys keys, const pt_fn *stage) {
  return pt_fn_keys_skip(keys, stage->n_random);
}

/* Runs the stages in order, the intermediate values in two alternating buffers. */
static pt_status compose_eval(const pt_fn *f, pt_fn_keys keys, size_t batch, const float *x,
                              float *y) {
  stage_list l;
  pt_status s = list_stages((const compose_fn *)f, &l);
  if (s != PT_OK) return s;
  float *buf = pt_fn_alloc(batch, alternating(&l) * l.widest, sizeof *buf, &s);
  const float *in = x;
  const int units = pt_progress_units(l.n);
  for (size_t k = 0; buf && s == PT_OK && k < l.n; k++) {
    float *out = k + 1 == l.n ? y : buf + (k % 2) * batch * l.widest;
    s = l.stage[k]->ops->eval(l.stage[k], keys, batch, in, out);
    keys = next_keys(keys, l.stage[k]);
    in = out;
    if (s == PT_OK) s = pt_progress_step(units, 1);
  }
  free(buf);
  free(l.stage);
  return s;
}

/* Reverse mode: the values between the stages first, all kept, then the cotangent from the
   last stage back to the first (a perturbed stage regenerates its samples for its vjp). */
static pt_status compose_vjp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *y_bar,
                             float *y, float *x_bar) {
  stage_list l;
  pt_status s = list_stages((const compose_fn *)f, &l);
  if (s != PT_OK) return s;
  float *values = pt_fn_alloc(l.between + alternating(&l) * l.widest, 1, sizeof *values, &s);
  /* stage k's input is at[k]: x for the first, then the values in order */
  const float **at = values ? pt_fn_alloc(l.n, 1, sizeof *at, &s) : NULL;
  pt_fn_keys *stage_keys = at ? pt_fn_alloc(l.n, 1, sizeof *stage_keys, &s) : NULL;
  if (stage_keys) {
    float *bar = values + l.between;
    float *next = values;
    at[0] = x;
    const int units = pt_progress_units(2 * l.n - 1); /* the evaluations, then the vjps */
    for (size_t k = 0; s == PT_OK && k + 1 < l.n; k++) {
      stage_keys[k] = keys;
      s = l.stage[k]->ops->eval(l.stage[k], keys, 1, at[k], next);
      keys = next_keys(keys, l.stage[k]);
      at[k + 1] = next;
      next += l.stage[k]->n_out;
      if (s == PT_OK) s = pt_progress_step(units, 1);
    }
    stage_keys[l.n - 1] = keys;
    const float *v = y_bar;
    for (size_t k = l.n; s == PT_OK && k-- > 0;) {
      float *out = k == 0 ? x_bar : bar + ((k - 1) % 2) * l.widest;
      s = l.stage[k]->ops->vjp(l.stage[k], stage_keys[k], at[k], v, k + 1 == l.n ? y : NULL,
                               out);
      v = out;
      if (s == PT_OK) s = pt_progress_step(units, 1);
    }
  }
  free(stage_keys);
  free(at);
  free(values);
  free(l.stage);
  return s;
}

/* Forward mode: (u, u_dot) through the stages in order, in two alternating pairs. */
static pt_status compose_jvp(const pt_fn *f, pt_fn_keys keys, const float *x, const float *x_dot,
                             float *y, float *y_dot) {
  stage_list l;
  pt_status s = list_stages((const compose_fn *)f, &l);
  if (s != PT_OK) return s;
  float *buf = pt_fn_alloc(2 * alternating(&l), l.widest, sizeof *buf, &s);
  const float *u = x, *u_dot = x_dot;
  const int units = pt_progress_units(l.n);
  for (size_t k = 0; buf && s == PT_OK && k < l.n; k++) {
    const int last = k + 1 == l.n;
    float *v = last ? y : buf + (k % 2) * 2 * l.widest, *v_dot = last ? y_dot : v + l.widest;
    s = l.stage[k]->ops->jvp(l.stage[k], keys, u, u_dot, v, v_dot);
    keys = next_keys(keys, l.stage[k]);
    u = v;
    u_dot = v_dot;
    if (s == PT_OK) s = pt_progress_step(units, 1);
  }
  free(buf);
  free(l.stage);
  return s;
}

/* J = J_last ... J_2 J_1, multiplied from the first stage on: after stage k the product so far
   (n_out of stage k by n_in) is J_k times the product before it, each entry summed in double
   over the middle index in order and rounded to float, as a composition bracketed to the
   right would. */
static pt_status compose_jacobian(const pt_fn *f, pt_fn_keys keys, const float *x, float *y,
                                  float *jac) {
  stage_list l;
  pt_status s = list_stages((const compose_fn *)f, &l);
  if (s != PT_OK) return s;
  const size_t n_in = f->n_in;
  size_t widest_jac = 0; /* the largest Jacobian of a stage after the first */
  for (size_t k = 1; k < l.n; k++) {
    size_t size;
    if (__builtin_mul_overflow(l.stage[k]->n_out, l.stage[k]->n_in, &size))
      s = pt_fail(PT_EOVERFLOW, "stage %zu's Jacobian is past SIZE_MAX entries", k);
    if (size > widest_jac) widest_jac = size;
  }
  /* the values between stages (two alternating), the stage's Jacobian, the product so far
     (two alternating, of at most widest x n_in) and one row in double */
  float *u = s == PT_OK ? pt_fn_alloc(alternating(&l), l.widest, sizeof *u, &s) : NULL;
  float *j_stage = u ? pt_fn_alloc(widest_jac, 1, sizeof *j_stage, &s) : NULL;
  float *product =
      j_stage ? pt_fn_alloc(alternating(&l) * l.widest, n_in, sizeof *product, &s) : NULL;
  double *row = product ? pt_fn_alloc(n_in, 1, sizeof *row, &s) : NULL;
  const float *in = x, *acc = NULL;
  const int units = pt_progress_units(l.n);
  for (size_t k = 0; row && s == PT_OK && k < l.n; k++) {
    const pt_fn *g = l.stage[k];
    const int last = k + 1 == l.n;
    float *out = last ? y : u + (k % 2) * l.widest;
    float *next = last ? jac : product + (k % 2) * l.widest * n_in;
    if (k == 0) {
      s = g->ops->jacobian(g, keys, in, out, next);
    } else {
      s = g->ops->jacobian(g, keys, in, out, j_stage);
      for (size_t j = 0; s == PT_OK && j < g->n_out; j++) {
        for (size_t i = 0; i < n_in; i++) row[i] = 0.0;
        for (size_t m = 0; m < g->n_in; m++) {
          const double a = j_stage[j * g->n_in + m];
          const float *b = acc + m * n_in;
          for (size_t i = 0; i < n_in; i++) row[i] += a * (double)b[i];
        }
        for (size_t i = 0; i < n_in; i++) next[j * n_in + i] = (float)row[i];
      }
    }
    keys = next_keys(keys, g);
    in = out;
    acc = next;
    if (s == PT_OK) s = pt_progress_step(units, 1);
  }
  free(row);
  free(product);
  free(j_stage);
  free(u);
  free(l.stage);
  return s;
}

/* The nodes whose last reference goes are freed in a loop: a part that is itself a dying
   composition joins the list instead of being freed by a nested call. */
static void compose_destroy(pt_fn *f) {
  compose_fn *dying = (compose_fn *)f;
  dying->next = NULL;
  while (dying) {
    compose_fn *c = dying;
    dying = c->next;
    pt_fn *parts[2] = {c->outer, c->inner};
    for (int p = 0; p < 2; p++) {
      if (!is_compose(parts[p])) {
        pt_fn_free(parts[p]);
      } else if (__atomic_sub_fetch(&parts[p]->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        compose_fn *part = (compose_fn *)parts[p];
        part->next = dying;
        dying = part;
      }
    }
    free(c);
  }
}

/* The first stage's check: the others' inputs are known only by running the stages. */
static pt_status compose_check(const pt_fn *f, const float *x, int derivative) {
  while (is_compose(f)) f = ((const compose_fn *)f)->inner;
  return f->ops->check ? f->ops->check(f, x, derivative) : PT_OK;
}

static const pt_fn_ops compose_ops = {
    .eval = compose_eval,
    .vjp = compose_vjp,
    .jvp = compose_jvp,
    .jacobian = compose_jacobian,
    .destroy = compose_destroy,
    .check = compose_check,
};

pt_status pt_fn_compose(const pt_fn *outer, const pt_fn *inner, pt_fn **out) {
  PT_CALL("pt_fn_compose");
  if (!outer || !inner || !out) return pt_fail(PT_EINVAL, "outer, inner or out is NULL");
  if (outer->n_in != inner->n_out)
    return pt_fail(PT_EINVAL, "outer takes %zu inputs but inner gives %zu outputs", outer->n_in,
                   inner->n_out);
  compose_fn *c = pt_malloc(sizeof *c);
  if (!c) return pt_fail(PT_ENOMEM, "no memory for the composition");
  /* A composition is differentiable (and thread-safe) when both parts are; its Hessian would
     need second derivatives of the inner part, which no kind provides. */
  pt_fn_init(&c->base, &compose_ops, inner->n_in, outer->n_out,
             inner->n_random + outer->n_random,
             outer->caps & inner->caps & (PT_CAP_DERIVATIVES | PT_CAP_THREAD_SAFE));
  c->base.work = outer->work + inner->work;
  c->base.nesting = outer->nesting > inner->nesting ? outer->nesting : inner->nesting;
  c->outer = pt_fn_retain(outer);
  c->inner = pt_fn_retain(inner);
  c->stages = stages_of(outer) + stages_of(inner);
  c->next = NULL;
  *out = &c->base;
  return PT_OK;
}

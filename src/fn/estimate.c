/* SPDX-License-Identifier: MIT */
/* The perturbed estimator's one accumulation path (estimate.h): groups of samples summed in
   order by a path, each finished group added exactly into the sums, the groups of a call split
   among the library's threads, and the sums turned into the estimate. */
#include "fn/estimate.h"

#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "runtime/pool.h"
#include "runtime/progress.h"

uint64_t pt_estimate_group(uint64_t samples) {
  uint64_t group = PT_ESTIMATE_MIN_GROUP;
  while ((samples - 1) / group + 1 > PT_ESTIMATE_MAX_GROUPS) group *= 2;
  return group;
}

void *pt_arena_zalloc(pt_arena *a, size_t bytes) {
  const size_t at = a ? (a->used + 63) & ~(size_t)63 : 0;
  if (a && at <= a->size && bytes <= a->size - at) {
    a->used = at + bytes;
    return memset(a->base + at, 0, bytes);
  }
  return pt_calloc(1, bytes ? bytes : 1);
}

void pt_arena_free(pt_arena *a, void *p) {
  const unsigned char *c = p;
  if (!a || c < a->base || c >= a->base + a->size) free(p);
}

static uint64_t group_count(uint64_t samples, uint64_t group) { return (samples - 1) / group + 1; }

/* Lays out the cells of the wanted terms, one after another: n times m cells for `term` (any
   of its bits); sets *overflow when the count does not fit. */
static size_t place(unsigned want, unsigned term, size_t n, size_t m, size_t *cells,
                    int *overflow) {
  if (!(want & term)) return SIZE_MAX;
  const size_t at = *cells;
  size_t nm;
  if (__builtin_mul_overflow(n, m, &nm) || __builtin_add_overflow(*cells, nm, cells))
    *overflow = 1;
  return at;
}

/* The layout with the Jacobian's band of jac_rows rows (n_out: all of them). */
static int layout_rows(unsigned want, size_t n_in, size_t n_out, size_t jac_rows,
                       const pt_perturbation *p, int counted, pt_layout *l) {
  const int loo = p->baseline == PT_BASELINE_LEAVE_ONE_OUT, blocks = p->block_diagonal;
  const unsigned loo_want = loo ? want : 0;
  /* the leave-one-out's derivatives but the vjp need the value's sums (the vjp sums its
     cotangents instead: finishing has no y_bar) */
  const unsigned sums = want | (loo_want & (PT_WANT_JVP | PT_WANT_JAC | PT_WANT_HESS)
                                    ? PT_WANT_VALUE : 0);
  size_t cells = 0;
  int overflow = 0;
  l->at_value = place(counted ? 0 : sums, PT_WANT_VALUE, n_out, 1, &cells, &overflow);
  l->at_x_bar = place(want, PT_WANT_VJP, n_in, 1, &cells, &overflow);
  l->at_y_dot = place(want, PT_WANT_JVP, n_out, 1, &cells, &overflow);
  l->at_jac = place(want, PT_WANT_JAC, jac_rows, n_in, &cells, &overflow);
  l->at_hess = place(want, PT_WANT_HESS, n_in, n_in, &cells, &overflow);
  l->at_loo_c = place(loo_want, PT_WANT_VJP, blocks ? n_in : 1, 1, &cells, &overflow);
  l->at_loo_t = place(loo_want, PT_WANT_JVP, blocks ? n_out : 1, 1, &cells, &overflow);
  /* (no call wants the vjp and the Jacobian at once) */
  l->at_loo_g = place(loo_want, PT_WANT_VJP | PT_WANT_JAC,
                      blocks && (want & PT_WANT_JAC) ? jac_rows : 1, n_in, &cells, &overflow);
  l->at_loo_h = place(loo_want, PT_WANT_HESS, n_in, n_in, &cells, &overflow);
  l->cells = cells;
  l->counts = counted && (sums & PT_WANT_VALUE) ? n_out : 0;
  return !overflow;
}

int pt_estimate_layout(unsigned want, size_t n_in, size_t n_out, const pt_perturbation *p,
                       int counted, pt_layout *l) {
  return layout_rows(want, n_in, n_out, n_out, p, counted, l);
}

/* e's cells for its band of the Jacobian (jac_row0, jac_rows); 0 when they overflow. */
static int lay_out(pt_estimator *e) {
  pt_layout l;
  if (!layout_rows(e->want, e->f->n_in, e->f->n_out, e->jac_rows, &e->p, e->counted, &l))
    return 0;
  e->at_value = l.at_value;
  e->at_x_bar = l.at_x_bar;
  e->at_y_dot = l.at_y_dot;
  e->at_jac = l.at_jac;
  e->at_hess = l.at_hess;
  e->at_loo_c = l.at_loo_c;
  e->at_loo_t = l.at_loo_t;
  e->at_loo_g = l.at_loo_g;
  e->at_loo_h = l.at_loo_h;
  e->cells = l.cells;
  e->counts = l.counts;
  return 1;
}

pt_status pt_estimate_check(const pt_perturbation *p, const float *x, size_t n, int derivative) {
  const pt_status s = pt_check_finite("x", x, n);
  /* the multiplicative score divides by x_i (fn_perturbed.c): a derivative needs x_i != 0 */
  if (s == PT_OK && derivative && p->multiplicative && !p->pathwise)
    for (size_t i = 0; i < n; i++)
      if (x[i] == 0.0f)
        return pt_fail(PT_EINVAL,
                       "x[%zu] is 0: the multiplicative noise's score function divides by x", i);
  return s;
}

pt_status pt_estimator_begin(pt_estimator *e, const pt_fn *f, const pt_perturbation *p,
                             pt_key key, const float *x, const float *y_bar, const float *x_dot,
                             unsigned want, pt_arena *arena) {
  memset(e, 0, sizeof *e);
  const pt_status s = pt_estimate_check(p, x, f->n_in, (want & ~(unsigned)PT_WANT_VALUE) != 0);
  if (s != PT_OK) return s;
  e->arena = arena;
  e->f = f;
  e->p = *p;
  e->key = key;
  e->x = x;
  e->y_bar = y_bar;
  e->x_dot = x_dot;
  e->want = want;
  e->group = pt_estimate_group(p->samples);
  e->path = pt_fused_path(f, p, want);
  if (!e->path) e->path = &pt_generic_path;
  e->counted = e->path->counted;
  e->jac_rows = f->n_out;
  if (!lay_out(e))
    return pt_fail(PT_EOVERFLOW, "the sums of %zu inputs and %zu outputs are too many", f->n_in,
                   f->n_out);
  if (pt_fn_too_big(e->cells, 1, sizeof(pt_xsum) + sizeof(double)))
    return pt_fail(PT_EOVERFLOW, "%zu sums are past PTRDIFF_MAX bytes", e->cells);
  return e->path->prepare(e);
}

void pt_estimator_end(pt_estimator *e) {
  if (e->path && e->path->release) e->path->release(e);
  e->prep = NULL;
}

/* One zeroed block: the cells, then the counts, then the coverage map (groups <= 2^16). */
pt_status pt_sums_alloc_shape(size_t cells, size_t counts, uint64_t groups, pt_arena *a,
                              pt_sums *s) {
  memset(s, 0, sizeof *s);
  const size_t map = (size_t)((groups + 7) / 8);
  if (pt_fn_too_big(cells, 1, sizeof(pt_xsum)) || pt_fn_too_big(counts, 1, 2 * sizeof(uint64_t)))
    return pt_fail(PT_EOVERFLOW, "%zu sums are past PTRDIFF_MAX bytes", cells);
  const size_t bytes = cells * sizeof(pt_xsum) + counts * sizeof(uint64_t) + map;
  char *block = pt_arena_zalloc(a, bytes);
  if (!block) return pt_fail(PT_ENOMEM, "no memory for %zu bytes of exact sums", bytes);
  s->cell = (pt_xsum *)block;
  s->count = counts ? (uint64_t *)(block + cells * sizeof(pt_xsum)) : NULL;
  s->covered = (uint8_t *)(block + cells * sizeof(pt_xsum) + counts * sizeof(uint64_t));
  s->groups = groups;
  pt_xsum_clear(s->cell, cells);
  return PT_OK;
}

pt_status pt_sums_alloc(const pt_estimator *e, pt_arena *a, pt_sums *s) {
  return pt_sums_alloc_shape(e->cells, e->counts, group_count(e->p.samples, e->group), a, s);
}

void pt_sums_free(pt_sums *s, pt_arena *a) {
  pt_arena_free(a, s->cell); /* the block */
  memset(s, 0, sizeof *s);
}

void pt_sums_merge(pt_sums *into, const pt_sums *from, size_t cells, size_t counts) {
  pt_xsum_merge(into->cell, from->cell, cells);
  for (size_t i = 0; i < counts; i++) into->count[i] += from->count[i];
  for (uint64_t b = 0; b < (into->groups + 7) / 8; b++) into->covered[b] |= from->covered[b];
}

/* ---- the groups of a call, on the library's threads ------------------------------------------ */

/* Sample-element operations below which a call stays on one thread: waking the pool costs
   about as much as this many operations of the cheapest path. */
#define PT_PARALLEL_MIN_WORK 65536.0

typedef struct sum_job {
  const pt_estimator *e;
  uint64_t g0, g1;   /* the groups of the call */
  size_t tasks;
  pt_sums *sums;     /* per task; task 0's is the caller's */
  pt_status *status; /* per task */
  int units;         /* the groups are the call's units of progress */
  int allocated;     /* the sums of tasks after the first are allocated already */
} sum_job;

/* A finished group's sums, into s exactly. */
static void add_group(const pt_estimator *e, pt_sums *s, uint64_t g, const double *group_sums) {
  pt_xsum_add(s->cell, group_sums, e->cells);
  s->covered[g / 8] |= (uint8_t)(1u << (g % 8));
}

static uint64_t group_end(const pt_estimator *e, uint64_t m0) {
  return e->p.samples - m0 < e->group ? e->p.samples : m0 + e->group;
}

/* Task t: its share of the groups, each run by the path into a zeroed double buffer and added
   exactly into the task's sums. */
static void sum_task(void *ctx, size_t t) {
  const sum_job *job = ctx;
  const pt_estimator *e = job->e;
  const uint64_t span = job->g1 - job->g0;
  const uint64_t g0 = job->g0 + span * t / job->tasks, g1 = job->g0 + span * (t + 1) / job->tasks;
  pt_sums *s = &job->sums[t];
  pt_status st = PT_OK;
  if (t > 0 && !job->allocated) st = pt_sums_alloc(e, NULL, s);
  /* the caller's arena only when this task is the call's only one: it runs on that thread */
  pt_arena *arena = job->tasks == 1 ? e->arena : NULL;
  /* one zeroed block: a group's double sums, then the path's scratch (zero: the fused vjp's
     float partial sums start at zero, and the padding past a tile is defined memory for the
     kernels' whole-vector loads); the sizes were checked by pt_estimator_begin */
  const size_t sums_bytes = (e->cells * sizeof(double) + 63) & ~(size_t)63;
  double *group_sums = st == PT_OK ? pt_arena_zalloc(arena, sums_bytes + e->scratch_bytes) : NULL;
  if (st == PT_OK && !group_sums) st = pt_fail(PT_ENOMEM, "no memory for a group's sums");
  void *scratch = group_sums ? (char *)group_sums + sums_bytes : NULL;
  for (uint64_t g = g0; g < g1 && st == PT_OK; g++) {
    const uint64_t m0 = g * e->group;
    memset(group_sums, 0, e->cells * sizeof *group_sums);
    st = e->path->run(e, scratch, m0, group_end(e, m0), group_sums, s->count);
    if (st == PT_OK) add_group(e, s, g, group_sums);
    if (st == PT_OK) st = pt_progress_step(job->units, 1);
  }
  pt_arena_free(arena, group_sums);
  job->status[t] = st;
}

/* ---- a function that stays on the calling thread: rounds of consecutive groups ------------- */

/* One round: groups g .. g + groups - 1, one per task, each with a buffer of `stride` bytes
   (its double sums, then its staged inputs) and its own sums. */
typedef struct round_job {
  const pt_estimator *e;
  uint64_t g;
  int finishing; /* 0: stage the inputs; 1: add the terms */
  unsigned char *buffers;
  size_t stride, sums_bytes;
  pt_sums *sums;
} round_job;

static void round_task(void *ctx, size_t t) {
  const round_job *r = ctx;
  const pt_estimator *e = r->e;
  const uint64_t g = r->g + t, m0 = g * e->group, m1 = group_end(e, m0);
  double *group_sums = (double *)(r->buffers + t * r->stride);
  void *staged = r->buffers + t * r->stride + r->sums_bytes;
  if (!r->finishing) {
    e->path->stage(e, staged, m0, m1);
    return;
  }
  memset(group_sums, 0, e->cells * sizeof *group_sums);
  e->path->finish(e, staged, m0, m1, group_sums);
  add_group(e, &r->sums[t], g, group_sums);
}

/* Groups g0 .. g1 - 1 in rounds of `tasks`: the pool stages a round's inputs, the calling
   thread runs the function over the round's samples in order, the pool adds their terms, task
   t of every round into sums[t]. */
static pt_status sum_ordered(const pt_estimator *e, uint64_t g0, uint64_t g1, size_t tasks,
                             pt_sums *sums, int units) {
  const size_t sums_bytes = (e->cells * sizeof(double) + 63) & ~(size_t)63;
  const size_t stride = sums_bytes + ((e->staged_bytes + 63) & ~(size_t)63);
  pt_status st = PT_OK;
  unsigned char *buffers = pt_fn_alloc(tasks, stride, 1, &st);
  if (!buffers) return st;
  for (uint64_t g = g0; g < g1 && st == PT_OK; g += tasks) {
    const size_t groups = g1 - g < tasks ? (size_t)(g1 - g) : tasks;
    round_job r = {e, g, 0, buffers, stride, sums_bytes, sums};
    pt_parallel_for(groups, round_task, &r);
    for (size_t t = 0; t < groups && st == PT_OK; t++) {
      const uint64_t m0 = (g + t) * e->group;
      st = e->path->call(e, buffers + t * stride + sums_bytes, m0, group_end(e, m0));
    }
    r.finishing = 1;
    if (st == PT_OK) pt_parallel_for(groups, round_task, &r);
    if (st == PT_OK) st = pt_progress_step(units, groups);
  }
  free(buffers);
  return st;
}

/* pt_estimator_sum, its groups counted as progress when `units` (the call's owner of them). */
static pt_status sum_groups(const pt_estimator *e, uint64_t m0, uint64_t m1, pt_sums *s,
                            int units) {
  const uint64_t g0 = m0 / e->group, g1 = (m1 - 1) / e->group + 1;
  const int ordered = !e->thread_safe && e->path->call && e->staged_bytes;
  size_t tasks = 1;
  if ((e->thread_safe || ordered) && (double)(m1 - m0) * e->work >= PT_PARALLEL_MIN_WORK) {
    tasks = pt_threads();
    if (tasks > g1 - g0) tasks = (size_t)(g1 - g0);
  }
  pt_status st = PT_OK;
  pt_sums *sums = tasks > 1 ? pt_calloc(tasks, sizeof *sums) : s;
  pt_status *status = tasks > 1 ? pt_calloc(tasks, sizeof *status) : &st;
  if (!sums || !status) {
    if (sums != s) free(sums);
    if (status != &st) free(status);
    return pt_fail(PT_ENOMEM, "no memory for %zu threads' sums", tasks);
  }
  if (tasks > 1) sums[0] = *s; /* task 0 adds into the caller's sums */
  if (ordered && tasks > 1) {
    for (size_t t = 1; t < tasks && st == PT_OK; t++) st = pt_sums_alloc(e, NULL, &sums[t]);
    if (st == PT_OK) st = sum_ordered(e, g0, g1, tasks, sums, units);
    status[0] = st;
  } else if (pt_progress_current() && tasks > 1) {
    /* with a progress handler, waves of one group a task, the calling thread reporting between
       them whichever threads the pool gives a wave's groups to; every task keeps its sums */
    for (size_t t = 1; t < tasks && st == PT_OK; t++) st = pt_sums_alloc(e, NULL, &sums[t]);
    for (uint64_t g = g0; g < g1 && st == PT_OK; g += tasks) {
      const size_t n = g1 - g < tasks ? (size_t)(g1 - g) : tasks;
      sum_job job = {e, g, g + n, n, sums, status, units, 1};
      pt_parallel_for(n, sum_task, &job);
      for (size_t t = 0; t < n && st == PT_OK; t++) st = status[t];
      if (st == PT_OK) st = pt_progress_step(units, 0);
    }
    for (size_t t = 0; t < tasks; t++) status[t] = st;
  } else {
    sum_job job = {e, g0, g1, tasks, sums, status, units, 0};
    pt_parallel_for(tasks, sum_task, &job);
  }
  /* the first failure in task order, so that the error is the same on every run */
  for (size_t t = 0; t < tasks && st == PT_OK; t++) st = status[t];
  for (size_t t = 1; t < tasks; t++) {
    if (st == PT_OK) pt_sums_merge(&sums[0], &sums[t], e->cells, e->counts);
    pt_sums_free(&sums[t], NULL);
  }
  if (tasks > 1) {
    *s = sums[0];
    free(sums);
    free(status);
  }
  return st;
}

pt_status pt_estimator_sum(const pt_estimator *e, uint64_t m0, uint64_t m1, pt_sums *s) {
  if (m0 >= m1) return PT_OK;
  return sum_groups(e, m0, m1, s, pt_progress_units((m1 - 1) / e->group + 1 - m0 / e->group));
}

/* ---- the estimate -------------------------------------------------------------------------- */

static void write_cells(const pt_xsum *cell, float *out, size_t n, double by) {
  for (size_t i = 0; i < n; i++) out[i] = (float)(pt_xsum_value(&cell[i]) * by);
}

/* The leave-one-out's finished sums (estimate.h): the entry (S - k Ybar G) * by of a sum S of
   Y_m T_m (of the pairs' adjusted terms with antithetic pairs), the mean Ybar of the Y_m it
   pairs with and the sum G of the T_m, in double, rounded once. */
typedef struct loo_sums {
  const pt_sums *s;
  const pt_layout *l;
  int counted, blocks;
  double mean;    /* 1/M */
  double k;       /* 1, or M/(M - 2) leaving out pairs */
} loo_sums;

static double cell_value(const loo_sums *q, size_t at) { return pt_xsum_value(&q->s->cell[at]); }

/* Ybar_j, the mean of output j */
static double output_mean(const loo_sums *q, size_t j) {
  return (q->counted ? (double)q->s->count[j] : cell_value(q, q->l->at_value + j)) * q->mean;
}

static float loo_entry(const loo_sums *q, double sum, double y_mean, double g, double by) {
  return (float)((sum - q->k * y_mean * g) * by);
}

/* by: (1/(M - 1))/sigma for the first derivatives (1/(M sigma) leaving out pairs), once more
   /sigma for the Hessian; the Jacobian's rows [row0, row0 + rows) (the sums' band) */
static void write_loo(const loo_sums *q, unsigned want, size_t n_in, size_t n_out, size_t row0,
                      size_t rows, const pt_outputs *out, double by, double by_hess) {
  const pt_layout *l = q->l;
  if (want & PT_WANT_VJP) /* Ybar . y_bar: the mean cotangent (of i's segment) */
    for (size_t i = 0; i < n_in; i++)
      out->x_bar[i] = loo_entry(q, cell_value(q, l->at_x_bar + i),
                                cell_value(q, l->at_loo_c + (q->blocks ? i : 0)) * q->mean,
                                cell_value(q, l->at_loo_g + i), by);
  if (want & PT_WANT_JVP)
    for (size_t j = 0; j < n_out; j++)
      out->y_dot[j] = loo_entry(q, cell_value(q, l->at_y_dot + j), output_mean(q, j),
                                cell_value(q, l->at_loo_t + (q->blocks ? j : 0)), by);
  if (want & PT_WANT_JAC)
    for (size_t r = 0; r < rows; r++) {
      const size_t j = row0 + r;
      const double y_mean = output_mean(q, j);
      const size_t g = l->at_loo_g + (q->blocks ? r * n_in : 0);
      for (size_t i = 0; i < n_in; i++)
        out->jac[j * n_in + i] =
            loo_entry(q, cell_value(q, l->at_jac + r * n_in + i), y_mean, cell_value(q, g + i),
                      by);
    }
  if (want & PT_WANT_HESS)
    for (size_t k = 0; k < n_in * n_in; k++)
      out->hess[k] = loo_entry(q, cell_value(q, l->at_hess + k), output_mean(q, 0),
                               cell_value(q, l->at_loo_h + k), by_hess);
}

/* pt_estimate_write from the sums of the Jacobian's rows [row0, row0 + rows), into those rows
   of out->jac; the value only when out->y (the first band's). */
static void write_rows(const pt_sums *s, unsigned want, size_t n_in, size_t n_out, size_t row0,
                       size_t rows, const pt_perturbation *p, int counted,
                       const pt_outputs *out) {
  const float sigma = p->sigma;
  /* the score function's derivatives carry 1/sigma, f's own (pathwise) do not */
  const double mean = 1.0 / (double)p->samples;
  const double per_sigma = p->pathwise ? mean : mean / (double)sigma;
  pt_layout l;
  layout_rows(want, n_in, n_out, rows, p, counted, &l); /* checked when the sums were made */
  if ((want & PT_WANT_VALUE) && out->y) {
    if (counted) {
      for (size_t i = 0; i < n_out; i++) out->y[i] = (float)((double)s->count[i] * mean);
    } else {
      write_cells(s->cell + l.at_value, out->y, n_out, mean);
    }
  }
  if (p->baseline == PT_BASELINE_LEAVE_ONE_OUT) {
    /* (M/(M - 1)) (S - Ybar G), or leaving out pairs S' - (M/(M - 2)) Ybar G; then /(M sigma) */
    const int pairs = pt_estimate_pair_weight(p) != 0.0;
    const double m = (double)p->samples;
    const loo_sums q = {s, &l, counted, p->block_diagonal, mean, pairs ? m / (m - 2.0) : 1.0};
    const double by = (1.0 / (pairs ? m : m - 1.0)) / (double)sigma;
    write_loo(&q, want, n_in, n_out, row0, rows, out, by, by / (double)sigma);
    return;
  }
  if (want & PT_WANT_VJP) write_cells(s->cell + l.at_x_bar, out->x_bar, n_in, per_sigma);
  if (want & PT_WANT_JVP) write_cells(s->cell + l.at_y_dot, out->y_dot, n_out, per_sigma);
  if (want & PT_WANT_JAC)
    write_cells(s->cell + l.at_jac, out->jac + row0 * n_in, rows * n_in, per_sigma);
  if (want & PT_WANT_HESS) write_cells(s->cell + l.at_hess, out->hess, n_in * n_in, per_sigma / sigma);
}

void pt_estimate_write(const pt_sums *s, unsigned want, size_t n_in, size_t n_out,
                       const pt_perturbation *p, int counted, const pt_outputs *out) {
  write_rows(s, want, n_in, n_out, 0, n_out, p, counted, out);
}

static unsigned wanted(const pt_outputs *out) {
  return (out->y ? PT_WANT_VALUE : 0) | (out->x_bar ? PT_WANT_VJP : 0) |
         (out->y_dot ? PT_WANT_JVP : 0) | (out->jac ? PT_WANT_JAC : 0) |
         (out->hess ? PT_WANT_HESS : 0);
}

pt_key pt_estimate_key(const pt_perturbation *p, pt_key key, unsigned want) {
  return p->independent_jacobian && (want & ~(unsigned)PT_WANT_VALUE) ? pt_key_fold_in(key, 1)
                                                                      : key;
}

/* ---- a large Jacobian, in bands of rows ----------------------------------------------------- */

static size_t jacobian_tile = PT_JACOBIAN_TILE_BYTES;

void pt_estimate_set_jacobian_tile(size_t bytes) {
  jacobian_tile = bytes ? bytes : PT_JACOBIAN_TILE_BYTES;
}

/* The rows of a band of e's Jacobian whose sums (an exact sum and a group's double a cell, the
   block-diagonal leave-one-out's loo_g as many again) fit jacobian_tile on one thread, at
   least one: n_out when every row does, or e wants no Jacobian. */
static size_t band_rows(const pt_estimator *e) {
  const size_t n_out = e->f->n_out;
  if (e->at_jac == SIZE_MAX) return n_out;
  const int loo_rows = e->p.baseline == PT_BASELINE_LEAVE_ONE_OUT && e->p.block_diagonal;
  /* at most the whole Jacobian's bytes, which pt_estimator_begin checked */
  const size_t row = e->f->n_in * (sizeof(pt_xsum) + sizeof(double)) * (loo_rows ? 2 : 1);
  const size_t rows = jacobian_tile / row;
  return rows == 0 ? 1 : rows < n_out ? rows : n_out;
}

/* The estimate of a Jacobian too large for one band of sums: every sample summed once per band
   of `rows` rows (the noise drawn and f run again each time), the band's rows written as it
   finishes; the value, which every band sums alike, from the first.  out is a public call's
   scratch (fn.c), which reaches the user's outputs only when every band has succeeded. */
static pt_status estimate_bands(pt_estimator *e, size_t rows, const pt_outputs *out) {
  const size_t n_out = e->f->n_out;
  const uint64_t bands = (n_out - 1) / rows + 1;
  /* one call's units: every band's groups */
  const int units = pt_progress_units(bands * group_count(e->p.samples, e->group));
  pt_status st = PT_OK;
  for (size_t row0 = 0; row0 < n_out && st == PT_OK; row0 += rows) {
    e->jac_row0 = row0;
    e->jac_rows = n_out - row0 < rows ? n_out - row0 : rows;
    lay_out(e); /* fewer cells than the whole layout's */
    pt_sums s;
    st = pt_sums_alloc(e, e->arena, &s);
    if (st == PT_OK) st = sum_groups(e, 0, e->p.samples, &s, units);
    const pt_outputs band = {row0 ? NULL : out->y, NULL, NULL, out->jac, NULL};
    if (st == PT_OK)
      write_rows(&s, e->want, e->f->n_in, n_out, row0, e->jac_rows, &e->p, e->counted, &band);
    pt_sums_free(&s, e->arena);
  }
  return st;
}

/* One estimate wanting `want` of out's outputs, with the samples of `key`. */
static pt_status estimate_one(const pt_fn *f, const pt_perturbation *p, pt_key key,
                              const float *x, const float *y_bar, const float *x_dot,
                              unsigned want, const pt_outputs *out) {
  pt_estimator e;
  _Alignas(64) unsigned char local[PT_ARENA_BYTES];
  pt_arena arena = {local, sizeof local, 0};
  pt_status st = pt_estimator_begin(&e, f, p, key, x, y_bar, x_dot, want, &arena);
  const size_t rows = st == PT_OK ? band_rows(&e) : 0;
  pt_sums s = {0};
  if (st == PT_OK && rows < f->n_out) {
    st = estimate_bands(&e, rows, out);
  } else {
    if (st == PT_OK) st = pt_sums_alloc(&e, &arena, &s);
    if (st == PT_OK) st = pt_estimator_sum(&e, 0, p->samples, &s);
    if (st == PT_OK) pt_estimate_write(&s, want, f->n_in, f->n_out, p, e.counted, out);
    pt_sums_free(&s, &arena);
  }
  pt_estimator_end(&e);
  return st;
}

pt_status pt_estimate(const pt_fn *f, const pt_perturbation *p, pt_key key, const float *x,
                      const float *y_bar, const float *x_dot, const pt_outputs *out) {
  const unsigned want = wanted(out);
  /* independent derivatives: the value from key's samples, the derivatives from others' */
  const unsigned derivatives = p->independent_jacobian ? want & ~(unsigned)PT_WANT_VALUE : 0;
  pt_status st = PT_OK;
  if (derivatives)
    st = estimate_one(f, p, pt_estimate_key(p, key, derivatives), x, y_bar, x_dot, derivatives,
                      out);
  if (st == PT_OK && want != derivatives)
    st = estimate_one(f, p, key, x, y_bar, x_dot, want & ~derivatives, out);
  return st;
}

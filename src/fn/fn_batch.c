/* SPDX-License-Identifier: MIT */
/* The batched calls: pt_fn_eval_batch, pt_fn_vjp_batch, pt_fn_jvp_batch and
   pt_fn_value_and_grad_batch.  Row b is the single-row call with pt_key_fold_in(key, b), so a
   batch equals its rows bit for bit however its rows are spread over threads: a function that
   may run on library threads (PT_CAP_THREAD_SAFE) gets contiguous ranges of rows, one per task,
   when the batch is large enough to pay for waking them; inside a task each row's own work
   stays on that thread (the pool is busy).  Other functions run row after row on the calling
   thread.  Results go to scratch and are copied out only when every row succeeded. */
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/fn.h"
#include "runtime/pool.h"
#include "runtime/progress.h"

typedef enum batch_kind { BATCH_EVAL, BATCH_VJP, BATCH_JVP, BATCH_VALUE_AND_GRAD } batch_kind;

typedef struct batch_job {
  const pt_fn *f;
  pt_key key;
  batch_kind kind;
  size_t batch, tasks;
  const float *x, *v; /* v: y_bar (n_out per row) or x_dot (n_in per row) */
  float *out;         /* per row: y, x_bar, y_dot or grad */
  float *value;       /* per row: value_and_grad's value */
  pt_status *status;  /* per task */
  int units;          /* the rows are the call's units of progress */
  size_t row0, rows;  /* the rows the tasks share: all, or a wave's (run_batch) */
} batch_job;

/* Operations of one evaluation below which a batch stays on the calling thread. */
#define PT_BATCH_MIN_WORK 65536.0

static pt_status run_row(const batch_job *j, size_t b) {
  const pt_fn *f = j->f;
  const size_t n_in = f->n_in, n_out = f->n_out;
  const pt_fn_keys keys = pt_fn_keys_for(f, pt_key_fold_in(j->key, b));
  const float *x = j->x + b * n_in;
  static const float one = 1.0f;
  switch (j->kind) {
    case BATCH_EVAL: return f->ops->eval(f, keys, 1, x, j->out + b * n_out);
    case BATCH_VJP: return f->ops->vjp(f, keys, x, j->v + b * n_out, NULL, j->out + b * n_in);
    case BATCH_JVP: return f->ops->jvp(f, keys, x, j->v + b * n_in, NULL, j->out + b * n_out);
    case BATCH_VALUE_AND_GRAD:
      return f->ops->vjp(f, keys, x, &one, j->value + b, j->out + b * n_in);
  }
  return pt_fail(PT_EINVAL, "unknown batched operation %d", (int)j->kind);
}

/* Task t: its rows in order, stopping at the first failure. */
static void batch_task(void *ctx, size_t t) {
  const batch_job *j = ctx;
  const size_t b0 = j->row0 + j->rows * t / j->tasks, b1 = j->row0 + j->rows * (t + 1) / j->tasks;
  pt_status s = PT_OK;
  if (j->kind == BATCH_EVAL && j->f->n_random == 0) { /* keys unused: the whole range at once */
    s = j->f->ops->eval(j->f, pt_fn_keys_for(j->f, j->key), b1 - b0, j->x + b0 * j->f->n_in,
                        j->out + b0 * j->f->n_out);
    if (s == PT_OK) s = pt_progress_step(j->units, b1 - b0);
  } else
    for (size_t b = b0; b < b1 && s == PT_OK; b++) {
      s = run_row(j, b);
      if (s == PT_OK) s = pt_progress_step(j->units, 1);
    }
  j->status[t] = s;
}

/* Runs the job's rows into its scratch outputs; the first failure in row order. */
static pt_status run_batch(batch_job *j) {
  const pt_fn *f = j->f;
  size_t tasks = 1;
  if ((f->caps & PT_CAP_THREAD_SAFE) && (double)j->batch * f->work >= PT_BATCH_MIN_WORK) {
    tasks = pt_threads();
    if (tasks > j->batch) tasks = j->batch;
  }
  pt_status one = PT_OK;
  j->status = tasks > 1 ? pt_calloc(tasks, sizeof *j->status) : &one;
  if (!j->status) return pt_fail(PT_ENOMEM, "no memory for %zu tasks' statuses", tasks);
  j->units = pt_progress_units(j->batch);
  /* with a progress handler, waves of one row a task, the calling thread reporting between
     them whichever threads the pool gives a wave's rows to */
  const size_t wave = pt_progress_current() && tasks > 1 ? tasks : j->batch;
  pt_status s = PT_OK;
  for (j->row0 = 0; j->row0 < j->batch && s == PT_OK; j->row0 += wave) {
    j->rows = j->batch - j->row0 < wave ? j->batch - j->row0 : wave;
    j->tasks = tasks < j->rows ? tasks : j->rows;
    pt_parallel_for(j->tasks, batch_task, j);
    for (size_t t = 0; t < j->tasks && s == PT_OK; t++) s = j->status[t];
    if (s == PT_OK && wave < j->batch) s = pt_progress_step(j->units, 0);
  }
  if (tasks > 1) free(j->status);
  return s;
}

/* The checks every batched call shares; batch == 0 is allowed and writes nothing. */
static pt_status check(const pt_fn *f, size_t batch, const float *x, const void *v,
                       const void *out, int derivative) {
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK || batch == 0) return s;
  if (!x || !v || !out) return pt_fail(PT_EINVAL, "an input or output is NULL");
  if (derivative && !(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  if (pt_fn_too_big(batch, f->n_in, sizeof(float)) || pt_fn_too_big(batch, f->n_out, sizeof(float)))
    return pt_fail(PT_EOVERFLOW, "a batch of %zu rows is past PTRDIFF_MAX bytes", batch);
  return pt_fn_check_input(f, batch, x, derivative);
}

static pt_status batched(const pt_fn *f, pt_key key, batch_kind kind, size_t batch,
                         const float *x, const float *v, float *out, size_t out_n) {
  pt_status s;
  float *scratch = pt_fn_alloc(batch, out_n, sizeof *scratch, &s);
  if (!scratch) return s;
  batch_job j = {.f = f, .key = key, .kind = kind, .batch = batch, .x = x, .v = v, .out = scratch};
  return pt_fn_copy_out(run_batch(&j), scratch, out, batch * out_n);
}

pt_status pt_fn_eval_batch(const pt_fn *f, pt_key key, size_t batch, const float *x, float *y) {
  PT_CALL("pt_fn_eval_batch");
  const pt_status s = check(f, batch, x, x, y, 0);
  if (s != PT_OK || batch == 0) return s;
  return batched(f, key, BATCH_EVAL, batch, x, NULL, y, f->n_out);
}

pt_status pt_fn_vjp_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                          const float *y_bar, float *x_bar) {
  PT_CALL("pt_fn_vjp_batch");
  const pt_status s = check(f, batch, x, y_bar, x_bar, 1);
  if (s != PT_OK || batch == 0) return s;
  return batched(f, key, BATCH_VJP, batch, x, y_bar, x_bar, f->n_in);
}

pt_status pt_fn_jvp_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                          const float *x_dot, float *y_dot) {
  PT_CALL("pt_fn_jvp_batch");
  const pt_status s = check(f, batch, x, x_dot, y_dot, 1);
  if (s != PT_OK || batch == 0) return s;
  return batched(f, key, BATCH_JVP, batch, x, x_dot, y_dot, f->n_out);
}

pt_status pt_fn_value_and_grad_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                                     float *value, float *grad) {
  PT_CALL("pt_fn_value_and_grad_batch");
  pt_status s = check(f, batch, x, value, grad, 0);
  if (s == PT_OK && batch) s = pt_fn_check_input(f, batch, x, 1);
  if (s != PT_OK || batch == 0) return s;
  /* before the derivative's check, as pt_fn_value_and_grad */
  if (f->n_out != 1) return pt_fail(PT_EINVAL, "f has %zu outputs, not one", f->n_out);
  if (!(f->caps & PT_CAP_DERIVATIVES)) return pt_fn_unsupported("derivatives");
  float *scratch = pt_fn_alloc(batch, f->n_in + 1, sizeof *scratch, &s);
  if (!scratch) return s;
  float *values = scratch + batch * f->n_in;
  batch_job j = {.f = f, .key = key, .kind = BATCH_VALUE_AND_GRAD, .batch = batch, .x = x,
                 .out = scratch, .value = values};
  s = run_batch(&j);
  if (s == PT_OK) memcpy(value, values, batch * sizeof *value);
  return pt_fn_copy_out(s, scratch, grad, batch * f->n_in);
}

/* SPDX-License-Identifier: MIT */
/* The shard API's contract apart from its bits (test_splits.c has those): sample groups, every
   refusal of pt_fn_partial, pt_partial_merge, pt_partial_finish and the byte functions with
   nothing written, truncated and corrupted bytes; and the callbacks of pt_fn_from_callback_ex:
   flags, the user data's destructor, and on which thread an ordinary callback runs. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"

enum { D = 20, M = 1000 };

static pt_fn *perturbed_argmax(size_t m, float sigma) {
  pt_fn *a, *p;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &a), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(a, m, sigma, PT_NOISE_GUMBEL, 1, &p), PT_OK);
  pt_fn_free(a);
  return p;
}

static void point(float *x, float *v) {
  for (int i = 0; i < D; i++) {
    x[i] = 0.1f * (float)(i % 7) - 0.3f;
    v[i] = (float)(i % 3) - 1.0f;
  }
}

Test(shards, sample_groups) {
  pt_fn *p = perturbed_argmax(M, 0.5f), *a;
  cr_expect_eq(pt_fn_sample_group(p), 128);
  cr_assert_eq(pt_fn_argmax_one_hot(D, &a), PT_OK);
  cr_expect_eq(pt_fn_sample_group(a), 0, "not a perturbed function");
  cr_expect_eq(pt_fn_sample_group(NULL), 0);
  pt_fn *big;
  /* 2^16 groups of 128 fit exactly; one sample more doubles the group */
  cr_assert_eq(pt_make_perturbed_fun(a, (size_t)1 << 23, 0.5f, PT_NOISE_GUMBEL, 1, &big), PT_OK);
  cr_expect_eq(pt_fn_sample_group(big), 128);
  pt_fn_free(big);
  cr_assert_eq(pt_make_perturbed_fun(a, ((size_t)1 << 23) + 1, 0.5f, PT_NOISE_GUMBEL, 1, &big),
               PT_OK);
  cr_expect_eq(pt_fn_sample_group(big), 256);
  pt_fn_free(big);
  pt_fn_free(a);
  pt_fn_free(p);
}

static int huge_box(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  (void)batch;
  (void)x;
  (void)y;
  return 1;
}

Test(shards, bad_partial_requests_write_nothing) {
  pt_fn *p = perturbed_argmax(M, 0.5f), *a;
  cr_assert_eq(pt_fn_argmax_one_hot(D, &a), PT_OK);
  float x[D], v[D];
  point(x, v);
  const pt_key key = pt_key_make(1);
  pt_partial *const sentinel = (pt_partial *)&key, *out = sentinel;
  const struct {
    const pt_fn *f;
    int op;
    const float *x, *v;
    uint64_t m0, m1;
    pt_status want;
  } bad[] = {
      {NULL, PT_OP_EVAL, x, NULL, 0, M, PT_EINVAL},
      {a, PT_OP_EVAL, x, NULL, 0, M, PT_EUNSUPPORTED},
      {p, 5, x, NULL, 0, M, PT_EINVAL},
      {p, -1, x, NULL, 0, M, PT_EINVAL},
      {p, PT_OP_EVAL, NULL, NULL, 0, M, PT_EINVAL},
      {p, PT_OP_VJP, x, NULL, 0, M, PT_EINVAL},
      {p, PT_OP_JVP, x, NULL, 0, M, PT_EINVAL},
      {p, PT_OP_HESSIAN, x, NULL, 0, M, PT_EUNSUPPORTED},
      {p, PT_OP_EVAL, x, NULL, 256, 128, PT_EINVAL},
      {p, PT_OP_EVAL, x, NULL, 0, M + 1, PT_EINVAL},
      {p, PT_OP_EVAL, x, NULL, 5, 128, PT_EINVAL},
      {p, PT_OP_EVAL, x, NULL, 0, 130, PT_EINVAL},
      {p, PT_OP_EVAL, x, NULL, M + 128, M + 128, PT_EINVAL},
  };
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    cr_expect_eq(pt_fn_partial(bad[c].f, (pt_op)bad[c].op, key, bad[c].x, bad[c].v, bad[c].m0,
                               bad[c].m1, &out), bad[c].want, "case %zu", c);
    cr_expect_eq(out, sentinel, "case %zu wrote its output", c);
  }
  cr_expect_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, 0, M, NULL), PT_EINVAL);
  /* a Jacobian of 2^33 x 2^33 entries cannot be summed (x is never read) */
  pt_fn *huge, *huge_p;
  cr_assert_eq(pt_fn_from_callback((size_t)1 << 33, (size_t)1 << 33, huge_box, NULL, &huge), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(huge, M, 0.5f, PT_NOISE_NORMAL, 1, &huge_p), PT_OK);
  cr_expect_eq(pt_fn_partial(huge_p, PT_OP_JACOBIAN, key, x, NULL, 0, M, &out), PT_EOVERFLOW);
  cr_expect_eq(out, sentinel);
  pt_fn_free(huge_p);
  pt_fn_free(huge);
  x[3] = NAN;
  cr_expect_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, 0, M, &out), PT_EINVAL);
  x[3] = INFINITY;
  cr_expect_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, 0, M, &out), PT_EINVAL);
  cr_expect_eq(out, sentinel);
  /* the ends that are allowed: M itself, and empty ranges at any boundary */
  point(x, v);
  cr_assert_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, 896, M, &out), PT_OK);
  pt_partial_free(out);
  cr_assert_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, M, M, &out), PT_OK);
  pt_partial_free(out);
  cr_assert_eq(pt_fn_partial(p, PT_OP_EVAL, key, x, NULL, 256, 256, &out), PT_OK);
  pt_partial_free(out);
  pt_fn_free(a);
  pt_fn_free(p);
}

/* A partial of p's op over [m0, m1) */
static pt_partial *part(const pt_fn *p, pt_op op, pt_key key, const float *x, const float *v,
                        uint64_t m0, uint64_t m1) {
  pt_partial *q = NULL;
  cr_assert_eq(pt_fn_partial(p, op, key, x, v, m0, m1, &q), PT_OK);
  return q;
}

static unsigned char *bytes_of(const pt_partial *q, size_t *size) {
  *size = pt_partial_size(q);
  unsigned char *b = malloc(*size);
  cr_assert_eq(pt_partial_save(q, b, *size), PT_OK);
  return b;
}

static void expect_same_bytes(const pt_partial *q, const unsigned char *want, size_t size,
                              const char *what) {
  size_t n;
  unsigned char *got = bytes_of(q, &n);
  cr_expect(n == size && memcmp(got, want, size) == 0, "%s changed the partial", what);
  free(got);
}

Test(shards, mismatched_and_overlapping_merges_are_refused) {
  pt_fn *p = perturbed_argmax(M, 0.5f), *q = perturbed_argmax(M, 0.25f);
  pt_fn *r = perturbed_argmax(M + 1, 0.5f);
  float x[D], v[D], x2[D], v2[D];
  point(x, v);
  point(x2, v2);
  x2[4] += 0.5f;
  v2[0] = 3.0f;
  const pt_key key = pt_key_make(1), other = pt_key_make(2);
  pt_partial *into = part(p, PT_OP_VJP, key, x, v, 0, 256);
  size_t size;
  unsigned char *before = bytes_of(into, &size);
  pt_partial *bad[] = {
      part(p, PT_OP_VJP, other, x, v, 256, 512),    /* key */
      part(p, PT_OP_VJP, key, x2, v, 256, 512),     /* x */
      part(p, PT_OP_VJP, key, x, v2, 256, 512),     /* v */
      part(p, PT_OP_JVP, key, x, v, 256, 512),      /* op */
      part(q, PT_OP_VJP, key, x, v, 256, 512),      /* sigma */
      part(r, PT_OP_VJP, key, x, v, 256, 512),      /* samples */
      part(p, PT_OP_VJP, key, x, v, 128, 384),      /* overlapping */
      into,                                          /* itself */
  };
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    cr_expect_eq(pt_partial_merge(into, bad[c]), PT_EINVAL, "case %zu", c);
    expect_same_bytes(into, before, size, "a refused merge");
    if (bad[c] == into || pt_partial_size(bad[c]) != size) continue;
    size_t n;
    unsigned char *in = bytes_of(bad[c], &n), *inout = malloc(size);
    memcpy(inout, before, size);
    cr_expect_eq(pt_partial_merge_bytes(in, inout, size), PT_EINVAL, "bytes case %zu", c);
    cr_expect_eq(memcmp(inout, before, size), 0, "a refused merge_bytes wrote");
    free(in);
    free(inout);
  }
  cr_expect_eq(pt_partial_merge(NULL, into), PT_EINVAL);
  cr_expect_eq(pt_partial_merge(into, NULL), PT_EINVAL);
  /* finishing before every sample is in */
  float out[D], poison[D];
  memset(out, 0x5a, sizeof out);
  memcpy(poison, out, sizeof out);
  cr_expect_eq(pt_partial_finish(into, out), PT_EINVAL);
  cr_expect_eq(memcmp(out, poison, sizeof out), 0);
  cr_expect_eq(pt_partial_finish(NULL, out), PT_EINVAL);
  cr_expect_eq(pt_partial_finish(into, NULL), PT_EINVAL);
  pt_partial *rest = part(p, PT_OP_VJP, key, x, v, 256, M), *empty = part(p, PT_OP_VJP, key, x, v, 0, 0);
  cr_assert_eq(pt_partial_merge(into, empty), PT_OK);
  cr_assert_eq(pt_partial_merge(into, rest), PT_OK);
  cr_assert_eq(pt_partial_merge(into, empty), PT_OK, "an empty partial overlaps nothing");
  cr_assert_eq(pt_partial_finish(into, out), PT_OK);
  float want[D];
  cr_assert_eq(pt_fn_vjp(p, key, x, v, want), PT_OK);
  cr_expect_eq(memcmp(out, want, sizeof out), 0);
  for (size_t c = 0; c + 1 < sizeof bad / sizeof bad[0]; c++) pt_partial_free(bad[c]);
  pt_partial_free(into);
  pt_partial_free(rest);
  pt_partial_free(empty);
  free(before);
  pt_fn_free(p);
  pt_fn_free(q);
  pt_fn_free(r);
}

Test(shards, bad_bytes_are_refused) {
  pt_fn *p = perturbed_argmax(M, 0.5f);
  float x[D], v[D];
  point(x, v);
  pt_partial *q = part(p, PT_OP_EVAL, pt_key_make(3), x, NULL, 128, 640), *loaded = NULL;
  size_t size;
  unsigned char *good = bytes_of(q, &size), *b = malloc(size + 1);
  pt_partial *empty = part(p, PT_OP_EVAL, pt_key_make(3), x, NULL, 0, 0);
  cr_expect_eq(pt_partial_size(empty), size, "the size depends on the range");
  pt_partial_free(empty);
  /* save into a buffer too small writes nothing */
  memset(b, 0x77, size);
  cr_expect_eq(pt_partial_save(q, b, size - 1), PT_EINVAL);
  for (size_t i = 0; i < size; i++) cr_assert_eq(b[i], 0x77, "save wrote byte %zu", i);
  cr_expect_eq(pt_partial_save(NULL, b, size), PT_EINVAL);
  cr_expect_eq(pt_partial_save(q, NULL, size), PT_EINVAL);
  cr_expect_eq(pt_partial_size(NULL), 0);
  /* every truncation, and one byte too many */
  for (size_t n = 0; n < size; n++) cr_expect_eq(pt_partial_load(good, n, &loaded), PT_EINVAL, "%zu bytes", n);
  memcpy(b, good, size);
  b[size] = 0;
  cr_expect_eq(pt_partial_load(b, size + 1, &loaded), PT_EINVAL);
  /* every byte changed */
  for (size_t i = 0; i < size; i++) {
    memcpy(b, good, size);
    b[i] ^= 0x10;
    cr_expect_eq(pt_partial_load(b, size, &loaded), PT_EINVAL, "byte %zu changed", i);
  }
  cr_expect_eq(loaded, NULL, "a refused load wrote its output");
  cr_expect_eq(pt_partial_load(NULL, size, &loaded), PT_EINVAL);
  cr_expect_eq(pt_partial_load(good, size, NULL), PT_EINVAL);
  cr_assert_eq(pt_partial_load(good, size, &loaded), PT_OK);
  expect_same_bytes(loaded, good, size, "a save of a load");
  pt_partial_free(loaded);
  pt_partial_free(q);
  pt_partial_free(NULL);
  free(good);
  free(b);
  pt_fn_free(p);
}

/* ---- callbacks with options ------------------------------------------------------------------ */

static int freed;
static void count_free(void *user) {
  (void)user;
  freed++;
}

typedef struct recorder {
  pthread_t caller;
  int foreign; /* calls made from another thread */
  int calls;
  float last;  /* the first input of the last row seen, to check the row order */
  int out_of_order;
} recorder;

static int record(void *user, size_t batch, const float *x, float *y) {
  recorder *r = user;
  if (!pthread_equal(pthread_self(), r->caller)) r->foreign++;
  for (size_t b = 0; b < batch; b++) {
    if (x[b * 2] < r->last) r->out_of_order++;
    r->last = x[b * 2];
    y[b] = x[b * 2] + x[b * 2 + 1];
  }
  r->calls++;
  return 0;
}

Test(shards, callback_options) {
  pt_fn *f = NULL;
  freed = 0;
  cr_expect_eq(pt_fn_from_callback_ex(2, 1, record, NULL, NULL, count_free, 2u, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_from_callback_ex(2, 1, NULL, NULL, NULL, count_free, 0, &f), PT_EINVAL);
  cr_expect_eq(pt_fn_from_callback_ex(0, 1, record, NULL, NULL, count_free, 0, &f), PT_EINVAL);
  cr_expect_eq(f, NULL);
  cr_expect_eq(freed, 0, "a failed constructor freed the user data");
  recorder r = {pthread_self(), 0, 0, -INFINITY, 0};
  cr_assert_eq(pt_fn_from_callback_ex(2, 1, record, NULL, &r, count_free, 0, &f), PT_OK);
  float y_bar = 1.0f, g[2];
  cr_expect_eq(pt_fn_vjp(f, pt_key_make(0), g, &y_bar, g), PT_EUNSUPPORTED, "a black box");
  pt_fn *p;
  cr_assert_eq(pt_make_perturbed_fun(f, 4000, 0.5f, PT_NOISE_NORMAL, 1, &p), PT_OK);
  pt_fn_free(f);
  cr_expect_eq(freed, 0, "freed while the perturbed function holds it");
  cr_assert_eq(pt_set_num_threads(4), PT_OK);
  float x[2] = {0.5f, -0.25f}, y;
  cr_assert_eq(pt_fn_eval(p, pt_key_make(9), x, &y), PT_OK);
  cr_expect_eq(r.foreign, 0, "an ordinary callback ran on a library thread");
  /* a batch of rows in increasing order must reach it in that order */
  enum { B = 64 };
  float xs[2 * B], ys[B];
  for (int b = 0; b < B; b++) {
    xs[2 * b] = (float)b;
    xs[2 * b + 1] = 1.0f;
  }
  pt_fn *box;
  r.last = -INFINITY;
  r.out_of_order = 0;
  cr_assert_eq(pt_fn_from_callback_ex(2, 1, record, NULL, &r, count_free, 0, &box), PT_OK);
  cr_assert_eq(pt_fn_eval_batch(box, pt_key_make(1), B, xs, ys), PT_OK);
  cr_expect_eq(r.foreign, 0);
  cr_expect_eq(r.out_of_order, 0, "rows out of order");
  for (int b = 0; b < B; b++) cr_expect_eq(ys[b], (float)b + 1.0f);
  pt_fn_free(box);
  cr_expect_eq(freed, 1);
  pt_fn_free(p);
  cr_expect_eq(freed, 2, "the destructor runs once per object, at its last reference");
}

static int thread_safe_sum(void *user, size_t batch, const float *x, float *y) {
  int *calls = user;
  __atomic_add_fetch(calls, 1, __ATOMIC_RELAXED);
  for (size_t b = 0; b < batch; b++) y[b] = x[b * 2] * x[b * 2 + 1];
  return 0;
}

Test(shards, thread_safe_black_box_gives_the_bits_of_one_thread) {
  int calls = 0;
  pt_fn *f, *p;
  cr_assert_eq(pt_fn_from_callback_ex(2, 1, thread_safe_sum, NULL, &calls, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &f), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(f, 100000, 0.5f, PT_NOISE_GUMBEL, 1, &p), PT_OK);
  const float x[2] = {0.5f, -1.5f};
  float one[3], many[3];
  cr_assert_eq(pt_set_num_threads(1), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(p, pt_key_make(4), x, one, one + 1), PT_OK);
  cr_assert_eq(pt_set_num_threads(5), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(p, pt_key_make(4), x, many, many + 1), PT_OK);
  cr_expect_eq(memcmp(one, many, sizeof one), 0);
  cr_expect_gt(calls, 2);
  pt_fn_free(f);
  pt_fn_free(p);
}

/* An ordinary black box perturbed on several threads: it is called from the calling thread
   only, and sees the baseline, then samples 0, 1, ..., M - 1 in order (x + sigma z, z the
   stream's normal noise at m*n + i), while the library's own work runs on the pool. */
typedef struct sample_log {
  pthread_t caller;
  int foreign;
  size_t rows;
  float *seen; /* rows x 3 */
} sample_log;

static int log_rows(void *user, size_t batch, const float *x, float *y) {
  sample_log *l = user;
  if (!pthread_equal(pthread_self(), l->caller)) l->foreign++;
  memcpy(l->seen + l->rows * 3, x, batch * 3 * sizeof *x);
  l->rows += batch;
  for (size_t b = 0; b < batch; b++) y[b] = x[3 * b] * x[3 * b + 1] - x[3 * b + 2];
  return 0;
}

Test(shards, an_ordinary_black_box_sees_its_samples_in_order) {
  enum { SAMPLES = 3000 };
  sample_log l = {pthread_self(), 0, 0, malloc((SAMPLES + 1) * 3 * sizeof(float))};
  pt_fn *f, *p;
  cr_assert_eq(pt_fn_from_callback_ex(3, 1, log_rows, NULL, &l, NULL, 0, &f), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(f, SAMPLES, 0.5f, PT_NOISE_NORMAL, 1, &p), PT_OK);
  const float x[3] = {0.25f, -1.0f, 2.0f};
  float one[4], many[4];
  const pt_key key = pt_key_make(12);
  cr_assert_eq(pt_set_num_threads(1), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(p, key, x, one, one + 1), PT_OK);
  l.rows = 0;
  cr_assert_eq(pt_set_num_threads(3), PT_OK);
  cr_assert_eq(pt_fn_value_and_grad(p, key, x, many, many + 1), PT_OK);
  cr_expect_eq(memcmp(one, many, sizeof one), 0, "other bits on 3 threads");
  cr_expect_eq(l.foreign, 0, "an ordinary callback ran on a library thread");
  cr_assert_eq(l.rows, SAMPLES + 1);
  cr_expect_eq(memcmp(l.seen, x, sizeof x), 0, "the baseline f(x) comes first");
  float z[3];
  for (size_t m = 0; m < SAMPLES; m++) {
    cr_assert_eq(pt_noise_fill(PT_NOISE_NORMAL, key, m * 3, z, 3), PT_OK);
    for (size_t i = 0; i < 3; i++) {
      const float step = 0.5f * z[i], want = x[i] + step;
      cr_assert_eq(l.seen[(m + 1) * 3 + i], want, "sample %zu out of order", m);
    }
  }
  pt_fn_free(p);
  pt_fn_free(f);
  free(l.seen);
}

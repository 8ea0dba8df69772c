/* SPDX-License-Identifier: MIT */
/* Any split of the work gives the bits of one call on one thread: thread counts 1, 2, 3, 7 and
   16 on every supported ISA, shards over random partitions of the sample groups merged in
   random orders (as objects and as bytes), and batched calls against their rows.  The
   functions cover every path of the estimator: fused argmax (one segment and several), fused
   ranking, and the generic path through thread-safe and ordinary callbacks, with and without
   baseline, Gumbel and normal noise, and the pathwise gradient of callbacks with their own. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}

static void fill(float *v, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) v[i] = (float)((double)(lcg(&seed) % 2001) / 1000.0 - 1.0);
}

/* a smooth black box R^4 -> R^3 (or R^1): y_j = sum_i (i + j + 1) x_i^2 / (1 + |x_i|) */
static int smooth(void *user, size_t batch, const float *x, float *y) {
  const size_t n_out = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++)
    for (size_t j = 0; j < n_out; j++) {
      float s = 0.0f;
      for (size_t i = 0; i < 4; i++) {
        const float v = x[b * 4 + i];
        s += (float)(i + j + 1) * v * v / (1.0f + (v < 0 ? -v : v));
      }
      y[b * n_out + j] = s;
    }
  return 0;
}

/* its vjp: dy_j/dx_i = (i + j + 1) x_i (2 + |x_i|) / (1 + |x_i|)^2 */
static int smooth_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const size_t n_out = *(const size_t *)user;
  for (size_t i = 0; i < 4; i++) {
    const float v = x[i], a = v < 0 ? -v : v, slope = v * (2.0f + a) / ((1.0f + a) * (1.0f + a));
    float s = 0.0f;
    for (size_t j = 0; j < n_out; j++) s += (float)(i + j + 1) * slope * y_bar[j];
    x_bar[i] = s;
  }
  return 0;
}

static size_t three = 3, one = 1;

typedef struct subject {
  const char *name;
  pt_fn *f;     /* the perturbed function */
  size_t n_in, n_out;
  uint64_t m;   /* its samples */
  int pathwise; /* no Hessian */
} subject;

enum { SUBJECTS = 9 };

static void make_subjects(subject *s) {
  pt_fn *argmax, *seg, *rank, *box_safe, *box, *scalar_box, *grad_safe, *grad_scalar;
  const size_t sizes[] = {40, 1, 70, 9};
  cr_assert_eq(pt_fn_argmax_one_hot(300, &argmax), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot_segments(sizes, 4, &seg), PT_OK);
  cr_assert_eq(pt_fn_ranking(37, &rank), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(4, 3, smooth, NULL, &three, NULL, PT_CALLBACK_THREAD_SAFE,
                                      &box_safe), PT_OK);
  cr_assert_eq(pt_fn_from_callback(4, 3, smooth, &three, &box), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(4, 1, smooth, NULL, &one, NULL, PT_CALLBACK_THREAD_SAFE,
                                      &scalar_box), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(4, 3, smooth, smooth_vjp, &three, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &grad_safe), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(4, 1, smooth, smooth_vjp, &one, NULL, 0, &grad_scalar),
               PT_OK);
  const struct {
    const char *name;
    pt_fn *f;
    size_t m;
    pt_noise noise;
    int baseline;
    int pathwise;
  } made[SUBJECTS] = {
      {"argmax gumbel", argmax, 1000, PT_NOISE_GUMBEL, 1, 0},
      {"segments normal", seg, 777, PT_NOISE_NORMAL, 1, 0},
      {"ranking gumbel", rank, 700, PT_NOISE_GUMBEL, 0, 0},
      {"ranking normal", rank, 300, PT_NOISE_NORMAL, 1, 0},
      {"thread-safe box", box_safe, 1300, PT_NOISE_GUMBEL, 1, 0},
      {"ordinary box", box, 500, PT_NOISE_NORMAL, 0, 0},
      {"scalar box", scalar_box, 900, PT_NOISE_NORMAL, 1, 0},
      {"pathwise thread-safe", grad_safe, 1100, PT_NOISE_GUMBEL, 1, 1},
      {"pathwise ordinary", grad_scalar, 600, PT_NOISE_NORMAL, 0, 1},
  };
  for (size_t i = 0; i < SUBJECTS; i++) {
    s[i].name = made[i].name;
    pt_perturb_options o = pt_perturb_defaults();
    o.num_samples = made[i].m;
    o.sigma = 0.5f;
    o.noise = made[i].noise;
    o.baseline = made[i].baseline ? PT_BASELINE_F_X : PT_BASELINE_NONE;
    o.gradient = made[i].pathwise ? PT_GRADIENT_PATHWISE : PT_GRADIENT_SCORE;
    cr_assert_eq(pt_make_perturbed_fun_ex(made[i].f, &o, &s[i].f), PT_OK);
    s[i].pathwise = made[i].pathwise;
    s[i].n_in = pt_fn_n_in(s[i].f);
    s[i].n_out = pt_fn_n_out(s[i].f);
    s[i].m = made[i].m;
  }
  pt_fn_free(argmax);
  pt_fn_free(seg);
  pt_fn_free(rank);
  pt_fn_free(box_safe);
  pt_fn_free(box);
  pt_fn_free(scalar_box);
  pt_fn_free(grad_safe);
  pt_fn_free(grad_scalar);
}

static void free_subjects(subject *s) {
  for (size_t i = 0; i < SUBJECTS; i++) pt_fn_free(s[i].f);
}

/* Every op of s at a fixed point into out (eval, vjp, jvp, jacobian, hessian when n_out is
   1), back to back; returns the floats written. */
static size_t all_ops(const subject *s, float *out) {
  const size_t n_in = s->n_in, n_out = s->n_out;
  float *x = malloc(n_in * sizeof *x), *y_bar = malloc(n_out * sizeof *y_bar),
        *x_dot = malloc(n_in * sizeof *x_dot);
  fill(x, n_in, 3);
  fill(y_bar, n_out, 4);
  fill(x_dot, n_in, 5);
  const pt_key key = pt_key_make(77);
  size_t at = 0;
  cr_assert_eq(pt_fn_eval(s->f, key, x, out + at), PT_OK, "%s eval", s->name);
  at += n_out;
  cr_assert_eq(pt_fn_vjp(s->f, key, x, y_bar, out + at), PT_OK, "%s vjp", s->name);
  at += n_in;
  cr_assert_eq(pt_fn_jvp(s->f, key, x, x_dot, out + at), PT_OK, "%s jvp", s->name);
  at += n_out;
  if (n_in * n_out <= 4000) {
    cr_assert_eq(pt_fn_jacobian(s->f, key, x, out + at), PT_OK, "%s jacobian", s->name);
    at += n_in * n_out;
  }
  if (n_out == 1 && !s->pathwise) {
    cr_assert_eq(pt_fn_hessian(s->f, key, x, out + at), PT_OK, "%s hessian", s->name);
    at += n_in * n_in;
  }
  if (n_out == 1) {
    cr_assert_eq(pt_fn_value_and_grad(s->f, key, x, out + at, out + at + 1), PT_OK);
    at += 1 + n_in;
  }
  free(x);
  free(y_bar);
  free(x_dot);
  return at;
}

#define OPS_FLOATS (300 * 4 + 4000 + 64)

Test(splits, every_thread_count_gives_the_bits_of_one) {
  subject s[SUBJECTS];
  make_subjects(s);
  static float want[OPS_FLOATS], got[OPS_FLOATS];
  const size_t counts[] = {2, 3, 7, 16};
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (!pt_isa_supported((pt_isa)isa)) {
      cr_log_info("%s: not supported here, skipped", pt_isa_name((pt_isa)isa));
      continue;
    }
    cr_assert_eq(pt_isa_select((pt_isa)isa), PT_OK);
    for (size_t i = 0; i < SUBJECTS; i++) {
      cr_assert_eq(pt_set_num_threads(1), PT_OK);
      const size_t n = all_ops(&s[i], want);
      for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        cr_assert_eq(pt_set_num_threads(counts[c]), PT_OK);
        cr_assert_eq(all_ops(&s[i], got), n);
        cr_expect_eq(memcmp(got, want, n * sizeof *got), 0, "%s, %s, %zu threads: other bits",
                     pt_isa_name((pt_isa)isa), s[i].name, counts[c]);
      }
    }
  }
  free_subjects(s);
}

/* ---- shards ---------------------------------------------------------------------------------- */

static size_t op_floats(const subject *s, pt_op op) {
  switch (op) {
    case PT_OP_EVAL: case PT_OP_JVP: return s->n_out;
    case PT_OP_VJP: return s->n_in;
    case PT_OP_JACOBIAN: return s->n_in * s->n_out;
    default: return s->n_in * s->n_in;
  }
}

static pt_status one_call(const subject *s, pt_op op, pt_key key, const float *x, const float *v,
                          float *out) {
  switch (op) {
    case PT_OP_EVAL: return pt_fn_eval(s->f, key, x, out);
    case PT_OP_VJP: return pt_fn_vjp(s->f, key, x, v, out);
    case PT_OP_JVP: return pt_fn_jvp(s->f, key, x, v, out);
    case PT_OP_JACOBIAN: return pt_fn_jacobian(s->f, key, x, out);
    default: return pt_fn_hessian(s->f, key, x, out);
  }
}

/* Cuts [0, M) at `cuts` random group boundaries (repeats give empty shards). */
static size_t partition(uint64_t m, uint64_t group, uint64_t *seed, uint64_t *ends, size_t cuts) {
  const uint64_t groups = (m - 1) / group + 1;
  for (size_t c = 0; c < cuts; c++) ends[c] = (lcg(seed) % (groups + 1)) * group;
  for (size_t c = 0; c < cuts; c++) /* sort */
    for (size_t d = c + 1; d < cuts; d++)
      if (ends[d] < ends[c]) {
        const uint64_t t = ends[c];
        ends[c] = ends[d];
        ends[d] = t;
      }
  for (size_t c = 0; c < cuts; c++)
    if (ends[c] > m) ends[c] = m;
  ends[cuts] = m;
  return cuts + 1;
}

/* The op of s over a random partition of its samples into `cuts + 1` shards, merged in a
   random order (through bytes and pt_partial_merge_bytes when through_bytes), against the one
   call. */
static void check_shards(const subject *s, pt_op op, size_t cuts, uint64_t *seed,
                         int through_bytes) {
  const size_t n = op_floats(s, op);
  float *x = malloc(s->n_in * sizeof *x), *v = malloc((s->n_in + s->n_out) * sizeof *v);
  float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
  fill(x, s->n_in, 8);
  fill(v, s->n_in + s->n_out, 9);
  const pt_key key = pt_key_make(5150);
  const float *vv = op == PT_OP_VJP || op == PT_OP_JVP ? v : NULL;
  cr_assert_eq(one_call(s, op, key, x, vv, want), PT_OK);
  const uint64_t group = pt_fn_sample_group(s->f);
  cr_assert_gt(group, 0);
  uint64_t ends[33];
  const size_t shards = partition(s->m, group, seed, ends, cuts);
  pt_partial *part[33];
  size_t order[33];
  for (size_t k = 0; k < shards; k++) {
    const uint64_t m0 = k ? ends[k - 1] : 0;
    cr_assert_eq(pt_fn_partial(s->f, op, key, x, vv, m0, ends[k], &part[k]), PT_OK,
                 "%s op %d [%llu, %llu)", s->name, (int)op, (unsigned long long)m0,
                 (unsigned long long)ends[k]);
    order[k] = k;
  }
  for (size_t k = shards - 1; k > 0; k--) {
    const size_t j = (size_t)(lcg(seed) % (k + 1)), t = order[k];
    order[k] = order[j];
    order[j] = t;
  }
  const size_t size = pt_partial_size(part[0]);
  for (size_t k = 1; k < shards; k++) cr_assert_eq(pt_partial_size(part[k]), size);
  pt_partial *total = NULL;
  if (through_bytes) {
    unsigned char *acc = malloc(size), *in = malloc(size);
    cr_assert_eq(pt_partial_save(part[order[0]], acc, size), PT_OK);
    for (size_t k = 1; k < shards; k++) {
      cr_assert_eq(pt_partial_save(part[order[k]], in, size), PT_OK);
      cr_assert_eq(pt_partial_merge_bytes(in, acc, size), PT_OK);
    }
    cr_assert_eq(pt_partial_load(acc, size, &total), PT_OK);
    free(acc);
    free(in);
  } else {
    total = part[order[0]];
    part[order[0]] = NULL;
    for (size_t k = 1; k < shards; k++) cr_assert_eq(pt_partial_merge(total, part[order[k]]), PT_OK);
  }
  cr_assert_eq(pt_partial_finish(total, got), PT_OK);
  cr_expect_eq(memcmp(got, want, n * sizeof *got), 0, "%s op %d, %zu shards%s: other bits",
               s->name, (int)op, shards, through_bytes ? " (bytes)" : "");
  pt_partial_free(total);
  for (size_t k = 0; k < shards; k++) pt_partial_free(part[k]);
  free(x);
  free(v);
  free(want);
  free(got);
}

Test(splits, shards_of_any_partition_merge_to_the_one_call) {
  subject s[SUBJECTS];
  make_subjects(s);
  uint64_t seed = 2024;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) {
      cr_log_info("%s: not supported here, skipped", pt_isa_name((pt_isa)isa));
      continue;
    }
    for (size_t i = 0; i < SUBJECTS; i++)
      for (int op = PT_OP_EVAL; op <= PT_OP_HESSIAN; op++) {
        if (op == PT_OP_HESSIAN && (s[i].n_out != 1 || s[i].pathwise)) continue;
        if (op == PT_OP_JACOBIAN && s[i].n_in * s[i].n_out > 4000) continue;
        const size_t cuts[] = {0, 1, 3, 12};
        for (size_t c = 0; c < 4; c++) check_shards(&s[i], (pt_op)op, cuts[c], &seed, c % 2);
      }
  }
  free_subjects(s);
}

Test(splits, shards_are_the_same_on_any_thread_count) {
  subject s[SUBJECTS];
  make_subjects(s);
  uint64_t seed = 99;
  const size_t counts[] = {1, 3, 16};
  for (size_t c = 0; c < 3; c++) {
    cr_assert_eq(pt_set_num_threads(counts[c]), PT_OK);
    check_shards(&s[0], PT_OP_VJP, 2, &seed, 1);
    check_shards(&s[4], PT_OP_JVP, 5, &seed, 0);
    check_shards(&s[7], PT_OP_JACOBIAN, 3, &seed, 1);
  }
  free_subjects(s);
}

/* ---- batches -------------------------------------------------------------------------------- */

/* Each batched call against its rows, one by one with folded keys, at 1 and 3 threads. */
Test(splits, batched_calls_are_their_rows) {
  subject s[SUBJECTS];
  make_subjects(s);
  enum { B = 9 };
  for (size_t i = 0; i < SUBJECTS; i++) {
    const size_t n_in = s[i].n_in, n_out = s[i].n_out;
    float *x = malloc(B * n_in * sizeof *x), *yb = malloc(B * n_out * sizeof *yb);
    float *xd = malloc(B * n_in * sizeof *xd);
    float *got = malloc(B * (n_in + n_out + 1) * sizeof *got);
    float *want = malloc(B * (n_in + n_out + 1) * sizeof *want);
    fill(x, B * n_in, 21);
    fill(yb, B * n_out, 22);
    fill(xd, B * n_in, 23);
    const pt_key key = pt_key_make(31337);
    for (size_t threads = 1; threads <= 3; threads += 2) {
      cr_assert_eq(pt_set_num_threads(threads), PT_OK);
      for (size_t b = 0; b < B; b++) {
        const pt_key kb = pt_key_fold_in(key, b);
        cr_assert_eq(pt_fn_eval(s[i].f, kb, x + b * n_in, want + b * n_out), PT_OK);
      }
      cr_assert_eq(pt_fn_eval_batch(s[i].f, key, B, x, got), PT_OK);
      cr_expect_eq(memcmp(got, want, B * n_out * sizeof *got), 0, "%s eval_batch", s[i].name);
      for (size_t b = 0; b < B; b++)
        cr_assert_eq(pt_fn_vjp(s[i].f, pt_key_fold_in(key, b), x + b * n_in, yb + b * n_out,
                               want + b * n_in), PT_OK);
      cr_assert_eq(pt_fn_vjp_batch(s[i].f, key, B, x, yb, got), PT_OK);
      cr_expect_eq(memcmp(got, want, B * n_in * sizeof *got), 0, "%s vjp_batch", s[i].name);
      for (size_t b = 0; b < B; b++)
        cr_assert_eq(pt_fn_jvp(s[i].f, pt_key_fold_in(key, b), x + b * n_in, xd + b * n_in,
                               want + b * n_out), PT_OK);
      cr_assert_eq(pt_fn_jvp_batch(s[i].f, key, B, x, xd, got), PT_OK);
      cr_expect_eq(memcmp(got, want, B * n_out * sizeof *got), 0, "%s jvp_batch", s[i].name);
      if (n_out == 1) {
        float *value = want + B * n_in, *got_value = got + B * n_in;
        for (size_t b = 0; b < B; b++)
          cr_assert_eq(pt_fn_value_and_grad(s[i].f, pt_key_fold_in(key, b), x + b * n_in,
                                            value + b, want + b * n_in), PT_OK);
        cr_assert_eq(pt_fn_value_and_grad_batch(s[i].f, key, B, x, got_value, got), PT_OK);
        cr_expect_eq(memcmp(got, want, B * (n_in + 1) * sizeof *got), 0,
                     "%s value_and_grad_batch", s[i].name);
      }
    }
    free(x);
    free(yb);
    free(xd);
    free(got);
    free(want);
  }
  free_subjects(s);
}

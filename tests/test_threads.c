/* SPDX-License-Identifier: MIT */
/* Threads (perturb.h, "Threads"): the thread count and PERTURB_NUM_THREADS, the pool's promises
   (src/runtime/pool.h: serial in order when busy or nested, no queueing, a forked child), and the bits
   of every split kernel for several thread counts, alone and from several user threads at once.
   Criterion runs each test in its own process, so PERTURB_NUM_THREADS set at the start of a test
   is read afresh at the library's first use; the tests of two different good values below would
   not both pass otherwise. */
#define _GNU_SOURCE /* setenv, sched_getaffinity, CPU_COUNT */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */
#include "runtime/pool.h"
#include "dispatch/split.h"
#include "kernels/weighted_sum.h"

static size_t affinity_cpus(void) {
  cpu_set_t set;
  cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
  return (size_t)CPU_COUNT(&set);
}

/* ---- pt_set_num_threads / pt_get_num_threads ---------------------------------------------- */

Test(threads, set_and_get) {
  cr_assert_eq(pt_set_num_threads(3), PT_OK);
  cr_assert_eq(pt_get_num_threads(), 3);
  cr_assert_eq(pt_set_num_threads(1), PT_OK);
  cr_assert_eq(pt_get_num_threads(), 1);
  cr_assert_eq(pt_set_num_threads(1024), PT_OK);
  cr_assert_eq(pt_get_num_threads(), 1024);
}

Test(threads, bad_counts_refused_and_change_nothing) {
  cr_assert_eq(pt_set_num_threads(5), PT_OK);
  const size_t bad[] = {0, 1025, (size_t)1 << 20, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cr_assert_eq(pt_set_num_threads(bad[i]), PT_EINVAL, "n = %zu", bad[i]);
    cr_assert_eq(pt_get_num_threads(), 5);
  }
}

Test(threads, default_is_the_affinity_mask) {
  unsetenv("PERTURB_NUM_THREADS");
  cr_assert_eq(pt_get_num_threads(), affinity_cpus());
}

/* The mask, not the machine: a process confined to one CPU before its first call gets one. */
Test(threads, default_follows_a_narrowed_affinity_mask) {
  unsetenv("PERTURB_NUM_THREADS");
  cpu_set_t one;
  CPU_ZERO(&one);
  cr_assert_eq(sched_getaffinity(0, sizeof one, &one), 0);
  for (int c = 0, kept = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &one) && kept++) CPU_CLR(c, &one);
  cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
  cr_assert_eq(pt_get_num_threads(), 1);
}

/* ---- PERTURB_NUM_THREADS -------------------------------------------------------------------- */

static void expect_env_count(const char *value, size_t want) {
  setenv("PERTURB_NUM_THREADS", value, 1);
  cr_assert_eq(pt_get_num_threads(), want, "PERTURB_NUM_THREADS=\"%s\"", value);
  float x[3] = {1, 3, 2};
  int32_t idx = -1;
  cr_assert_eq(pt_argmax_rows(x, 1, 3, 3, &idx), PT_OK);
  cr_assert_eq(idx, 1);
  cr_assert_eq(pt_set_num_threads(2), PT_OK); /* the call still overrides it */
  cr_assert_eq(pt_get_num_threads(), 2);
}

Test(threads, env_eight) { expect_env_count("8", 8); }
Test(threads, env_three) { expect_env_count("3", 3); }
Test(threads, env_one) { expect_env_count("1", 1); }
Test(threads, env_limit) { expect_env_count("1024", 1024); }
Test(threads, env_leading_zero) { expect_env_count("08", 8); }

/* A refused value: every computing call returns PT_EINVAL and writes nothing, the count reads
   as the default, and pt_set_num_threads makes the calls work again. */
static void expect_env_refused(const char *value) {
  setenv("PERTURB_NUM_THREADS", value, 1);
  const char *v = value;
  float x[6] = {1, 3, 2, 0, -1, 5}, w[2] = {1, 1};
  float sums[3] = {7, 7, 7}, noise[4] = {7, 7, 7, 7}, y[3] = {7, 7, 7};
  int32_t idx[2] = {-7, -7}, perm[6], rank[6];
  memset(perm, 0x5A, sizeof perm);
  memset(rank, 0x5A, sizeof rank);
  pt_fn *f;
  cr_assert_eq(pt_fn_argmax_one_hot(3, &f), PT_OK); /* constructors compute nothing */
  cr_assert_eq(pt_argmax_rows(x, 2, 3, 3, idx), PT_EINVAL, "PERTURB_NUM_THREADS=\"%s\"", v);
  cr_assert_eq(pt_argsort_rows(x, 2, 3, 3, perm, 3), PT_EINVAL);
  cr_assert_eq(pt_rank_rows(x, 2, 3, 3, rank, 3), PT_EINVAL);
  cr_assert_eq(pt_weighted_sum_rows(x, 2, 3, 3, w, sums), PT_EINVAL);
  cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, pt_key_make(1), 0, noise, 4), PT_EINVAL);
  cr_assert_eq(pt_fn_eval(f, pt_key_make(1), x, y), PT_EINVAL);
  cr_assert(idx[0] == -7 && idx[1] == -7 && sums[0] == 7 && sums[2] == 7 && noise[3] == 7 &&
            y[0] == 7 && y[2] == 7);
  for (int i = 0; i < 6; i++) cr_assert(perm[i] == 0x5A5A5A5A && rank[i] == 0x5A5A5A5A);
  cr_assert_eq(pt_get_num_threads(), affinity_cpus());
  cr_assert_eq(pt_set_num_threads(2), PT_OK);
  cr_assert_eq(pt_argmax_rows(x, 2, 3, 3, idx), PT_OK);
  cr_assert(idx[0] == 1 && idx[1] == 2);
  cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, pt_key_make(1), 0, noise, 4), PT_OK);
  cr_assert_eq(pt_fn_eval(f, pt_key_make(1), x, y), PT_OK);
  cr_assert(y[0] == 0 && y[1] == 1 && y[2] == 0);
  pt_fn_free(f);
}

Test(threads, env_zero_refused) { expect_env_refused("0"); }
Test(threads, env_negative_refused) { expect_env_refused("-1"); }
Test(threads, env_word_refused) { expect_env_refused("abc"); }
Test(threads, env_trailing_junk_refused) { expect_env_refused("3x"); }
Test(threads, env_empty_refused) { expect_env_refused(""); }
Test(threads, env_spaces_refused) { expect_env_refused(" 8"); }
Test(threads, env_plus_refused) { expect_env_refused("+8"); }
Test(threads, env_above_limit_refused) { expect_env_refused("1025"); }
Test(threads, env_huge_refused) { expect_env_refused("1048577"); }
Test(threads, env_overflow_refused) { expect_env_refused("18446744073709551617"); }

/* ---- the pool ------------------------------------------------------------------------------- */

/* Which thread ran each task, in which order. */
typedef struct trace {
  atomic_size_t next;
  size_t order[64];
  pthread_t thread[64];
} trace;

static void trace_task(void *p, size_t i) {
  trace *t = p;
  const size_t at = atomic_fetch_add(&t->next, 1);
  t->order[at] = i;
  t->thread[at] = pthread_self();
}

/* All `count` tasks ran on this thread, in order. */
static void expect_serial_here(const trace *t, size_t count) {
  cr_assert_eq(atomic_load(&t->next), count);
  for (size_t i = 0; i < count; i++) {
    cr_assert_eq(t->order[i], i);
    cr_assert(pthread_equal(t->thread[i], pthread_self()));
  }
}

Test(threads, one_thread_runs_in_order_on_the_caller) {
  cr_assert_eq(pt_set_num_threads(1), PT_OK);
  trace t = {0};
  pt_parallel_for(20, trace_task, &t);
  expect_serial_here(&t, 20);
}

Test(threads, every_task_runs_once) {
  cr_assert_eq(pt_set_num_threads(7), PT_OK);
  trace t = {0};
  pt_parallel_for(64, trace_task, &t);
  cr_assert_eq(atomic_load(&t.next), 64);
  int seen[64] = {0};
  for (size_t i = 0; i < 64; i++) seen[t.order[i]]++;
  for (size_t i = 0; i < 64; i++) cr_assert_eq(seen[i], 1, "task %zu", i);
}

/* A task's own parallel call finds the pool busy: its tasks run on the task's thread, in order. */
typedef struct nested {
  trace inner[8];
  int bad;
} nested;

static void nested_task(void *p, size_t i) {
  nested *n = p;
  pt_parallel_for(9, trace_task, &n->inner[i]);
  if (atomic_load(&n->inner[i].next) != 9) n->bad = 1;
  for (size_t k = 0; k < 9; k++)
    if (n->inner[i].order[k] != k || !pthread_equal(n->inner[i].thread[k], pthread_self()))
      n->bad = 1;
}

Test(threads, nested_calls_run_serially) {
  cr_assert_eq(pt_set_num_threads(4), PT_OK);
  nested n = {0};
  pt_parallel_for(8, nested_task, &n);
  cr_assert_eq(n.bad, 0);
}

/* While one user thread holds the pool, another's call runs at once on its own thread instead
   of waiting: the holder's task waits for it (and would time out if it queued). */
typedef struct holder {
  atomic_int holding, other_done, timed_out;
} holder;

static void holding_task(void *p, size_t i) {
  holder *h = p;
  if (i != 0) return;
  atomic_store(&h->holding, 1);
  for (int ms = 0; !atomic_load(&h->other_done); ms++) {
    if (ms == 10000) {
      atomic_store(&h->timed_out, 1);
      return;
    }
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
}

static void *hold_pool(void *p) {
  pt_parallel_for(2, holding_task, p);
  return NULL;
}

Test(threads, a_busy_pool_does_not_queue_callers) {
  cr_assert_eq(pt_set_num_threads(2), PT_OK);
  holder h = {0};
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, hold_pool, &h), 0);
  while (!atomic_load(&h.holding)) nanosleep(&(struct timespec){0, 100000}, NULL);
  trace mine = {0};
  pt_parallel_for(12, trace_task, &mine);
  atomic_store(&h.other_done, 1);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert_eq(atomic_load(&h.timed_out), 0, "the second caller waited for the first");
  expect_serial_here(&mine, 12);
}

/* A forked child has none of the parent's workers: its parallel calls must still finish. */
Test(threads, a_forked_child_gets_its_own_pool, .timeout = 60) {
  cr_assert_eq(pt_set_num_threads(2), PT_OK);
  const size_t n = 4 * PT_GRAIN_NORMAL;
  float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
  cr_assert(a && b);
  cr_assert_eq(pt_noise_fill(PT_NOISE_NORMAL, pt_key_make(3), 0, a, n), PT_OK);
  const pid_t child = fork();
  cr_assert_neq(child, -1);
  if (child == 0) {
    const int ok = pt_noise_fill(PT_NOISE_NORMAL, pt_key_make(3), 0, b, n) == PT_OK &&
                   memcmp(a, b, n * sizeof *a) == 0;
    _exit(ok ? 0 : 1);
  }
  /* a hung child is killed, not left holding the test's output open */
  int status = 0, waited = 0;
  pid_t done;
  while ((done = waitpid(child, &status, WNOHANG)) == 0 && waited++ < 3000)
    nanosleep(&(struct timespec){0, 10000000}, NULL);
  if (done == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    cr_assert_fail("the child's parallel call hung");
  }
  cr_assert_eq(done, child);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child got different noise");
  free(a);
  free(b);
}

/* ---- bits for every thread count ------------------------------------------------------------
   Inputs large enough for 16 tasks at the grains of src/dispatch/split.h, so that every count below
   splits; each result is compared with the one-thread result of the same ISA. */

static const size_t counts[] = {2, 3, 7, 16};

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Values whose sums depend on their order (magnitudes 2^-10 to 2^10), with ties (few distinct
   mantissas), signed zeros, and with `nans` a NaN now and then (not for sums, where a NaN
   would hide the order of its column). */
static float *make_input(size_t n, uint64_t seed, int nans) {
  float *x = malloc(n * sizeof *x);
  cr_assert_not_null(x);
  for (size_t i = 0; i < n; i++) {
    const uint64_t r = mix(seed + i);
    if (nans && r % 4099 == 0) x[i] = NAN;
    else if (r % 997 == 0) x[i] = (r & 1 << 20) ? -0.0f : 0.0f;
    else x[i] = ldexpf((float)(r % 64) / 64.0f + 1.0f, (int)(r >> 32) % 21 - 10) *
                ((r >> 40 & 1) ? -1.0f : 1.0f);
  }
  return x;
}

/* Runs `compute` (which fills out) on every supported ISA, once with one thread and once per
   count, and compares bytes. */
typedef void (*compute_fn)(const void *ctx, void *out);

static void expect_same_bits(const char *what, compute_fn compute, const void *ctx, size_t bytes) {
  void *want = malloc(bytes), *got = malloc(bytes);
  cr_assert(want && got);
  int ran = 0;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) {
      cr_log_info("%s: %s is not supported here, skipped", what, pt_isa_name((pt_isa)isa));
      continue;
    }
    ran++;
    cr_assert_eq(pt_set_num_threads(1), PT_OK);
    compute(ctx, want);
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
      cr_assert_eq(pt_set_num_threads(counts[c]), PT_OK);
      memset(got, 0xA5, bytes);
      compute(ctx, got);
      cr_assert(memcmp(want, got, bytes) == 0, "%s on %s: %zu threads differ from one", what,
                pt_isa_name((pt_isa)isa), counts[c]);
    }
  }
  cr_assert_gt(ran, 0);
  free(want);
  free(got);
}

typedef struct rows_case {
  const float *x, *w;
  size_t rows, d, ld;
  int op; /* 0 argmax, 1 argsort, 2 ranks, 3 weighted sum */
} rows_case;

static void compute_rows(const void *p, void *out) {
  const rows_case *c = p;
  pt_status s = PT_EINVAL;
  switch (c->op) {
    case 0: s = pt_argmax_rows(c->x, c->rows, c->d, c->ld, out); break;
    case 1: s = pt_argsort_rows(c->x, c->rows, c->d, c->ld, out, c->d); break;
    case 2: s = pt_rank_rows(c->x, c->rows, c->d, c->ld, out, c->d); break;
    case 3: s = pt_weighted_sum_rows(c->x, c->rows, c->d, c->ld, c->w, out); break;
  }
  cr_assert_eq(s, PT_OK);
}

/* Rows of d elements (row stride ld), enough for 16 tasks at the op's grain. */
static void check_rows(int op, size_t d, size_t ld, int weights) {
  static const char *names[] = {"argmax", "argsort", "ranks", "weighted sum"};
  const size_t grain = op == 0 ? PT_GRAIN_ARGMAX : op == 3 ? PT_GRAIN_WEIGHTED_SUM : PT_GRAIN_SORT;
  const size_t rows = 16 * grain / (op == 1 || op == 2 ? pt_sort_units(1, d) : d) + 37;
  rows_case c = {make_input(rows * ld, d * 1000 + ld, op != 3), NULL, rows, d, ld, op};
  float *w = weights ? make_input(rows, 99, 0) : NULL;
  c.w = w;
  const size_t bytes = op == 0 ? rows * sizeof(int32_t)
                       : op == 3 ? d * sizeof(float)
                                 : rows * d * sizeof(int32_t);
  char what[64];
  snprintf(what, sizeof what, "%s %zu x %zu (ld %zu)", names[op], rows, d, ld);
  expect_same_bits(what, compute_rows, &c, bytes);
  free((void *)c.x);
  free(w);
}

Test(threads, argmax_bits_for_every_count, .timeout = 600) {
  check_rows(0, 5, 5, 0);
  check_rows(0, 1000, 1003, 0);
}

Test(threads, argsort_bits_for_every_count, .timeout = 600) {
  check_rows(1, 5, 5, 0);
  check_rows(1, 100, 100, 0);
  check_rows(1, 1000, 1001, 0); /* work space allocated, a part per task */
}

Test(threads, rank_bits_for_every_count, .timeout = 600) {
  check_rows(2, 8, 8, 0);
  check_rows(2, 300, 300, 0);
}

/* Blocks of columns in both orders: narrow (at most PT_WSUM_NARROW_MAX columns) and wide, the
   latter with a width no multiple of 16 and as many columns as 16 blocks need. */
Test(threads, weighted_sum_bits_for_every_count, .timeout = 600) {
  check_rows(3, PT_WSUM_NARROW_MAX, PT_WSUM_NARROW_MAX, 1);
  check_rows(3, 40, 41, 0);
  check_rows(3, 16 * (PT_WSUM_NARROW_MAX + 16) + 5, 16 * (PT_WSUM_NARROW_MAX + 16) + 9, 1);
  check_rows(3, 1000, 1000, 0);
}

typedef struct noise_case {
  pt_noise kind;
  uint64_t offset;
  size_t n;
} noise_case;

static void compute_noise(const void *p, void *out) {
  const noise_case *c = p;
  cr_assert_eq(pt_noise_fill(c->kind, pt_key_make(11), c->offset, out, c->n), PT_OK);
}

Test(threads, noise_bits_for_every_count, .timeout = 600) {
  const size_t n = 16 * PT_GRAIN_UNIFORM + 29; /* the largest of the three grains */
  const uint64_t offsets[] = {0, 12345, UINT64_MAX - n + 1}; /* aligned, not, the last words */
  const pt_noise kinds[] = {PT_NOISE_UNIFORM, PT_NOISE_GUMBEL, PT_NOISE_NORMAL};
  for (size_t k = 0; k < 3; k++)
    for (size_t o = 0; o < 3; o++) {
      const noise_case c = {kinds[k], offsets[o], n};
      char what[64];
      snprintf(what, sizeof what, "noise %d at %llu", (int)kinds[k],
               (unsigned long long)offsets[o]);
      expect_same_bits(what, compute_noise, &c, n * sizeof(float));
    }
}

/* ---- several user threads at once, while the thread count and the ISA keep changing --------
   Every ISA gives the same bits, so each result must be the one-thread answer whatever the
   other threads do. */

enum { USERS = 4, ROUNDS = 12 };

typedef struct shared_work {
  const float *x, *w;
  size_t argmax_rows, sort_rows, sort_d, sum_rows, sum_d, noise_n;
  int32_t *want_idx, *want_rank, *want_perm;
  float *want_sum, *want_noise;
  atomic_int users_left;
} shared_work;

static void *user_thread(void *p) {
  shared_work *s = p;
  const char *failure = NULL;
  int32_t *idx = malloc(s->argmax_rows * sizeof *idx);
  int32_t *ranks = malloc(s->sort_rows * s->sort_d * sizeof *ranks);
  float *sum = malloc(s->sum_d * sizeof *sum), *noise = malloc(s->noise_n * sizeof *noise);
  if (!idx || !ranks || !sum || !noise) failure = "out of memory";
  for (int r = 0; r < ROUNDS && !failure; r++) {
    if (pt_argmax_rows(s->x, s->argmax_rows, 64, 64, idx) != PT_OK ||
        memcmp(idx, s->want_idx, s->argmax_rows * sizeof *idx) != 0)
      failure = "argmax";
    else if (pt_rank_rows(s->x, s->sort_rows, s->sort_d, s->sort_d, ranks, s->sort_d) != PT_OK ||
             memcmp(ranks, s->want_rank, s->sort_rows * s->sort_d * sizeof *ranks) != 0)
      failure = "ranks";
    else if (pt_argsort_rows(s->x, s->sort_rows, s->sort_d, s->sort_d, ranks, s->sort_d) !=
                 PT_OK ||
             memcmp(ranks, s->want_perm, s->sort_rows * s->sort_d * sizeof *ranks) != 0)
      failure = "argsort";
    else if (pt_weighted_sum_rows(s->x, s->sum_rows, s->sum_d, s->sum_d, s->w, sum) != PT_OK ||
             memcmp(sum, s->want_sum, s->sum_d * sizeof *sum) != 0)
      failure = "weighted sum";
    else if (pt_noise_fill(PT_NOISE_GUMBEL, pt_key_make(r % 3), 0, noise, s->noise_n) != PT_OK ||
             memcmp(noise, s->want_noise + (size_t)(r % 3) * s->noise_n,
                    s->noise_n * sizeof *noise) != 0)
      failure = "noise";
  }
  free(idx);
  free(ranks);
  free(sum);
  free(noise);
  atomic_fetch_sub(&s->users_left, 1);
  return (void *)failure;
}

Test(threads, concurrent_users_while_count_and_isa_change, .timeout = 600) {
  shared_work s = {.argmax_rows = 4 * PT_GRAIN_ARGMAX / 64, .sort_d = 300,
                   .sum_rows = 4 * PT_GRAIN_WEIGHTED_SUM / 600, .sum_d = 600,
                   .noise_n = 4 * PT_GRAIN_GUMBEL + 3};
  s.sort_rows = 4 * PT_GRAIN_SORT / pt_sort_units(1, s.sort_d);
  /* one matrix holds the inputs of all; NaN-free for the sums */
  size_t n = s.argmax_rows * 64;
  if (n < s.sort_rows * s.sort_d) n = s.sort_rows * s.sort_d;
  if (n < s.sum_rows * s.sum_d) n = s.sum_rows * s.sum_d;
  s.x = make_input(n, 5, 0);
  s.w = make_input(s.sum_rows, 6, 0);
  s.want_idx = malloc(s.argmax_rows * sizeof *s.want_idx);
  s.want_rank = malloc(s.sort_rows * s.sort_d * sizeof *s.want_rank);
  s.want_perm = malloc(s.sort_rows * s.sort_d * sizeof *s.want_perm);
  s.want_sum = malloc(s.sum_d * sizeof *s.want_sum);
  s.want_noise = malloc(3 * s.noise_n * sizeof *s.want_noise);
  cr_assert(s.want_idx && s.want_rank && s.want_perm && s.want_sum && s.want_noise);
  cr_assert_eq(pt_set_num_threads(1), PT_OK);
  cr_assert_eq(pt_argmax_rows(s.x, s.argmax_rows, 64, 64, s.want_idx), PT_OK);
  cr_assert_eq(pt_rank_rows(s.x, s.sort_rows, s.sort_d, s.sort_d, s.want_rank, s.sort_d), PT_OK);
  cr_assert_eq(pt_argsort_rows(s.x, s.sort_rows, s.sort_d, s.sort_d, s.want_perm, s.sort_d),
               PT_OK);
  cr_assert_eq(pt_weighted_sum_rows(s.x, s.sum_rows, s.sum_d, s.sum_d, s.w, s.want_sum), PT_OK);
  for (int k = 0; k < 3; k++)
    cr_assert_eq(pt_noise_fill(PT_NOISE_GUMBEL, pt_key_make((uint64_t)k), 0,
                               s.want_noise + (size_t)k * s.noise_n, s.noise_n),
                 PT_OK);
  atomic_store(&s.users_left, USERS);
  pthread_t users[USERS];
  for (int u = 0; u < USERS; u++) cr_assert_eq(pthread_create(&users[u], NULL, user_thread, &s), 0);
  for (size_t i = 0; atomic_load(&s.users_left) > 0; i++) {
    cr_assert_eq(pt_set_num_threads(1 + i % 5), PT_OK);
    (void)pt_isa_select((pt_isa)(i % 4)); /* the unsupported ones are refused */
    nanosleep(&(struct timespec){0, 200000}, NULL);
  }
  for (int u = 0; u < USERS; u++) {
    void *failure;
    cr_assert_eq(pthread_join(users[u], &failure), 0);
    cr_assert_null(failure, "a user thread got different %s results", (const char *)failure);
  }
  free((void *)s.x);
  free((void *)s.w);
  free(s.want_idx);
  free(s.want_rank);
  free(s.want_perm);
  free(s.want_sum);
  free(s.want_noise);
}

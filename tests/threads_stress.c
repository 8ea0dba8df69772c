/* SPDX-License-Identifier: MIT */
/* threads_stress: computing calls from several user threads at once while another thread keeps
   changing the thread count (pt_set_num_threads) and the ISA (pt_isa_select); every result must
   be bitwise the one-thread answer.  No Criterion: .ci/run runs this program under
   ThreadSanitizer, which is after data races in the pool and the split kernels, and Criterion's
   runner (its own processes and threads) is not part of what it should look at.

   threads_stress [--isa NAME] [rounds]
   prints "N passed, N failed"; exit status 1 if any failed.  --isa: the ISA changes only to
   this one (ThreadSanitizer does not see vector accesses wider than 16 bytes, so the run on
   scalar kernels is the one where it sees every access the kernels make).

   The inputs are large enough for several tasks at the grains of src/dispatch/split.h, and the
   perturbed functions for several tasks of sample groups (both generic paths too). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */
#include "dispatch/split.h"

enum { USERS = 4 };

/* The calls checked, each against its answer computed with one thread. */
typedef enum op {
  ARGMAX, ARGSORT, RANKS, WEIGHTED_SUM, GUMBEL, NORMAL,
  ARGMAX_EVAL, ARGMAX_VJP, RANKING_EVAL, RANKING_VJP, BOX_SAFE_VJP, BOX_ORDERED_VJP,
  ARGMAX_VJP_BATCH, ARGMAX_SHARDS, OPS
} op;

static const char *const op_names[OPS] = {
    "argmax_rows", "argsort_rows", "rank_rows", "weighted_sum_rows", "noise gumbel",
    "noise normal", "perturbed argmax eval", "perturbed argmax vjp", "perturbed ranking eval",
    "perturbed ranking vjp", "perturbed thread-safe box vjp", "perturbed ordinary box vjp",
    "perturbed argmax vjp_batch", "perturbed argmax vjp in merged shards"};

#define ARGMAX_D 64
#define SORT_D 300
#define SUM_D 600
#define FN_D 40
static const size_t argmax_rows = 4 * PT_GRAIN_ARGMAX / ARGMAX_D,
                    sum_rows = 4 * PT_GRAIN_WEIGHTED_SUM / SUM_D,
                    noise_n = 4 * PT_GRAIN_UNIFORM + 7; /* the largest of the noise grains */
static size_t sort_rows; /* 4 * PT_GRAIN_SORT units (src/dispatch/split.h) */

#define BATCH 6
static float *x, *w, *fn_x, *fn_y_bar, *batch_x, *batch_y_bar;
static pt_fn *perturbed_argmax, *perturbed_ranking, *perturbed_box_safe, *perturbed_box_ordered;

/* A black box for the generic path: y_j = x_j * x_(j+1 mod d); its samples run on library
   threads when made thread-safe, else on the calling thread while the pool does the rest. */
static int box(void *user, size_t batch, const float *in, float *out) {
  (void)user;
  for (size_t b = 0; b < batch; b++)
    for (size_t j = 0; j < FN_D; j++) out[b * FN_D + j] = in[b * FN_D + j] * in[b * FN_D + (j + 1) % FN_D];
  return 0;
}

/* The argmax VJP as three shards merged out of order. */
static int shards(const pt_key key, float *out) {
  const uint64_t g = pt_fn_sample_group(perturbed_argmax);
  pt_partial *a = NULL, *b = NULL, *c = NULL;
  int bad = pt_fn_partial(perturbed_argmax, PT_OP_VJP, key, fn_x, fn_y_bar, 0, 3 * g, &a) != PT_OK ||
            pt_fn_partial(perturbed_argmax, PT_OP_VJP, key, fn_x, fn_y_bar, 3 * g, 7 * g, &b) != PT_OK ||
            pt_fn_partial(perturbed_argmax, PT_OP_VJP, key, fn_x, fn_y_bar, 7 * g, 2000, &c) != PT_OK ||
            pt_partial_merge(c, a) != PT_OK || pt_partial_merge(c, b) != PT_OK ||
            pt_partial_finish(c, out) != PT_OK;
  pt_partial_free(a);
  pt_partial_free(b);
  pt_partial_free(c);
  return bad;
}
static void *want[OPS];
static size_t bytes[OPS];
static atomic_int users_left;

/* Runs one call into out; 0 on success. */
static int run(op o, void *out) {
  const pt_key key = pt_key_make(17);
  switch (o) {
    case ARGMAX: return pt_argmax_rows(x, argmax_rows, ARGMAX_D, ARGMAX_D, out) != PT_OK;
    case ARGSORT: return pt_argsort_rows(x, sort_rows, SORT_D, SORT_D, out, SORT_D) != PT_OK;
    case RANKS: return pt_rank_rows(x, sort_rows, SORT_D, SORT_D, out, SORT_D) != PT_OK;
    case WEIGHTED_SUM: return pt_weighted_sum_rows(x, sum_rows, SUM_D, SUM_D, w, out) != PT_OK;
    case GUMBEL: return pt_noise_fill(PT_NOISE_GUMBEL, key, 0, out, noise_n) != PT_OK;
    case NORMAL: return pt_noise_fill(PT_NOISE_NORMAL, key, 1001, out, noise_n) != PT_OK;
    case ARGMAX_EVAL: return pt_fn_eval(perturbed_argmax, key, fn_x, out) != PT_OK;
    case ARGMAX_VJP: return pt_fn_vjp(perturbed_argmax, key, fn_x, fn_y_bar, out) != PT_OK;
    case RANKING_EVAL: return pt_fn_eval(perturbed_ranking, key, fn_x, out) != PT_OK;
    case RANKING_VJP: return pt_fn_vjp(perturbed_ranking, key, fn_x, fn_y_bar, out) != PT_OK;
    case BOX_SAFE_VJP: return pt_fn_vjp(perturbed_box_safe, key, fn_x, fn_y_bar, out) != PT_OK;
    case BOX_ORDERED_VJP:
      return pt_fn_vjp(perturbed_box_ordered, key, fn_x, fn_y_bar, out) != PT_OK;
    case ARGMAX_VJP_BATCH:
      return pt_fn_vjp_batch(perturbed_argmax, key, BATCH, batch_x, batch_y_bar, out) != PT_OK;
    case ARGMAX_SHARDS: return shards(key, out);
    case OPS: break;
  }
  return 1;
}

typedef struct user {
  int id, rounds;
  long passed, failed;
} user;

static void *user_main(void *p) {
  user *u = p;
  void *got[OPS];
  for (int o = 0; o < OPS; o++) got[o] = malloc(bytes[o]);
  for (int r = 0; r < u->rounds; r++)
    for (int k = 0; k < OPS; k++) {
      const op o = (op)((k + u->id * 3) % OPS); /* the users overlap on different calls */
      if (!got[o] || run(o, got[o]) != 0 || memcmp(got[o], want[o], bytes[o]) != 0) {
        printf("threads_stress: %s differs from the one-thread answer (user %d, round %d)\n",
               op_names[o], u->id, r);
        u->failed++;
      } else {
        u->passed++;
      }
    }
  for (int o = 0; o < OPS; o++) free(got[o]);
  atomic_fetch_sub(&users_left, 1);
  return NULL;
}

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Values with ties (few distinct mantissas) and magnitudes from 2^-10 to 2^10, so that sums
   depend on their order. */
static float *make_input(size_t n, uint64_t seed) {
  float *v = malloc(n * sizeof *v);
  if (v)
    for (size_t i = 0; i < n; i++) {
      const uint64_t r = mix(seed + i);
      v[i] = ldexpf((float)(r % 64) / 64.0f + 1.0f, (int)(r >> 32) % 21 - 10) *
             ((r >> 40 & 1) ? -1.0f : 1.0f);
    }
  return v;
}

static int setup(void) {
  sort_rows = 4 * PT_GRAIN_SORT / pt_sort_units(1, SORT_D);
  size_t n = argmax_rows * ARGMAX_D;
  if (n < sort_rows * SORT_D) n = sort_rows * SORT_D;
  if (n < sum_rows * SUM_D) n = sum_rows * SUM_D;
  x = make_input(n, 1);
  w = make_input(sum_rows, 2);
  fn_x = make_input(FN_D, 3);
  fn_y_bar = make_input(FN_D, 4);
  batch_x = make_input(BATCH * FN_D, 5);
  batch_y_bar = make_input(BATCH * FN_D, 6);
  pt_fn *argmax = NULL, *ranking = NULL, *safe = NULL, *ordered = NULL;
  if (!x || !w || !fn_x || !fn_y_bar || !batch_x || !batch_y_bar ||
      pt_fn_argmax_one_hot(FN_D, &argmax) != PT_OK || pt_fn_ranking(FN_D, &ranking) != PT_OK ||
      pt_fn_from_callback_ex(FN_D, FN_D, box, NULL, NULL, NULL, PT_CALLBACK_THREAD_SAFE, &safe) !=
          PT_OK ||
      pt_fn_from_callback_ex(FN_D, FN_D, box, NULL, NULL, NULL, 0, &ordered) != PT_OK ||
      pt_make_perturbed_fun(argmax, 2000, 0.5f, PT_NOISE_GUMBEL, 1, &perturbed_argmax) != PT_OK ||
      pt_make_perturbed_fun(ranking, 500, 0.5f, PT_NOISE_NORMAL, 1, &perturbed_ranking) != PT_OK ||
      pt_make_perturbed_fun(safe, 700, 0.5f, PT_NOISE_GUMBEL, 1, &perturbed_box_safe) != PT_OK ||
      pt_make_perturbed_fun(ordered, 700, 0.5f, PT_NOISE_NORMAL, 1, &perturbed_box_ordered) !=
          PT_OK)
    return -1;
  pt_fn_free(argmax); /* the perturbed functions keep what they need */
  pt_fn_free(ranking);
  pt_fn_free(safe);
  pt_fn_free(ordered);
  const size_t out[OPS] = {argmax_rows * sizeof(int32_t), sort_rows * SORT_D * sizeof(int32_t),
                           sort_rows * SORT_D * sizeof(int32_t), SUM_D * sizeof(float),
                           noise_n * sizeof(float), noise_n * sizeof(float),
                           FN_D * sizeof(float), FN_D * sizeof(float), FN_D * sizeof(float),
                           FN_D * sizeof(float), FN_D * sizeof(float), FN_D * sizeof(float),
                           BATCH * FN_D * sizeof(float), FN_D * sizeof(float)};
  if (pt_set_num_threads(1) != PT_OK) return -1;
  for (int o = 0; o < OPS; o++) {
    bytes[o] = out[o];
    if (!(want[o] = malloc(bytes[o])) || run((op)o, want[o]) != 0) return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *only = NULL;
  int a = 1;
  if (a + 1 < argc && !strcmp(argv[a], "--isa")) {
    only = argv[a + 1];
    a += 2;
  }
  const int rounds = a < argc ? atoi(argv[a]) : 4;
  pt_isa supported[PT_ISA_COUNT];
  int nsupported = 0;
  for (int isa = 0; isa < PT_ISA_COUNT; isa++)
    if (pt_isa_supported((pt_isa)isa) && (!only || !strcmp(only, pt_isa_name((pt_isa)isa))))
      supported[nsupported++] = (pt_isa)isa;
  if (rounds < 1 || nsupported == 0 || a + 1 < argc || setup() != 0) {
    fprintf(stderr, "usage: threads_stress [--isa NAME] [rounds >= 1] (a supported ISA; or "
                    "the setup failed)\n");
    return 2;
  }

  user users[USERS];
  pthread_t threads[USERS];
  atomic_store(&users_left, USERS);
  for (int u = 0; u < USERS; u++) {
    users[u] = (user){u, rounds, 0, 0};
    if (pthread_create(&threads[u], NULL, user_main, &users[u]) != 0) {
      fprintf(stderr, "threads_stress: cannot create a thread\n");
      return 2;
    }
  }
  long changes = 0, failed = 0;
  /* thread counts from 1 to 4, so that the pool is re-made while the users compute */
  for (; atomic_load(&users_left) > 0; changes++) {
    if (pt_set_num_threads(1 + (size_t)changes % 4) != PT_OK ||
        pt_isa_select(supported[changes % nsupported]) != PT_OK) {
      printf("threads_stress: pt_set_num_threads or pt_isa_select failed\n");
      failed++;
    }
    nanosleep(&(struct timespec){0, 300000}, NULL);
  }
  long passed = 0;
  for (int u = 0; u < USERS; u++) {
    pthread_join(threads[u], NULL);
    passed += users[u].passed;
    failed += users[u].failed;
  }
  printf("threads_stress: %d users x %d rounds x %d calls, %ld changes of the thread count "
         "and ISA\n%ld passed, %ld failed\n",
         USERS, rounds, OPS, changes, passed, failed);
  for (int o = 0; o < OPS; o++) free(want[o]);
  free(x);
  free(w);
  free(fn_x);
  free(fn_y_bar);
  free(batch_x);
  free(batch_y_bar);
  pt_fn_free(perturbed_box_safe);
  pt_fn_free(perturbed_box_ordered);
  pt_fn_free(perturbed_argmax);
  pt_fn_free(perturbed_ranking);
  return failed != 0;
}

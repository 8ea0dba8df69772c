/* SPDX-License-Identifier: MIT */
/* perturb-bench: times every kernel family (gen/kernel_table.py) on every ISA this CPU supports.

   perturb-bench [--d N,N,...] [--rows N,N,...] [--op NAME] [--isa NAME] [--repeats N]
                 [--threads N] [--limits] [--json] [--out FILE]
   perturb-bench --thresholds [--op THRESHOLD] [--isa NAME] [--repeats N] [--json]

   --d and --rows are paired by position (a single value pairs with all of the other list).
   Each (op, ISA, size) runs enough iterations to last at least 20 ms, `repeats` times; the
   median is reported as ns per element and GB/s of input read, as a table or (--json) as JSON
   lines that bench/numpy_peer.py reads; --out FILE writes the JSON lines there as well.
   Kernels bound by reading their input also get a row "read": a plain vector sum of the same
   bytes, the rate of the cache level they live in.
   --limits times, beside each kernel that has one, the work it cannot avoid, by the same ISA's
   limit kernels (src/kernels/limits.c.j2): its Philox words, logarithms and Box-Muller pairs,
   or the read of its input; and prints the kernel's time over that limit's.
   --thresholds times the fused argmax and the row kernels on either side of each of their
   thresholds of speed (pt_fused_thresholds, pt_row_thresholds: gen/kernel_table.py), each path
   forced, on one thread, and prints the crossover beside the table's value (--op and --isa
   pick one threshold, one ISA).
   The row kernels and the noise streams run as the public calls run them, split between up to
   --threads threads (pt_set_num_threads; default: the library's default) when the work is
   large enough (src/dispatch/split.h); the other families run on one thread. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_table.h"
#include "kernels/sort.h"
#include "dispatch/split.h"
#include "fn/fn_fused.h"
#include "fn/fn_fused_bounds.h"
#include "cli.h"
#include "timing.h"

/* A prepared run of one kernel family at one size. */
typedef struct bench_run {
  size_t elements, bytes; /* work per call: elements processed, bytes of input read */
  void *state;
  void (*call)(const pt_kernel_table *k, void *state);
  void (*release)(void *state);
  /* optional, for kernels bound by reading their input: reads the same bytes with nothing
     else to do, timed as the row "read" (the rate of the cache level the input lives in) */
  void (*read_baseline)(void *state);
  /* or, for kernels that read one array: that array, of bytes / sizeof(float) floats, which
     the row "read" sums with the widest reader */
  const float *input;
} bench_run;

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The read baseline: a plain sum of n floats with the widest vectors the CPU runs and eight
   independent accumulators, so that nothing but the loads limits it.  The loops over the
   accumulators are unrolled by force: left to -O2, GCC keeps the array of them on the stack,
   a store and a reload per vector, and the baseline read at a third of L1's rate. */
#define READ_EACH_ACCUMULATOR _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
__attribute__((target("avx512f"))) static float read_avx512(const float *p, size_t n) {
  __m512 a[8];
  for (int k = 0; k < 8; k++) a[k] = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 128 <= n; i += 128)
    READ_EACH_ACCUMULATOR a[k] = _mm512_add_ps(a[k], _mm512_loadu_ps(p + i + 16 * k));
  for (int k = 1; k < 8; k++) a[0] = _mm512_add_ps(a[0], a[k]);
  float s = _mm512_reduce_add_ps(a[0]);
  for (; i < n; i++) s += p[i];
  return s;
}
__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n) {
  __m256 a[8];
  for (int k = 0; k < 8; k++) a[k] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    READ_EACH_ACCUMULATOR a[k] = _mm256_add_ps(a[k], _mm256_loadu_ps(p + i + 8 * k));
  float lanes[8], s = 0;
  for (int k = 1; k < 8; k++) a[0] = _mm256_add_ps(a[0], a[k]);
  _mm256_storeu_ps(lanes, a[0]);
  for (int k = 0; k < 8; k++) s += lanes[k];
  for (; i < n; i++) s += p[i];
  return s;
}
#elif defined(__aarch64__)
#include <arm_neon.h>
static float read_neon(const float *p, size_t n) {
  float32x4_t a[8];
  for (int k = 0; k < 8; k++) a[k] = vdupq_n_f32(0);
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    READ_EACH_ACCUMULATOR a[k] = vaddq_f32(a[k], vld1q_f32(p + i + 4 * k));
  for (int k = 1; k < 8; k++) a[0] = vaddq_f32(a[0], a[k]);
  float s = vaddvq_f32(a[0]);
  for (; i < n; i++) s += p[i];
  return s;
}
#endif

static float read_plain(const float *p, size_t n) {
  float s[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    READ_EACH_ACCUMULATOR s[k] += p[i + k];
  for (; i < n; i++) s[0] += p[i];
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

typedef float (*read_fn)(const float *p, size_t n);

/* The widest reader the CPU runs, chosen at setup (asking for the ISA runs CPUID, which costs
   microseconds in a virtual machine). */
static read_fn choose_reader(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (pt_isa_supported(PT_ISA_AVX512)) return read_avx512;
  if (pt_isa_supported(PT_ISA_AVX2)) return read_avx2;
#elif defined(__aarch64__)
  return read_neon;
#endif
  return read_plain;
}

static volatile float read_sink;

static float *random_floats(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  if (x)
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_next(&seed) >> 40) * 0x1p-24f - 0.5f;
  return x;
}

/* ---- one setup per kernel family; PT_FOR_EACH_OP below makes a missing one a compile error */

typedef struct argmax_state {
  const float *x;
  size_t rows, d;
  int32_t *idx;
} argmax_state;

static void argmax_call(const pt_kernel_table *k, void *p) {
  argmax_state *s = p;
  pt_split_argmax_rows(k, s->x, s->rows, s->d, s->d, s->idx);
}

static void argmax_release(void *p) {
  argmax_state *s = p;
  free((void *)s->x);
  free(s->idx);
  free(s);
}

static int setup_argmax_rows(bench_run *run, size_t rows, size_t d) {
  argmax_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (argmax_state){random_floats(rows * d, 42), rows, d, malloc(rows * sizeof(int32_t))};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, argmax_call, argmax_release, NULL,
                     s->x};
  if (!s->x || !s->idx) {
    argmax_release(s);
    return -1;
  }
  return 0;
}

/* The noise kernels: n = rows * d words of one key's stream; "bytes" are those written. */
typedef struct noise_state {
  pt_noise kind;
  float *out;
  size_t n;
} noise_state;

static void noise_call(const pt_kernel_table *k, void *p) {
  const noise_state *s = p;
  const pt_key key = {0x5eed, 1};
  pt_split_noise(k, s->kind, key, 0, s->out, s->n);
}

static void noise_release(void *p) {
  noise_state *s = p;
  free(s->out);
  free(s);
}

static int setup_noise(bench_run *run, pt_noise kind, size_t n) {
  noise_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (noise_state){kind, malloc(n * sizeof(float)), n};
  *run = (bench_run){n, n * sizeof(float), s, noise_call, noise_release, NULL, NULL};
  if (!s->out) {
    noise_release(s);
    return -1;
  }
  return 0;
}

static int setup_noise_uniform(bench_run *run, size_t rows, size_t d) {
  return setup_noise(run, PT_NOISE_UNIFORM, rows * d);
}

static int setup_noise_gumbel(bench_run *run, size_t rows, size_t d) {
  return setup_noise(run, PT_NOISE_GUMBEL, rows * d);
}

static int setup_noise_normal(bench_run *run, size_t rows, size_t d) {
  return setup_noise(run, PT_NOISE_NORMAL, rows * d);
}

/* The antithetic pair kernels: rows samples (rows/2 pairs, rows rounded up to even) of d
   inputs; "bytes" are those written, half of them drawn from the stream. */
typedef struct pairs_state {
  int gumbel;
  float *out;
  size_t pairs, d;
} pairs_state;

static void pairs_call(const pt_kernel_table *k, void *p) {
  const pairs_state *s = p;
  const pt_key key = {0x5eed, 1};
  (s->gumbel ? k->noise_pairs_gumbel : k->noise_pairs_normal)(key, 0, s->pairs, s->d, s->out);
}

static void pairs_release(void *p) {
  pairs_state *s = p;
  free(s->out);
  free(s);
}

static int setup_pairs(bench_run *run, int gumbel, size_t rows, size_t d) {
  pairs_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  const size_t pairs = (rows + 1) / 2;
  *s = (pairs_state){gumbel, malloc(2 * pairs * d * sizeof(float)), pairs, d};
  *run = (bench_run){2 * pairs * d, 2 * pairs * d * sizeof(float), s, pairs_call, pairs_release,
                     NULL, NULL};
  if (!s->out) {
    pairs_release(s);
    return -1;
  }
  return 0;
}

static int setup_noise_pairs_gumbel(bench_run *run, size_t rows, size_t d) {
  return setup_pairs(run, 1, rows, d);
}

static int setup_noise_pairs_normal(bench_run *run, size_t rows, size_t d) {
  return setup_pairs(run, 0, rows, d);
}

/* argsort_rows and rank_rows: rows x d random floats, the outputs packed (ld_out = d). */
typedef struct sort_state {
  const float *x;
  size_t rows, d;
  int32_t *out;
  int ranks;
} sort_state;

static void sort_call(const pt_kernel_table *k, void *p) {
  sort_state *s = p;
  if (pt_split_sort_rows(k, s->ranks, s->x, s->rows, s->d, s->d, s->out, s->d) != PT_OK) {
    fprintf(stderr, "perturb-bench: no memory for the sorting work space\n");
    exit(1);
  }
}

static void sort_release(void *p) {
  sort_state *s = p;
  free((void *)s->x);
  free(s->out);
  free(s);
}

static int setup_sort(bench_run *run, size_t rows, size_t d, int ranks) {
  sort_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (sort_state){random_floats(rows * d, 42), rows, d, malloc(rows * d * sizeof(int32_t)),
                    ranks};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, sort_call, sort_release, NULL, NULL};
  if (!s->x || !s->out) {
    sort_release(s);
    return -1;
  }
  return 0;
}

static int setup_argsort_rows(bench_run *run, size_t rows, size_t d) {
  return setup_sort(run, rows, d, 0);
}

static int setup_rank_rows(bench_run *run, size_t rows, size_t d) {
  return setup_sort(run, rows, d, 1);
}

/* weighted_sum_rows: rows x d random floats and random weights; bytes counts x and w. */
typedef struct weighted_sum_state {
  const float *x, *w;
  size_t rows, d;
  float *out;
  read_fn read;
} weighted_sum_state;

static void weighted_sum_call(const pt_kernel_table *k, void *p) {
  weighted_sum_state *s = p;
  pt_split_weighted_sum_rows(k, s->x, s->rows, s->d, s->d, s->w, s->out);
}

static void weighted_sum_read(void *p) {
  weighted_sum_state *s = p;
  read_sink = s->read(s->x, s->rows * s->d) + s->read(s->w, s->rows);
}

static void weighted_sum_release(void *p) {
  weighted_sum_state *s = p;
  free((void *)s->x);
  free((void *)s->w);
  free(s->out);
  free(s);
}

static int setup_weighted_sum_rows(bench_run *run, size_t rows, size_t d) {
  weighted_sum_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (weighted_sum_state){random_floats(rows * d, 42), random_floats(rows, 7), rows, d,
                            malloc(d * sizeof(float)), choose_reader()};
  *run = (bench_run){rows * d, (rows * d + rows) * sizeof(float), s, weighted_sum_call,
                     weighted_sum_release, weighted_sum_read, NULL};
  if (!s->x || !s->w || !s->out) {
    weighted_sum_release(s);
    return -1;
  }
  return 0;
}

/* perturb_tile: rows samples of d inputs, both outputs (the generic perturbed path's work). */
typedef struct tile_state {
  float *z, *x, *xt, *e;
  size_t rows, d;
  int multiplicative;
} tile_state;

static void perturb_tile_call(const pt_kernel_table *k, void *p) {
  tile_state *s = p;
  (s->multiplicative ? k->perturb_tile_multiplicative : k->perturb_tile)(s->z, s->rows, s->d, s->x,
                                                                         0.5f, s->xt, s->e);
}

static void tile_release(void *p) {
  tile_state *s = p;
  free(s->z);
  free(s->x);
  free(s->xt);
  free(s->e);
  free(s);
}

static int setup_tile(bench_run *run, size_t rows, size_t d, int multiplicative) {
  tile_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (tile_state){random_floats(rows * d, 7), random_floats(d, 8),
                    malloc(rows * d * sizeof(float)), malloc(rows * d * sizeof(float)), rows, d,
                    multiplicative};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, perturb_tile_call, tile_release, NULL,
                     NULL};
  if (!s->z || !s->x || !s->xt || !s->e) {
    tile_release(s);
    return -1;
  }
  return 0;
}

static int setup_perturb_tile(bench_run *run, size_t rows, size_t d) {
  return setup_tile(run, rows, d, 0);
}

/* perturb_tile_multiplicative: the same, x times exp(sigma z - sigma^2/2) and the factors */
static int setup_perturb_tile_multiplicative(bench_run *run, size_t rows, size_t d) {
  return setup_tile(run, rows, d, 1);
}

/* The fused kernels run `rows` samples as the estimator runs them (src/fn/fn_fused.c's
   pt_fused_tile_rows): in tiles of PT_FUSED_TILE_FLOATS, each tile's noise generated into one
   buffer and used while it is in L1 or L2.  One tile of all the rows would time a round trip
   of the noise through memory instead, which no perturbed function makes. */
static size_t fused_tile(size_t rows, size_t d) {
  const size_t tile = d < PT_FUSED_TILE_FLOATS ? PT_FUSED_TILE_FLOATS / d : 1;
  return tile < rows ? tile : rows;
}

/* tile rows, or those left of `rows` from r */
static size_t tile_at(size_t r, size_t rows, size_t tile) {
  return rows - r < tile ? rows - r : tile;
}

/* fused_argmax_<kind>: `rows` samples of d inputs (one segment) in tiles, values only: the
   noise, the keys and the winners.  "bytes" are the noise words drawn, 4 per element. */
typedef struct fused_state {
  pt_fused_argmax_job job;
  size_t offsets[2];
  float *a, *noise;
  int32_t *winner;
  uint64_t *count;
  size_t rows, tile;
  uint64_t m0; /* each call the next rows samples: new noise, as the estimator's tiles have */
  int gumbel;
} fused_state;

static void fused_call(const pt_kernel_table *k, void *p) {
  fused_state *s = p;
  s->job.thresholds = k->fused; /* the ISA's, or those --thresholds forces */
  for (size_t r = 0; r < s->rows; r += s->tile)
    (s->gumbel ? k->fused_argmax_gumbel : k->fused_argmax_normal)(&s->job, s->m0 + r,
                                                                   tile_at(r, s->rows, s->tile));
  s->m0 += s->rows;
}

static void fused_release(void *p) {
  fused_state *s = p;
  free(s->a);
  free(s->noise);
  free(s->winner);
  free(s->count);
  free(s);
}

static int setup_fused(bench_run *run, size_t rows, size_t d, int gumbel) {
  fused_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  const size_t tile = fused_tile(rows, d), stride = (tile + 15) / 16 * 16;
  s->offsets[1] = d;
  s->a = random_floats(d, 9);
  s->noise = malloc((tile * d + PT_FUSED_PAD) * sizeof(float));
  s->winner = malloc(stride * sizeof(int32_t));
  s->count = calloc(d, sizeof(uint64_t));
  s->rows = rows;
  s->tile = tile;
  s->gumbel = gumbel;
  if (!s->a || !s->noise || !s->winner || !s->count) {
    fused_release(s);
    return -1;
  }
  for (size_t i = 0; i < d; i++) s->a[i] = 1.0f + 4.0f * (s->a[i] + 0.5f); /* exp of a spread */
  s->job = (pt_fused_argmax_job){
      .terms = {.key = {0x5eed, 2}, .n = d, .sigma = 0.5f, .samples = rows, .noise = s->noise},
      .segments = 1, .offsets = s->offsets, .a = s->a, .stride = stride,
      .winner = s->winner, .count = s->count};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, fused_call, fused_release, NULL, NULL};
  return 0;
}

static int setup_fused_argmax_gumbel(bench_run *run, size_t rows, size_t d) {
  return setup_fused(run, rows, d, 1);
}

static int setup_fused_argmax_normal(bench_run *run, size_t rows, size_t d) {
  return setup_fused(run, rows, d, 0);
}

/* fused_rank_<kind>: `rows` samples of d inputs in tiles, values only: the noise, the keys
   and their ranks. */
typedef struct fused_rank_state {
  pt_fused_rank_job job;
  float *x, *noise, *keys;
  int32_t *rank;
  int64_t *work;
  size_t rows, tile, whole[2]; /* one segment, {0, d} */
  int gumbel;
} fused_rank_state;

static void fused_rank_call(const pt_kernel_table *k, void *p) {
  fused_rank_state *s = p;
  for (size_t r = 0; r < s->rows; r += s->tile)
    (s->gumbel ? k->fused_rank_gumbel : k->fused_rank_normal)(&s->job, r,
                                                               tile_at(r, s->rows, s->tile));
}

static void fused_rank_release(void *p) {
  fused_rank_state *s = p;
  free(s->x);
  free(s->noise);
  free(s->keys);
  free(s->rank);
  free(s->work);
  free(s);
}

static int setup_fused_rank(bench_run *run, size_t rows, size_t d, int gumbel) {
  fused_rank_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  const size_t tile = fused_tile(rows, d);
  s->x = random_floats(d, 10);
  s->noise = malloc((tile * d + PT_FUSED_PAD) * sizeof(float));
  s->keys = malloc((tile * d + PT_FUSED_PAD) * sizeof(float));
  s->rank = malloc(tile * d * sizeof(int32_t));
  s->work = malloc(PT_SORT_WORK(d) * sizeof(int64_t));
  s->rows = rows;
  s->tile = tile;
  s->whole[1] = d;
  s->gumbel = gumbel;
  if (!s->x || !s->noise || !s->keys || !s->rank || !s->work) {
    fused_rank_release(s);
    return -1;
  }
  s->job = (pt_fused_rank_job){
      .terms = {.key = {0x5eed, 3}, .n = d, .sigma = 0.5f, .samples = rows, .noise = s->noise},
      .segments = 1, .offsets = s->whole, .x = s->x, .keys = s->keys, .work = s->work,
      .rank = s->rank};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, fused_rank_call, fused_rank_release,
                     NULL, NULL};
  return 0;
}

static int setup_fused_rank_gumbel(bench_run *run, size_t rows, size_t d) {
  return setup_fused_rank(run, rows, d, 1);
}

static int setup_fused_rank_normal(bench_run *run, size_t rows, size_t d) {
  return setup_fused_rank(run, rows, d, 0);
}

/* fused_topk_<kind>: `rows` samples of d inputs in tiles, in one segment taking
   k = max(1, d / 100) (the perturbed-bench case's 10 of 1000), values only: the noise, the keys
   and the selection, Gumbel with the bounds the library gives it (src/fn/fn_fused_bounds.h). */
typedef struct fused_topk_state {
  pt_fused_topk_job job;
  float *x, *a, *tmp, margin, *noise, *keys, *bound, *survivor;
  int32_t *winner, *survivor_at, *rank;
  int64_t *work;
  uint64_t *count;
  size_t rows, tile, offsets[2], slot_at[2];
  int gumbel;
} fused_topk_state;

static void fused_topk_call(const pt_kernel_table *k, void *p) {
  fused_topk_state *s = p;
  for (size_t r = 0; r < s->rows; r += s->tile)
    (s->gumbel ? k->fused_topk_gumbel : k->fused_topk_normal)(&s->job, r,
                                                               tile_at(r, s->rows, s->tile));
}

static void fused_topk_release(void *p) {
  fused_topk_state *s = p;
  free(s->x);
  free(s->a);
  free(s->tmp);
  free(s->noise);
  free(s->keys);
  free(s->survivor);
  free(s->winner);
  free(s->bound);
  free(s->survivor_at);
  free(s->rank);
  free(s->work);
  free(s->count);
  free(s);
}

static int setup_fused_topk(bench_run *run, size_t rows, size_t d, int gumbel) {
  fused_topk_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  const size_t k = d / 100 ? d / 100 : 1, tile = fused_tile(rows, d);
  s->x = random_floats(d, 10);
  s->a = malloc(d * sizeof(float));
  s->tmp = malloc(d * sizeof(float));
  s->noise = malloc((tile * d + PT_FUSED_PAD) * sizeof(float));
  s->keys = malloc((d + PT_FUSED_PAD) * sizeof(float));
  s->survivor = malloc((d + 1) * sizeof(float));
  s->winner = malloc(k * tile * sizeof(int32_t));
  s->bound = malloc((d + PT_FUSED_PAD) * sizeof(float));
  s->survivor_at = malloc((d + 1) * sizeof(int32_t));
  s->rank = malloc(d * sizeof(int32_t));
  s->work = malloc(PT_SORT_WORK(d) * sizeof(int64_t));
  s->count = calloc(d, sizeof(uint64_t));
  s->rows = rows;
  s->tile = tile;
  s->gumbel = gumbel;
  s->offsets[1] = d;
  s->slot_at[1] = k;
  const pt_kernel_table *table = pt_kernels_active();
  if (!s->x || !s->a || !s->tmp || !s->noise || !s->keys || !s->survivor || !s->winner ||
      !s->bound || !s->survivor_at || !s->rank || !s->work || !s->count || !table) {
    fused_topk_release(s);
    return -1;
  }
  int32_t top = 0;
  for (size_t i = 1; i < d; i++) top = s->x[i] > s->x[top] ? (int32_t)i : top;
  pt_fused_gumbel_coefficients(table, s->x, 1, s->offsets, &top, 0.5f, s->tmp, s->a);
  s->margin = pt_fused_topk_margin(s->x, d, 0.5f);
  s->job = (pt_fused_topk_job){
      .terms = {.key = {0x5eed, 3}, .n = d, .sigma = 0.5f, .samples = rows, .noise = s->noise},
      .segments = 1, .offsets = s->offsets, .slot_at = s->slot_at, .x = s->x,
      .a = gumbel ? s->a : NULL, .margin = &s->margin, .stride = tile,
      .winner = s->winner, .count = s->count, .keys = s->keys, .bound = s->bound,
      .survivor = s->survivor, .survivor_at = s->survivor_at, .rank = s->rank, .work = s->work};
  *run = (bench_run){rows * d, rows * d * sizeof(float), s, fused_topk_call, fused_topk_release,
                     NULL, NULL};
  return 0;
}

static int setup_fused_topk_gumbel(bench_run *run, size_t rows, size_t d) {
  return setup_fused_topk(run, rows, d, 1);
}

static int setup_fused_topk_normal(bench_run *run, size_t rows, size_t d) {
  return setup_fused_topk(run, rows, d, 0);
}

/* The limit kernels (src/kernels/limits.c.j2): rows x d Philox words, logarithms or Box-Muller
   outputs (half as many pairs), the last two over uniforms in memory. */
typedef struct limit_state {
  float (*kernel)(const pt_kernel_table *k, const float *in, size_t n);
  float *in;
  size_t n;
} limit_state;

static volatile float limit_sink;

static void limit_call(const pt_kernel_table *k, void *p) {
  const limit_state *s = p;
  limit_sink = s->kernel(k, s->in, s->n);
}

static void limit_release(void *p) {
  limit_state *s = p;
  free(s->in);
  free(s);
}

static int setup_limit(bench_run *run, size_t n,
                       float (*kernel)(const pt_kernel_table *k, const float *in, size_t n)) {
  limit_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  *s = (limit_state){kernel, malloc(n * sizeof(float)), n};
  *run = (bench_run){n, n * sizeof(float), s, limit_call, limit_release, NULL, NULL};
  if (!s->in || pt_noise_fill(PT_NOISE_UNIFORM, (pt_key){7, 0}, 0, s->in, n) != PT_OK) {
    limit_release(s);
    return -1;
  }
  return 0;
}

static float limit_philox(const pt_kernel_table *k, const float *in, size_t n) {
  return k->limit_philox((pt_key){0x5eed, 1}, in, n);
}
static float limit_log(const pt_kernel_table *k, const float *in, size_t n) {
  return k->limit_log((pt_key){0}, in, n);
}
static float limit_box_muller(const pt_kernel_table *k, const float *in, size_t n) {
  return k->limit_box_muller((pt_key){0}, in, n);
}

static int setup_limit_philox(bench_run *run, size_t rows, size_t d) {
  return setup_limit(run, rows * d, limit_philox);
}
static int setup_limit_log(bench_run *run, size_t rows, size_t d) {
  return setup_limit(run, rows * d, limit_log);
}
static int setup_limit_box_muller(bench_run *run, size_t rows, size_t d) {
  return setup_limit(run, rows * d, limit_box_muller);
}

typedef struct bench_op {
  const char *name;
  int (*setup)(bench_run *run, size_t rows, size_t d);
} bench_op;

static const bench_op ops[] = {
#define PT_BENCH_OP(op, ret, params) {#op, setup_##op},
    PT_FOR_EACH_OP(PT_BENCH_OP)
#undef PT_BENCH_OP
};

static int op_named(const char *name) {
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
    if (!strcmp(name, ops[o].name)) return 1;
  return 0;
}

/* ---- timing (bench/timing.h) ---- */

/* What one timed call runs: run's kernel from table k, or its read baseline. */
typedef struct timed {
  const bench_run *run;
  const pt_kernel_table *k; /* NULL: the read baseline */
} timed;

static read_fn input_reader;

static void call_once(const void *p) {
  const timed *t = p;
  if (t->k) t->run->call(t->k, t->run->state);
  else if (t->run->read_baseline) t->run->read_baseline(t->run->state);
  else read_sink = input_reader(t->run->input, t->run->bytes / sizeof(float));
}

static int has_read(const bench_run *run) { return run->read_baseline || run->input; }

/* ---- --limits: each kernel beside the work it cannot avoid ---- */

/* What a kernel cannot avoid per element: Philox words, logarithms, normal outputs of
   Box-Muller, or reading its input (the read baseline).  Kernels without an entry get no
   limit: the sorts (reading their input is far below any sort's work, so a ratio to it would
   bound nothing), the pair kernels (pt_noise_fill's kernels' limits are theirs), the perturbed
   tiles and the fused ranks and top-k (a sort per sample), and the limits themselves. */
typedef struct limit_recipe {
  const char *op;
  int words, logs, normals, read;
  /* 1: from the ISA's bounded_min on, the value takes the logarithm of its candidates only,
     about one a sample (bench/logskip-fraction): counted as none */
  int bounded;
} limit_recipe;

static const limit_recipe recipes[] = {
    {"noise_uniform", 1, 0, 0, 0, 0},       {"noise_gumbel", 1, 2, 0, 0, 0},
    {"noise_normal", 1, 0, 1, 0, 0},        {"fused_argmax_gumbel", 1, 1, 0, 0, 1},
    {"fused_argmax_normal", 1, 0, 1, 0, 0}, {"argmax_rows", 0, 0, 0, 1, 0},
    {"weighted_sum_rows", 0, 0, 0, 1, 0},
};

static const limit_recipe *recipe_of(const char *op) {
  for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
    if (!strcmp(recipes[i].op, op)) return &recipes[i];
  return NULL;
}

/* The time of r's work at rows x d with table k's limit kernels (the read: run's baseline);
   -1 when a part's buffers cannot be allocated. */
static double limit_ns(const limit_recipe *r, const pt_kernel_table *k, const bench_run *run,
                       size_t rows, size_t d, int repeats) {
  const struct {
    int times;
    int (*setup)(bench_run *run, size_t rows, size_t d);
  } parts[] = {{r->words, setup_limit_philox},
               {r->bounded && d >= k->fused.bounded_min ? 0 : r->logs, setup_limit_log},
               {r->normals, setup_limit_box_muller}};
  double ns = 0.0;
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (!parts[i].times) continue;
    bench_run part;
    if (parts[i].setup(&part, rows, d) != 0) return -1.0;
    const timed t = {&part, k};
    ns += parts[i].times * bench_median_ns(call_once, &t, repeats);
    part.release(part.state);
  }
  if (r->read && has_read(run)) {
    const timed t = {run, NULL};
    ns += bench_median_ns(call_once, &t, repeats);
  }
  return ns;
}

/* ---- --thresholds: the crossovers of the fused argmax's and the row kernels' paths ---- */

/* ns per element of one kernel family at rows of d elements, with table k's kernels and
   thresholds (one of them forced); -1 without memory. */
typedef double (*path_ns)(const pt_kernel_table *k, size_t d, int repeats);

static double run_ns(const pt_kernel_table *k, int (*setup)(bench_run *, size_t, size_t),
                     size_t rows, size_t d, int repeats) {
  bench_run run;
  if (setup(&run, rows, d) != 0) return -1.0;
  const timed tm = {&run, k};
  const double ns = bench_median_ns(call_once, &tm, repeats) / (double)run.elements;
  run.release(run.state);
  return ns;
}

static int setup_fused_value(bench_run *run, size_t rows, size_t d) {
  return setup_fused(run, rows, d, 1);
}

/* fused_argmax_gumbel's value (no terms) over the estimator's tiles of samples */
static double fused_path_ns(const pt_kernel_table *k, size_t d, int repeats) {
  return run_ns(k, setup_fused_value, 4096 / d, d, repeats);
}

/* The row kernels on 2^16 elements, L2-resident, as rows of d */
#define ROW_ELEMENTS 65536

static double argmax_path_ns(const pt_kernel_table *k, size_t d, int repeats) {
  return run_ns(k, setup_argmax_rows, ROW_ELEMENTS / d, d, repeats);
}

/* argsort and ranks, which share their thresholds: the sum of both */
static double sort_path_ns(const pt_kernel_table *k, size_t d, int repeats) {
  const size_t rows = ROW_ELEMENTS / d;
  const double argsort = run_ns(k, setup_argsort_rows, rows, d, repeats);
  const double ranks = run_ns(k, setup_rank_rows, rows, d, repeats);
  return argsort < 0.0 || ranks < 0.0 ? -1.0 : argsort + ranks;
}

static pt_kernel_table with_fused(const pt_kernel_table *k, size_t short_max, size_t bounded_min,
                                  size_t bounded_short_max) {
  pt_kernel_table t = *k;
  t.fused = (pt_fused_thresholds){short_max, bounded_min, bounded_short_max};
  return t;
}

static pt_kernel_table with_rows(const pt_kernel_table *k, size_t argmax_columns_max,
                                 size_t count_max, size_t count_columns_max, size_t radix_min) {
  pt_kernel_table t = *k;
  t.rows = (pt_row_thresholds){argmax_columns_max, count_max, count_columns_max, radix_min};
  return t;
}

/* One threshold: at each d of its list, the time of the path below it and of the path at or
   above it, each forced in a copy of the ISA's table.  The split measured best is the one whose
   slowdowns, summed over the list (at each d the time over the faster path's), are least: a
   path that wins, loses and wins again as d grows then costs what each choice would cost.  It
   is printed as the range of threshold values that give that split, against which the table's
   value is set. */
#define CROSSOVER_DS 16
typedef struct crossover {
  const char *name;
  size_t table;
  int last_below; /* the threshold names the lower path's last d (short_max), not the upper's first */
  path_ns time;
  pt_kernel_table below, above;
  size_t ds[CROSSOVER_DS];
} crossover;

static int crossover_print(const crossover *x, pt_isa isa, int json, int repeats) {
  double below[CROSSOVER_DS] = {0}, above[CROSSOVER_DS] = {0};
  size_t nds = 0;
  while (nds < CROSSOVER_DS && x->ds[nds]) nds++;
  for (size_t i = 0; i < nds; i++) {
    below[i] = x->time(&x->below, x->ds[i], repeats);
    above[i] = x->time(&x->above, x->ds[i], repeats);
    if (below[i] < 0.0 || above[i] < 0.0) {
      fprintf(stderr, "perturb-bench: out of memory for --thresholds\n");
      return 1;
    }
  }
  /* split s: the lower path for ds[0, s), the upper one from ds[s] */
  size_t best = 0;
  double least = 0.0;
  for (size_t s = 0; s <= nds; s++) {
    double cost = 0.0;
    for (size_t i = 0; i < nds; i++) {
      const double fastest = below[i] < above[i] ? below[i] : above[i];
      cost += (i < s ? below[i] : above[i]) / fastest;
    }
    if (s == 0 || cost < least) {
      least = cost;
      best = s;
    }
  }
  /* the threshold values that give split `best`, [low, high] (high SIZE_MAX: unbounded): a
     lower path's last d (last_below) from ds[best - 1] to ds[best] - 1, or an upper path's
     first d from ds[best - 1] + 1 to ds[best] */
  const size_t step = x->last_below ? 0 : 1;
  const size_t low = best ? x->ds[best - 1] + step : 0;
  const size_t high = best < nds ? x->ds[best] + step - 1 : SIZE_MAX;
  const int agrees = x->table >= low && x->table <= high;
  for (size_t i = 0; i < nds; i++) {
    if (json)
      printf("{\"threshold\": \"%s\", \"isa\": \"%s\", \"d\": %zu, \"ns_per_element_below\": "
             "%.5f, \"ns_per_element_above\": %.5f}\n",
             x->name, pt_isa_name(isa), x->ds[i], below[i], above[i]);
    else
      printf("%-18s %-7s d %5zu   below %8.4f   at or above %8.4f ns/elem\n", x->name,
             pt_isa_name(isa), x->ds[i], below[i], above[i]);
  }
  if (json)
    printf("{\"threshold\": \"%s\", \"isa\": \"%s\", \"table\": %zu, \"measured_low\": %zu, "
           "\"measured_high\": %lld, \"agrees\": %s}\n",
           x->name, pt_isa_name(isa), x->table, low, high == SIZE_MAX ? -1 : (long long)high,
           agrees ? "true" : "false");
  else if (high == SIZE_MAX)
    printf("%-18s %-7s table %zu, measured here %zu or more: %s\n", x->name, pt_isa_name(isa),
           x->table, low, agrees ? "agrees" : "differs");
  else
    printf("%-18s %-7s table %zu, measured here %zu to %zu: %s\n", x->name, pt_isa_name(isa),
           x->table, low, high, agrees ? "agrees" : "differs");
  fflush(stdout);
  return 0;
}

/* Every threshold of every ISA this CPU runs, or those named by only (a threshold or ISA). */
static int thresholds_mode(const char *only, const char *only_isa, int json, int repeats) {
  if (pt_set_num_threads(1) != PT_OK) return 1; /* the paths of one core */
  int named = !only; /* every ISA has the same thresholds: a name unknown to one is unknown */
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
    const pt_kernel_table *k = pt_kernels_for((pt_isa)isa);
    if (!k || (only_isa && strcmp(only_isa, pt_isa_name(k->isa)) != 0)) continue;
    const size_t never = SIZE_MAX;
    const pt_fused_thresholds f = k->fused;
    const pt_row_thresholds r = k->rows;
    const crossover xs[] = {
        /* the long path is the upper one */
        {"short_max", f.short_max, 1, fused_path_ns, with_fused(k, PT_FUSED_SHORT, never, 0),
         with_fused(k, 0, never, 0), {2, 4, 6, 8, 10, 12, 14, 16}},
        /* the candidates' path is the upper one, with the table's samples per lane */
        {"bounded_min", f.bounded_min, 0, fused_path_ns,
         with_fused(k, f.short_max, never, f.bounded_short_max),
         with_fused(k, f.short_max, 1, f.bounded_short_max),
         {4, 8, 12, 16, 20, 24, 28, 32, 48, 64, 128, 1024}},
        /* the candidates' path throughout; samples along their inputs are the upper path */
        {"bounded_short_max", f.bounded_short_max, 1, fused_path_ns,
         with_fused(k, f.short_max, 1, PT_FUSED_BOUNDED_SHORT), with_fused(k, f.short_max, 1, 0),
         {2, 4, 6, 8, 12, 16, 17, 20, 24, 28, 32}},
        /* one row at a time is the upper path */
        {"argmax_columns_max", r.argmax_columns_max, 1, argmax_path_ns,
         with_rows(k, never, r.count_max, r.count_columns_max, r.radix_min),
         with_rows(k, 0, r.count_max, r.count_columns_max, r.radix_min),
         {2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 24, 32, 64, 128, 256, 1024}},
        /* the networks are the upper path; the counting, the table's columns and rows */
        {"count_max", r.count_max, 1, sort_path_ns,
         with_rows(k, r.argmax_columns_max, PT_ROWS_COUNT_CAP, r.count_columns_max, r.radix_min),
         with_rows(k, r.argmax_columns_max, 1, 0, r.radix_min),
         {2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96, 112, 128}},
        /* counting one row at a time is the upper path */
        {"count_columns_max", r.count_columns_max, 1, sort_path_ns,
         with_rows(k, r.argmax_columns_max, PT_ROWS_COUNT_CAP, never, r.radix_min),
         with_rows(k, r.argmax_columns_max, PT_ROWS_COUNT_CAP, 0, r.radix_min),
         {2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16}},
        /* the radix sort is the upper path */
        {"radix_min", r.radix_min, 0, sort_path_ns,
         with_rows(k, r.argmax_columns_max, r.count_max, r.count_columns_max, never),
         with_rows(k, r.argmax_columns_max, r.count_max, r.count_columns_max, 0),
         {257, 320, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192}},
    };
    for (size_t x = 0; x < sizeof xs / sizeof xs[0]; x++) {
      if (only && strcmp(only, xs[x].name) != 0) continue;
      named = 1;
      if (crossover_print(&xs[x], k->isa, json, repeats) != 0) return 1;
    }
    if (!named) {
      fprintf(stderr, "perturb-bench: --thresholds --op %s: unknown; the thresholds are", only);
      for (size_t x = 0; x < sizeof xs / sizeof xs[0]; x++) fprintf(stderr, " %s", xs[x].name);
      fputc('\n', stderr);
      return 2;
    }
  }
  return 0;
}

/* ---- command line ---- */

#define MAX_SIZES 32

static size_t parse_list(const char *text, size_t *out, const char *flag) {
  size_t n = 0;
  char *end;
  for (const char *p = text; *p && n < MAX_SIZES; p = end + (*end == ',')) {
    errno = 0;
    const unsigned long long v = strtoull(p, &end, 10);
    if (end == p || errno || v == 0 || (*end && *end != ',')) {
      fprintf(stderr, "perturb-bench: %s wants positive integers separated by commas\n", flag);
      exit(2);
    }
    out[n++] = (size_t)v;
  }
  return n;
}

int main(int argc, char **argv) {
  size_t ds[MAX_SIZES] = {16, 1024, 5, 100}, rows[MAX_SIZES] = {65536, 4096, 100000, 10000};
  size_t nd = 4, nrows = 4;
  const char *only_op = NULL, *only_isa = NULL;
  int repeats = 11, json = 0, limits = 0, thresholds = 0;
  FILE *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) json = 1;
    else if (!strcmp(a, "--limits")) limits = 1;
    else if (!strcmp(a, "--thresholds")) thresholds = 1;
    else if (v && !strcmp(a, "--d")) nd = parse_list(argv[++i], ds, a);
    else if (v && !strcmp(a, "--rows")) nrows = parse_list(argv[++i], rows, a);
    else if (v && !strcmp(a, "--op")) only_op = argv[++i];
    else if (v && !strcmp(a, "--isa")) only_isa = argv[++i];
    else if (v && !strcmp(a, "--repeats")) repeats = atoi(argv[++i]);
    else if (v && !strcmp(a, "--threads")) {
      size_t n[MAX_SIZES];
      if (parse_list(argv[++i], n, a) != 1 || pt_set_num_threads(n[0]) != PT_OK) {
        fprintf(stderr, "perturb-bench: --threads wants one count from 1 to 1024\n");
        return 2;
      }
    }
    else if (v && !strcmp(a, "--out")) {
      if (!(out = fopen(argv[++i], "w"))) {
        fprintf(stderr, "perturb-bench: cannot write %s: %s\n", argv[i], strerror(errno));
        return 2;
      }
    }
    else {
      fprintf(stderr, "usage: %s [--d N,..] [--rows N,..] [--op NAME] [--isa NAME] "
                      "[--repeats N] [--threads N] [--limits] [--json] [--out FILE] | "
                      "--thresholds [--op THRESHOLD] [--isa NAME] [--repeats N] [--json]\n", argv[0]);
      return 2;
    }
  }
  if (repeats < 1) repeats = 1;
  if (bench_check_isa("perturb-bench", only_isa, thresholds ? NULL : "read") != 0) return 2;
  if (thresholds) return thresholds_mode(only_op, only_isa, json, repeats);
  if (only_op && !op_named(only_op)) {
    fprintf(stderr, "perturb-bench: --op %s: unknown; the ops are", only_op);
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) fprintf(stderr, " %s", ops[o].name);
    fputc('\n', stderr);
    return 2;
  }
  if (nd != nrows && nd != 1 && nrows != 1) {
    fprintf(stderr, "perturb-bench: --d and --rows need equal lengths, or one of them one value\n");
    return 2;
  }
  const size_t nsizes = nd > nrows ? nd : nrows;
  input_reader = choose_reader();
  const size_t threads = pt_get_num_threads();
  if (!json)
    printf("threads: %zu\n%-14s %-7s %9s %6s %12s %10s %9s%s\n", threads, "op", "isa", "rows", "d",
           "ns/call", "ns/elem", "GB/s", limits ? "     limit ns  kernel/limit" : "");
  for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
    if (only_op && strcmp(only_op, ops[o].name) != 0) continue;
    const limit_recipe *recipe = recipe_of(ops[o].name);
    if (limits && !recipe) continue;
    for (size_t z = 0; z < nsizes; z++) {
      const size_t r = rows[nrows == 1 ? 0 : z], d = ds[nd == 1 ? 0 : z];
      bench_run run;
      if (ops[o].setup(&run, r, d) != 0) {
        fprintf(stderr, "perturb-bench: out of memory for %s rows=%zu d=%zu\n", ops[o].name, r, d);
        return 1;
      }
      /* every supported ISA, then the read baseline if the op has one */
      for (int isa = 0; isa <= PT_ISA_COUNT; isa++) {
        const int baseline = isa == PT_ISA_COUNT;
        const pt_kernel_table *k = baseline ? NULL : pt_kernels_for((pt_isa)isa);
        const char *name = baseline ? "read" : pt_isa_name((pt_isa)isa);
        if (baseline ? limits || !has_read(&run) : !k) continue;
        if (only_isa && strcmp(only_isa, name) != 0) continue;
        const timed t = {&run, k};
        const double ns = bench_median_ns(call_once, &t, repeats);
        const double per = ns / (double)run.elements, gbs = (double)run.bytes / ns;
        const double limit = limits ? limit_ns(recipe, k, &run, r, d, repeats) : 0.0;
        if (limit < 0.0) {
          fprintf(stderr, "perturb-bench: out of memory for the limits of %s\n", ops[o].name);
          return 1;
        }
        char line[320], extra[96] = "", column[64] = "";
        if (limits) {
          snprintf(extra, sizeof extra, ", \"limit_ns\": %.1f, \"kernel_over_limit\": %.3f", limit,
                   ns / limit);
          snprintf(column, sizeof column, " %12.1f %13.2f", limit, ns / limit);
        }
        snprintf(line, sizeof line,
                 "{\"op\": \"%s\", \"isa\": \"%s\", \"rows\": %zu, \"d\": %zu, \"threads\": %zu, "
                 "\"ns_per_call\": %.1f, \"ns_per_element\": %.5f, \"gb_per_s\": %.3f%s}\n",
                 ops[o].name, name, r, d, threads, ns, per, gbs, extra);
        if (out) fputs(line, out);
        if (json)
          fputs(line, stdout);
        else
          printf("%-14s %-7s %9zu %6zu %12.1f %10.4f %9.2f%s\n", ops[o].name, name, r, d, ns, per,
                 gbs, column);
        fflush(stdout);
      }
      run.release(run.state);
    }
  }
  if (out && fclose(out) != 0) {
    fprintf(stderr, "perturb-bench: writing the --out file failed\n");
    return 1;
  }
  return 0;
}

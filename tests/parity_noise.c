/* SPDX-License-Identifier: MIT */
#include "parity_noise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "parity.h"
#include "reference.h"

typedef void (*noise_kernel)(pt_key key, uint64_t offset, float *out, size_t n);

/* The case picks a key and an offset meant to break things: zero and all-ones keys, offsets
   inside the first chunk, across the 2^32 wrap of the counter's low word (word 2^34), with a
   non-zero high word (past 2^38), anywhere, and ending at the very last word 2^64 - 1. */
static void noise_params(const pt_case *c, pt_key *key, uint64_t *offset, size_t *n) {
  uint64_t s = c->seed;
  *n = c->rows * c->d;
  const uint64_t pick = pt_test_rand(&s);
  key->seed = pick % 5 == 0 ? 0 : pick % 5 == 1 ? UINT64_MAX : pt_test_rand(&s);
  key->stream = pick % 3 == 0 ? 0 : pick % 3 == 1 ? UINT64_MAX : pt_test_rand(&s);
  const uint64_t r = pt_test_rand(&s), last = UINT64_MAX - (*n - 1); /* greatest offset */
  switch (pick / 15 % 8) {
    case 0: *offset = 0; break;
    case 1: *offset = r % 64; break;
    case 2: *offset = r % (1u << 20); break;
    case 3: *offset = ((uint64_t)1 << 34) - *n / 2 - r % 64; break;
    case 4: *offset = ((uint64_t)1 << 38) + r % (1u << 20); break;
    case 5: *offset = ((uint64_t)1 << 63) - *n / 2 + r % 64; break;
    case 6: *offset = r % last; break;
    default: *offset = last - r % 64; break;
  }
}

typedef enum { UNIFORM, GUMBEL, NORMAL } kind;
static const char *const kind_name[] = {"uniform", "gumbel", "normal"};

/* |got - truth| within pt_noise_fill(3)'s bound; the uniform exactly */
static int accurate(kind kd, float got, pt_key key, uint64_t k, double *truth) {
  switch (kd) {
    case UNIFORM: *truth = pt_ref_uniform(key.seed, key.stream, k); return got == (float)*truth;
    case GUMBEL:
      *truth = pt_ref_gumbel(key.seed, key.stream, k);
      return fabs(got - *truth) <= 1e-6 * fmax(1.0, fabs(*truth));
    default:
      *truth = pt_ref_normal(key.seed, key.stream, k);
      return fabs(got - *truth) <= 1e-5 * fmax(1.0, fabs(*truth));
  }
}

#define GUARD 16 /* floats before and after the output that must stay untouched */

static void parity_noise(kind kd, noise_kernel fn, noise_kernel scalar_fn, pt_isa isa,
                         const pt_case *c, pt_parity_result *res) {
  pt_key key;
  uint64_t offset;
  size_t n;
  noise_params(c, &key, &offset, &n);
  const size_t total = n + c->misalign + 2 * GUARD;
  float *block = malloc(total * sizeof *block), *want = malloc(n * sizeof *want);
  if (!block || !want) {
    pt_parity_fail(res, "out of memory");
    goto out;
  }
  const float guard = -12345.0f;
  for (size_t i = 0; i < total; i++) block[i] = guard;
  float *got = block + GUARD + c->misalign;
  fn(key, offset, got, n);
  scalar_fn(key, offset, want, n);
  char what[160];
  snprintf(what, sizeof what, "noise_%s key {%#llx, %#llx} offset %#llx n %zu misalign %zu",
           kind_name[kd], (unsigned long long)key.seed, (unsigned long long)key.stream,
           (unsigned long long)offset, n, c->misalign);
  for (size_t i = 0; i < total; i++)
    if ((block + i < got || block + i >= got + n) && block[i] != guard) {
      pt_parity_fail(res, "%s: %s wrote outside the output", what, pt_isa_name(isa));
      goto out;
    }
  for (size_t i = 0; i < n; i++) {
    double truth = NAN;
    if (memcmp(&got[i], &want[i], sizeof got[i]) != 0 || !accurate(kd, got[i], key, offset + i, &truth)) {
      pt_parity_fail(res, "%s: word %zu: %s %a, scalar %a, reference %a", what, i, pt_isa_name(isa),
           got[i], want[i], (double)truth);
      break;
    }
  }
out:
  free(block);
  free(want);
}

void parity_noise_uniform(const pt_kernel_table *k, const pt_kernel_table *scalar,
                          const pt_case *c, const float *x, pt_parity_result *res) {
  (void)x;
  parity_noise(UNIFORM, k->noise_uniform, scalar->noise_uniform, k->isa, c, res);
}

void parity_noise_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  (void)x;
  parity_noise(GUMBEL, k->noise_gumbel, scalar->noise_gumbel, k->isa, c, res);
}

void parity_noise_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  (void)x;
  parity_noise(NORMAL, k->noise_normal, scalar->noise_normal, k->isa, c, res);
}

/* ---- antithetic pairs (noise_lib.j2's pairs) ---------------------------------------------- */

typedef void (*pairs_kernel)(pt_key key, uint64_t pair0, size_t pairs, size_t n, float *out);

/* Pairs of rows of the case's d inputs, (rows + 1)/2 of them, from the words of pairs pair0 +
   p at the case's key and offset (pulled back so that the last pair's words exist): the ISA's
   bits are the scalar kernel's, nothing outside the rows is written, row 2p is the stream's
   noise of its words bit for bit, and row 2p + 1 its partner: -z bit for bit (normal), or
   -log(-log(1 - u)) of the words' uniforms within pt_noise_fill(3)'s Gumbel bound. */
static void parity_pairs(int gumbel, pairs_kernel fn, pairs_kernel scalar_fn,
                         const pt_kernel_table *k, const pt_case *c, pt_parity_result *res) {
  pt_key key;
  uint64_t offset;
  size_t n_words;
  noise_params(c, &key, &offset, &n_words);
  const size_t n = c->d, pairs = (c->rows + 1) / 2, rows = 2 * pairs;
  if (n == 0) return;
  const uint64_t last = UINT64_MAX / n - pairs; /* (pair0 + pairs) * n words exist */
  const uint64_t pair0 = offset / n < last ? offset / n : last;
  const size_t total = rows * n + c->misalign + 2 * GUARD;
  float *block = malloc(total * sizeof *block), *want = malloc(rows * n * sizeof *want);
  float *stream = malloc(n * sizeof *stream), *u = malloc(n * sizeof *u);
  if (!block || !want || !stream || !u) {
    pt_parity_fail(res, "out of memory");
    goto out;
  }
  const float guard = -12345.0f;
  for (size_t i = 0; i < total; i++) block[i] = guard;
  float *got = block + GUARD + c->misalign;
  fn(key, pair0, pairs, n, got);
  scalar_fn(key, pair0, pairs, n, want);
  char what[160];
  snprintf(what, sizeof what, "noise_pairs_%s key {%#llx, %#llx} pair0 %#llx pairs %zu n %zu",
           gumbel ? "gumbel" : "normal", (unsigned long long)key.seed,
           (unsigned long long)key.stream, (unsigned long long)pair0, pairs, n);
  for (size_t i = 0; i < total; i++)
    if ((block + i < got || block + i >= got + rows * n) && block[i] != guard) {
      pt_parity_fail(res, "%s: %s wrote outside the output", what, pt_isa_name(k->isa));
      goto out;
    }
  if (memcmp(got, want, rows * n * sizeof *got) != 0) {
    pt_parity_fail(res, "%s: %s differs from scalar", what, pt_isa_name(k->isa));
    goto out;
  }
  for (size_t p = 0; p < pairs; p++) {
    const uint64_t word = (pair0 + p) * n;
    (gumbel ? k->noise_gumbel : k->noise_normal)(key, word, stream, n);
    k->noise_uniform(key, word, u, n);
    const float *first = got + 2 * p * n, *second = first + n;
    for (size_t i = 0; i < n; i++) {
      const double partner = -log(-log(1.0 - (double)u[i]));
      const int ok = memcmp(&first[i], &stream[i], sizeof *first) == 0 &&
                     (gumbel ? fabs(second[i] - partner) <= 1e-6 * fmax(1.0, fabs(partner))
                             : second[i] == -first[i]);
      if (!ok) {
        pt_parity_fail(res, "%s: pair %zu input %zu: %a %a, stream %a, partner %a", what, p, i,
                       (double)first[i], (double)second[i], (double)stream[i],
                       gumbel ? partner : -(double)stream[i]);
        goto out;
      }
    }
  }
out:
  free(block);
  free(want);
  free(stream);
  free(u);
}

void parity_noise_pairs_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               const pt_case *c, const float *x, pt_parity_result *res) {
  (void)x;
  parity_pairs(1, k->noise_pairs_gumbel, scalar->noise_pairs_gumbel, k, c, res);
}

void parity_noise_pairs_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               const pt_case *c, const float *x, pt_parity_result *res) {
  (void)x;
  parity_pairs(0, k->noise_pairs_normal, scalar->noise_pairs_normal, k, c, res);
}

/* The uniform hashes are those of tests/reference.c (test_noise.c recomputes them); the
   gumbel and normal ones were recorded from this library and are checked against the
   reference within pt_noise_fill(3)'s accuracy there. */
const pt_noise_known pt_noise_known_fills[] = {
    {{0, 0}, 0, 4096, 0x21034ae5de872a7full, 0xf08fc43af9b23bd7ull, 0xe5677937acc9a8b0ull},
    {{0x0123456789ABCDEFull, 0xFEDCBA9876543210ull}, ((uint64_t)1 << 38) + 13, 1000,
     0x4e4585004c1456aaull, 0x84bb429463f0e7dfull, 0x2f5bca24e875d44aull},
    {{UINT64_MAX, UINT64_MAX}, UINT64_MAX - 776, 777,
     0xe18115f12913e4a4ull, 0xbc972164c3dab5faull, 0x8d4996cdee635438ull},
};
const size_t pt_noise_known_count = sizeof pt_noise_known_fills / sizeof pt_noise_known_fills[0];

void pt_parity_noise_known(const pt_kernel_table *k, pt_parity_result *res) {
  /* word 16w of key {0, 0} is word w of Philox4x32-10 of counter 0 under key 0 (Random123) */
  static const uint32_t zero_block[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
  float u[64];
  k->noise_uniform((pt_key){0, 0}, 0, u, 64);
  res->checked++;
  for (int w = 0; w < 4; w++)
    if (u[16 * w] != (float)((zero_block[w] >> 8) | 1) * 0x1p-24f) {
      pt_parity_fail(res, "%s: uniform word %d of key {0,0} is %a, not Random123's block",
                     pt_isa_name(k->isa), 16 * w, u[16 * w]);
      return;
    }
  for (size_t i = 0; i < pt_noise_known_count; i++) {
    const pt_noise_known *f = &pt_noise_known_fills[i];
    float *out = malloc(f->n * sizeof *out);
    if (!out) {
      pt_parity_fail(res, "out of memory");
      return;
    }
    const noise_kernel fn[3] = {k->noise_uniform, k->noise_gumbel, k->noise_normal};
    const uint64_t want[3] = {f->uniform, f->gumbel, f->normal};
    for (int kd = 0; kd < 3; kd++) {
      res->checked++;
      fn[kd](f->key, f->offset, out, f->n);
      const uint64_t h = pt_hash32(PT_HASH_START, out, f->n);
      if (h != want[kd])
        pt_parity_fail(res, "%s: noise_%s known fill %zu hashes to %#018llx, want %#018llx",
             pt_isa_name(k->isa), kind_name[kd], i, (unsigned long long)h,
             (unsigned long long)want[kd]);
    }
    free(out);
  }
}

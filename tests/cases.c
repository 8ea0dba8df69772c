/* SPDX-License-Identifier: MIT */
#include "cases.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t pt_test_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static float uniform_pm1(uint64_t *s) { return (float)(pt_test_rand(s) >> 40) * 0x1p-23f - 1.0f; }

static float bits_to_float(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static float special_value(uint64_t *s) {
  static const uint32_t specials[] = {
      0x7fc00000u, 0xffc00000u, 0x7f800001u, 0xff812345u, /* quiet and signalling NaNs */
      0x7f800000u, 0xff800000u,                           /* +-inf */
      0x00000000u, 0x80000000u,                           /* +-0 */
      0x00000001u, 0x80000001u, 0x007fffffu, 0x807fffffu, /* subnormals */
      0x7f7fffffu, 0xff7fffffu,                           /* +-FLT_MAX */
  };
  return bits_to_float(specials[pt_test_rand(s) % (sizeof specials / sizeof specials[0])]);
}

static float fill_value(pt_fill fill, size_t j, size_t d, uint64_t *s) {
  static const float ties[] = {-1.0f, -0.0f, 0.0f, 0.5f, 2.0f, 2.0f};
  switch (fill) {
    case PT_FILL_RANDOM: return uniform_pm1(s);
    case PT_FILL_TIES: return ties[pt_test_rand(s) % (sizeof ties / sizeof ties[0])];
    case PT_FILL_SPECIAL: return pt_test_rand(s) % 8 == 0 ? special_value(s) : uniform_pm1(s);
    case PT_FILL_SORTED: return (float)j - (float)d / 2;
    case PT_FILL_REVERSED: return (float)d / 2 - (float)j;
    case PT_FILL_NEG_INF: return -INFINITY;
    default: return NAN;
  }
}

/* Lengths past the short ones: powers of two, their neighbours, and long rows. */
static const size_t long_lengths[] = {511, 512, 513, 1000, 1024, 4097, 20000, 100003};
#define N_SHORT 300
#define N_LONG (sizeof long_lengths / sizeof long_lengths[0])

/* Tall matrices, one pattern for every row: many rows per call, for the kernels that work
   across rows (blocks of rows, a contiguous column d == 1 == ld, strided columns). */
static const struct {
  size_t rows, d, ld, misalign;
  pt_fill fill;
} tall[] = {
    {5000, 1, 1, 0, PT_FILL_RANDOM}, {5003, 1, 1, 1, PT_FILL_TIES},
    {1500, 1, 3, 2, PT_FILL_RANDOM}, {1500, 5, 5, 0, PT_FILL_RANDOM},
    {1100, 16, 19, 1, PT_FILL_RANDOM}, {1030, 100, 100, 0, PT_FILL_TIES},
    {700, 128, 128, 3, PT_FILL_RANDOM}, {700, 129, 131, 0, PT_FILL_RANDOM},
    {300, 1100, 1100, 1, PT_FILL_RANDOM}, {600, 40, 40, 0, PT_FILL_SPECIAL},
    {600, 40, 41, 0, PT_FILL_SORTED}, {600, 200, 200, 2, PT_FILL_REVERSED},
    /* rows % 512 % 16 == 15: a block's last round of rows, one short of the 16 of a full one */
    {527, 3, 5, 1, PT_FILL_RANDOM}, {1039, 1, 2, 0, PT_FILL_RANDOM}, {543, 16, 17, 2, PT_FILL_RANDOM},
};
#define N_TALL (sizeof tall / sizeof tall[0])

size_t pt_cases_count(void) { return N_SHORT * 2 + N_LONG * PT_FILL_COUNT + N_TALL; }

pt_case pt_cases_get(size_t i) {
  pt_case c;
  c.seed = 0x5eed0000u + i;
  if (i < N_SHORT * 2) {
    /* every short length twice: packed and aligned, then strided and misaligned */
    const size_t d = i % N_SHORT + 1, strided = i >= N_SHORT;
    c.d = d;
    c.rows = 37; /* past two groups of 16 rows (kernels that take rows a vector at a time) */
    c.ld = strided ? d + 1 + d % 7 : d;
    c.misalign = strided ? 1 + d % 3 : 0;
    c.fill = (pt_fill)(d % PT_FILL_COUNT);
    c.mixed = 1;
  } else if (i < N_SHORT * 2 + N_LONG * PT_FILL_COUNT) {
    i -= N_SHORT * 2;
    c.d = long_lengths[i / PT_FILL_COUNT];
    c.fill = (pt_fill)(i % PT_FILL_COUNT);
    c.rows = 3;
    c.ld = c.d + (i % 2) * 5;
    c.misalign = i % 3;
    c.mixed = 0;
  } else {
    i -= N_SHORT * 2 + N_LONG * PT_FILL_COUNT;
    c.rows = tall[i].rows;
    c.d = tall[i].d;
    c.ld = tall[i].ld;
    c.misalign = tall[i].misalign;
    c.fill = tall[i].fill;
    c.mixed = 0;
  }
  return c;
}

float *pt_case_data(const pt_case *c, void **block) {
  const size_t n = (c->rows - 1) * c->ld + c->d + c->misalign;
  float *base = malloc(n * sizeof(float) + 64);
  *block = base;
  if (!base) return NULL;
  float *x = base + c->misalign;
  uint64_t s = c->seed;
  for (size_t k = 0; k < c->misalign; k++) base[k] = NAN; /* never read */
  for (size_t r = 0; r < c->rows; r++) {
    /* short cases: each row its own pattern, so one case covers all of them */
    const pt_fill fill = c->mixed ? (pt_fill)((c->fill + r) % PT_FILL_COUNT) : c->fill;
    for (size_t j = 0; j < c->ld && r * c->ld + j < n - c->misalign; j++)
      x[r * c->ld + j] = j < c->d ? fill_value(fill, j, c->d, &s) : NAN; /* gaps: never read */
  }
  return x;
}

void pt_case_describe(const pt_case *c, char *buf, size_t size) {
  snprintf(buf, size, "rows=%zu d=%zu ld=%zu misalign=%zu fill=%d seed=%#llx", c->rows, c->d,
           c->ld, c->misalign, (int)c->fill, (unsigned long long)c->seed);
}

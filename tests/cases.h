/* SPDX-License-Identifier: MIT */
/* The battery of inputs every row kernel is checked on: every length 1..300 and large ones,
   strides, misaligned starts, tall matrices, and value patterns with ties, +-0, +-inf, NaN and
   subnormals. */
#ifndef PT_TEST_CASES_H
#define PT_TEST_CASES_H

#include <stddef.h>
#include <stdint.h>

typedef enum pt_fill {
  PT_FILL_RANDOM,   /* uniform in [-1, 1) */
  PT_FILL_TIES,     /* a handful of values, +0 and -0 among them: many exact ties */
  PT_FILL_SPECIAL,  /* random, sprinkled with NaN (both signs), +-inf, +-0, subnormals, +-FLT_MAX */
  PT_FILL_SORTED,   /* ascending */
  PT_FILL_REVERSED, /* descending */
  PT_FILL_NEG_INF,  /* every element -inf */
  PT_FILL_COUNT
} pt_fill;

typedef struct pt_case {
  size_t rows, d, ld; /* ld >= d */
  size_t misalign;    /* x starts this many floats past an aligned block */
  pt_fill fill;
  int mixed;          /* row r gets pattern (fill + r) % PT_FILL_COUNT, else every row `fill` */
  uint64_t seed;
} pt_case;

/* The standard battery, in a fixed order; returns how many cases it has. */
size_t pt_cases_count(void);
pt_case pt_cases_get(size_t i);

/* Allocates and fills the case's rows; *block is the allocation to free(). NULL on ENOMEM. */
float *pt_case_data(const pt_case *c, void **block);

/* A short description for failure messages. */
void pt_case_describe(const pt_case *c, char *buf, size_t size);

/* splitmix64: the deterministic generator behind every test input */
uint64_t pt_test_rand(uint64_t *state);

#endif

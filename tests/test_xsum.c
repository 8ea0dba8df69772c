/* SPDX-License-Identifier: MIT */
/* The exact accumulator (src/fn/xsum.c) against independent truth: integer sums computed in
   __int128, the same bits for every order and grouping of the same addends, IEEE's special
   values, and the accuracy of the rounded result against a sum in long double of addends
   whose exact sum it can hold. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fn/xsum.h"

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 11;
}

/* a double of random sign, significand and exponent in [lo, hi) */
static double wide(uint64_t *s, int lo, int hi) {
  const double m = (double)(lcg(s) | 1) * 0x1p-53;
  const int e = lo + (int)(lcg(s) % (uint64_t)(hi - lo));
  return (lcg(s) & 1 ? -1.0 : 1.0) * ldexp(m, e);
}

static double sum_in_order(const double *v, const size_t *order, size_t n) {
  pt_xsum s;
  pt_xsum_clear(&s, 1);
  for (size_t i = 0; i < n; i++) pt_xsum_add(&s, &v[order[i]], 1);
  return pt_xsum_value(&s);
}

static void shuffle(size_t *order, size_t n, uint64_t *s) {
  for (size_t i = n - 1; i > 0; i--) {
    const size_t j = (size_t)(lcg(s) % (i + 1)), t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

Test(xsum, integer_sums_are_exact) {
  uint64_t seed = 1;
  enum { N = 5000 };
  static double v[N];
  __int128 exact = 0;
  for (size_t i = 0; i < N; i++) {
    const int64_t k = (int64_t)(lcg(&seed) % (1ull << 52)) - (int64_t)(1ull << 51);
    v[i] = (double)k;
    exact += k;
  }
  pt_xsum s;
  pt_xsum_clear(&s, 1);
  for (size_t i = 0; i < N; i++) pt_xsum_add(&s, &v[i], 1);
  cr_expect_eq(pt_xsum_value(&s), (double)exact, "got %.17g want %.17g", pt_xsum_value(&s),
               (double)exact);
}

Test(xsum, every_order_and_grouping_gives_the_same_bits) {
  uint64_t seed = 7;
  enum { N = 3000 };
  static double v[N];
  static size_t order[N];
  /* exponents over most of the double range, so the window moves many times */
  for (size_t i = 0; i < N; i++) {
    v[i] = wide(&seed, -1070, 1000);
    order[i] = i;
  }
  const double want = sum_in_order(v, order, N);
  for (int round = 0; round < 20; round++) {
    shuffle(order, N, &seed);
    const double got = sum_in_order(v, order, N);
    cr_expect_eq(memcmp(&got, &want, sizeof got), 0, "order %d: %a, want %a", round, got, want);
    /* split into random pieces summed apart, then merged in a random order */
    enum { PIECES = 9 };
    pt_xsum part[PIECES], total;
    pt_xsum_clear(part, PIECES);
    for (size_t i = 0; i < N; i++) pt_xsum_add(&part[lcg(&seed) % PIECES], &v[order[i]], 1);
    pt_xsum_clear(&total, 1);
    size_t p_order[PIECES];
    for (size_t p = 0; p < PIECES; p++) p_order[p] = p;
    shuffle(p_order, PIECES, &seed);
    for (size_t p = 0; p < PIECES; p++) pt_xsum_merge(&total, &part[p_order[p]], 1);
    const double merged = pt_xsum_value(&total);
    cr_expect_eq(memcmp(&merged, &want, sizeof merged), 0, "grouping %d: %a, want %a", round,
                 merged, want);
  }
}

/* Addends within 60 binary orders of the largest: the window keeps all their bits, so the
   value is the exact sum rounded (within 2 ulp), which long double Kahan sums approach. */
Test(xsum, close_addends_round_to_the_exact_sum) {
  uint64_t seed = 11;
  for (int round = 0; round < 50; round++) {
    enum { N = 400 };
    pt_xsum s;
    pt_xsum_clear(&s, 1);
    long double sum = 0, c = 0;
    const int top = (int)(lcg(&seed) % 400) - 200;
    for (size_t i = 0; i < N; i++) {
      const double v = wide(&seed, top - 8, top);
      pt_xsum_add(&s, &v, 1);
      const long double y = (long double)v - c, t = sum + y;
      c = (t - sum) - y;
      sum = t;
    }
    const double got = pt_xsum_value(&s), want = (double)sum;
    cr_expect_leq(fabs(got - want), 4 * ldexp(1.0, ilogb(want) - 52) + 0x1p-1074, "%a vs %a",
                  got, want);
  }
}

Test(xsum, cancellation_is_exact) {
  const double v[] = {0x1p900, 1.0, -0x1p900, 0x1p-1074, -1.0, 3.0};
  pt_xsum s;
  pt_xsum_clear(&s, 1);
  for (size_t i = 0; i < 3; i++) pt_xsum_add(&s, &v[i], 1);
  /* 1 lies 900 orders below 2^900: beyond the window, dropped */
  cr_expect_eq(pt_xsum_value(&s), 0.0);
  pt_xsum t;
  pt_xsum_clear(&t, 1);
  pt_xsum_add(&t, &v[3], 1);
  pt_xsum_add(&t, &v[5], 1);
  pt_xsum_add(&t, &v[4], 1);
  cr_expect_eq(pt_xsum_value(&t), 2.0); /* 2^-1074 is 1075 orders below 3: dropped */
  pt_xsum u;
  pt_xsum_clear(&u, 1);
  const double w[] = {0x1p-1074, 0x1p-1074, -0x1p-1073, 0x1p-1060};
  pt_xsum_add(&u, w, 1);
  pt_xsum_add(&u, w + 1, 1);
  pt_xsum_add(&u, w + 2, 1);
  cr_expect_eq(pt_xsum_value(&u), 0.0);
  pt_xsum_add(&u, w + 3, 1);
  cr_expect_eq(pt_xsum_value(&u), 0x1p-1060);
}

Test(xsum, special_values_follow_ieee) {
  const double inf = INFINITY;
  const double cases[][3] = {{1.0, inf, 2.0}, {1.0, -inf, 2.0}, {inf, -inf, 0.5}, {NAN, 1.0, 1.0}};
  const double want[] = {INFINITY, -INFINITY, NAN, NAN};
  for (size_t c = 0; c < 4; c++) {
    pt_xsum s;
    pt_xsum_clear(&s, 1);
    for (size_t i = 0; i < 3; i++) pt_xsum_add(&s, &cases[c][i], 1);
    const double got = pt_xsum_value(&s);
    if (isnan(want[c])) {
      cr_expect(isnan(got), "case %zu", c);
    } else {
      cr_expect_eq(got, want[c], "case %zu: %g", c, got);
    }
  }
  pt_xsum big;
  pt_xsum_clear(&big, 1);
  const double max = 0x1.fffffffffffffp1023;
  pt_xsum_add(&big, &max, 1);
  pt_xsum_add(&big, &max, 1);
  cr_expect_eq(pt_xsum_value(&big), INFINITY, "an exact sum past DBL_MAX rounds to infinity");
}

Test(xsum, validity_of_read_sums) {
  pt_xsum s;
  pt_xsum_clear(&s, 1);
  cr_expect(pt_xsum_valid(&s, 0));
  const double v = -12345.678;
  pt_xsum_add(&s, &v, 1);
  cr_expect(pt_xsum_valid(&s, 1));
  cr_expect_not(pt_xsum_valid(&s, 0), "a bin holds more than its addends allow");
  pt_xsum bad = s;
  bad.flags = 8;
  cr_expect_not(pt_xsum_valid(&bad, 1));
  bad = s;
  bad.top = PT_XSUM_TOP_MAX + 1;
  cr_expect_not(pt_xsum_valid(&bad, 1));
  bad = s;
  bad.top = 1;
  bad.bin[2] = 1; /* bin -1 does not exist */
  cr_expect_not(pt_xsum_valid(&bad, 1));
  pt_xsum_clear(&bad, 1);
  bad.bin[0] = 1;
  cr_expect_not(pt_xsum_valid(&bad, 1), "an empty sum with bits");
}

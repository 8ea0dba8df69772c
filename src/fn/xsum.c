/* SPDX-License-Identifier: MIT */
/* The exact sum of src/fn/xsum.h: integer slices of doubles on a fixed grid of 32-bit bins. */
#include "fn/xsum.h"

#include <math.h>
#include <string.h>

void pt_xsum_clear(pt_xsum *s, size_t n) {
  for (size_t i = 0; i < n; i++) s[i] = (pt_xsum){PT_XSUM_EMPTY, 0, {0, 0, 0}};
}

/* Moves the window of s up so that its top is `top` (>= s->top), dropping the bins that fall
   below it. */
static void raise_top(pt_xsum *s, int32_t top) {
  if (s->top == PT_XSUM_EMPTY) {
    s->top = top;
    return;
  }
  const int32_t shift = top - s->top;
  for (int j = PT_XSUM_BINS - 1; j >= 0; j--) s->bin[j] = j >= shift ? s->bin[j - shift] : 0;
  s->top = top;
}

static void add_one(pt_xsum *s, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  const uint32_t biased = (uint32_t)(bits >> 52) & 0x7ff;
  if (biased == 0x7ff) {
    s->flags |= (bits & 0xfffffffffffffull) ? PT_XSUM_NAN
                : (bits >> 63)                 ? PT_XSUM_NEG_INF
                                               : PT_XSUM_POS_INF;
    return;
  }
  /* v = +-m 2^(q - 1074): q is the grid position of m's lowest bit (subnormals: 0) */
  const uint64_t m = (bits & 0xfffffffffffffull) | (biased ? (uint64_t)1 << 52 : 0);
  const uint32_t q = biased ? biased - 1 : 0;
  const int32_t low = (int32_t)(q >> 5);
  /* m << shift (< 32) spans bits 0 .. 84: its low 64 bits wrap, its high ones come from m */
  const unsigned shift = q & 31;
  const uint64_t t = m << shift;
  const int64_t slice[3] = {(int64_t)(uint32_t)t, (int64_t)(t >> 32),
                            (int64_t)(shift ? m >> (64 - shift) : 0)};
  const int32_t high = low + (slice[2] ? 2 : slice[1] ? 1 : 0);
  if (s->top == PT_XSUM_EMPTY || high > s->top) raise_top(s, high);
  const int negative = (int)(bits >> 63);
  for (int k = 0; k < 3; k++) {
    const int32_t j = s->top - (low + k);
    if (j >= 0 && j < PT_XSUM_BINS) s->bin[j] += negative ? -slice[k] : slice[k];
  }
}

void pt_xsum_add(pt_xsum *s, const double *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i] != 0.0) add_one(&s[i], v[i]);
}

void pt_xsum_merge(pt_xsum *into, const pt_xsum *from, size_t n) {
  for (size_t i = 0; i < n; i++) {
    pt_xsum a = from[i];
    into[i].flags |= a.flags;
    if (a.top == PT_XSUM_EMPTY) continue;
    if (into[i].top == PT_XSUM_EMPTY || a.top > into[i].top) raise_top(&into[i], a.top);
    if (a.top < into[i].top) raise_top(&a, into[i].top);
    for (int j = 0; j < PT_XSUM_BINS; j++) into[i].bin[j] += a.bin[j];
  }
}

/* 2^e for a normal exponent e (-1022 <= e <= 1023), built from its bits */
static double power2(int e) {
  const uint64_t bits = (uint64_t)(e + 1023) << 52;
  double p;
  memcpy(&p, &bits, sizeof p);
  return p;
}

/* v 2^e rounded once, as ldexp (|v| < 2^129, -1138 <= e <= 1006), by multiplications: below
   the normal range the first factor is exact and the second rounds. */
static double scale(double v, int e) {
  return e >= -1022 ? v * power2(e) : v * power2(e + 600) * power2(-600);
}

/* floor(v / 2^32) and v mod 2^32, exactly, for any sign (GCC and Clang shift signed values
   arithmetically) */
static __int128 carry(__int128 v, uint64_t *rest) {
  *rest = (uint64_t)v & 0xffffffffu;
  return v >> 32;
}

double pt_xsum_value(const pt_xsum *s) {
  if (s->flags & PT_XSUM_NAN ||
      (s->flags & (PT_XSUM_POS_INF | PT_XSUM_NEG_INF)) == (PT_XSUM_POS_INF | PT_XSUM_NEG_INF))
    return NAN;
  if (s->flags) return s->flags & PT_XSUM_POS_INF ? INFINITY : -INFINITY;
  if (s->top == PT_XSUM_EMPTY) return 0.0;
  /* the total as high 2^64 + low with 0 <= low < 2^64, in units of the lowest bin */
  uint64_t r1, r2;
  const __int128 c1 = carry((__int128)s->bin[2], &r2);
  const __int128 high = (__int128)s->bin[0] + carry((__int128)s->bin[1] + c1, &r1);
  /* high fits an int64 but for sums near 2^127 units: convert it without the int128 routine */
  const double head = high >= INT64_MIN && high <= INT64_MAX ? (double)(int64_t)high : (double)high;
  const double total = head * 0x1p64 + (double)(r1 << 32 | r2);
  return scale(total, 32 * (s->top - (PT_XSUM_BINS - 1)) - 1074);
}

int pt_xsum_valid(const pt_xsum *s, uint64_t addends) {
  if (s->flags & ~(uint32_t)(PT_XSUM_POS_INF | PT_XSUM_NEG_INF | PT_XSUM_NAN)) return 0;
  if (s->top < PT_XSUM_EMPTY || s->top > PT_XSUM_TOP_MAX || addends > PT_XSUM_MAX_ADDENDS) return 0;
  const int64_t limit = (int64_t)(addends * 0xffffffffull);
  for (int j = 0; j < PT_XSUM_BINS; j++) {
    if ((s->top - j < 0 || s->top == PT_XSUM_EMPTY) && s->bin[j] != 0) return 0;
    if (s->bin[j] > limit || s->bin[j] < -limit) return 0;
  }
  return 1;
}

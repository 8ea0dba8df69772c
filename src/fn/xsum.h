/* SPDX-License-Identifier: MIT */
/* An exact, order-independent sum of doubles: the accumulator every perturbed estimate adds its
   sample groups into, so that threads, shards and machines may add the groups in any order and
   any grouping and still get the same bits.

   The bits of a double d = +-m 2^e (m < 2^53 an integer) sit at positions e + 1074 >= 0 on one
   fixed grid of 32-bit bins, bin b holding the weights 2^(32b - 1074) .. 2^(32b - 1043).  A sum
   keeps three bins, `top` and the two below it, where `top` is the highest bin any addend has
   reached: each addend's slices in those bins are added as integers (exactly), and its bits in
   lower bins are dropped.  When an addend reaches above `top`, the window moves up and drops
   its lowest bins, whose contents are exactly the slices of those bins, and so exactly what
   would have been dropped had that addend come first.  So the kept integers are a function of
   the set of addends alone (the window's top is their greatest bin), whatever the order:
   adding and merging are exactly associative and commutative.  The dropped bits lie 64 or
   more bits below the greatest addend's leading bit: the sum is accurate to about 2^-64 of the
   largest group sum, far below the float it is rounded to.

   Each bin is an int64 fed slices below 2^32, so it holds 2^31 addends without overflow; the
   perturbed estimators add at most PT_XSUM_MAX_ADDENDS (one per sample group).  Infinities and
   NaNs are kept as flags and give IEEE's answer: NaN if any addend was NaN or both infinities
   occurred, else the infinity that occurred. */
#ifndef PT_XSUM_H
#define PT_XSUM_H

#include <stddef.h>
#include <stdint.h>

#define PT_XSUM_BINS 3
#define PT_XSUM_MAX_ADDENDS ((uint64_t)1 << 31)
/* top of a sum that has had no finite non-zero addend */
#define PT_XSUM_EMPTY (-1)
/* the highest bin a double reaches: (971 + 1074 + 52) / 32 */
#define PT_XSUM_TOP_MAX 65

enum { PT_XSUM_POS_INF = 1, PT_XSUM_NEG_INF = 2, PT_XSUM_NAN = 4 };

typedef struct pt_xsum {
  int32_t top;   /* the highest bin of bin[0], or PT_XSUM_EMPTY */
  uint32_t flags;
  int64_t bin[PT_XSUM_BINS]; /* bin[j] is bin top - j */
} pt_xsum;

/* n empty sums. */
void pt_xsum_clear(pt_xsum *s, size_t n);
/* s[i] += v[i] for i < n, exactly; zeros are skipped (they change nothing). */
void pt_xsum_add(pt_xsum *s, const double *v, size_t n);
/* into[i] += from[i] for i < n, exactly. */
void pt_xsum_merge(pt_xsum *into, const pt_xsum *from, size_t n);
/* The sum rounded to a double (exact bins, two roundings at most: within 2 ulp). */
double pt_xsum_value(const pt_xsum *s);
/* 1 if s has the shape pt_xsum_add and pt_xsum_merge make from at most `addends` addends
   (for sums read from bytes: each bin within addends slices of 2^32). */
int pt_xsum_valid(const pt_xsum *s, uint64_t addends);

#endif

/* Independent scalar references, written from API.md's rules and sharing no code with the
   library: the truth every ISA's kernels are checked against. */
#ifndef PT_TEST_REFERENCE_H
#define PT_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* API.md's order: 1 if a comes strictly before b (NaN last; -0 == +0; ties are not "before"). */
int pt_ref_less(float a, float b);

/* First index of the greatest element of x[0, d) under that order. */
int32_t pt_ref_argmax(const float *x, size_t d);

/* Philox4x32-10 as the Random123 paper states it (round keys key + r * Weyl constants). */
void pt_ref_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif

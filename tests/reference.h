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

/* Stable argsort of x[0, d) under that order: a plain bottom-up merge sort of indices.
   tmp: d elements of scratch. */
void pt_ref_argsort(const float *x, size_t d, int32_t *perm, int32_t *tmp);

#endif

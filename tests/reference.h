/* SPDX-License-Identifier: MIT */
/* Independent scalar references, written from the manual's rules and sharing no code with the
   library: the truth every ISA's kernels are checked against. */
#ifndef PT_TEST_REFERENCE_H
#define PT_TEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

/* The order of pt_argmax_rows(3): 1 if a comes strictly before b (NaN last; -0 == +0; ties are
   not "before"). */
int pt_ref_less(float a, float b);

/* First index of the greatest element of x[0, d) under that order. */
int32_t pt_ref_argmax(const float *x, size_t d);

/* Philox4x32-10 as the Random123 paper states it (round keys key + r * Weyl constants). */
void pt_ref_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Word k of the stream of key {seed, stream}, perturb(7)'s layout, one Philox block per word. */
uint32_t pt_ref_word(uint64_t seed, uint64_t stream, uint64_t k);

/* The noise of pt_noise_fill(3) at word k: uniform exactly (float), the others evaluated in
   double on that same uniform (the "exact value of the formula" the accuracy bounds refer to). */
float pt_ref_uniform(uint64_t seed, uint64_t stream, uint64_t k);
double pt_ref_gumbel(uint64_t seed, uint64_t stream, uint64_t k);
double pt_ref_normal(uint64_t seed, uint64_t stream, uint64_t k);

/* Stable argsort of x[0, d) under that order: a plain bottom-up merge sort of indices.
   tmp: d elements of scratch. */
void pt_ref_argsort(const float *x, size_t d, int32_t *perm, int32_t *tmp);

/* sum_r w[r] * x[r*ld + j] in double (w == NULL: weights 1), and sum_r |w[r] x[r*ld + j]| in
   *magnitude: the float64 truth for the weighted sums' accuracy bound. */
double pt_ref_weighted_sum(const float *x, size_t rows, size_t ld, const float *w, size_t j,
                           double *magnitude);

/* The same sum in the exact order of operations perturb(7)'s determinism rests on, as
   src/kernels/weighted_sum_rows.c.j2 describes it in words (blocked partial sums, fixed tree,
   double accumulation, canonical NaN), written independently in plain C: every ISA's kernel
   must equal it bit for bit, which pins the bits across machines as well. */
float pt_ref_weighted_sum_ordered(const float *x, size_t rows, size_t d, size_t ld,
                                  const float *w, size_t j);

#endif

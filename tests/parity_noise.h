/* ISA parity of the noise kernels (tests/parity_noise.c): the parity_<op> functions that
   tests/parity.c runs on every case of the battery, and the known answers that pin the
   stream's bits on every ISA and machine to the same constants. */
#ifndef PT_TEST_PARITY_NOISE_H
#define PT_TEST_PARITY_NOISE_H

#include "cases.h"
#include "kernels.h"
#include "parity.h"

void parity_noise_uniform(const pt_kernel_table *k, const pt_kernel_table *scalar,
                          const pt_case *c, const float *x, pt_parity_result *res);
void parity_noise_gumbel(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res);
void parity_noise_normal(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res);

/* FNV-1a over the bits of out[0, n) */
uint64_t pt_noise_hash(const float *out, size_t n);

/* A fill whose hash is pinned: key, offset, n, and the expected hash per kind. */
typedef struct pt_noise_known {
  pt_key key;
  uint64_t offset;
  size_t n;
  uint64_t uniform, gumbel, normal;
} pt_noise_known;
extern const pt_noise_known pt_noise_known_fills[];
extern const size_t pt_noise_known_count;

/* Checks the pinned fills and Random123's zero vector through the stream on one ISA's
   kernels; a mismatch counts as one failed check in res. */
void pt_parity_noise_known(const pt_kernel_table *k, pt_parity_result *res);

#endif

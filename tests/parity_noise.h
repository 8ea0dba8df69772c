/* SPDX-License-Identifier: MIT */
/* The pinned noise fills of tests/parity_noise.c, which tests/test_noise.c also checks against
   the reference stream. */
#ifndef PT_TEST_PARITY_NOISE_H
#define PT_TEST_PARITY_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "perturb.h"

/* A fill whose hash is pinned: key, offset, n, and the expected hash per kind. */
typedef struct pt_noise_known {
  pt_key key;
  uint64_t offset;
  size_t n;
  uint64_t uniform, gumbel, normal;
} pt_noise_known;
extern const pt_noise_known pt_noise_known_fills[];
extern const size_t pt_noise_known_count;

#endif

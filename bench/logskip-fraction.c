/* SPDX-License-Identifier: MIT */
/* The share of vectors for which the fused Gumbel argmax's value path (src/kernels/
   fused_argmax.c.j2's argmin_segment_bounded) would take the logarithm of,
   counted outside the library by the kernel's rule on the stream's uniforms (pt_noise_fill; the
   keys through libm's logf, which may differ from SLEEF's in the last place):
   perturbed-bench's logits (uniform in [-1, 1], sigma 0.5), one segment, PT_LANES of 8 (AVX2)
   and 16 (AVX-512).  The kernel scans only segments of PT_FUSED_BOUNDED inputs on average.

   usage: bench/logskip-fraction [M]   (M samples per d, default 2000) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "perturb.h"

enum { BOUNDED = 512 }; /* PT_FUSED_BOUNDED: shorter segments keep the full noise (all logs) */

/* the kernel's none_below for one lane: (1 - u) a, rounded once, above least (1 + 2^-19) */
static int above(float u, float a, float least) { return (1.0f - u) * a > least * (1.0f + 0x1p-19f); }

/* samples along their inputs: the first vector always, then each vector with a lane not above */
static void long_samples(const float *u, const float *a, size_t d, size_t m, size_t lanes,
                         double *taken, double *vectors) {
  for (size_t r = 0; r < m; r++) {
    const float *ur = u + r * d;
    float least = INFINITY;
    for (size_t j = 0; j < d; j += lanes) {
      const size_t live = d - j < lanes ? d - j : lanes;
      int take = j == 0;
      for (size_t l = 0; l < live && !take; l++) take = !above(ur[j + l], a[j + l], least);
      *vectors += 1;
      if (!take) continue;
      *taken += 1;
      for (size_t l = 0; l < live; l++) least = fminf(least, -logf(ur[j + l]) * a[j + l]);
    }
  }
}

int main(int argc, char **argv) {
  const size_t m = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 2000;
  const size_t ds[] = {16, 100, 1000, 10000};
  printf("%8s %12s %12s   %s\n", "d", "8 lanes", "16 lanes", "the kernel");
  for (size_t k = 0; k < sizeof ds / sizeof ds[0]; k++) {
    const size_t d = ds[k];
    float *x = malloc(d * sizeof *x), *a = malloc(d * sizeof *a), *u = malloc(d * m * sizeof *u);
    if (!x || !a || !u || pt_noise_fill(PT_NOISE_UNIFORM, (pt_key){42, 0}, 0, u, d * m) != PT_OK) {
      fprintf(stderr, "logskip-fraction: out of memory or noise refused\n");
      return 1;
    }
    uint64_t s = 42;
    float mx = -INFINITY;
    for (size_t i = 0; i < d; i++) {
      s = s * 6364136223846793005u + 1442695040888963407u;
      x[i] = (float)(s >> 40) * 0x1p-24f * 2.0f - 1.0f;
      mx = fmaxf(mx, x[i]);
    }
    for (size_t i = 0; i < d; i++) a[i] = expf((mx - x[i]) / 0.5f);
    printf("%8zu", d);
    for (size_t lanes = 8; lanes <= 16; lanes *= 2) {
      double taken = 0, vectors = 0;
      long_samples(u, a, d, m, lanes, &taken, &vectors);
      printf(" %11.2f%%", 100.0 * taken / vectors);
    }
    printf("   %s\n", d >= BOUNDED ? "scans" : "keeps the full noise (100%)");
    free(x);
    free(a);
    free(u);
  }
  return 0;
}

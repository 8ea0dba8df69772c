/* SPDX-License-Identifier: MIT */
/* How many logarithms the fused Gumbel argmax's value path (src/kernels/fused_argmax.c.j2's
   segment_candidates) takes: the inputs it keeps as candidates, counted outside the library by
   the kernel's rule on the stream's uniforms (pt_noise_fill), with perturbed-bench's logits
   (uniform in [-1, 1]), one segment, at sigma 0.5 (argmax_eval) and 0.1 (fy_loss_grad_batch).
   The rule: each chunk of 64 blocks of 4 vectors (PT_LANES 8 on AVX2, 16 on AVX-512) keeps
   the inputs whose floor (1 - u) a is not above T (1 + 2^-19), T = c (1 + 2^-19) for c the least
   ceiling (1 - u) a (1 + t (1/2 + t K)), t = 1 - u, K = fl(2/3) rounded up (u > 1/2; else
   +inf: fused_lib.j2's key_ceiling) of the segment up to the chunk's end.  The kernel takes the candidates'
   logarithms a whole vector at a time; the full noise would take one per input.  Segments
   shorter than the ISA's bounded_min keep the full noise.

   usage: bench/logskip-fraction [M]   (M samples per d, 1 to 10^5, default 2000) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "perturb.h"

/* the kernel's key_ceiling of its key_floor, in their operations' order */
static float ceiling_of(float u, float a) {
  const float t = 1.0f - u, floor = t * a;
  return u < 0.5f ? INFINITY : floor * fmaf(t, fmaf(t, 0x1.555556p-1f, 0.5f), 1.0f);
}

/* candidates of m samples of d inputs (uniforms u, coefficients a) in chunks of `chunk` */
static double candidates(const float *u, const float *a, size_t d, size_t m, size_t chunk) {
  double kept = 0;
  for (size_t r = 0; r < m; r++) {
    const float *ur = u + r * d;
    float least = INFINITY;
    for (size_t c0 = 0; c0 < d; c0 += chunk) {
      const size_t c1 = d - c0 < chunk ? d : c0 + chunk;
      for (size_t i = c0; i < c1; i++) least = fminf(least, ceiling_of(ur[i], a[i]));
      const float over = least * (1.0f + 0x1p-19f) * (1.0f + 0x1p-19f);
      for (size_t i = c0; i < c1; i++) kept += !((1.0f - ur[i]) * a[i] > over);
    }
  }
  return kept;
}

int main(int argc, char **argv) {
  char *end = NULL;
  const unsigned long long given = argc == 2 ? strtoull(argv[1], &end, 10) : 0;
  if (argc > 2 || (argc == 2 && (*argv[1] < '1' || *argv[1] > '9' || *end || given > 100000))) {
    fprintf(stderr, "usage: %s [M]   (M samples per d, 1 to 10^5, default 2000)\n", argv[0]);
    return 2;
  }
  const size_t m = argc == 2 ? (size_t)given : 2000;
  const size_t ds[] = {16, 100, 1000, 10000};
  const float sigmas[] = {0.5f, 0.1f};
  printf("candidates per sample (and of its inputs), by lanes:\n%6s %6s %21s %21s\n", "sigma", "d",
         "8 lanes", "16 lanes");
  for (size_t q = 0; q < sizeof sigmas / sizeof sigmas[0]; q++)
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
      for (size_t i = 0; i < d; i++) a[i] = expf((mx - x[i]) / sigmas[q]);
      printf("%6.1f %6zu", (double)sigmas[q], d);
      for (size_t lanes = 8; lanes <= 16; lanes *= 2) {
        const double kept = candidates(u, a, d, m, 4 * lanes * 64) / (double)m;
        printf(" %10.2f (%6.2f%%)", kept, 100.0 * kept / (double)d);
      }
      printf("\n");
      free(x);
      free(a);
      free(u);
    }
  return 0;
}

/* SPDX-License-Identifier: MIT */
/* The fused Gumbel kernels' per-call bounds (fn_fused_bounds.h). */
#include "fn/fn_fused_bounds.h"

#include <math.h>

void pt_fused_gumbel_coefficients(const pt_kernel_table *k, const float *x, size_t segments,
                                  const size_t *offsets, const int32_t *top, float sigma,
                                  float *tmp, float *a) {
  for (size_t s = 0; s < segments; s++)
    for (size_t i = offsets[s]; i < offsets[s + 1]; i++) tmp[i] = (x[i] - x[top[s]]) / sigma;
  k->perturb_tile(tmp, 1, offsets[segments], NULL, 0.0f, NULL, a); /* exp(-tmp) */
}

/* Why the margin mu = exp(lambda), lambda = 2^-15 + 2^-20 X / sigma + 2^-146 / sigma with
   X = max |x|, makes the top-k's rule exact.  The kernel excludes input i when its score floor
   f_i is above fl(c mu) <= 2^64, c the k-th least of group ceilings: k other inputs j have
   ceilings c_j <= c.  With a* = exp((x_M - x) / sigma) the exact coefficient and E the stream's
   float noise:
   - the bounds (fused_lib.j2's key_floor and key_ceiling, or fl(E a)) give E_i a_i >= f_i
     (1 - 2^-20) / (1 + 2^-24) and E_j a_j <= c_j (1 + 2^-20) / (1 - 2^-24)^4, so
     ln(E_i a_i) - ln(E_j a_j) > ln mu - 2^-18;
   - a's quotient is within 2^-23 r (1 + 2^-24) (+ 2^-150) of r = (x_M - x) / sigma <=
     2 X / sigma and its exp within 2^-23 relative, so |ln(a / a*)| <= 2^-22 X / sigma
     (1 + 2^-24) + 2^-23 (1 + 2^-22) for each of i and j;
   - the float key fl(x + fl(sigma G)) is within Delta of x - sigma ln E, where G's error is at
     most 2^-21 |ln E| (PT_NOISE_GUMBEL_ERROR, checked for every uniform on every ISA) and
     |ln E| <= 16.7, and each of the two roundings is within 2^-24 relative or 2^-150
     (subnormal): Delta / sigma <= 2^-24 X / sigma + 16.7 (2^-23 + 2^-21) (1 + 2^-21) +
     2^-149 / sigma, as long as nothing overflows, which X + 17 sigma < 2^127 ensures.
   The exact keys differ by sigma (ln(E_i a*_i) - ln(E_j a*_j)), so key_i < key_j whenever
   ln mu > 2^-18 + 2 (2^-22 X / sigma + 2^-23) + 2 Delta / sigma, which is below
   50.3 2^-21 + 1.26 2^-21 X / sigma + 2^-148 / sigma: lambda is 64 2^-21 + 2 2^-21 X / sigma +
   2^-146 / sigma, and the float mu is rounded up.  So i has k keys above its own and is no
   winner.  An infinite a_i (a quotient above 88.7) bounds nothing, but then key_i < x_M -
   72 sigma + Delta_i while c mu <= 2^64 makes key_j > x_M - 44.5 sigma - sigma
   |ln(a_j / a*_j)| - Delta_j, and those errors, Delta_i + Delta_j + sigma |ln(a_j / a*_j)|,
   stay below 25 sigma wherever lambda is below 64 (at most 3/8 of its X term and 1/4 of its
   subnormal term, times sigma, and constants under 2^-16).  Past that, with X + 17 sigma >=
   2^127 (keys that may overflow and tie at +inf), or with a non-finite x, no margin. */
float pt_fused_topk_margin(const float *x, size_t z, float sigma) {
  double most = 0.0;
  for (size_t i = 0; i < z; i++) {
    if (!isfinite(x[i])) return INFINITY;
    most = fmax(most, fabs((double)x[i]));
  }
  if (most + 17.0 * (double)sigma >= 0x1p127) return INFINITY;
  const double lambda = 0x1p-15 + (0x1p-20 * most + 0x1p-146) / (double)sigma;
  return lambda < 64.0 ? nextafterf((float)exp(lambda), INFINITY) : INFINITY;
}

/* SPDX-License-Identifier: MIT */
#include "reference.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

int pt_ref_less(float a, float b) {
  if (isnan(a)) return 0;
  if (isnan(b)) return 1;
  return a < b;
}

int32_t pt_ref_argmax(const float *x, size_t d) {
  size_t best = 0;
  for (size_t j = 1; j < d; j++)
    if (pt_ref_less(x[best], x[j])) best = j;
  return (int32_t)best;
}

void pt_ref_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  static const uint32_t mul[2] = {0xD2511F53u, 0xCD9E8D57u}, weyl[2] = {0x9E3779B9u, 0xBB67AE85u};
  uint32_t x[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  for (uint32_t round = 0; round < 10; round++) {
    const uint32_t rk[2] = {key[0] + round * weyl[0], key[1] + round * weyl[1]};
    const uint64_t a = (uint64_t)x[0] * mul[0], b = (uint64_t)x[2] * mul[1];
    const uint32_t y[4] = {(uint32_t)(b >> 32) ^ x[1] ^ rk[0], (uint32_t)b,
                           (uint32_t)(a >> 32) ^ x[3] ^ rk[1], (uint32_t)a};
    for (int i = 0; i < 4; i++) x[i] = y[i];
  }
  for (int i = 0; i < 4; i++) out[i] = x[i];
}

uint32_t pt_ref_word(uint64_t seed, uint64_t stream, uint64_t k) {
  const uint64_t c = (k / 64) * 16 + (k % 16), w = (k % 64) / 16;
  const uint32_t ctr[4] = {(uint32_t)(c & 0xFFFFFFFFu), (uint32_t)(c >> 32),
                           (uint32_t)(stream & 0xFFFFFFFFu), (uint32_t)(stream >> 32)};
  const uint32_t key[2] = {(uint32_t)(seed & 0xFFFFFFFFu), (uint32_t)(seed >> 32)};
  uint32_t out[4];
  pt_ref_philox(ctr, key, out);
  return out[w];
}

float pt_ref_uniform(uint64_t seed, uint64_t stream, uint64_t k) {
  /* 24 bits, the lowest forced to 1, as a fraction of 2^24: exact in float */
  const uint32_t m = (pt_ref_word(seed, stream, k) >> 8) | 1u;
  return (float)ldexp((double)m, -24);
}

double pt_ref_gumbel(uint64_t seed, uint64_t stream, uint64_t k) {
  return -log(-log((double)pt_ref_uniform(seed, stream, k)));
}

double pt_ref_normal(uint64_t seed, uint64_t stream, uint64_t k) {
  const uint64_t even = k & ~(uint64_t)16; /* word w & ~1 of the same counter */
  const double a = pt_ref_uniform(seed, stream, even), b = pt_ref_uniform(seed, stream, even + 16);
  const double r = sqrt(-2.0 * log(a)), t = 6.283185307179586477 * b; /* 2 pi */
  return k & 16 ? r * sin(t) : r * cos(t);
}

void pt_ref_argsort(const float *x, size_t d, int32_t *perm, int32_t *tmp) {
  for (size_t i = 0; i < d; i++) perm[i] = (int32_t)i;
  int32_t *src = perm, *dst = tmp;
  for (size_t width = 1; width < d; width *= 2) {
    for (size_t lo = 0; lo < d; lo += 2 * width) {
      const size_t mid = lo + width < d ? lo + width : d;
      const size_t hi = mid + width < d ? mid + width : d;
      size_t a = lo, b = mid, out = lo;
      /* the right run goes first only when strictly smaller: stability */
      while (a < mid && b < hi) dst[out++] = pt_ref_less(x[src[b]], x[src[a]]) ? src[b++] : src[a++];
      while (a < mid) dst[out++] = src[a++];
      while (b < hi) dst[out++] = src[b++];
    }
    int32_t *t = src;
    src = dst;
    dst = t;
  }
  if (src != perm) memcpy(perm, src, d * sizeof *perm);
}

double pt_ref_weighted_sum(const float *x, size_t rows, size_t ld, const float *w, size_t j,
                           double *magnitude) {
  double sum = 0.0, mag = 0.0;
  for (size_t r = 0; r < rows; r++) {
    const double term = (w ? (double)w[r] : 1.0) * (double)x[r * ld + j]; /* exact */
    sum += term;
    mag += fabs(term);
  }
  *magnitude = mag;
  return sum;
}

float pt_ref_weighted_sum_ordered(const float *x, size_t rows, size_t d, size_t ld,
                                  const float *w, size_t j) {
  /* narrow rows: 16 interleaved partial sums per block of 512 rows; wide: one per 64 rows */
  const size_t parts = d <= 128 ? 16 : 1, block = d <= 128 ? 512 : 64;
  double total = 0.0;
  for (size_t start = 0; start < rows; start += block) {
    float p[16] = {0};
    for (size_t r = start; r < rows && r < start + block; r++)
      p[(r - start) % parts] = fmaf(w ? w[r] : 1.0f, x[r * ld + j], p[(r - start) % parts]);
    for (size_t h = parts / 2; h >= 1; h /= 2)
      for (size_t t = 0; t < h; t++) p[t] = p[t] + p[t + h];
    total += (double)p[0];
  }
  const float f = (float)total;
  return isnan(f) ? NAN : f;
}

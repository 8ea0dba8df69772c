#include "reference.h"

#include <math.h>
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

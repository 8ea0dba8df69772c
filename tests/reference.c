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

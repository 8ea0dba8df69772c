#include "reference.h"

#include <math.h>

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

#include "reference.h"

#include <math.h>
#include <stdint.h>

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

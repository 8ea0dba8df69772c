/* SPDX-License-Identifier: MIT */
/* The limit kernels of perturb-bench --limits (src/kernels/limits.c.j2) against references:
   the xor of the Philox words exactly (the same words on every ISA), the sums of logarithms
   and of Box-Muller pairs within float summation's error of double sums. */
#include <math.h>
#include <stdlib.h>

#include "parity.h"
#include "reference.h"

/* The case's key and a word count of 1 to 4 whole steps of 1024 plus a part step, which the
   kernels leave out. */
static size_t limit_params(const pt_case *c, pt_key *key) {
  uint64_t s = c->seed;
  key->seed = pt_test_rand(&s);
  key->stream = pt_test_rand(&s);
  return 1024 * (1 + (size_t)(pt_test_rand(&s) % 4)) + (size_t)(pt_test_rand(&s) % 1024);
}

void parity_limit_philox(const pt_kernel_table *k, const pt_kernel_table *scalar,
                         const pt_case *c, const float *x, pt_parity_result *res) {
  (void)scalar;
  (void)x;
  pt_key key;
  const size_t n = limit_params(c, &key);
  const uint32_t seed[2] = {(uint32_t)key.seed, (uint32_t)(key.seed >> 32)};
  uint32_t fold = 0;
  for (uint64_t ctr = 0; ctr < n / 1024 * 256; ctr++) {
    const uint32_t block[4] = {(uint32_t)ctr, (uint32_t)(ctr >> 32), (uint32_t)key.stream,
                               (uint32_t)(key.stream >> 32)};
    uint32_t out[4];
    pt_ref_philox(block, seed, out);
    fold ^= out[0] ^ out[1] ^ out[2] ^ out[3];
  }
  const float got = k->limit_philox(key, NULL, n), want = (float)(fold >> 8);
  if (got != want)
    pt_parity_fail(res, "limit_philox %s, %zu words: %.0f, want %.0f", pt_isa_name(k->isa), n,
                   (double)got, (double)want);
}

/* The sums of the log and Box-Muller limits over uniforms of the reference stream, against
   double sums: |got - want| within 1e-4 of the sum of the terms' magnitudes. */
static void check_sum(const pt_kernel_table *k, const pt_case *c, int box_muller,
                      pt_parity_result *res) {
  pt_key key;
  const size_t n = limit_params(c, &key);
  float *u = malloc(n * sizeof *u);
  if (!u) {
    pt_parity_fail(res, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++)
    u[i] = (float)((pt_ref_word(key.seed, key.stream, i) >> 8) | 1) * 0x1p-24f;
  const size_t whole = n - n % 1024;
  double want = 0.0, scale = 0.0;
  for (size_t i = 0; i < (box_muller ? whole / 2 : whole); i++) {
    if (!box_muller) {
      want += log(u[i]);
      scale += fabs(log(u[i]));
    } else { /* the pair (u[i], u[whole/2 + i]) of the kernel's whole steps */
      const double r = sqrt(-2.0 * log(u[i])), t = 6.283185307179586 * u[whole / 2 + i];
      want += r * (cos(t) + sin(t));
      scale += r * (fabs(cos(t)) + fabs(sin(t)));
    }
  }
  const float got = box_muller ? k->limit_box_muller(key, u, n) : k->limit_log(key, u, n);
  if (!(fabs(got - want) <= 1e-4 * scale))
    pt_parity_fail(res, "limit_%s %s, %zu floats: %.6g, want %.6g", box_muller ? "box_muller" : "log",
                   pt_isa_name(k->isa), n, (double)got, want);
  free(u);
}

void parity_limit_log(const pt_kernel_table *k, const pt_kernel_table *scalar, const pt_case *c,
                      const float *x, pt_parity_result *res) {
  (void)scalar;
  (void)x;
  check_sum(k, c, 0, res);
}

void parity_limit_box_muller(const pt_kernel_table *k, const pt_kernel_table *scalar,
                             const pt_case *c, const float *x, pt_parity_result *res) {
  (void)scalar;
  (void)x;
  check_sum(k, c, 1, res);
}

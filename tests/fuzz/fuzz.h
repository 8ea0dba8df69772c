/* SPDX-License-Identifier: MIT */
/* What the fuzz harnesses share (docs/fuzzing.md): reading the fuzzer's bytes as the arguments
   of calls, canary-filled outputs, and the properties every call must keep.  A harness defines
   LLVMFuzzerTestOneInput; libFuzzer drives it (make fuzz), and replay.c runs it over the
   checked-in corpus in make check.  A broken property traps (__builtin_trap), which both
   report as a crash with the input that caused it. */
#ifndef PT_FUZZ_H
#define PT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "perturb.h"
#include "runtime/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, consumed from the front; past its end every read gives zeros. */
typedef struct fuzz_input {
  const uint8_t *at;
  size_t left;
} fuzz_input;

static inline uint64_t fuzz_bits(fuzz_input *in, unsigned bytes) {
  uint64_t v = 0;
  for (unsigned i = 0; i < bytes; i++) {
    v |= (uint64_t)(in->left ? *in->at : 0) << (8 * i);
    if (in->left) {
      in->at++;
      in->left--;
    }
  }
  return v;
}

/* An integer in [0, n) (n >= 1). */
static inline size_t fuzz_below(fuzz_input *in, size_t n) {
  return (size_t)(fuzz_bits(in, n <= 256 ? 1 : n <= 65536 ? 2 : 4) % n);
}

/* A float: half of them from a short list of the values that break kernels (signed zeros,
   infinities, NaNs, subnormals, the extremes, ties), the rest any bit pattern. */
static inline float fuzz_float(fuzz_input *in) {
  static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u,
                                     0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x00000001u,
                                     0x807fffffu, 0x7f7fffffu, 0xff7fffffu, 0x3f800000u,
                                     0xbf800000u, 0x3f000000u, 0x40000000u, 0x3f800000u};
  const uint32_t pick = (uint32_t)fuzz_bits(in, 1);
  uint32_t bits = pick < 128 ? special[pick % 16] : (uint32_t)fuzz_bits(in, 4);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* A float that is finite and moderate (|f| < 8, on a grid of 1/16 so that ties are common). */
static inline float fuzz_finite(fuzz_input *in) {
  return (float)((int)fuzz_bits(in, 1) - 128) / 16.0f;
}

static inline void fuzz_check(int ok) {
  if (!ok) __builtin_trap();
}

#define FUZZ_CANARY 0xA5u

static inline void fuzz_fill_canary(void *p, size_t bytes) { memset(p, FUZZ_CANARY, bytes); }

/* 1 when every byte is still the canary: nothing was written. */
static inline int fuzz_untouched(const void *p, size_t bytes) {
  const unsigned char *c = p;
  for (size_t i = 0; i < bytes; i++)
    if (c[i] != FUZZ_CANARY) return 0;
  return 1;
}

/* The allocation the input makes fail (its index in the call), or none. */
static inline size_t fuzz_failing_allocation(fuzz_input *in) {
  const size_t pick = (size_t)fuzz_bits(in, 1);
  return pick < 224 ? PT_ALLOC_NEVER_FAIL : pick - 224;
}

#endif

/* SPDX-License-Identifier: MIT */
/* Fuzzes pt_noise_fill: kinds (an unknown one included), keys, offsets up to the stream's last
   word, lengths, thread counts.  A refusal writes nothing; a fill equals two fills of its
   halves cut anywhere and the scalar kernels' fill bit for bit, its uniforms are exactly the
   words of pt_philox4x32_10 by the documented layout, and its Gumbel noise is within the
   documented 1e-6 of -log(-log(u)). */
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"

static float uniform_at(pt_key key, uint64_t k) {
  const uint64_t c = (k / 64) * 16 + k % 16;
  const uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), (uint32_t)key.stream,
                           (uint32_t)(key.stream >> 32)};
  const uint32_t seed[2] = {(uint32_t)key.seed, (uint32_t)(key.seed >> 32)};
  uint32_t out[4];
  pt_philox4x32_10(ctr, seed, out);
  return (float)((out[(k % 64) / 16] >> 8) | 1) * 0x1p-24f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  const pt_noise kind = (pt_noise)fuzz_below(&in, 4); /* 3: not a kind */
  const pt_key key = {fuzz_bits(&in, 8), fuzz_bits(&in, 8)};
  const unsigned where = (unsigned)fuzz_bits(&in, 1) % 4;
  const size_t n = fuzz_below(&in, 3000);
  uint64_t offset = fuzz_bits(&in, 8);
  if (where == 0) offset %= 1u << 12;
  if (where == 1) offset = UINT64_MAX - offset % 4096; /* at the end: some overflow */
  if (where == 2) offset = ((uint64_t)1 << 34) - offset % 4096; /* across 2^32 counters */
  const size_t cut = n ? fuzz_below(&in, n + 1) : 0;
  pt_set_num_threads(1 + fuzz_below(&in, 2));

  float *out = malloc((n + 1) * sizeof *out), *again = malloc((n + 1) * sizeof *again);
  fuzz_check(out && again);
  fuzz_fill_canary(out, (n + 1) * sizeof *out);
  const pt_status s = pt_noise_fill(kind, key, offset, out, n);
  const int overflow = n > 0 && offset + (n - 1) < offset;
  if (s != PT_OK) {
    fuzz_check(fuzz_untouched(out, (n + 1) * sizeof *out) && pt_last_error()[0] != '\0');
    fuzz_check(kind == 3 ? s == PT_EINVAL : overflow && s == PT_EOVERFLOW);
  } else {
    fuzz_check(kind != 3 && !overflow && fuzz_untouched(out + n, sizeof *out));
    fuzz_check(pt_noise_fill(kind, key, offset, again, cut) == PT_OK);
    fuzz_check(pt_noise_fill(kind, key, offset + cut, again + cut, n - cut) == PT_OK);
    fuzz_check(memcmp(out, again, n * sizeof *out) == 0);
    const pt_isa isa = pt_isa_active();
    fuzz_check(pt_isa_select(PT_ISA_SCALAR) == PT_OK);
    fuzz_check(pt_noise_fill(kind, key, offset, again, n) == PT_OK);
    fuzz_check(pt_isa_select(isa) == PT_OK);
    fuzz_check(memcmp(out, again, n * sizeof *out) == 0);
    for (size_t i = 0; i < n && kind != PT_NOISE_NORMAL; i++) {
      const float u = uniform_at(key, offset + i);
      if (kind == PT_NOISE_UNIFORM) {
        fuzz_check(out[i] == u);
      } else {
        const double g = -log(-log((double)u));
        fuzz_check(fabs((double)out[i] - g) <= 1e-6 * fmax(1.0, fabs(g)));
      }
    }
  }
  free(out);
  free(again);
  return 0;
}

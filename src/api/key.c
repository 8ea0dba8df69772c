/* SPDX-License-Identifier: MIT */
/* Keys: making, folding in data, splitting (pt_key(3)).

   fold_in hashes (seed, stream, data) through Philox4x32-10 itself rather than a separate
   mixer: it is the generator the streams already trust (a keyed bijection that passes
   TestU01's BigCrush with margin after 7 of its 10 rounds), its 128-bit output is a whole
   key, and for a fixed seed it is a bijection of the 128-bit counter (data, stream), so the
   children of one key can never collide, nor the children of two streams of one seed.  The
   seed is XORed with a fixed constant first (the first 64 bits of the fraction of sqrt 2, as
   SHA-512's first initial hash word): without it a child key would equal four noise words
   of its own parent seed (counter `data` of the parent's stream), and a program using both
   would see its keys among its numbers.  Changing any of this changes every derived key, so
   it is frozen. */
#include "perturb.h"

#define PT_FOLD_DOMAIN 0x6A09E667F3BCC908ull

pt_key pt_key_make(uint64_t seed) { return (pt_key){seed, 0}; }

pt_key pt_key_fold_in(pt_key key, uint64_t data) {
  const uint64_t k = key.seed ^ PT_FOLD_DOMAIN;
  const uint32_t ctr[4] = {(uint32_t)data, (uint32_t)(data >> 32), (uint32_t)key.stream,
                           (uint32_t)(key.stream >> 32)};
  const uint32_t kw[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
  uint32_t out[4];
  pt_philox4x32_10(ctr, kw, out);
  return (pt_key){out[0] | (uint64_t)out[1] << 32, out[2] | (uint64_t)out[3] << 32};
}

void pt_key_split(pt_key key, pt_key *out, size_t n) {
  if (!out) return;
  for (size_t i = 0; i < n; i++) out[i] = pt_key_fold_in(key, i);
}

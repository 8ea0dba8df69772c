/* SPDX-License-Identifier: MIT */
/* Philox4x32-10 and keys through the public API: Random123's known answers, and the key
   derivation pinned to values that must never change, rebuilt from the reference Philox. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "perturb.h"
#include "reference.h"

/* Random123's kat_vectors for philox4x32_10 */
static const struct {
  uint32_t ctr[4], key[2], out[4];
} philox_kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

Test(philox, random123_known_answers) {
  for (size_t i = 0; i < sizeof philox_kat / sizeof philox_kat[0]; i++) {
    uint32_t got[4], ref[4];
    pt_philox4x32_10(philox_kat[i].ctr, philox_kat[i].key, got);
    pt_ref_philox(philox_kat[i].ctr, philox_kat[i].key, ref);
    for (int w = 0; w < 4; w++) {
      cr_assert_eq(got[w], philox_kat[i].out[w], "vector %zu word %d: %08x", i, w, got[w]);
      cr_assert_eq(ref[w], philox_kat[i].out[w], "reference: vector %zu word %d", i, w);
    }
  }
}

Test(keys, make) {
  const pt_key k = pt_key_make(0xDEADBEEFull);
  cr_assert_eq(k.seed, 0xDEADBEEFull);
  cr_assert_eq(k.stream, 0);
}

/* fold_in is normative: these values must never change.  Each is also rebuilt from the
   reference Philox by the construction perturb.h documents. */
Test(keys, fold_in_known_answers) {
  static const struct {
    pt_key key;
    uint64_t data;
    pt_key child;
  } kat[] = {
      {{0, 0}, 0, {0xd313e6d3c79d5d77ull, 0x71e28f1d3d5d1f41ull}},
      {{0, 0}, 1, {0xfab64bd2b1ced852ull, 0xb3bc8a8a20ab9766ull}},
      {{42, 0}, UINT64_MAX, {0x76f1173a0fcf9387ull, 0x2d06554ef527e34eull}},
      {{0x0123456789abcdefull, 0xfedcba9876543210ull}, 1,
       {0xa9b9bb6ba2b2fae3ull, 0x201a0c04ac12828dull}},
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    const pt_key got = pt_key_fold_in(kat[i].key, kat[i].data);
    cr_assert(got.seed == kat[i].child.seed && got.stream == kat[i].child.stream,
              "fold_in %zu: {%#llx, %#llx}", i, (unsigned long long)got.seed,
              (unsigned long long)got.stream);
    const uint64_t k = kat[i].key.seed ^ 0x6A09E667F3BCC908ull;
    const uint32_t ctr[4] = {(uint32_t)kat[i].data, (uint32_t)(kat[i].data >> 32),
                             (uint32_t)kat[i].key.stream, (uint32_t)(kat[i].key.stream >> 32)};
    const uint32_t key[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t out[4];
    pt_ref_philox(ctr, key, out);
    cr_assert_eq(got.seed, out[0] | (uint64_t)out[1] << 32);
    cr_assert_eq(got.stream, out[2] | (uint64_t)out[3] << 32);
  }
}

Test(keys, split_is_fold_in_and_children_differ) {
  const pt_key parent = {7, 9};
  pt_key kids[64];
  pt_key_split(parent, kids, 64);
  for (size_t i = 0; i < 64; i++) {
    const pt_key f = pt_key_fold_in(parent, i);
    cr_assert(kids[i].seed == f.seed && kids[i].stream == f.stream, "split[%zu]", i);
    for (size_t j = 0; j < i; j++)
      cr_assert(kids[i].seed != kids[j].seed || kids[i].stream != kids[j].stream);
  }
  pt_key_split(parent, NULL, 5); /* nothing to write to: a no-op */
  pt_key untouched = {1, 2};
  pt_key_split(parent, &untouched, 0);
  cr_assert(untouched.seed == 1 && untouched.stream == 2);
}

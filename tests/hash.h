/* SPDX-License-Identifier: MIT */
/* FNV-1a over 4- and 8-byte values, each taken least significant byte first: the hash of the
   same values is the same on every machine, whatever its byte order.  The known answers of
   the parity battery and of the noise tests are such hashes. */
#ifndef PT_TEST_HASH_H
#define PT_TEST_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PT_HASH_START 0xcbf29ce484222325ull

/* n values of `size` bytes (4 or 8) at p */
static inline uint64_t pt_hash_values(uint64_t h, const void *p, size_t n, size_t size) {
  for (size_t i = 0; i < n; i++) {
    uint32_t v32;
    uint64_t v;
    if (size == 4) {
      memcpy(&v32, (const char *)p + 4 * i, 4);
      v = v32;
    } else {
      memcpy(&v, (const char *)p + 8 * i, 8);
    }
    for (size_t b = 0; b < size; b++) h = (h ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ull;
  }
  return h;
}

/* n bytes, in order */
static inline uint64_t pt_hash_bytes(uint64_t h, const void *p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
  return h;
}

/* n floats or 32-bit integers; n doubles */
static inline uint64_t pt_hash32(uint64_t h, const void *p, size_t n) { return pt_hash_values(h, p, n, 4); }
static inline uint64_t pt_hash64(uint64_t h, const void *p, size_t n) { return pt_hash_values(h, p, n, 8); }

#endif

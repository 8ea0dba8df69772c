/* SPDX-License-Identifier: MIT */
/* pt_noise_fill: argument checks, then the active ISA's kernel for the kind of noise, its work
   split between threads when there is enough of it (src/dispatch/split.h). */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "runtime/progress.h"

#include "dispatch/dispatch_table.h"
#include "runtime/pool.h"
#include "dispatch/split.h"

/* Tasks start at positions that are multiples of the 64 words of one block of 16 Philox
   counters, so that no counter is computed by two tasks.  Any start would give the same words,
   each a function of its position alone. */
#define NOISE_ALIGN 64
_Static_assert(PT_GRAIN_UNIFORM >= NOISE_ALIGN && PT_GRAIN_NORMAL >= NOISE_ALIGN &&
                   PT_GRAIN_GUMBEL >= NOISE_ALIGN,
               "a share must hold an aligned start");

typedef struct noise_job {
  void (*kernel)(pt_key key, uint64_t offset, float *out, size_t n);
  pt_key key;
  uint64_t offset;
  float *out;
  size_t n, tasks;
} noise_job;

static void noise_task(void *p, size_t i) {
  const noise_job *j = p;
  const size_t s0 = pt_split_start(i, j->tasks, j->n, NOISE_ALIGN, j->offset),
               s1 = pt_split_start(i + 1, j->tasks, j->n, NOISE_ALIGN, j->offset);
  j->kernel(j->key, j->offset + s0, j->out + s0, s1 - s0);
}

void pt_split_noise(const pt_kernel_table *k, pt_noise kind, pt_key key, uint64_t offset,
                    float *out, size_t n) {
  noise_job j = {k->noise_uniform, key, offset, out, n, 0};
  size_t grain = PT_GRAIN_UNIFORM;
  if (kind == PT_NOISE_GUMBEL) {
    j.kernel = k->noise_gumbel;
    grain = PT_GRAIN_GUMBEL;
  } else if (kind == PT_NOISE_NORMAL) {
    j.kernel = k->noise_normal;
    grain = PT_GRAIN_NORMAL;
  }
  j.tasks = pt_split_tasks(n, grain);
  if (j.tasks == 1) j.kernel(key, offset, out, n);
  else pt_parallel_for(j.tasks, noise_task, &j);
}

/* With a progress handler: blocks of PROGRESS_BLOCK words, a checkpoint after each, into
   scratch copied out once all have run (a canceled call writes nothing); every value is its
   word's, so the blocks give the bits of one fill. */
#define PROGRESS_BLOCK ((size_t)1 << 20)

static pt_status noise_in_blocks(const pt_kernel_table *k, pt_noise kind, pt_key key,
                                 uint64_t offset, float *out, size_t n) {
  float *scratch = pt_malloc(n * sizeof *scratch);
  if (!scratch) return pt_fail(PT_ENOMEM, "no memory for %zu floats of scratch", n);
  const int units = pt_progress_units(n);
  pt_status s = PT_OK;
  for (size_t i = 0, len; i < n && s == PT_OK; i += len) {
    len = n - i < PROGRESS_BLOCK ? n - i : PROGRESS_BLOCK;
    pt_split_noise(k, kind, key, offset + i, scratch + i, len);
    s = pt_progress_step(units, len);
  }
  if (s == PT_OK) memcpy(out, scratch, n * sizeof *out);
  free(scratch);
  return s;
}

pt_status pt_noise_fill(pt_noise kind, pt_key key, uint64_t offset, float *out, size_t n) {
  PT_CALL("pt_noise_fill");
  const pt_kernel_table *k;
  pt_status s = pt_kernels_ready(&k);
  if (s != PT_OK) return s;
  if (kind != PT_NOISE_GUMBEL && kind != PT_NOISE_NORMAL && kind != PT_NOISE_UNIFORM)
    return pt_fail(PT_EINVAL, "kind is %d, not a pt_noise", (int)kind);
  if (n == 0) return PT_OK;
  if (!out) return pt_fail(PT_EINVAL, "out is NULL with n = %zu", n);
  /* words offset .. offset + n - 1 must all exist: the last one is 2^64 - 1 */
  if (n - 1 > UINT64_MAX - offset)
    return pt_fail(PT_EOVERFLOW, "offset %" PRIu64 " + n %zu passes the last word, 2^64 - 1",
                   offset, n);
  if (n > (size_t)PTRDIFF_MAX / sizeof *out)
    return pt_fail(PT_EOVERFLOW, "n is %zu, more floats than PTRDIFF_MAX bytes hold", n);
  if (pt_progress_current()) return noise_in_blocks(k, kind, key, offset, out, n);
  pt_split_noise(k, kind, key, offset, out, n);
  return PT_OK;
}

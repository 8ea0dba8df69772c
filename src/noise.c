/* pt_noise_fill: argument checks, then the active ISA's kernel for the kind of noise. */
#include <stdint.h>

#include "kernels.h"
#include "pool.h"

pt_status pt_noise_fill(pt_noise kind, pt_key key, uint64_t offset, float *out, size_t n) {
  const pt_kernel_table *k = pt_kernels_active();
  if (!k) return PT_EUNSUPPORTED;
  if (pt_threads_ready() != PT_OK) return PT_EINVAL;
  if (kind != PT_NOISE_GUMBEL && kind != PT_NOISE_NORMAL && kind != PT_NOISE_UNIFORM)
    return PT_EINVAL;
  if (n == 0) return PT_OK;
  if (!out) return PT_EINVAL;
  /* words offset .. offset + n - 1 must all exist: the last one is 2^64 - 1 */
  if (n - 1 > UINT64_MAX - offset || n > (size_t)PTRDIFF_MAX / sizeof *out) return PT_EOVERFLOW;
  switch (kind) {
    case PT_NOISE_GUMBEL: k->noise_gumbel(key, offset, out, n); break;
    case PT_NOISE_NORMAL: k->noise_normal(key, offset, out, n); break;
    case PT_NOISE_UNIFORM: k->noise_uniform(key, offset, out, n); break;
  }
  return PT_OK;
}

/* CPU feature detection.  x86-64: CPUID and XGETBV, with the bits of DESIGN.md.  AVX2 counts
   only with FMA beside it (some hypervisors report AVX2 without FMA), and a vector ISA counts
   only if the OS saves its registers across context switches (XCR0). */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdint.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

static int x86_can_run(pt_isa isa) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  if (!fma || !osxsave || !avx) return 0;
  const uint64_t xcr0 = xgetbv0();
  if (__get_cpuid_max(0, 0) < 7) return 0;
  __cpuid_count(7, 0, a, b, c, d);
  const int avx2 = (b >> 5) & 1;
  const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  switch (isa) {
    case PT_ISA_AVX2: return avx2 && (xcr0 & 0x6) == 0x6; /* SSE and AVX state */
    case PT_ISA_AVX512:
      return avx2 && avx512 && (xcr0 & 0xE6) == 0xE6; /* + opmask, ZMM0-15 high, ZMM16-31 */
    default: return 0;
  }
}

/* FMA3 instructions are VEX-encoded, so they also need AVX state enabled by the OS. */
static int x86_has_fma(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  return fma && osxsave && avx && (xgetbv0() & 0x6) == 0x6;
}
#endif

int pt_cpu_has_fma(void) {
#if defined(__x86_64__) || defined(__i386__)
  return x86_has_fma();
#else
  return 1; /* AArch64 (the only other host with kernels) has FMA architecturally */
#endif
}

int pt_cpu_can_run(pt_isa isa) {
  switch (isa) {
    case PT_ISA_SCALAR: return 1;
#if defined(__x86_64__) || defined(__i386__)
    case PT_ISA_AVX2:
    case PT_ISA_AVX512: return x86_can_run(isa);
#endif
#if defined(__aarch64__)
    case PT_ISA_NEON: return 1; /* Advanced SIMD is architectural on AArch64 */
#endif
    default: return 0;
  }
}

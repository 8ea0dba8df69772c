/* SPDX-License-Identifier: MIT */
/* CPU feature detection, done once (CPUID traps to the hypervisor in a VM: microseconds).
   x86-64: CPUID and XGETBV, with the bits of docs/design.md.  AVX2 counts only with FMA beside it
   (some hypervisors report AVX2 without FMA), and a vector ISA counts only if the OS saves its
   registers across context switches (XCR0). */
#include <pthread.h>

#include "dispatch/cpu.h"
#include "gen/isas.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

/* The bits of docs/design.md ("Dispatch") on the registers detect() reads (cpu.h says why it
   stands apart). */
unsigned pt_cpu_decide(const pt_cpu_regs *r) {
  const unsigned c = r->leaf1_ecx, b = r->leaf7_ebx;
  const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  /* FMA3 and AVX2 are VEX-encoded: they need the OS to save SSE and AVX state */
  if (!fma || !osxsave || !avx) return 0;
  if ((r->xcr0 & 0x6) != 0x6) return 0;
  unsigned features = PT_CPU_FMA;
  if (r->max_leaf < 7) return features;
  if (!((b >> 5) & 1)) return features;
  features |= PT_CPU_AVX2;
  const int avx512 = ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  if (avx512 && (r->xcr0 & 0xE6) == 0xE6) features |= PT_CPU_AVX512; /* + opmask, ZMM state */
  return features;
}

static unsigned detect(void) {
  unsigned a, b, c, d;
  pt_cpu_regs r = {0};
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  r.leaf1_ecx = c;
  r.max_leaf = __get_cpuid_max(0, 0);
  /* XGETBV faults unless the OS enabled it (OSXSAVE) */
  if ((c >> 27) & 1) r.xcr0 = xgetbv0();
  if (r.max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    r.leaf7_ebx = b;
  }
  return pt_cpu_decide(&r);
}
#elif defined(__aarch64__)
/* AArch64 has FMA and Advanced SIMD architecturally. */
static unsigned detect(void) { return PT_CPU_FMA | PT_CPU_ADVSIMD; }
#else
/* Other hosts build the scalar kernels alone, which need no feature; SLEEF's scalar code is
   taken to have its FMA there, as on AArch64. */
static unsigned detect(void) { return PT_CPU_FMA; }
#endif

static unsigned features;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static void detect_once(void) { features = detect(); }

static unsigned cpu_features(void) {
  pthread_once(&features_once, detect_once);
  return features;
}

int pt_cpu_has_fma(void) { return (cpu_features() & PT_CPU_FMA) != 0; }

/* What each ISA's kernels need, from its row (gen/kernel_table.py), by pt_isa value. */
#define PT_NEEDS(name, value, lanes, needs) [value] = (needs),
static const unsigned isa_needs[PT_ISA_COUNT] = {PT_FOR_EACH_ISA_ROW(PT_NEEDS)};
#undef PT_NEEDS

int pt_cpu_can_run(pt_isa isa) {
  if ((unsigned)isa >= PT_ISA_COUNT) return 0;
  return (cpu_features() & isa_needs[isa]) == isa_needs[isa];
}

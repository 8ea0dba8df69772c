/* SPDX-License-Identifier: MIT */
/* The x86-64 feature decision on registers of CPUs this machine is not (docs/design.md,
   "Dispatch"): CPUID leaf 1 ECX FMA bit 12, OSXSAVE 27, AVX 28; leaf 7 EBX AVX2 5, AVX-512 F
   16, DQ 17, BW 30, VL 31; XCR0 & 0x6 == 0x6 for AVX2, & 0xE6 == 0xE6 for AVX-512.  The live
   detection on this machine is covered by the api tests (the best supported ISA is chosen). */
#include <criterion/criterion.h>

#include "dispatch/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define L1_ALL ((1u << 12) | (1u << 27) | (1u << 28))
#define L7_AVX2 (1u << 5)
#define L7_512 ((1u << 16) | (1u << 17) | (1u << 30) | (1u << 31))
#define F PT_CPU_FMA
#define A2 PT_CPU_AVX2
#define A5 PT_CPU_AVX512

Test(cpu, decide_from_registers) {
  static const struct {
    const char *what;
    pt_cpu_regs r;
    unsigned want;
  } cases[] = {
      {"everything", {7, L1_ALL, L7_AVX2 | L7_512, 0xE7}, F | A2 | A5},
      {"no FMA (a hypervisor's AVX2 without it)", {7, L1_ALL & ~(1u << 12), L7_AVX2 | L7_512, 0xE7}, 0},
      {"FMA is bit 12, not 13", {7, (L1_ALL & ~(1u << 12)) | (1u << 13), L7_AVX2, 0xE7}, 0},
      {"no OSXSAVE", {7, L1_ALL & ~(1u << 27), L7_AVX2 | L7_512, 0}, 0},
      {"no AVX", {7, L1_ALL & ~(1u << 28), L7_AVX2 | L7_512, 0xE7}, 0},
      {"OS saves no YMM", {7, L1_ALL, L7_AVX2 | L7_512, 0x3}, 0},
      {"OS saves no SSE", {7, L1_ALL, L7_AVX2 | L7_512, 0xE5}, 0},
      {"no leaf 7", {6, L1_ALL, L7_AVX2 | L7_512, 0xE7}, F},
      {"no AVX2", {7, L1_ALL, L7_512, 0xE7}, F},
      {"AVX-512 without F", {7, L1_ALL, L7_AVX2 | (L7_512 & ~(1u << 16)), 0xE7}, F | A2},
      {"AVX-512 without DQ", {7, L1_ALL, L7_AVX2 | (L7_512 & ~(1u << 17)), 0xE7}, F | A2},
      {"AVX-512 without BW", {7, L1_ALL, L7_AVX2 | (L7_512 & ~(1u << 30)), 0xE7}, F | A2},
      {"AVX-512 without VL", {7, L1_ALL, L7_AVX2 | (L7_512 & ~(1u << 31)), 0xE7}, F | A2},
      {"OS saves no opmask", {7, L1_ALL, L7_AVX2 | L7_512, 0xC7}, F | A2},
      {"OS saves no ZMM_Hi256", {7, L1_ALL, L7_AVX2 | L7_512, 0xA7}, F | A2},
      {"OS saves no Hi16_ZMM", {7, L1_ALL, L7_AVX2 | L7_512, 0x67}, F | A2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_assert_eq(pt_cpu_decide(&cases[i].r), cases[i].want, "%s: got %#x, want %#x", cases[i].what,
                 pt_cpu_decide(&cases[i].r), cases[i].want);
}
#endif

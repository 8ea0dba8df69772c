/* SPDX-License-Identifier: MIT */
/* What the CPU and OS can run, detected once. */
#ifndef PT_CPU_H
#define PT_CPU_H

#include <stdint.h>

#include "perturb.h"

/* 1 if the CPU and the OS can run code built for `isa` (whether or not it was built in): the
   CPU has every feature of the ISA's row. */
int pt_cpu_can_run(pt_isa isa);

/* 1 if the CPU and OS can run FMA instructions (SLEEF's scalar purecfma code needs them). */
int pt_cpu_has_fma(void);

/* The features a row of gen/kernel_table.py can need (its `features`, lower case): one bit
   each, detected by src/dispatch/cpu.c on the architecture that has it.  A new ISA that needs a
   feature no bit names adds a bit here and its detection there. */
enum { PT_CPU_FMA = 1, PT_CPU_AVX2 = 2, PT_CPU_AVX512 = 4, PT_CPU_ADVSIMD = 8 };

/* What an x86-64 CPU's registers allow, as PT_CPU_* bits (src/dispatch/cpu.c; x86 builds only): the
   decision apart from the instructions that read them, so that tests can run it on the
   registers of CPUs and hypervisors they are not on. */
typedef struct pt_cpu_regs {
  unsigned max_leaf, leaf1_ecx, leaf7_ebx; /* CPUID: highest leaf, leaf 1 ECX, leaf 7.0 EBX */
  uint64_t xcr0;                           /* XGETBV(0); 0 when OSXSAVE is clear */
} pt_cpu_regs;
unsigned pt_cpu_decide(const pt_cpu_regs *r);

#endif

/* What the CPU and OS can run, detected once. */
#ifndef PT_CPU_H
#define PT_CPU_H

#include "perturb.h"

/* 1 if the CPU and the OS can run code built for `isa` (whether or not it was built in). */
int pt_cpu_can_run(pt_isa isa);

/* 1 if the CPU and OS can run FMA instructions (SLEEF's scalar purecfma code needs them). */
int pt_cpu_has_fma(void);

#endif

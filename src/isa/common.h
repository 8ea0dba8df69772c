/* SPDX-License-Identifier: MIT */
/* What every layer of src/isa/ includes first: the check of an operation's preconditions in
   debug builds, and the build requirement that all layers share.  Not a layer itself. */
#ifndef PT_ISA_COMMON_H
#define PT_ISA_COMMON_H

/* PT_ISA_ASSERT(cond): a precondition of a layer operation (src/isa/README.md, "Preconditions"),
   checked only in a debug build, one compiled with PT_DEBUG defined and NDEBUG not defined
   (./configure CPPFLAGS=-DPT_DEBUG).  PT_DEBUG is needed as well as the absence of NDEBUG
   because autotools builds never define NDEBUG: the checks would otherwise be in every build.
   Elsewhere the condition is not even evaluated, so release kernels are the same instructions
   as without the checks (the kernels' known answers in tests/parity pin their behaviour). */
#if defined(PT_DEBUG) && !defined(NDEBUG)
#include <assert.h>
#define PT_ISA_ASSERT(cond) assert(cond)
#else
#define PT_ISA_ASSERT(cond) ((void)0)
#endif

/* The layers promise IEEE semantics (ordered compares false on NaN, one rounding per
   operation, sums in the order written); -ffast-math breaks all three, silently. */
#ifdef __FAST_MATH__
#error "src/isa/ layers need IEEE float semantics: do not compile them with -ffast-math"
#endif

#endif

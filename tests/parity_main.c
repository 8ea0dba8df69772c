/* SPDX-License-Identifier: MIT */
/* Stand-alone ISA parity runner: the parity battery on every ISA this CPU supports, without
   Criterion (whose runner hangs under qemu user emulation).  `--require ISA` fails unless
   that ISA is supported, so an emulated run cannot pass by skipping the ISA it is for;
   `--only ISA` also skips every other ISA (the scalar kernels still serve as the reference),
   for slow runs such as valgrind's.  Each ISA runs three batteries: the operation layer's
   conformance (tests/isa_ops.c.j2) first, so that a broken operation is named before a
   kernel built on it fails or crashes, then the kernels' parity, then the kernels' test
   variants (the other ISAs' tunings, tests/isa_tests.h).  Ends with "N passed, N failed" counting checks (a
   case on every kernel family, a known answer, an operation, a case on a variant), each
   failed at most once. */
#define _POSIX_C_SOURCE 200809L /* alarm */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dispatch/dispatch_table.h"
#include "isa_tests.h"
#include "parity.h"

/* One line per battery: "parity: avx2    isa ops 80 checks, 0 failed". */
static void report(const char *name, const char *what, int rc, const pt_parity_result *res,
                   size_t *passed, size_t *failed) {
  if (rc != 0) {
    printf("parity: %-7s %s could not run (out of memory, or not in this build)\n", name, what);
    (*failed)++;
    return;
  }
  printf("parity: %-7s %s%s%zu checks, %zu failed%s%s\n", name, what, *what ? " " : "",
         res->checked, res->failed, res->failed ? ": first: " : "", res->first_failure);
  *passed += res->checked - res->failed;
  *failed += res->failed;
}

int main(int argc, char **argv) {
  /* a kernel that loops forever ends the run (SIGALRM, a failure) instead of holding it: the
     battery takes seconds natively and about 5 minutes under valgrind or qemu */
  alarm(30 * 60);
  size_t passed = 0, failed = 0;
  const char *only = NULL;
  for (int i = 1; i < argc; i += 2) {
    const int require = strcmp(argv[i], "--require") == 0, only_one = strcmp(argv[i], "--only") == 0;
    if ((!require && !only_one) || i + 1 == argc) {
      printf("usage: %s [--require ISA] [--only ISA] ...\n", argv[0]);
      return 2;
    }
    if (only_one) only = argv[i + 1];
    int known = 0;
#define PT_REQUIRE(name, value)                                                 \
  if (strcmp(argv[i + 1], #name) == 0) {                                        \
    known = 1;                                                                  \
    if (!pt_isa_supported(value)) {                                             \
      printf("parity: %s is required but not supported here\n", #name);         \
      failed++;                                                                 \
    }                                                                           \
  }
    PT_FOR_EACH_ISA(PT_REQUIRE)
#undef PT_REQUIRE
    if (!known) {
      printf("parity: unknown ISA '%s'\n", argv[i + 1]);
      failed++;
    }
  }
#define PT_RUN(name, value)                                                                  \
  if (only && strcmp(only, #name) != 0) {                                                    \
    printf("parity: %-7s skipped: not asked for\n", #name);                                  \
  } else if (!pt_isa_supported(value)) {                                                     \
    printf("parity: %-7s skipped: not supported by this build and CPU\n", #name);            \
  } else {                                                                                   \
    pt_parity_result res;                                                                    \
    report(#name, "isa ops", pt_isa_ops_check(value, &res), &res, &passed, &failed);         \
    fflush(stdout); /* the layer's verdict stays if a broken layer crashes a kernel next */  \
    report(#name, "", pt_parity_check(value, &res), &res, &passed, &failed);                 \
    report(#name, "variants", pt_isa_variants_check(value, &res), &res, &passed, &failed);   \
  }
  PT_FOR_EACH_ISA(PT_RUN)
#undef PT_RUN
  printf("%zu passed, %zu failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* Stand-alone ISA parity runner: the parity battery on every ISA this CPU supports, without
   Criterion (whose runner hangs under qemu user emulation).  `--require ISA` fails unless
   that ISA is supported, so an emulated run cannot pass by skipping the ISA it is for;
   `--only ISA` also skips every other ISA (the scalar kernels still serve as the reference),
   for slow runs such as valgrind's.  Ends with "N passed, N failed" counting checks (a case on
   every kernel family, a known answer), each failed at most once. */
#define _POSIX_C_SOURCE 200809L /* alarm */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dispatch/dispatch_table.h"
#include "parity.h"

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
    if (pt_parity_check(value, &res) != 0) {                                                 \
      printf("parity: %-7s could not run (out of memory)\n", #name);                         \
      failed++;                                                                              \
    } else {                                                                                 \
      printf("parity: %-7s %zu checks, %zu failed%s%s\n", #name, res.checked, res.failed,     \
             res.failed ? ": first: " : "", res.first_failure);                              \
      passed += res.checked - res.failed;                                                    \
      failed += res.failed;                                                                  \
    }                                                                                        \
  }
  PT_FOR_EACH_ISA(PT_RUN)
#undef PT_RUN
  printf("%zu passed, %zu failed\n", passed, failed);
  return failed ? 1 : 0;
}

/* ISA parity: every kernel of one ISA's table against the scalar table (bitwise) and against
   the independent reference, on the whole case battery.  Shared by the Criterion suite and
   the stand-alone runner used under qemu. */
#ifndef PT_TEST_PARITY_H
#define PT_TEST_PARITY_H

#include <stddef.h>

#include "perturb.h"

typedef struct pt_parity_result {
  size_t checked, failed;
  char first_failure[512];
} pt_parity_result;

/* Runs the battery for `isa`, which must be supported; 0 on success, -1 on ENOMEM. */
int pt_parity_check(pt_isa isa, pt_parity_result *res);

#endif

/* The test-only kernels (gen/kernel_table.py, "Test-only kernels"): each ISA's operation-layer
   conformance test (tests/isa_ops.c.j2).  The generator lists them per ISA in
   tests/gen/isa_tests_table.c; the functions here run them for tests/parity and tests/unit. */
#ifndef PT_TEST_ISA_TESTS_H
#define PT_TEST_ISA_TESTS_H

#include <stddef.h>

#include "dispatch/dispatch_table.h"
#include "parity.h"

typedef struct pt_isa_tests {
  pt_isa isa;
  void (*ops)(pt_parity_result *res); /* the layer conformance test */
} pt_isa_tests;

/* Generated: the ISAs of this build (tests/gen/isa_tests_table.c). */
extern const pt_isa_tests pt_isa_tests_built[];
extern const size_t pt_isa_tests_built_count;

/* The scalar layer's SLEEF functions (src/isa/scalar.h), which the conformance test holds every
   ISA's math to bit for bit. */
float pt_scalar_log_u35(float a);
void pt_scalar_sincospi_u35(float a, float *s, float *c);
float pt_scalar_expf(float a);

/* The layer conformance test of `isa`, which must be supported: one check per operation, a
   failure naming the ISA, the operation and the lane.  0, or -1 if the build has no test for
   `isa`. */
int pt_isa_ops_check(pt_isa isa, pt_parity_result *res);

#endif

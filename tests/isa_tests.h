/* SPDX-License-Identifier: MIT */
/* The test-only kernels (gen/kernel_table.py, "Test-only kernels"): each ISA's operation-layer
   conformance test (tests/isa_ops.c.j2) and its kernels' test variants, the tunings of other
   ISAs rendered for it, so that a path one ISA's tuning enables runs on every machine; and the
   row thresholds its real row kernels are run with besides its own, the other ISAs' and the
   forced ones (every path of argmax_rows, argsort_rows and rank_rows).  The generator lists
   them per ISA in tests/gen/isa_tests_table.c; the functions here run them for tests/parity
   and tests/unit. */
#ifndef PT_TEST_ISA_TESTS_H
#define PT_TEST_ISA_TESTS_H

#include <stddef.h>

#include "dispatch/dispatch_table.h"
#include "parity.h"

/* A kernel of one ISA rendered with another tuning: `slots` holds it in its family's slot,
   every other slot NULL, and rows is NULL; or other row thresholds for the ISA's own row
   kernels: rows, and no slot.  label: "<op> <the parameters that differ>" or "row thresholds
   <the thresholds that differ>", e.g. "row thresholds count_max1_radix_min257". */
typedef struct pt_test_variant {
  const char *label;
  pt_kernel_table slots;
  const pt_row_thresholds *rows;
} pt_test_variant;

typedef struct pt_isa_tests {
  pt_isa isa;
  void (*ops)(pt_parity_result *res); /* the layer conformance test */
  const pt_test_variant *variants;
  size_t variant_count;
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

/* Every test variant of `isa` (supported) on the parity battery, against the scalar kernels
   and the references as tests/parity.c holds the real kernels: one check per case and
   variant.  0, -1 on ENOMEM or if the build has no tests for `isa`. */
int pt_isa_variants_check(pt_isa isa, pt_parity_result *res);

#endif

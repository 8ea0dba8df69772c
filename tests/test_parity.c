/* SPDX-License-Identifier: MIT */
/* Every ISA's kernels bitwise against scalar and the reference (tests/parity.c); an ISA this
   machine cannot run is skipped with a message, never passed. */
#include <criterion/criterion.h>

#include "dispatch/dispatch_table.h"
#include "isa_tests.h"
#include "parity.h"

/* A kernel that loops forever fails after 10 minutes instead of holding `make check` (the
   battery takes seconds natively, under a minute with sanitizers). */
#define PT_PARITY_TEST(name, value)                                                       \
  Test(parity, name, .timeout = 600) {                                                    \
    if (!pt_isa_supported(value)) cr_skip_test(#name " is not supported by this build and CPU"); \
    pt_parity_result res;                                                                 \
    cr_assert_eq(pt_parity_check(value, &res), 0, "parity battery ran out of memory");    \
    cr_assert_gt(res.checked, 0);                                                         \
    cr_assert_eq(res.failed, 0, "%zu of %zu checks failed; first: %s", res.failed,         \
                 res.checked, res.first_failure);                                         \
  }
PT_FOR_EACH_ISA(PT_PARITY_TEST)

/* The operation layer's conformance test (tests/isa_ops.c.j2) and the kernels' test variants
   (tests/isa_tests.h) of every ISA, skipped likewise where the machine lacks it. */
#define PT_ISA_TESTS(name, value)                                                          \
  Test(isa_ops, name, .timeout = 600) {                                                    \
    if (!pt_isa_supported(value)) cr_skip_test(#name " is not supported by this build and CPU"); \
    pt_parity_result res;                                                                  \
    cr_assert_eq(pt_isa_ops_check(value, &res), 0, "no conformance test for " #name);       \
    cr_assert_gt(res.checked, 0);                                                          \
    cr_assert_eq(res.failed, 0, "%zu of %zu operations failed; first: %s", res.failed,     \
                 res.checked, res.first_failure);                                          \
  }                                                                                        \
  Test(variants, name, .timeout = 600) {                                                   \
    if (!pt_isa_supported(value)) cr_skip_test(#name " is not supported by this build and CPU"); \
    pt_parity_result res;                                                                  \
    cr_assert_eq(pt_isa_variants_check(value, &res), 0, "variants of " #name " could not run"); \
    cr_assert_eq(res.failed, 0, "%zu of %zu checks failed; first: %s", res.failed,         \
                 res.checked, res.first_failure);                                          \
  }
PT_FOR_EACH_ISA(PT_ISA_TESTS)

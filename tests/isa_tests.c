/* SPDX-License-Identifier: MIT */
#include "isa_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pt_isa_tests *tests_for(pt_isa isa) {
  for (size_t i = 0; i < pt_isa_tests_built_count; i++)
    if (pt_isa_tests_built[i].isa == isa) return &pt_isa_tests_built[i];
  return NULL;
}

int pt_isa_ops_check(pt_isa isa, pt_parity_result *res) {
  memset(res, 0, sizeof *res);
  const pt_isa_tests *t = tests_for(isa);
  if (!t) return -1;
  t->ops(res);
  return 0;
}

/* One case on one variant: the ISA's table with the variant's slot in place, checked by that
   family's parity check, or with its row thresholds, checked by the row kernels'; the first
   failure of the run is prefixed with the variant. */
static void check_variant(const pt_test_variant *v, const pt_kernel_table *base,
                          const pt_kernel_table *scalar, const pt_case *c, const float *x,
                          pt_parity_result *res) {
  const int had_failure = res->first_failure[0] != '\0';
  pt_kernel_table k = *base;
  res->checked++;
#define PT_VARIANT_SLOT(op, ret, params) \
  if (v->slots.op) {                     \
    k.op = v->slots.op;                  \
    parity_##op(&k, scalar, c, x, res);  \
  }
  PT_FOR_EACH_OP(PT_VARIANT_SLOT)
#undef PT_VARIANT_SLOT
  if (v->rows) {
    k.rows = *v->rows;
    parity_argmax_rows(&k, scalar, c, x, res);
    parity_argsort_rows(&k, scalar, c, x, res);
    parity_rank_rows(&k, scalar, c, x, res);
  }
  if (!had_failure && res->first_failure[0] != '\0') {
    char message[sizeof res->first_failure + 100];
    snprintf(message, sizeof message, "variant %s: %s", v->label, res->first_failure);
    memcpy(res->first_failure, message, sizeof res->first_failure - 1); /* truncated */
    res->first_failure[sizeof res->first_failure - 1] = '\0';
  }
}

/* The variants run on the battery's cases of rows up to this long: every length from 1, strided
   and packed, and the tall matrices.  Row thresholds choose among paths by row length up to
   count_max (PT_ROWS_COUNT_CAP at most) and from radix_min (forced down to 257), and
   the rows between take the same networks and merges whatever it is, so the long cases, a
   third of the battery's time natively and far more under qemu, would only repeat the real
   kernels' checks. */
#define VARIANT_MAX_D 300

int pt_isa_variants_check(pt_isa isa, pt_parity_result *res) {
  memset(res, 0, sizeof *res);
  const pt_isa_tests *t = tests_for(isa);
  const pt_kernel_table *k = pt_kernels_for(isa), *scalar = pt_kernels_for(PT_ISA_SCALAR);
  if (!t || !k) return -1;
  for (size_t i = 0; i < pt_cases_count(); i++) {
    const pt_case c = pt_cases_get(i);
    if (c.d > VARIANT_MAX_D) continue;
    void *block;
    const float *x = pt_case_data(&c, &block);
    if (!x) return -1;
    for (size_t j = 0; j < t->variant_count; j++) check_variant(&t->variants[j], k, scalar, &c, x, res);
    free(block);
  }
  return 0;
}

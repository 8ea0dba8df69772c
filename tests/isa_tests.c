#include "isa_tests.h"

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

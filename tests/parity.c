#include "parity.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "kernels.h"
#include "parity_fused.h"
#include "parity_noise.h"
#include "reference.h"

static void fail(pt_parity_result *res, const pt_case *c, const char *fmt, ...) {
  if (res->failed++) return;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  char where[200];
  pt_case_describe(c, where, sizeof where);
  snprintf(res->first_failure, sizeof res->first_failure, "%s (%s)", what, where);
}

/* One function per kernel family (PT_FOR_EACH_OP below makes a missing one a compile error):
   run the ISA's kernel and the scalar one on the case and compare both with the reference. */

static void parity_argmax_rows(const pt_kernel_table *k, const pt_kernel_table *scalar,
                               const pt_case *c, const float *x, pt_parity_result *res) {
  /* one sentinel past the end catches a write beyond `rows` */
  int32_t *got = malloc((c->rows + 1) * sizeof *got), *want = malloc(c->rows * sizeof *want);
  if (!got || !want) {
    fail(res, c, "out of memory");
    goto out;
  }
  got[c->rows] = -7;
  k->argmax_rows(x, c->rows, c->d, c->ld, got);
  scalar->argmax_rows(x, c->rows, c->d, c->ld, want);
  for (size_t r = 0; r < c->rows; r++) {
    const int32_t truth = pt_ref_argmax(x + r * c->ld, c->d);
    if (got[r] != want[r] || got[r] != truth) {
      fail(res, c, "argmax_rows row %zu: %s %d, scalar %d, reference %d", r,
           pt_isa_name(k->isa), got[r], want[r], truth);
      break;
    }
  }
  if (got[c->rows] != -7) fail(res, c, "argmax_rows wrote past the last row");
out:
  free(got);
  free(want);
}

int pt_parity_check(pt_isa isa, pt_parity_result *res) {
  memset(res, 0, sizeof *res);
  const pt_kernel_table *k = pt_kernels_for(isa), *scalar = pt_kernels_for(PT_ISA_SCALAR);
  if (!k) return -1;
  for (size_t i = 0; i < pt_cases_count(); i++) {
    const pt_case c = pt_cases_get(i);
    void *block;
    const float *x = pt_case_data(&c, &block);
    if (!x) return -1;
#define PT_PARITY(op, ret, params) parity_##op(k, scalar, &c, x, res);
    PT_FOR_EACH_OP(PT_PARITY)
#undef PT_PARITY
    res->checked++;
    free(block);
  }
  pt_parity_noise_known(k, res);
  pt_parity_fused_known(k, res);
  return 0;
}

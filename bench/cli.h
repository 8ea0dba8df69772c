/* SPDX-License-Identifier: MIT */
/* cli.h: the check of --isa shared by perturb-bench and perturbed-bench.  A name that is not an
   ISA, or an ISA this CPU cannot run, would otherwise match nothing and print an empty table,
   which reads like a benchmark that ran; both are errors instead (exit 2). */
#ifndef PT_BENCH_CLI_H
#define PT_BENCH_CLI_H

#include <stdio.h>
#include <string.h>

#include <perturb.h>

/* 0 when name is NULL (every ISA), or `extra` (a program's own row, NULL when it has none), or
   an ISA this CPU runs; otherwise a message on stderr naming the choices, and 2. */
static inline int bench_check_isa(const char *program, const char *name, const char *extra) {
  if (!name || (extra && !strcmp(name, extra))) return 0;
  for (int isa = 0; pt_isa_name((pt_isa)isa); isa++) {
    if (strcmp(name, pt_isa_name((pt_isa)isa)) != 0) continue;
    if (pt_isa_supported((pt_isa)isa)) return 0;
    fprintf(stderr, "%s: --isa %s: this build and CPU cannot run it\n", program, name);
    return 2;
  }
  fprintf(stderr, "%s: --isa %s: unknown; the ISAs are", program, name);
  for (int isa = 0; pt_isa_name((pt_isa)isa); isa++)
    fprintf(stderr, " %s", pt_isa_name((pt_isa)isa));
  if (extra) fprintf(stderr, " and %s", extra);
  fputc('\n', stderr);
  return 2;
}

#endif

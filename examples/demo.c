/* SPDX-License-Identifier: MIT */
/* demo: libperturb at work.  Shows which ISAs this machine runs, then takes the argmax of a
   batch of rows on each one, checks that every ISA agrees bit for bit, and times them. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <perturb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
  printf("libperturb %s; active ISA: %s\n", pt_version(), pt_isa_name(pt_isa_active()));
  printf("ISAs supported here:");
  for (int isa = 0; pt_isa_name((pt_isa)isa); isa++)
    if (pt_isa_supported((pt_isa)isa)) printf(" %s", pt_isa_name((pt_isa)isa));
  printf("\n\n");

  /* Logits of 4 samples over 5 classes: the class each sample picks. */
  const float logits[4 * 5] = {0.1f, 2.0f, -1.0f, 0.5f, 0.3f,  /* class 1 */
                               3.0f, 3.0f, 1.0f, 0.0f, -2.0f,  /* a tie: the first, 0 */
                               -0.0f, 0.0f, -1.0f, -2.0f, -3.0f, /* -0 == +0: 0 */
                               1.0f, 2.0f, 0.0f / 0.0f, 9.0f, 1.0f}; /* NaN is greatest: 2 */
  int32_t picked[4];
  pt_status s = pt_argmax_rows(logits, 4, 5, 5, picked);
  if (s != PT_OK) {
    fprintf(stderr, "pt_argmax_rows: %s\n", pt_strerror(s));
    return 1;
  }
  printf("argmax of 4 rows of 5 logits: %d %d %d %d\n\n", picked[0], picked[1], picked[2],
         picked[3]);

  /* A larger batch on every ISA: identical answers, different speeds. */
  const size_t rows = 20000, d = 1000;
  float *x = malloc(rows * d * sizeof *x);
  int32_t *idx = malloc(rows * sizeof *idx), *first = malloc(rows * sizeof *first);
  if (!x || !idx || !first) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  uint32_t state = 12345;
  for (size_t i = 0; i < rows * d; i++) {
    state = state * 1664525u + 1013904223u;
    x[i] = (float)(state >> 8) * 0x1p-24f;
  }
  int have_first = 0, agree = 1;
  printf("argmax of %zu rows of %zu floats:\n", rows, d);
  for (int isa = 0; pt_isa_name((pt_isa)isa); isa++) {
    if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
    const double t0 = seconds();
    s = pt_argmax_rows(x, rows, d, d, idx);
    const double t = seconds() - t0;
    if (s != PT_OK) {
      fprintf(stderr, "pt_argmax_rows: %s\n", pt_strerror(s));
      return 1;
    }
    if (!have_first) memcpy(first, idx, rows * sizeof *idx);
    const int same = !have_first || memcmp(first, idx, rows * sizeof *idx) == 0;
    have_first = 1;
    agree &= same;
    printf("  %-7s %8.3f ms  %.3f ns/element  %s\n", pt_isa_name((pt_isa)isa), t * 1e3,
           t * 1e9 / (double)(rows * d), same ? "same indices as scalar" : "DIFFERENT");
  }
  free(x);
  free(idx);
  free(first);
  return agree ? 0 : 1;
}

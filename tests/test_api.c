/* Version, status strings, ISA names and the dispatch rules of API.md ("ISA dispatch").
   Criterion runs each test in its own process, so PERTURB_ISA set in a test is read afresh. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h" /* PACKAGE_VERSION: AC_INIT's, the version's one source */
#include "perturb.h"

/* The library and the header's macros carry AC_INIT's version. */
Test(api, version) {
  cr_assert_str_eq(pt_version(), PACKAGE_VERSION);
  char macros[64];
  snprintf(macros, sizeof macros, "%d.%d.%d", PT_VERSION_MAJOR, PT_VERSION_MINOR,
           PT_VERSION_PATCH);
  cr_assert_str_eq(macros, PACKAGE_VERSION);
}

/* NEWS's newest entry, the first MAJOR.MINOR.PATCH in the file, is AC_INIT's version: a release
   bumps both.  Skipped in a tree without NEWS. */
Test(api, news_names_this_version) {
  const char *srcdir = getenv("top_srcdir");
  char path[4096];
  snprintf(path, sizeof path, "%s/NEWS", srcdir ? srcdir : ".");
  FILE *news = fopen(path, "r");
  if (!news) cr_skip_test("no %s", path);
  char line[1024], newest[64] = "";
  while (!newest[0] && fgets(line, sizeof line, news))
    for (const char *c = line; *c && !newest[0]; c++) {
      unsigned major, minor, patch;
      /* a version starts at a digit that does not continue a number */
      if (*c >= '0' && *c <= '9' && (c == line || !strchr("0123456789.", c[-1])) &&
          sscanf(c, "%u.%u.%u", &major, &minor, &patch) == 3)
        snprintf(newest, sizeof newest, "%u.%u.%u", major, minor, patch);
    }
  fclose(news);
  cr_assert(newest[0], "%s names no version", path);
  cr_assert_str_eq(newest, PACKAGE_VERSION, "%s's newest entry is %s, configure.ac's AC_INIT %s",
                   path, newest, PACKAGE_VERSION);
}

Test(api, strerror_covers_every_status) {
  for (int s = PT_OK; s <= PT_ECALLBACK; s++) {
    cr_assert_not_null(pt_strerror((pt_status)s));
    cr_assert_str_neq(pt_strerror((pt_status)s), "unknown status");
  }
  cr_assert_str_eq(pt_strerror((pt_status)99), "unknown status");
  cr_assert_str_eq(pt_strerror((pt_status)-1), "unknown status");
}

Test(api, isa_names) {
  cr_assert_str_eq(pt_isa_name(PT_ISA_SCALAR), "scalar");
  cr_assert_str_eq(pt_isa_name(PT_ISA_AVX2), "avx2");
  cr_assert_str_eq(pt_isa_name(PT_ISA_AVX512), "avx512");
  cr_assert_str_eq(pt_isa_name(PT_ISA_NEON), "neon");
  cr_assert_null(pt_isa_name((pt_isa)4));
  cr_assert_null(pt_isa_name((pt_isa)-1));
}

Test(api, scalar_always_supported_unknown_never) {
  cr_assert_eq(pt_isa_supported(PT_ISA_SCALAR), 1);
  cr_assert_eq(pt_isa_supported((pt_isa)4), 0);
  cr_assert_eq(pt_isa_select((pt_isa)4), PT_EUNSUPPORTED);
  cr_assert_eq(pt_isa_select((pt_isa)-1), PT_EUNSUPPORTED);
}

Test(api, x86_and_arm_isas_exclusive) {
#if defined(__x86_64__)
  cr_assert_eq(pt_isa_supported(PT_ISA_NEON), 0);
#elif defined(__aarch64__)
  cr_assert_eq(pt_isa_supported(PT_ISA_AVX2), 0);
  cr_assert_eq(pt_isa_supported(PT_ISA_AVX512), 0);
#endif
}

/* The default is the best supported ISA, in the order avx512, avx2, neon, scalar. */
Test(api, default_is_best_supported) {
  unsetenv("PERTURB_ISA");
  const pt_isa order[] = {PT_ISA_AVX512, PT_ISA_AVX2, PT_ISA_NEON, PT_ISA_SCALAR};
  pt_isa best = PT_ISA_SCALAR;
  for (size_t i = 0; i < 4; i++)
    if (pt_isa_supported(order[i])) {
      best = order[i];
      break;
    }
  cr_assert_eq(pt_isa_active(), best);
}

static void check_best_chosen(const char *value) {
  setenv("PERTURB_ISA", value, 1);
  const pt_isa chosen = pt_isa_active();
  cr_assert(pt_isa_supported(chosen));
  cr_assert(chosen != PT_ISA_SCALAR || (!pt_isa_supported(PT_ISA_AVX2) && !pt_isa_supported(PT_ISA_NEON)),
            "PERTURB_ISA=\"%s\"", value);
}

Test(api, auto_is_default) { check_best_chosen("auto"); }
Test(api, empty_is_default) { check_best_chosen(""); }

Test(api, select_every_supported_isa) {
  for (int isa = PT_ISA_SCALAR; isa <= PT_ISA_NEON; isa++) {
    if (pt_isa_supported((pt_isa)isa)) {
      cr_assert_eq(pt_isa_select((pt_isa)isa), PT_OK);
      cr_assert_eq(pt_isa_active(), (pt_isa)isa);
    } else {
      const pt_isa before = pt_isa_active();
      cr_assert_eq(pt_isa_select((pt_isa)isa), PT_EUNSUPPORTED);
      cr_assert_eq(pt_isa_active(), before, "a refused select must not change the active ISA");
    }
  }
}

Test(api, env_forces_scalar) {
  setenv("PERTURB_ISA", "scalar", 1);
  cr_assert_eq(pt_isa_active(), PT_ISA_SCALAR);
  int32_t idx = -1;
  const float x[3] = {1, 3, 2};
  cr_assert_eq(pt_argmax_rows(x, 1, 3, 3, &idx), PT_OK);
  cr_assert_eq(idx, 1);
}

/* A mistaken override never silently measures something else: every computing call fails,
   writing nothing, until pt_isa_select is called. */
static void check_override_refused(const char *value) {
  setenv("PERTURB_ISA", value, 1);
  int32_t idx = -1;
  const float x[3] = {1, 3, 2};
  cr_assert_eq(pt_argmax_rows(x, 1, 3, 3, &idx), PT_EUNSUPPORTED, "PERTURB_ISA=%s", value);
  cr_assert_eq(idx, -1);
  cr_assert_eq(pt_isa_select(PT_ISA_SCALAR), PT_OK);
  cr_assert_eq(pt_argmax_rows(x, 1, 3, 3, &idx), PT_OK);
  cr_assert_eq(idx, 1);
}

Test(api, env_unknown_isa_refuses_until_select) { check_override_refused("sse9"); }
Test(api, env_name_is_case_sensitive) { check_override_refused("AVX2"); }

Test(api, env_unsupported_isa_refuses_until_select) {
#if defined(__x86_64__)
  check_override_refused("neon");
#else
  check_override_refused("avx2");
#endif
}

/* pt_isa_select is safe while other threads compute: every call sees one whole table, and
   since every ISA gives the same answers, the answers never change. */

enum { SELECT_ROWS = 257, SELECT_D = 37, SELECT_ROUNDS = 200 };
static float select_x[SELECT_ROWS * SELECT_D];
static int32_t select_want[SELECT_ROWS];

static void *compute_while_switching(void *arg) {
  (void)arg;
  int32_t got[SELECT_ROWS];
  for (int i = 0; i < SELECT_ROUNDS; i++) {
    if (pt_argmax_rows(select_x, SELECT_ROWS, SELECT_D, SELECT_D, got) != PT_OK) return "failed";
    if (memcmp(got, select_want, sizeof got) != 0) return "different";
  }
  return NULL;
}

Test(api, select_while_other_threads_compute) {
  unsetenv("PERTURB_ISA");
  for (size_t i = 0; i < SELECT_ROWS * SELECT_D; i++) select_x[i] = (float)((i * 7919) % 1013);
  cr_assert_eq(pt_argmax_rows(select_x, SELECT_ROWS, SELECT_D, SELECT_D, select_want), PT_OK);
  pthread_t workers[3];
  for (int t = 0; t < 3; t++)
    cr_assert_eq(pthread_create(&workers[t], NULL, compute_while_switching, NULL), 0);
  for (int i = 0; i < SELECT_ROUNDS; i++)
    for (int isa = PT_ISA_SCALAR; isa <= PT_ISA_NEON; isa++) (void)pt_isa_select((pt_isa)isa);
  for (int t = 0; t < 3; t++) {
    void *result;
    cr_assert_eq(pthread_join(workers[t], &result), 0);
    cr_assert_null(result, "a worker saw %s results", (const char *)result);
  }
}

/* ---- dispatch: PERTURB_ISA=<name> selects that ISA, for every supported one (not merely some
   ISA, or scalar).  Criterion runs each test in its own process: PERTURB_ISA is read afresh. */
static void expect_env_selects(pt_isa isa) {
  if (!pt_isa_supported(isa)) cr_skip_test("%s is not supported here", pt_isa_name(isa));
  setenv("PERTURB_ISA", pt_isa_name(isa), 1);
  cr_assert_eq(pt_isa_active(), isa, "PERTURB_ISA=%s gave %s", pt_isa_name(isa),
               pt_isa_name(pt_isa_active()));
}
Test(api, env_forces_avx2) { expect_env_selects(PT_ISA_AVX2); }
Test(api, env_forces_avx512) { expect_env_selects(PT_ISA_AVX512); }
Test(api, env_forces_neon) { expect_env_selects(PT_ISA_NEON); }

/* SPDX-License-Identifier: MIT */
/* Version, status strings, ISA names and the dispatch rules of pt_isa(3).
   Criterion runs each test in its own process, so PERTURB_ISA set in a test is read afresh. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h" /* PACKAGE_VERSION: AC_INIT's, the version's one source */
#include "perturb.h"
#include "gen/isas.h" /* PT_ISA_COUNT: the ISAs of gen/kernel_table.py */

/* The library and the header's macros carry AC_INIT's version. */
Test(api, version) {
  cr_assert_str_eq(pt_version(), PACKAGE_VERSION);
  char macros[64];
  snprintf(macros, sizeof macros, "%d.%d.%d", PT_VERSION_MAJOR, PT_VERSION_MINOR,
           PT_VERSION_PATCH);
  cr_assert_str_eq(macros, PACKAGE_VERSION);
}

/* NEWS's newest release, the first MAJOR.MINOR.PATCH in the file outside a line marked
   "(unreleased)", is AC_INIT's version: a release bumps both.  An unreleased entry may name the
   version it will become (0.2.0 while the library still reports the 0.1.0 that perturb.h's
   contract fixes).  Skipped in a tree without NEWS. */
Test(api, news_names_this_version) {
  const char *srcdir = getenv("top_srcdir");
  char path[4096];
  snprintf(path, sizeof path, "%s/NEWS", srcdir ? srcdir : ".");
  FILE *news = fopen(path, "r");
  if (!news) cr_skip_test("no %s", path);
  char line[1024], newest[64] = "";
  while (!newest[0] && fgets(line, sizeof line, news)) {
    if (strstr(line, "(unreleased)")) continue;
    for (const char *c = line; *c && !newest[0]; c++) {
      unsigned major, minor, patch;
      /* a version starts at a digit that does not continue a number */
      if (*c >= '0' && *c <= '9' && (c == line || !strchr("0123456789.", c[-1])) &&
          sscanf(c, "%u.%u.%u", &major, &minor, &patch) == 3)
        snprintf(newest, sizeof newest, "%u.%u.%u", major, minor, patch);
    }
  }
  fclose(news);
  cr_assert(newest[0], "%s names no version", path);
  cr_assert_str_eq(newest, PACKAGE_VERSION, "%s's newest release is %s, configure.ac's AC_INIT %s",
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

/* PT_ISA_<NAME> is named "<name>" (lower case), for every row; nothing past the rows. */
Test(api, isa_names) {
#define PT_CHECK_NAME(name, value) cr_assert_str_eq(pt_isa_name(value), #name);
  PT_FOR_EACH_ISA(PT_CHECK_NAME)
#undef PT_CHECK_NAME
  cr_assert_str_eq(pt_isa_name(PT_ISA_SCALAR), "scalar"); /* perturb.h's list, spelled out */
  cr_assert_str_eq(pt_isa_name(PT_ISA_AVX2), "avx2");
  cr_assert_str_eq(pt_isa_name(PT_ISA_AVX512), "avx512");
  cr_assert_str_eq(pt_isa_name(PT_ISA_NEON), "neon");
  cr_assert_null(pt_isa_name((pt_isa)PT_ISA_COUNT));
  cr_assert_null(pt_isa_name((pt_isa)-1));
}

Test(api, fallback_always_supported_unknown_never) {
  cr_assert_eq(pt_isa_supported(PT_ISA_FALLBACK), 1);
  cr_assert_eq(pt_isa_supported((pt_isa)PT_ISA_COUNT), 0);
  cr_assert_eq(pt_isa_select((pt_isa)PT_ISA_COUNT), PT_EUNSUPPORTED);
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

/* The first supported ISA of the rows' preference order (gen/kernel_table.py). */
static pt_isa best_supported(void) {
  static const pt_isa order[PT_ISA_COUNT] = PT_ISA_PREFERENCE;
  for (size_t i = 0; i < PT_ISA_COUNT; i++)
    if (pt_isa_supported(order[i])) return order[i];
  return PT_ISA_FALLBACK;
}

/* The preference order is that of README.md: AVX-512, AVX2, NEON, scalar. */
Test(api, preference_order) {
  static const pt_isa order[PT_ISA_COUNT] = PT_ISA_PREFERENCE;
  const pt_isa readme[] = {PT_ISA_AVX512, PT_ISA_AVX2, PT_ISA_NEON, PT_ISA_SCALAR};
  const size_t listed = sizeof readme / sizeof readme[0];
  size_t j = 0; /* README's list in this order, other rows anywhere between */
  for (size_t i = 0; i < PT_ISA_COUNT && j < listed; i++)
    if (order[i] == readme[j]) j++;
  cr_assert_eq(j, listed, "gen/kernel_table.py's preferences put %s out of README.md's order",
               pt_isa_name(readme[j < listed ? j : 0]));
}

/* The default is the best supported ISA. */
Test(api, default_is_best_supported) {
  unsetenv("PERTURB_ISA");
  cr_assert_eq(pt_isa_active(), best_supported());
}

static void check_best_chosen(const char *value) {
  setenv("PERTURB_ISA", value, 1);
  const pt_isa chosen = pt_isa_active();
  cr_assert(pt_isa_supported(chosen));
  cr_assert_eq(chosen, best_supported(), "PERTURB_ISA=\"%s\"", value);
}

Test(api, auto_is_default) { check_best_chosen("auto"); }
Test(api, empty_is_default) { check_best_chosen(""); }

Test(api, select_every_supported_isa) {
  for (int isa = 0; isa < PT_ISA_COUNT; isa++) {
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
/* The best supported ISA's name in upper case ("AVX512" on an AVX-512 machine). */
Test(api, env_name_is_case_sensitive) {
  char upper[32];
  const char *name = pt_isa_name(best_supported());
  size_t i = 0;
  for (; name[i] && i + 1 < sizeof upper; i++) upper[i] = (char)toupper((unsigned char)name[i]);
  upper[i] = 0;
  check_override_refused(upper);
}

/* Some ISA this library or CPU does not support (NEON on x86-64, AVX2 on AArch64). */
Test(api, env_unsupported_isa_refuses_until_select) {
  for (int isa = 0; isa < PT_ISA_COUNT; isa++)
    if (!pt_isa_supported((pt_isa)isa)) {
      check_override_refused(pt_isa_name((pt_isa)isa));
      return;
    }
  cr_skip_test("every ISA is supported here");
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
    for (int isa = 0; isa < PT_ISA_COUNT; isa++) (void)pt_isa_select((pt_isa)isa);
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
#define PT_ENV_TEST(name, value) \
  Test(api, env_selects_##name) { expect_env_selects(value); }
PT_FOR_EACH_ISA(PT_ENV_TEST)
#undef PT_ENV_TEST

/* SPDX-License-Identifier: MIT */
/* pt_last_error: every refusal's sentence names the function called and the argument, value
   or limit at fault; a success leaves the last sentence; each thread has its own; a refused
   PERTURB_ISA or PERTURB_NUM_THREADS names the value and what would do.  Criterion runs each
   test in its own process, so the environment variables are read afresh. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"

/* The call returns `want`, and its sentence starts with "name: " and holds each of the
   fragments (a NULL-terminated list). */
static void expect_sentence_(pt_status got, pt_status want, const char *name,
                             const char *const *fragments, const char *what) {
  const char *sentence = pt_last_error();
  cr_assert_eq(got, want, "%s: status %d, not %d (\"%s\")", what, got, want, sentence);
  const size_t n = strlen(name);
  cr_assert(strncmp(sentence, name, n) == 0 && strncmp(sentence + n, ": ", 2) == 0,
            "%s: the sentence \"%s\" does not start with \"%s: \"", what, sentence, name);
  for (; *fragments; fragments++)
    cr_assert(strstr(sentence, *fragments), "%s: \"%s\" does not say \"%s\"", what, sentence,
              *fragments);
}
#define EXPECT(call, want, name, ...) \
  expect_sentence_((call), (want), (name), (const char *const[]){__VA_ARGS__, NULL}, #call)

static int identity(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  memcpy(y, x, batch * 3 * sizeof *y);
  return 0;
}
static int failing(void *user, size_t batch, const float *x, float *y) {
  (void)user, (void)batch, (void)x, (void)y;
  return 42;
}
static int failing_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user, (void)x, (void)y_bar, (void)x_bar;
  return -7;
}

Test(errors, empty_before_the_first_failure_and_kept_after_a_success) {
  cr_assert_str_eq(pt_last_error(), "");
  float out[4];
  EXPECT(pt_noise_fill((pt_noise)9, pt_key_make(1), 0, out, 4), PT_EINVAL, "pt_noise_fill",
         "kind is 9");
  cr_assert_eq(pt_noise_fill(PT_NOISE_NORMAL, pt_key_make(1), 0, out, 4), PT_OK);
  cr_assert(strstr(pt_last_error(), "kind is 9"), "a success replaced the sentence");
}

static void *read_sentence(void *arg) {
  *(int *)arg = pt_last_error()[0] == '\0';
  return NULL;
}

Test(errors, each_thread_has_its_own) {
  EXPECT(pt_set_num_threads(0), PT_EINVAL, "pt_set_num_threads", "n is 0", "1024");
  int empty = 0;
  pthread_t t;
  cr_assert_eq(pthread_create(&t, NULL, read_sentence, &empty), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  cr_assert(empty, "another thread saw this thread's sentence");
}

Test(errors, row_kernels_and_noise) {
  const float x[8] = {0};
  int32_t idx[2], perm[8];
  float out[8];
  const pt_key k = pt_key_make(3);
  EXPECT(pt_argmax_rows(x, 2, 0, 4, idx), PT_EINVAL, "pt_argmax_rows", "d is 0");
  EXPECT(pt_argmax_rows(x, 2, 4, 3, idx), PT_EINVAL, "pt_argmax_rows", "stride of x is 3",
         "d = 4");
  EXPECT(pt_argmax_rows(NULL, 2, 4, 4, idx), PT_EINVAL, "pt_argmax_rows", "x is NULL");
  EXPECT(pt_argmax_rows(x, 2, 4, 4, NULL), PT_EINVAL, "pt_argmax_rows", "idx is NULL");
  EXPECT(pt_argmax_rows(x, 1, (size_t)INT32_MAX + 1, (size_t)INT32_MAX + 1, idx), PT_EOVERFLOW,
         "pt_argmax_rows", "INT32_MAX");
  EXPECT(pt_argmax_rows(x, SIZE_MAX / 2, 4, 4, idx), PT_EOVERFLOW, "pt_argmax_rows",
         "PTRDIFF_MAX");
  EXPECT(pt_argsort_rows(x, 2, 4, 4, perm, 3), PT_EINVAL, "pt_argsort_rows", "stride of perm is 3");
  EXPECT(pt_rank_rows(x, 2, 4, 4, NULL, 4), PT_EINVAL, "pt_rank_rows", "rank is NULL");
  EXPECT(pt_weighted_sum_rows(x, 2, 4, 4, NULL, NULL), PT_EINVAL, "pt_weighted_sum_rows",
         "out is NULL");
  EXPECT(pt_noise_fill(PT_NOISE_GUMBEL, k, 0, NULL, 3), PT_EINVAL, "pt_noise_fill",
         "out is NULL");
  EXPECT(pt_noise_fill(PT_NOISE_GUMBEL, k, UINT64_MAX - 1, out, 3), PT_EOVERFLOW,
         "pt_noise_fill", "2^64 - 1");
  EXPECT(pt_isa_select((pt_isa)17), PT_EUNSUPPORTED, "pt_isa_select", "17");
}

Test(errors, functions) {
  pt_fn *id = NULL, *box = NULL, *bad = NULL, *custom = NULL, *out = NULL, *am = NULL;
  cr_assert_eq(pt_custom_gradient(3, 3, identity, failing_vjp, NULL, &custom), PT_OK);
  cr_assert_eq(pt_fn_from_callback(3, 3, identity, NULL, &box), PT_OK);
  cr_assert_eq(pt_fn_from_callback(3, 3, failing, NULL, &bad), PT_OK);
  cr_assert_eq(pt_fn_argmax_one_hot(4, &am), PT_OK);
  const pt_key k = pt_key_make(4);
  const float x[3] = {1, 2, 3};
  float y[9], v[2];
  EXPECT(pt_fn_from_callback(0, 3, identity, NULL, &id), PT_EINVAL, "pt_fn_from_callback",
         "n_in is 0");
  EXPECT(pt_fn_from_callback(3, 3, NULL, NULL, &id), PT_EINVAL, "pt_fn_from_callback",
         "evaluation callback is NULL");
  EXPECT(pt_custom_gradient(3, 3, identity, NULL, NULL, &id), PT_EINVAL, "pt_custom_gradient",
         "gx is NULL");
  EXPECT(pt_fn_from_callback_ex(3, 3, identity, NULL, NULL, NULL, 8, &id), PT_EINVAL,
         "pt_fn_from_callback_ex", "flags are 0x8");
  EXPECT(pt_fn_compose(am, box, &out), PT_EINVAL, "pt_fn_compose", "takes 4 inputs",
         "gives 3 outputs");
  EXPECT(pt_fn_eval(NULL, k, x, y), PT_EINVAL, "pt_fn_eval", "f is NULL");
  EXPECT(pt_fn_eval(box, k, NULL, y), PT_EINVAL, "pt_fn_eval", "x or y is NULL");
  EXPECT(pt_fn_eval(bad, k, x, y), PT_ECALLBACK, "pt_fn_eval", "returned 42");
  EXPECT(pt_fn_vjp(box, k, x, x, y), PT_EUNSUPPORTED, "pt_fn_vjp", "no derivatives");
  EXPECT(pt_fn_vjp(custom, k, x, x, y), PT_ECALLBACK, "pt_fn_vjp", "vjp callback returned -7");
  EXPECT(pt_fn_jacobian(custom, k, x, y), PT_ECALLBACK, "pt_fn_jacobian", "returned -7");
  EXPECT(pt_fn_hessian(custom, k, x, y), PT_EUNSUPPORTED, "pt_fn_hessian", "no Hessian");
  EXPECT(pt_fn_value_and_grad(custom, k, x, v, y), PT_EINVAL, "pt_fn_value_and_grad",
         "3 outputs, not one");
  EXPECT(pt_fn_vjp_batch(box, k, 2, x, x, y), PT_EUNSUPPORTED, "pt_fn_vjp_batch",
         "no derivatives");
  EXPECT(pt_fn_eval_batch(box, k, SIZE_MAX / 2, x, y), PT_EOVERFLOW, "pt_fn_eval_batch",
         "PTRDIFF_MAX");
  pt_fn *fs[] = {custom, box, bad, am};
  for (size_t i = 0; i < 4; i++) pt_fn_free(fs[i]);
}

Test(errors, perturbed_inputs_and_partials) {
  pt_fn *am = NULL, *p = NULL;
  cr_assert_eq(pt_fn_argmax_one_hot(4, &am), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(am, 100, 0.5f, PT_NOISE_GUMBEL, 1, &p), PT_OK);
  const pt_key k = pt_key_make(5);
  float x[4] = {0.1f, 0.2f, NAN, 0.0f}, jac[16];
  EXPECT(pt_fn_jacobian(p, k, x, jac), PT_EINVAL, "pt_fn_jacobian", "x[2] is nan");
  x[2] = 0.3f;
  pt_partial *part = NULL;
  EXPECT(pt_fn_partial(am, PT_OP_EVAL, k, x, NULL, 0, 1, &part), PT_EUNSUPPORTED,
         "pt_fn_partial", "not a perturbed function");
  EXPECT(pt_fn_partial(p, PT_OP_EVAL, k, x, NULL, 0, 101, &part), PT_EINVAL, "pt_fn_partial",
         "[0, 101)", "[0, 100)");
  cr_assert_eq(pt_fn_partial(p, PT_OP_EVAL, k, x, NULL, 0, 100, &part), PT_OK);
  unsigned char buf[4096];
  EXPECT(pt_partial_save(part, buf, 8), PT_EINVAL, "pt_partial_save", "size is 8");
  const size_t size = pt_partial_size(part);
  cr_assert_eq(pt_partial_save(part, buf, sizeof buf), PT_OK);
  buf[size - 1] ^= 1;
  pt_partial *back = NULL;
  EXPECT(pt_partial_load(buf, size, &back), PT_EINVAL, "pt_partial_load", "checksum");
  EXPECT(pt_partial_merge(part, part), PT_EINVAL, "pt_partial_merge", "both partials hold");
  pt_partial_free(part);
  pt_fn_free(p);
  pt_fn_free(am);
}

Test(errors, built_ins) {
  pt_fn *out = NULL;
  const size_t sizes[3] = {4, 0, 2}, top_sizes[2] = {4, 3}, ks[2] = {1, 5};
  EXPECT(pt_fn_top_k(10, 11, &out), PT_EINVAL, "pt_fn_top_k", "k is 11", "d = 10");
  EXPECT(pt_fn_top_k(10, 0, &out), PT_EINVAL, "pt_fn_top_k", "k is 0");
  EXPECT(pt_fn_top_k_segments(top_sizes, ks, 2, &out), PT_EINVAL, "pt_fn_top_k_segments",
         "ks[1] is 5", "sizes[1] = 3");
  EXPECT(pt_fn_argmax_one_hot_segments(sizes, 3, &out), PT_EINVAL,
         "pt_fn_argmax_one_hot_segments", "sizes[1] is 0");
  EXPECT(pt_fn_max_segments(sizes, 0, &out), PT_EINVAL, "pt_fn_max_segments", "count is 0");
  EXPECT(pt_fn_sort(0, &out), PT_EINVAL, "pt_fn_sort", "d is 0");
  EXPECT(pt_fn_ranking(4, NULL), PT_EINVAL, "pt_fn_ranking", "out is NULL");
  EXPECT(pt_fn_permutation_matrix(50000, &out), PT_EOVERFLOW, "pt_fn_permutation_matrix",
         "INT32_MAX");
  cr_assert_null(out, "a refused constructor wrote its output");
}

Test(errors, perturbed_functions_and_losses) {
  pt_fn *am = NULL, *max = NULL, *box = NULL, *out = NULL, *sentinel = (pt_fn *)&out;
  cr_assert_eq(pt_fn_argmax_one_hot(4, &am), PT_OK);
  cr_assert_eq(pt_fn_max(4, &max), PT_OK);
  cr_assert_eq(pt_fn_from_callback(3, 3, identity, NULL, &box), PT_OK);
  out = sentinel;
  EXPECT(pt_make_perturbed_fun(am, 0, 0.5f, PT_NOISE_GUMBEL, 1, &out), PT_EINVAL,
         "pt_make_perturbed_fun", "num_samples is 0");
  EXPECT(pt_make_perturbed_fun(am, 10, -0.5f, PT_NOISE_GUMBEL, 1, &out), PT_EINVAL,
         "pt_make_perturbed_fun", "sigma is -0.5");
  EXPECT(pt_make_perturbed_fun(am, 10, 0.5f, PT_NOISE_UNIFORM, 1, &out), PT_EINVAL,
         "pt_make_perturbed_fun", "noise is");
  pt_perturb_options o = pt_perturb_defaults();
  o.antithetic = 1;
  o.num_samples = 11;
  EXPECT(pt_make_perturbed_fun_ex(am, &o, &out), PT_EINVAL, "pt_make_perturbed_fun_ex",
         "even num_samples, not 11");
  o = pt_perturb_defaults();
  o.multiplicative = 1;
  EXPECT(pt_make_perturbed_fun_ex(am, &o, &out), PT_EINVAL, "pt_make_perturbed_fun_ex",
         "PT_NOISE_NORMAL");
  o = pt_perturb_defaults();
  o.gradient = PT_GRADIENT_PATHWISE;
  EXPECT(pt_make_perturbed_fun_ex(box, &o, &out), PT_EINVAL, "pt_make_perturbed_fun_ex",
         "own derivative");
  o = pt_perturb_defaults();
  o.block_diagonal = 1;
  EXPECT(pt_make_perturbed_fun_ex(am, &o, &out), PT_EINVAL, "pt_make_perturbed_fun_ex",
         "two segments");
  o = pt_perturb_defaults();
  o.size = 8;
  EXPECT(pt_make_perturbed_fun_ex(am, &o, &out), PT_EINVAL, "pt_make_perturbed_fun_ex",
         "options->size is 8");
  EXPECT(pt_fenchel_young_loss(max, NULL, &out), PT_EINVAL, "pt_fenchel_young_loss",
         "not an optimizer");
  cr_assert_eq(out, sentinel, "a refused constructor wrote its output");
  pt_fn *loss = NULL;
  cr_assert_eq(pt_fenchel_young_loss(am, NULL, &loss), PT_OK);
  const float theta_y[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.0f, 1.0f, 0.0f, NAN};
  float v, g[8];
  EXPECT(pt_fn_value_and_grad(loss, pt_key_make(1), theta_y, &v, g), PT_EINVAL,
         "pt_fn_value_and_grad", "y_true[3] is nan");
  pt_fn *fs[] = {loss, am, max, box};
  for (size_t i = 0; i < 4; i++) pt_fn_free(fs[i]);
}

/* A mistaken PERTURB_ISA: the sentence quotes it, says names are matched exactly and lists
   what this CPU runs; pure callbacks are refused as well, with the same sentence. */
Test(errors, perturb_isa_refused) {
  setenv("PERTURB_ISA", "AVX2 ", 1);
  int32_t idx;
  const float x[3] = {1, 3, 2};
  EXPECT(pt_argmax_rows(x, 1, 3, 3, &idx), PT_EUNSUPPORTED, "pt_argmax_rows",
         "PERTURB_ISA is \"AVX2 \"", "matched exactly", "this CPU runs scalar");
  pt_fn *box = NULL;
  cr_assert_eq(pt_fn_from_callback(3, 3, identity, NULL, &box), PT_OK);
  float y[3];
  EXPECT(pt_fn_eval(box, pt_key_make(1), x, y), PT_EUNSUPPORTED, "pt_fn_eval",
         "PERTURB_ISA is \"AVX2 \"");
  pt_fn_free(box);
}

Test(errors, perturb_isa_not_run_here) {
  for (int isa = 0; isa < 4; isa++) {
    const char *name = pt_isa_name((pt_isa)isa);
    if (!name || pt_isa_supported((pt_isa)isa)) continue;
    setenv("PERTURB_ISA", name, 1);
    float out[2];
    EXPECT(pt_noise_fill(PT_NOISE_UNIFORM, pt_key_make(1), 0, out, 2), PT_EUNSUPPORTED,
           "pt_noise_fill", name, "do not run", "they run scalar");
    return;
  }
  cr_skip_test("every ISA runs here");
}

Test(errors, perturb_num_threads_refused) {
  setenv("PERTURB_NUM_THREADS", "four", 1);
  float out[2];
  EXPECT(pt_noise_fill(PT_NOISE_UNIFORM, pt_key_make(1), 0, out, 2), PT_EINVAL,
         "pt_noise_fill", "PERTURB_NUM_THREADS is \"four\"", "1 to 1024",
         "pt_set_num_threads");
}

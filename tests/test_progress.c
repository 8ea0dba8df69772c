/* SPDX-License-Identifier: MIT */
/* pt_set_progress_handler: reports from the calling thread with done <= total, never for a
   call shorter than the interval, and a non-zero return cancels the call with PT_ECANCELED and
   nothing written, on the fused and generic estimator paths, the row kernels, the noise, a
   batch and a composition, with one thread and with two.  A call that is not canceled gives
   the bits of the same call without a handler. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"

#define UNTOUCHED 0x5A

typedef struct watch {
  pthread_t thread;     /* the thread that set the handler */
  size_t reports;       /* calls of the handler */
  size_t stop_after;    /* return non-zero at this report (0: never) */
  uint64_t last_done, total;
  int wrong_thread, backwards, past_total, total_changed;
} watch;

static int on_progress(void *user, uint64_t done, uint64_t total) {
  watch *w = user;
  if (!pthread_equal(pthread_self(), w->thread)) w->wrong_thread = 1;
  if (done < w->last_done) w->backwards = 1;
  if (done > total) w->past_total = 1;
  if (w->reports && total != w->total) w->total_changed = 1;
  w->last_done = done;
  w->total = total;
  w->reports++;
  return w->stop_after && w->reports >= w->stop_after;
}

static void check_watch(const watch *w) {
  cr_assert(!w->wrong_thread, "the handler ran on another thread");
  cr_assert(!w->backwards, "done went backwards");
  cr_assert(!w->past_total, "done passed total");
  cr_assert(!w->total_changed, "total changed during a call");
}

/* One call of each kind, into `out` (at most OUT floats or int32s). */
enum { OUT = 1 << 22 };
typedef pt_status (*call_fn)(void *out);

static pt_fn *fused, *generic, *chain, *onehot, *box, *step;
static float x[1000], y_bar[1000], *rows_in;

static int square(void *user, size_t batch, const float *in, float *out) {
  (void)user;
  for (size_t i = 0; i < batch * 1000; i++) out[i] = in[i] * in[i];
  return 0;
}
static int square_vjp(void *user, const float *in, const float *bar, float *in_bar) {
  (void)user;
  for (size_t i = 0; i < 1000; i++) in_bar[i] = 2.0f * in[i] * bar[i];
  return 0;
}

static void build(void) {
  cr_assert_eq(pt_fn_argmax_one_hot(1000, &onehot), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(onehot, 20000, 0.5f, PT_NOISE_GUMBEL, 1, &fused), PT_OK);
  cr_assert_eq(pt_fn_from_callback_ex(1000, 1000, square, NULL, NULL, NULL,
                                      PT_CALLBACK_THREAD_SAFE, &box), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun(box, 4000, 0.5f, PT_NOISE_NORMAL, 1, &generic), PT_OK);
  cr_assert_eq(pt_custom_gradient(1000, 1000, square, square_vjp, NULL, &step), PT_OK);
  cr_assert_eq(pt_fn_compose(step, fused, &chain), PT_OK);
  for (size_t i = 0; i < 1000; i++) {
    x[i] = (float)((i * 37) % 101) * 0.01f;
    y_bar[i] = (float)(i % 7) - 3.0f;
  }
  rows_in = malloc(OUT * sizeof *rows_in);
  cr_assert_not_null(rows_in);
  for (size_t i = 0; i < OUT; i++) rows_in[i] = (float)((i * 7919) % 10007);
}

static void tear_down(void) {
  pt_fn *all[] = {fused, generic, chain, onehot, box, step};
  for (size_t i = 0; i < 6; i++) pt_fn_free(all[i]);
  free(rows_in);
  pt_set_progress_handler(NULL, NULL, 0);
}

TestSuite(progress, .init = build, .fini = tear_down);

static pt_status fused_vjp(void *out) { return pt_fn_vjp(fused, pt_key_make(1), x, y_bar, out); }
static pt_status generic_eval(void *out) { return pt_fn_eval(generic, pt_key_make(2), x, out); }
static pt_status chain_jvp(void *out) { return pt_fn_jvp(chain, pt_key_make(3), x, y_bar, out); }
static pt_status batch_vjp(void *out) {
  static float xs[4000], bars[4000];
  for (size_t i = 0; i < 4000; i++) xs[i] = x[i % 1000], bars[i] = y_bar[i % 1000];
  return pt_fn_vjp_batch(fused, pt_key_make(4), 4, xs, bars, out);
}
static pt_status argmax(void *out) {
  return pt_argmax_rows(rows_in, OUT / 16, 16, 16, out);
}
static pt_status ranks(void *out) {
  return pt_rank_rows(rows_in, OUT / 64, 64, 64, out, 64);
}
static pt_status noise(void *out) {
  return pt_noise_fill(PT_NOISE_GUMBEL, pt_key_make(5), 7, out, OUT);
}

static const struct {
  const char *name;
  call_fn call;
  size_t floats;
} calls[] = {{"fused vjp", fused_vjp, 1000},    {"generic eval", generic_eval, 1000},
             {"composition jvp", chain_jvp, 1000}, {"batched vjp", batch_vjp, 4000},
             {"argmax rows", argmax, OUT / 16}, {"rank rows", ranks, OUT},
             {"noise", noise, OUT}};
enum { CALLS = sizeof calls / sizeof calls[0] };

/* Every call under a handler that reports at every checkpoint: the same bits as without one,
   reports in order, and a report that ends at its total. */
static void reports_and_same_bits(size_t threads) {
  cr_assert_eq(pt_set_num_threads(threads), PT_OK);
  float *plain = malloc(OUT * sizeof *plain), *watched = malloc(OUT * sizeof *watched);
  cr_assert(plain && watched);
  for (size_t c = 0; c < CALLS; c++) {
    pt_set_progress_handler(NULL, NULL, 0);
    cr_assert_eq(calls[c].call(plain), PT_OK, "%s", calls[c].name);
    watch w = {.thread = pthread_self()};
    pt_set_progress_handler(on_progress, &w, 0.0);
    cr_assert_eq(calls[c].call(watched), PT_OK, "%s", calls[c].name);
    pt_set_progress_handler(NULL, NULL, 0);
    cr_assert(w.reports > 0, "%s: no report", calls[c].name);
    check_watch(&w);
    cr_assert(memcmp(plain, watched, calls[c].floats * sizeof *plain) == 0,
              "%s: a handler changed the bits", calls[c].name);
  }
  free(plain);
  free(watched);
}

Test(progress, reports_on_one_thread) { reports_and_same_bits(1); }
Test(progress, reports_on_two_threads) { reports_and_same_bits(2); }

/* The handler stops each call at its second report: PT_ECANCELED, its sentence, and not a
   byte written. */
static void cancels(size_t threads) {
  cr_assert_eq(pt_set_num_threads(threads), PT_OK);
  unsigned char *out = malloc(OUT * sizeof(float));
  cr_assert_not_null(out);
  for (size_t c = 0; c < CALLS; c++) {
    memset(out, UNTOUCHED, OUT * sizeof(float));
    watch w = {.thread = pthread_self(), .stop_after = 2};
    pt_set_progress_handler(on_progress, &w, 0.0);
    const pt_status got = calls[c].call(out);
    cr_assert_eq(got, PT_ECANCELED, "%s: status %d after %zu reports", calls[c].name, got, w.reports);
    pt_set_progress_handler(NULL, NULL, 0);
    cr_assert_eq(w.reports, 2, "%s: %zu reports", calls[c].name, w.reports);
    cr_assert(strstr(pt_last_error(), "progress handler"), "%s: \"%s\"", calls[c].name,
              pt_last_error());
    for (size_t i = 0; i < calls[c].floats * sizeof(float); i++)
      cr_assert_eq(out[i], UNTOUCHED, "%s: a canceled call wrote byte %zu", calls[c].name, i);
  }
  free(out);
}

Test(progress, cancels_on_one_thread) { cancels(1); }
Test(progress, cancels_on_two_threads) { cancels(2); }

/* A call shorter than the interval is never reported, and another thread's calls never reach
   this thread's handler. */
static void *call_elsewhere(void *arg) {
  float *out = arg;
  return (void *)(intptr_t)fused_vjp(out);
}

Test(progress, quiet_for_short_calls_and_other_threads) {
  watch w = {.thread = pthread_self()};
  pt_set_progress_handler(on_progress, &w, 3600.0);
  float out[1000];
  cr_assert_eq(fused_vjp(out), PT_OK);
  cr_assert_eq(w.reports, 0, "a call shorter than the interval was reported");
  pt_set_progress_handler(on_progress, &w, 0.0);
  pthread_t t;
  void *status;
  cr_assert_eq(pthread_create(&t, NULL, call_elsewhere, out), 0);
  cr_assert_eq(pthread_join(t, &status), 0);
  cr_assert_eq((pt_status)(intptr_t)status, PT_OK);
  cr_assert_eq(w.reports, 0, "another thread's call was reported");
  pt_set_progress_handler(NULL, NULL, 0);
}

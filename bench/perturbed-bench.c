/* SPDX-License-Identifier: MIT */
/* perturbed-bench: times perturbed functions (pt_make_perturbed_fun) through the public API on
   every ISA this CPU supports.  The function layer is not a kernel-table family, so it has
   this program of its own beside perturb-bench.

   perturbed-bench [--case NAME] [--isa NAME] [--repeats N] [--threads N] [--json]

   Cases (name: what one call computes):
     argmax_eval    the perturbed argmax one-hot (Gumbel, sigma 0.5, baseline) at one point
     argmax_vjp     its vector-Jacobian product (the backward pass of a loss)
     top_k_eval     the perturbed top-k one-hot, the 10 greatest (Gumbel, sigma 0.5, baseline)
     top_k_vjp      its vector-Jacobian product
     ranking_eval   perturbed ranks (Gumbel, sigma 0.5, baseline)
     ranking_vjp    their vector-Jacobian product
     max_eval       the smoothed max sigma LSE(x / sigma) + sigma gamma: the perturbed max
                    (Gumbel, sigma 0.5, pt_perturb_defaults: its pathwise gradient)
     max_vjp        its vector-Jacobian product, softmax(x / sigma) times y_bar
     sort_vjp       the vector-Jacobian product of the perturbed sort (pathwise, as max)
     argmax_pairs_eval, argmax_pairs_vjp
                    argmax_eval and argmax_vjp with antithetic pairs (half the noise drawn,
                    each pair's partner from 1 - u)
     noise_alone    pt_noise_fill of the same M x d Gumbel noise into memory, for scale
     *_batch        pt_fn_eval_batch / pt_fn_vjp_batch of 256 inputs
     box_argmax_vjp the argmax VJP of a user's argmax, a callback made with
                    PT_CALLBACK_THREAD_SAFE (the generic path, samples on every thread)
     fy_loss_grad_batch
                    pt_fn_value_and_grad_batch of the Fenchel-Young loss of the argmax one-hot
                    (pt_fenchel_young_loss, Gumbel, sigma 0.1, its pathwise gradient) at 256
                    rows (theta, y_true), y_true one-hot: a training step's loss and gradient
   each at the sizes (d, M) listed in `cases` below, on the library's default thread count or
   --threads N (pt_set_num_threads; the count is printed with the results).  Each (case, ISA)
   runs enough calls to last at least 20 ms, `repeats` times; the median is reported per call
   and per sampled element (M x d x batch), as a table or JSON lines for
   bench/perturbed_peer.py.

   perturbed-bench --memory D M   runs one fused perturbed-argmax evaluation of M samples of
   dimension D and prints how much it grew the peak resident memory (getrusage max RSS). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <perturb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "timing.h"
#include "../examples/progress_bar.h"

/* What one call does: evaluate the perturbed built-in, take its VJP, its value and gradient (a
   function of one output), or only draw its noise. */
typedef enum op { EVAL, VJP, VALUE_AND_GRAD, NOISE } op;

typedef struct bench_case {
  const char *name;
  pt_status (*builtin)(size_t d, pt_fn **out); /* the function perturbed; NULL for NOISE */
  op what;
  size_t d, samples, batch; /* batch > 1: the batched call on that many inputs */
  int pathwise;             /* perturbed with pt_perturb_defaults' PT_GRADIENT_AUTO, not v0.1's
                               score function */
  int fy;                   /* the Fenchel-Young loss of the built-in (inputs theta, y_true) at
                               FY_SIGMA, instead of its perturbed function */
  int antithetic;           /* samples in antithetic pairs */
} bench_case;

/* The Fenchel-Young case's sigma: sharp logits, as a classifier's loss late in training. */
#define FY_SIGMA 0.1f

/* A user's argmax one-hot solver, as a black box that may run on library threads. */
static int argmax_rows_callback(void *user, size_t batch, const float *x, float *y) {
  const size_t d = *(const size_t *)user;
  for (size_t b = 0; b < batch; b++) {
    size_t best = 0;
    for (size_t i = 1; i < d; i++)
      if (x[b * d + i] > x[b * d + best]) best = i;
    for (size_t i = 0; i < d; i++) y[b * d + i] = i == best ? 1.0f : 0.0f;
  }
  return 0;
}

static size_t box_d;
static pt_status box_argmax(size_t d, pt_fn **out) {
  box_d = d;
  return pt_fn_from_callback_ex(d, d, argmax_rows_callback, NULL, &box_d, NULL,
                                PT_CALLBACK_THREAD_SAFE, out);
}

/* the top-k cases' function: the 10 greatest (bench/perturbed_peer.py's TOP_K) */
static pt_status top_10(size_t d, pt_fn **out) { return pt_fn_top_k(d, 10, out); }

static const bench_case cases[] = {
    {"argmax_eval", pt_fn_argmax_one_hot, EVAL, 1000, 1000, 1, 0, 0, 0},
    {"argmax_eval", pt_fn_argmax_one_hot, EVAL, 5, 100, 1, 0, 0, 0},
    {"argmax_eval", pt_fn_argmax_one_hot, EVAL, 1000, 100000, 1, 0, 0, 0},
    {"argmax_vjp", pt_fn_argmax_one_hot, VJP, 1000, 1000, 1, 0, 0, 0},
    {"argmax_vjp", pt_fn_argmax_one_hot, VJP, 5, 100, 1, 0, 0, 0},
    {"top_k_eval", top_10, EVAL, 1000, 1000, 1, 0, 0, 0},
    {"top_k_vjp", top_10, VJP, 1000, 1000, 1, 0, 0, 0},
    {"ranking_eval", pt_fn_ranking, EVAL, 100, 1000, 1, 0, 0, 0},
    {"ranking_vjp", pt_fn_ranking, VJP, 100, 1000, 1, 0, 0, 0},
    {"noise_alone", NULL, NOISE, 1000, 1000, 1, 0, 0, 0},
    {"noise_alone", NULL, NOISE, 1000, 100000, 1, 0, 0, 0},
    {"argmax_eval_batch", pt_fn_argmax_one_hot, EVAL, 100, 1000, 256, 0, 0, 0},
    {"argmax_vjp_batch", pt_fn_argmax_one_hot, VJP, 100, 1000, 256, 0, 0, 0},
    {"ranking_eval_batch", pt_fn_ranking, EVAL, 100, 1000, 256, 0, 0, 0},
    {"ranking_vjp_batch", pt_fn_ranking, VJP, 100, 1000, 256, 0, 0, 0},
    {"box_argmax_vjp", box_argmax, VJP, 100, 10000, 1, 0, 0, 0},
    {"max_eval", pt_fn_max, EVAL, 1000, 1000, 1, 1, 0, 0},
    {"max_vjp", pt_fn_max, VJP, 1000, 1000, 1, 1, 0, 0},
    {"sort_vjp", pt_fn_sort, VJP, 100, 1000, 1, 1, 0, 0},
    {"fy_loss_grad_batch", pt_fn_argmax_one_hot, VALUE_AND_GRAD, 100, 1000, 256, 1, 1, 0},
    {"argmax_pairs_eval", pt_fn_argmax_one_hot, EVAL, 1000, 1000, 1, 0, 0, 1},
    {"argmax_pairs_vjp", pt_fn_argmax_one_hot, VJP, 1000, 1000, 1, 0, 0, 1},
};

/* A prepared case: the function and the buffers of one call. */
typedef struct prepared {
  const bench_case *c;
  pt_fn *f, *p;
  float *x, *y_bar, *out, *value; /* value: VALUE_AND_GRAD's, one per row */
} prepared;

static void check(pt_status s, const char *what) {
  if (s != PT_OK) {
    fprintf(stderr, "perturbed-bench: %s: %s\n", what, pt_strerror(s));
    exit(1);
  }
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 40;
}

static int prepare(const bench_case *c, prepared *p) {
  memset(p, 0, sizeof *p);
  p->c = c;
  const size_t n_in = c->fy ? 2 * c->d : c->d, n = n_in * c->batch;
  const size_t out_n = c->what == NOISE ? c->d * c->samples : n;
  p->x = malloc(n * sizeof *p->x);
  p->y_bar = malloc(n * sizeof *p->y_bar);
  p->out = malloc(out_n * sizeof *p->out);
  p->value = malloc(c->batch * sizeof *p->value);
  if (!p->x || !p->y_bar || !p->out || !p->value) return -1;
  uint64_t s = 42;
  for (size_t i = 0; i < n; i++) { /* logits spread over a few sigma, like a trained model's */
    p->x[i] = (float)lcg(&s) * 0x1p-24f * 2.0f - 1.0f;
    p->y_bar[i] = (float)(i % c->d % 7) * 0.25f - 0.75f;
  }
  if (c->fy) /* each row's second half: y_true, one-hot on a class drawn from the same stream */
    for (size_t b = 0; b < c->batch; b++) {
      float *y_true = p->x + b * n_in + c->d;
      memset(y_true, 0, c->d * sizeof *y_true);
      y_true[lcg(&s) % c->d] = 1.0f;
    }
  if (c->what == NOISE) return 0;
  check(c->builtin(c->d, &p->f), "built-in");
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = c->samples;
  o.sigma = c->fy ? FY_SIGMA : 0.5f;
  if (!c->pathwise) o.gradient = PT_GRADIENT_SCORE; /* pt_make_perturbed_fun(..., 1, ...) */
  o.antithetic = c->antithetic;
  if (c->fy) check(pt_fenchel_young_loss(p->f, &o, &p->p), "pt_fenchel_young_loss");
  else check(pt_make_perturbed_fun_ex(p->f, &o, &p->p), "pt_make_perturbed_fun_ex");
  return 0;
}

static void release(prepared *p) {
  pt_fn_free(p->p);
  pt_fn_free(p->f);
  free(p->x);
  free(p->y_bar);
  free(p->out);
  free(p->value);
}

static void call(const void *ctx) {
  const prepared *p = ctx;
  const pt_key key = pt_key_make(7);
  const size_t batch = p->c->batch;
  switch (p->c->what) {
    case EVAL:
      check(batch > 1 ? pt_fn_eval_batch(p->p, key, batch, p->x, p->out)
                      : pt_fn_eval(p->p, key, p->x, p->out), "eval");
      break;
    case VJP:
      check(batch > 1 ? pt_fn_vjp_batch(p->p, key, batch, p->x, p->y_bar, p->out)
                      : pt_fn_vjp(p->p, key, p->x, p->y_bar, p->out), "vjp");
      break;
    case VALUE_AND_GRAD:
      check(batch > 1 ? pt_fn_value_and_grad_batch(p->p, key, batch, p->x, p->value, p->out)
                      : pt_fn_value_and_grad(p->p, key, p->x, p->value, p->out), "value_and_grad");
      break;
    case NOISE:
      check(pt_noise_fill(PT_NOISE_GUMBEL, key, 0, p->out, p->c->d * p->c->samples), "noise");
      break;
  }
}

static long max_rss_kb(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

/* Peak memory growth of one fused evaluation: everything is set up first, so the growth is
   the call's own scratch. */
static int memory(size_t d, size_t samples) {
  pt_fn *f = NULL, *p = NULL;
  check(pt_fn_argmax_one_hot(d, &f), "pt_fn_argmax_one_hot");
  check(pt_make_perturbed_fun(f, samples, 0.5f, PT_NOISE_GUMBEL, 1, &p), "pt_make_perturbed_fun");
  float *x = calloc(d, sizeof *x), *y = calloc(d, sizeof *y);
  if (!x || !y) return 1;
  for (size_t i = 0; i < d; i++) x[i] = (float)(i % 13) * 0.1f;
  const long before = max_rss_kb();
  const double t0 = bench_now_ns();
  progress_bar_start("fused evaluation");
  check(pt_fn_eval(p, pt_key_make(1), x, y), "eval");
  progress_bar_end();
  const double t = bench_now_ns() - t0;
  const long after = max_rss_kb();
  printf("perturbed argmax eval, d=%zu, M=%zu on %s: %.1f ms, peak RSS %ld kB -> %ld kB "
         "(grew %.1f MB; the noise alone would be %.0f MB)\n",
         d, samples, pt_isa_name(pt_isa_active()), t / 1e6, before, after,
         (double)(after - before) / 1024.0, (double)d * (double)samples * 4.0 / 1048576.0);
  free(x);
  free(y);
  pt_fn_free(p);
  pt_fn_free(f);
  return 0;
}

static int case_named(const char *name) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
    if (!strcmp(name, cases[k].name)) return 1;
  return 0;
}

int main(int argc, char **argv) {
  const char *only_case = NULL, *only_isa = NULL;
  int repeats = 11, json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--json")) json = 1;
    else if (v && !strcmp(a, "--case")) only_case = argv[++i];
    else if (v && !strcmp(a, "--isa")) only_isa = argv[++i];
    else if (v && !strcmp(a, "--repeats")) repeats = atoi(argv[++i]);
    else if (v && !strcmp(a, "--threads")) {
      char *end;
      const unsigned long long n = strtoull(argv[++i], &end, 10);
      if (*end || pt_set_num_threads((size_t)n) != PT_OK) {
        fprintf(stderr, "perturbed-bench: --threads wants a count from 1 to 1024\n");
        return 2;
      }
    }
    else if (v && i + 2 < argc && !strcmp(a, "--memory"))
      return memory(strtoull(argv[i + 1], NULL, 10), strtoull(argv[i + 2], NULL, 10));
    else {
      fprintf(stderr, "usage: %s [--case NAME] [--isa NAME] [--repeats N] [--threads N] [--json] | "
                      "--memory D M\n", argv[0]);
      return 2;
    }
  }
  if (repeats < 1) repeats = 1;
  if (bench_check_isa("perturbed-bench", only_isa, NULL) != 0) return 2;
  if (only_case && !case_named(only_case)) {
    fprintf(stderr, "perturbed-bench: --case %s: unknown; the cases are", only_case);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) /* a case's sizes are adjacent */
      if (k == 0 || strcmp(cases[k].name, cases[k - 1].name) != 0)
        fprintf(stderr, " %s", cases[k].name);
    fputc('\n', stderr);
    return 2;
  }
  const size_t threads = pt_get_num_threads();
  if (!json)
    printf("%-18s %-7s %6s %8s %5s %14s %12s   (%zu threads)\n", "case", "isa", "d", "M", "batch",
           "ns/call", "ns/element", threads);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    const bench_case *c = &cases[k];
    if (only_case && strcmp(only_case, c->name) != 0) continue;
    prepared p;
    if (prepare(c, &p) != 0) {
      fprintf(stderr, "perturbed-bench: out of memory\n");
      return 1;
    }
    for (int isa = 0; pt_isa_name((pt_isa)isa); isa++) {
      if (only_isa && strcmp(only_isa, pt_isa_name((pt_isa)isa)) != 0) continue;
      if (pt_isa_select((pt_isa)isa) != PT_OK) continue;
      const double ns = bench_median_ns(call, &p, repeats);
      const double per = ns / ((double)c->d * (double)c->samples * (double)c->batch);
      if (json)
        printf("{\"case\": \"%s\", \"isa\": \"%s\", \"d\": %zu, \"samples\": %zu, "
               "\"batch\": %zu, \"threads\": %zu, \"ns_per_call\": %.1f, "
               "\"ns_per_element\": %.5f}\n",
               c->name, pt_isa_name((pt_isa)isa), c->d, c->samples, c->batch, threads, ns, per);
      else
        printf("%-18s %-7s %6zu %8zu %5zu %14.1f %12.4f\n", c->name, pt_isa_name((pt_isa)isa),
               c->d, c->samples, c->batch, ns, per);
      fflush(stdout);
    }
    release(&p);
  }
  return 0;
}

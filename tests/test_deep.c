/* SPDX-License-Identifier: MIT */
/* Functions built as deep as a user likes: a composition of a million stages, bracketed to the
   right, to the left and at random, is evaluated, differentiated and freed on a thread with a
   1 MiB stack, so nothing may recurse once per level; perturbed functions nest up to
   PT_FN_MAX_NESTING (32) levels and are refused beyond, with nothing written. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "perturb.h"

enum { N = 2, STAGES = 1000000, SPECIAL = 500000, MAX_NESTING = 32 };
static const size_t thread_stack = (size_t)1 << 20;

/* Stage k of the chain is x + 1, except stage SPECIAL, which is D x with D = diag(2, -1): all
   exact in float, so the chain's value is D (x + SPECIAL) + (STAGES - SPECIAL - 1) and its
   Jacobian D, and a stage run twice, dropped or run out of order shows in the result. */
static int plus_one(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t i = 0; i < batch * N; i++) y[i] = x[i] + 1.0f;
  return 0;
}
static int identity_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user, (void)x;
  memcpy(x_bar, y_bar, N * sizeof *x_bar);
  return 0;
}
static int diagonal(void *user, size_t batch, const float *x, float *y) {
  (void)user;
  for (size_t b = 0; b < batch; b++) y[b * N] = 2.0f * x[b * N], y[b * N + 1] = -x[b * N + 1];
  return 0;
}
static int diagonal_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  (void)user, (void)x;
  x_bar[0] = 2.0f * y_bar[0], x_bar[1] = -y_bar[1];
  return 0;
}

typedef enum bracketing { RIGHT, LEFT, RANDOM } bracketing;

typedef struct stages {
  pt_fn *step, *special; /* the two leaves, each used as a part many times */
} stages;

/* outer o inner; the parts that are compositions are given up to the new one (the leaves stay
   the caller's) */
static pt_fn *join(const stages *s, pt_fn *outer, pt_fn *inner) {
  pt_fn *c = NULL;
  cr_assert_eq(pt_fn_compose(outer, inner, &c), PT_OK);
  if (outer != s->step && outer != s->special) pt_fn_free(outer);
  if (inner != s->step && inner != s->special) pt_fn_free(inner);
  return c;
}

static pt_fn *stage(const stages *s, size_t k) { return k == SPECIAL ? s->special : s->step; }

/* The chain of STAGES stages, every composition in it held only by the tree.  RIGHT:
   c_k = compose(g_k, c_{k-1}), deep on its inner side; LEFT: built from the last stage
   backwards, c = compose(c, g_k), deep on its outer side; RANDOM: a shift-reduce of the
   stages in order that, after each stage, joins the two newest subtrees until a coin of
   probability 1/4 says stop, then joins all that are left (a tree of random shape, deep
   enough to overflow a 1 MiB stack if walked by recursion). */
static pt_fn *chain(const stages *s, bracketing how) {
  pt_fn *c = NULL;
  if (how == RIGHT) {
    c = stage(s, 0);
    for (size_t k = 1; k < STAGES; k++) c = join(s, stage(s, k), c);
  } else if (how == LEFT) {
    c = stage(s, STAGES - 1);
    for (size_t k = STAGES - 1; k-- > 0;) c = join(s, c, stage(s, k));
  } else {
    pt_fn **pending = malloc(STAGES * sizeof *pending);
    cr_assert_not_null(pending);
    size_t top = 0;
    uint64_t state = 88172645463325252u; /* xorshift64 */
    for (size_t k = 0; k < STAGES; k++) {
      pending[top++] = stage(s, k);
      for (;;) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        if (top < 2 || (state & 3) == 0) break;
        pending[top - 2] = join(s, pending[top - 1], pending[top - 2]);
        top--;
      }
    }
    for (; top > 1; top--) pending[top - 2] = join(s, pending[top - 1], pending[top - 2]);
    c = pending[0];
    free(pending);
  }
  return c;
}

/* The calls a test makes on a thread with a small stack, their statuses and outputs kept for
   the test's own thread to check (Criterion's assertions belong to that thread). */
typedef struct run {
  pt_fn *f;
  int free_it;
  pt_status status[5];
  float y[2 * N], y_batch[2 * N], vjp[N], jvp[N], jac[N * N];
} run;

static const float run_x[2 * N] = {1.5f, -0.25f, -7.0f, 4.0f}, run_dot[N] = {1.0f, -2.0f};

static void *run_calls(void *arg) {
  run *r = arg;
  const pt_key key = pt_key_make(9);
  r->status[0] = pt_fn_eval(r->f, key, run_x, r->y);
  r->status[1] = pt_fn_eval_batch(r->f, key, 2, run_x, r->y_batch);
  r->status[2] = pt_fn_vjp(r->f, key, run_x, run_dot, r->vjp);
  r->status[3] = pt_fn_jvp(r->f, key, run_x, run_dot, r->jvp);
  r->status[4] = pt_fn_jacobian(r->f, key, run_x, r->jac);
  if (r->free_it) pt_fn_free(r->f);
  return NULL;
}

/* Runs fn(arg) on a new thread with a stack of `size` bytes and waits for it. */
static void on_small_stack(void *(*fn)(void *), void *arg, size_t size) {
  pthread_attr_t attr;
  pthread_t t;
  cr_assert_eq(pthread_attr_init(&attr), 0);
  cr_assert_eq(pthread_attr_setstacksize(&attr, size), 0);
  cr_assert_eq(pthread_create(&t, &attr, fn, arg), 0);
  cr_assert_eq(pthread_join(t, NULL), 0);
  pthread_attr_destroy(&attr);
}

/* Builds the chain, then evaluates, differentiates and frees it on a 1 MiB stack, and checks
   every result against the closed form. */
static void check_chain(bracketing how) {
  stages s;
  cr_assert_eq(pt_custom_gradient(N, N, plus_one, identity_vjp, NULL, &s.step), PT_OK);
  cr_assert_eq(pt_custom_gradient(N, N, diagonal, diagonal_vjp, NULL, &s.special), PT_OK);
  run r = {.f = chain(&s, how), .free_it = 1};
  cr_assert_eq(pt_fn_n_in(r.f), N);
  on_small_stack(run_calls, &r, thread_stack);
  for (int k = 0; k < 5; k++) cr_assert_eq(r.status[k], PT_OK, "call %d", k);
  const float after = (float)(STAGES - SPECIAL - 1);
  const float *x = run_x;
  const float want[2 * N] = {2.0f * (x[0] + SPECIAL) + after, -(x[1] + SPECIAL) + after,
                             2.0f * (x[2] + SPECIAL) + after, -(x[3] + SPECIAL) + after};
  cr_assert(memcmp(r.y, want, N * sizeof *want) == 0, "value %g %g", r.y[0], r.y[1]);
  cr_assert(memcmp(r.y_batch, want, sizeof want) == 0, "batch value");
  const float d_dot[N] = {2.0f * run_dot[0], -run_dot[1]};
  cr_assert(memcmp(r.vjp, d_dot, sizeof d_dot) == 0, "vjp %g %g", r.vjp[0], r.vjp[1]);
  cr_assert(memcmp(r.jvp, d_dot, sizeof d_dot) == 0, "jvp %g %g", r.jvp[0], r.jvp[1]);
  const float want_jac[N * N] = {2.0f, 0.0f, 0.0f, -1.0f};
  cr_assert(memcmp(r.jac, want_jac, sizeof want_jac) == 0, "jacobian");
  pt_fn_free(s.step);
  pt_fn_free(s.special);
}

Test(deep, million_stages_bracketed_to_the_right) { check_chain(RIGHT); }
Test(deep, million_stages_bracketed_to_the_left) { check_chain(LEFT); }
Test(deep, million_stages_bracketed_at_random) { check_chain(RANDOM); }

/* ---- nesting ---------------------------------------------------------------------------------- */

/* p_1 = perturbed(step), p_k = perturbed(step o p_{k-1}) up to k = 32, one sample a level and
   no baseline, so every level costs one evaluation of the level below; p_33 is refused. */
Test(deep, perturbed_functions_nest_to_the_documented_depth) {
  pt_fn *step = NULL;
  cr_assert_eq(pt_custom_gradient(N, N, plus_one, identity_vjp, NULL, &step), PT_OK);
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 1;
  o.sigma = 0.5f;
  o.noise = PT_NOISE_NORMAL;
  o.baseline = PT_BASELINE_NONE;
  o.gradient = PT_GRADIENT_SCORE;
  pt_fn *p = NULL;
  cr_assert_eq(pt_make_perturbed_fun_ex(step, &o, &p), PT_OK);
  for (int level = 2; level <= MAX_NESTING; level++) {
    pt_fn *c = NULL, *q = NULL;
    cr_assert_eq(pt_fn_compose(step, p, &c), PT_OK);
    cr_assert_eq(pt_make_perturbed_fun_ex(c, &o, &q), PT_OK, "level %d", level);
    pt_fn_free(c);
    pt_fn_free(p);
    p = q;
  }
  /* one level more is refused, and so is one more through a composition, which adds none */
  pt_fn *c = NULL, *sentinel = (pt_fn *)&o, *q = sentinel;
  cr_assert_eq(pt_make_perturbed_fun_ex(p, &o, &q), PT_EINVAL);
  cr_assert_eq(q, sentinel, "a refused call wrote its output");
  cr_assert_eq(pt_fn_compose(step, p, &c), PT_OK);
  cr_assert_eq(pt_make_perturbed_fun_ex(c, &o, &q), PT_EINVAL);
  cr_assert_eq(pt_make_perturbed_fun(c, 1, 0.5f, PT_NOISE_NORMAL, 0, &q), PT_EINVAL);
  cr_assert_eq(q, sentinel, "a refused call wrote its output");
  /* the deepest function (one sample a level, no baseline: as cheap as deep) runs on a 1 MiB
     stack with the results of a 64 MiB one */
  run small = {.f = p}, big = {.f = p};
  on_small_stack(run_calls, &small, thread_stack);
  on_small_stack(run_calls, &big, (size_t)64 << 20);
  for (int k = 0; k < 5; k++) cr_assert_eq(small.status[k], PT_OK, "call %d", k);
  cr_assert(memcmp(small.y, big.y, sizeof small.y) == 0);
  cr_assert(memcmp(small.vjp, big.vjp, sizeof small.vjp) == 0);
  cr_assert(memcmp(small.jac, big.jac, sizeof small.jac) == 0);
  for (int i = 0; i < N; i++) cr_assert(small.y[i] == small.y[i], "a NaN value");
  pt_fn_free(c);
  pt_fn_free(p);
  pt_fn_free(step);
}

/* ---- bracketing -------------------------------------------------------------------------------- */

/* y = A x for a 3 x 3 matrix A given as user data */
static int matrix_eval(void *user, size_t batch, const float *x, float *y) {
  const float *a = user;
  for (size_t b = 0; b < batch; b++)
    for (int j = 0; j < 3; j++) {
      double s = 0.0;
      for (int i = 0; i < 3; i++) s += (double)a[j * 3 + i] * (double)x[b * 3 + i];
      y[b * 3 + j] = (float)s;
    }
  return 0;
}
static int matrix_vjp(void *user, const float *x, const float *y_bar, float *x_bar) {
  const float *a = user;
  (void)x;
  for (int i = 0; i < 3; i++) {
    double s = 0.0;
    for (int j = 0; j < 3; j++) s += (double)a[j * 3 + i] * (double)y_bar[j];
    x_bar[i] = (float)s;
  }
  return 0;
}

/* c o (b o a) and (c o b) o a have one Jacobian, bit for bit: C (B A), each product summed in
   double and rounded to float, whatever the bracketing. */
Test(deep, jacobian_does_not_depend_on_the_bracketing) {
  float m[3][9] = {{0.1f, 0.7f, -0.3f, 1.3f, 0.2f, 0.9f, -0.6f, 0.4f, 0.35f},
                   {0.3f, -1.1f, 0.25f, 0.45f, 0.8f, -0.15f, 0.6f, 0.05f, 1.7f},
                   {-0.9f, 0.55f, 0.7f, 0.2f, -0.35f, 1.05f, 0.15f, 0.65f, -0.4f}};
  pt_fn *g[3];
  for (int k = 0; k < 3; k++)
    cr_assert_eq(pt_custom_gradient(3, 3, matrix_eval, matrix_vjp, m[k], &g[k]), PT_OK);
  pt_fn *ba = NULL, *cb = NULL, *right = NULL, *left = NULL;
  cr_assert_eq(pt_fn_compose(g[1], g[0], &ba), PT_OK);
  cr_assert_eq(pt_fn_compose(g[2], ba, &right), PT_OK);
  cr_assert_eq(pt_fn_compose(g[2], g[1], &cb), PT_OK);
  cr_assert_eq(pt_fn_compose(cb, g[0], &left), PT_OK);
  float want[9], product[9], jac_right[9], jac_left[9];
  memcpy(product, m[0], sizeof product);
  for (int k = 1; k < 3; k++) {
    for (int j = 0; j < 3; j++)
      for (int i = 0; i < 3; i++) {
        double s = 0.0;
        for (int l = 0; l < 3; l++) s += (double)m[k][j * 3 + l] * (double)product[l * 3 + i];
        want[j * 3 + i] = (float)s;
      }
    memcpy(product, want, sizeof product);
  }
  const float x[3] = {0.5f, -0.2f, 1.0f};
  const pt_key key = pt_key_make(1);
  cr_assert_eq(pt_fn_jacobian(right, key, x, jac_right), PT_OK);
  cr_assert_eq(pt_fn_jacobian(left, key, x, jac_left), PT_OK);
  cr_assert(memcmp(jac_right, want, sizeof want) == 0, "c o (b o a)");
  cr_assert(memcmp(jac_left, want, sizeof want) == 0, "(c o b) o a");
  pt_fn *fs[7] = {left, right, cb, ba, g[0], g[1], g[2]};
  for (int k = 0; k < 7; k++) pt_fn_free(fs[k]);
}

/* SPDX-License-Identifier: MIT */
/* perturbed_optimizers: the "Perturbed optimizers" walkthrough of optax (Berthet et al. 2020)
   in C with libperturb.  Three parts, printing what the walkthrough prints:
     1. argmax one-hot: perturbed argmax against softmax, the gradient of a loss on the simplex,
        and 200 steps of gradient descent on that loss;
     2. ranking: perturbed ranks, the gradient of a loss to a target ranking, 20 steps of
        gradient descent toward it;
     3. a small tree of leaves: argmax per leaf (one flattened vector with segments), its
        perturbed version, the gradient of a scalar loss and one step along it.
   The random numbers are libperturb's (a Philox stream), not JAX's, so the digits differ from
   the notebook's; what they show is the same. */
#include <math.h>
#include <perturb.h>
#include <stdio.h>
#include <stdlib.h>

#include "progress_bar.h"

/* Prints `name = [a b c]`. */
static void show(const char *name, const float *v, size_t n) {
  printf("%s = [", name);
  for (size_t i = 0; i < n; i++) printf("%s%.4g", i ? " " : "", (double)v[i]);
  printf("]\n");
}

static void check(pt_status s, const char *what) {
  if (s != PT_OK) {
    fprintf(stderr, "%s: %s\n", what, pt_strerror(s));
    exit(1);
  }
}

/* sum_i (y_i - t_i)^2 * w against a target t; its gradient 2 w (y - t).  The target lives in
   the user pointer, so the loss can follow a target that changes. */
typedef struct square_loss {
  size_t n;
  const float *target;
  float weight;
} square_loss;

static int loss_eval(void *user, size_t batch, const float *y, float *out) {
  const square_loss *l = user;
  for (size_t b = 0; b < batch; b++) {
    double s = 0;
    for (size_t i = 0; i < l->n; i++) {
      const double r = (double)y[b * l->n + i] - l->target[i];
      s += r * r;
    }
    out[b] = (float)(s * l->weight);
  }
  return 0;
}

static int loss_vjp(void *user, const float *y, const float *y_bar, float *x_bar) {
  const square_loss *l = user;
  for (size_t i = 0; i < l->n; i++) x_bar[i] = 2.0f * l->weight * (y[i] - l->target[i]) * y_bar[0];
  return 0;
}

/* loss o perturbed: one function, whose value and gradient come from the same samples. */
static pt_fn *loss_of(const pt_fn *perturbed, square_loss *l) {
  pt_fn *loss = NULL, *total = NULL;
  check(pt_custom_gradient(l->n, 1, loss_eval, loss_vjp, l, &loss), "pt_custom_gradient");
  check(pt_fn_compose(loss, perturbed, &total), "pt_fn_compose");
  pt_fn_free(loss); /* the composition holds its own reference */
  return total;
}

/* Gradient descent x <- x - eta grad, with a fresh key per step. */
static void descend(const pt_fn *loss, float *x, size_t n, size_t steps, float eta, pt_key key) {
  float value, *grad = malloc(n * sizeof *grad);
  if (!grad) check(PT_ENOMEM, "descend");
  for (size_t t = 0; t < steps; t++) {
    check(pt_fn_value_and_grad(loss, pt_key_fold_in(key, t), x, &value, grad), "value_and_grad");
    for (size_t i = 0; i < n; i++) x[i] -= eta * grad[i];
  }
  free(grad);
}

/* What the argmax and the ranking parts print around gradient descent on the loss
   |perturbed(x) - target|^2: its value and gradient at `values`, then `steps` steps of descent
   (step size eta), and the hard and the perturbed function (`what` names the hard one's
   output) before and after, next to the target.  Keys: fold_in(key, 1 ...) in that order. */
static void descent_part(const char *loss_name, const char *what, const pt_fn *hard,
                         const pt_fn *perturbed, size_t n, const float *values,
                         const float *target, size_t steps, float eta, pt_key key) {
  square_loss l = {n, target, 1.0f};
  pt_fn *loss = loss_of(perturbed, &l);
  float value, *gradient = malloc(n * sizeof(float)), *x = malloc(n * sizeof(float)),
               *y = malloc(n * sizeof(float));
  if (!gradient || !x || !y) check(PT_ENOMEM, "descent_part");
  check(pt_fn_value_and_grad(loss, pt_key_fold_in(key, 1), values, &value, gradient), "grad");
  printf("%s = %.4f\n", loss_name, (double)value);
  show("gradient", gradient, n);

  for (size_t i = 0; i < n; i++) x[i] = values[i];
  descend(loss, x, n, steps, eta, pt_key_fold_in(key, 2));
  char label[64];
  for (int after = 0; after < 2; after++) {
    const float *at = after ? x : values;
    printf("\n");
    show(after ? "values after GD" : "initial values", at, n);
    check(pt_fn_eval(hard, key, at, y), "eval");
    snprintf(label, sizeof label, after ? "%s after GD" : "initial %s", what);
    show(label, y, n);
    check(pt_fn_eval(perturbed, pt_key_fold_in(key, 3 + (uint64_t)after), at, y), "eval");
    snprintf(label, sizeof label, after ? "diff. %s after GD" : "initial diff. %s", what);
    show(label, y, n);
  }
  snprintf(label, sizeof label, "target diff. %s", what);
  show(label, target, n);
  printf("\n");
  free(gradient);
  free(x);
  free(y);
  pt_fn_free(loss);
}

static void argmax_one_hot_part(void) {
  printf("# Argmax one-hot\n\n");
  enum { N = 5 };
  const size_t n_samples = 100;
  const float scale = 0.5f;
  const float values[N] = {-0.6f, 1.9f, -0.2f, 1.1f, -1.0f};
  pt_fn *one_hot = NULL, *pert_one_hot = NULL;
  check(pt_fn_argmax_one_hot(N, &one_hot), "pt_fn_argmax_one_hot");
  check(pt_make_perturbed_fun(one_hot, n_samples, scale, PT_NOISE_GUMBEL, 1, &pert_one_hot),
        "pt_make_perturbed_fun");
  float y[N], pert[N], soft[N];
  const pt_key key = pt_key_make(1);
  check(pt_fn_eval(one_hot, key, values, y), "eval");
  show("one-hot", y, N);

  check(pt_fn_eval(pert_one_hot, pt_key_fold_in(key, 0), values, pert), "eval");
  double z = 0, norm = 0, diff = 0;
  for (size_t i = 0; i < N; i++) z += exp(values[i] / scale);
  for (size_t i = 0; i < N; i++) {
    soft[i] = (float)(exp(values[i] / scale) / z);
    norm += (double)soft[i] * soft[i];
    diff += ((double)pert[i] - soft[i]) * ((double)pert[i] - soft[i]);
  }
  printf("computation with %zu samples, scale = %g\n", n_samples, (double)scale);
  show("perturbed argmax", pert, N);
  show("softmax", soft, N);
  printf("square norm of softmax = %.2e\n", sqrt(norm));
  printf("square norm of difference = %.2e\n\n", sqrt(diff));

  /* loss_simplex: squared distance to y_true = (i + 2) / sum_j (j + 2) */
  float y_true[N], sum = 0;
  for (size_t i = 0; i < N; i++) sum += (float)i + 2;
  for (size_t i = 0; i < N; i++) y_true[i] = ((float)i + 2) / sum;
  descent_part("loss_simplex", "one-hot", one_hot, pert_one_hot, N, values, y_true, 200, 0.5f, key);
  pt_fn_free(pert_one_hot);
  pt_fn_free(one_hot);
}

static void ranking_part(void) {
  printf("# Differentiable ranking\n\n");
  enum { N = 6 };
  /* the notebook's random values (jax.random.normal with PRNGKey(0)) */
  const float values[N] = {1.6226422f, 2.0252647f, -0.43359444f, -0.07861735f, 0.1760909f, -0.97208923f};
  pt_fn *ranking = NULL, *pert_ranking = NULL;
  check(pt_fn_ranking(N, &ranking), "pt_fn_ranking");
  check(pt_make_perturbed_fun(ranking, 100, 0.2f, PT_NOISE_GUMBEL, 1, &pert_ranking),
        "pt_make_perturbed_fun");
  const pt_key key = pt_key_make(0);
  float r[N], diff_ranks[N];
  show("values", values, N);
  check(pt_fn_eval(ranking, key, values, r), "eval");
  show("ranking", r, N);
  check(pt_fn_eval(pert_ranking, pt_key_fold_in(key, 0), values, diff_ranks), "eval");
  show("diff_ranks", diff_ranks, N);

  /* loss_example: squared distance to the ranks of 0, 1, ..., n-1 */
  float y_true[N];
  for (size_t i = 0; i < N; i++) y_true[i] = (float)i;
  descent_part("loss_example", "ranks", ranking, pert_ranking, N, values, y_true, 20, 0.1f, key);
  pt_fn_free(pert_ranking);
  pt_fn_free(ranking);
}

/* The tree (a, {k1, k2}, b) of the notebook, flattened leaf after leaf. */
static const char *const leaf_names[4] = {"a", "k1", "k2", "b"};
static const size_t leaf_sizes[4] = {3, 2, 2, 4};

static void show_tree(const char *name, const float *v) {
  printf("%s:\n", name);
  for (size_t leaf = 0, at = 0; leaf < 4; at += leaf_sizes[leaf++]) {
    printf("  ");
    show(leaf_names[leaf], v + at, leaf_sizes[leaf]);
  }
}

static void tree_part(void) {
  printf("# General inputs and outputs: a tree of leaves\n\n");
  enum { N = 11 };
  const float tree_a[N] = {0.1f, 0.4f, 0.5f, /**/ 0.1f, 0.2f, /**/ 0.1f, 0.1f, /**/ 0.4f, 0.3f, 0.2f, 0.1f};
  pt_fn *argmax_tree = NULL, *pert_argmax = NULL;
  check(pt_fn_argmax_one_hot_segments(leaf_sizes, 4, &argmax_tree), "segments");
  /* scale 0.2: the notebook's perturbed tree argmax runs with its earlier SCALE.  1000 samples
     (optax's default) rather than the notebook's 100: the Jacobian estimate of a tree carries
     cross-leaf terms of mean zero, and with 100 samples their noise can hide the descent the
     last lines show. */
  check(pt_make_perturbed_fun(argmax_tree, 1000, 0.2f, PT_NOISE_GUMBEL, 1, &pert_argmax),
        "pt_make_perturbed_fun");
  const pt_key key = pt_key_make(0);
  float hard[N], soft[N];
  check(pt_fn_eval(argmax_tree, key, tree_a, hard), "eval");
  show_tree("argmax_tree(tree_a)", hard);
  check(pt_fn_eval(pert_argmax, key, tree_a, soft), "eval");
  show_tree("perturbed argmax_tree(tree_a)", soft);

  /* pert_loss: sum over leaves of |argmax - perturbed|^2 / 4, the argmax taken as a constant
     target (its derivative is zero), recomputed at each point */
  square_loss l = {N, hard, 0.25f};
  pt_fn *loss = loss_of(pert_argmax, &l);
  float init_loss, grad[N], step[N], after;
  check(pt_fn_value_and_grad(loss, key, tree_a, &init_loss, grad), "grad");
  printf("\ninitial loss value = %.3f\n", (double)init_loss);
  show_tree("gradient of the scalar loss", grad);
  const float eta = 0.1f;
  for (size_t i = 0; i < N; i++) step[i] = tree_a[i] - eta * grad[i];
  check(pt_fn_eval(argmax_tree, key, step, hard), "eval");
  check(pt_fn_eval(loss, key, step, &after), "eval");
  printf("initial loss value = %.3f\n", (double)init_loss);
  printf("loss after gradient step = %.3f\n", (double)after);
  pt_fn_free(loss);
  pt_fn_free(pert_argmax);
  pt_fn_free(argmax_tree);
}

int main(void) {
  progress_bar_start("perturbed optimizers");
  argmax_one_hot_part();
  ranking_part();
  tree_part();
  progress_bar_end();
  return 0;
}

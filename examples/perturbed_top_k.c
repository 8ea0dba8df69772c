/* SPDX-License-Identifier: MIT */
/* perturbed_top_k: a differentiable top-k selection with libperturb.  Eight items have
   scores; the hard top-3 selection is a 0/1 vector whose gradient is zero.  Perturbed
   (Gumbel noise, sigma 0.5) it becomes the probability that each item is among the 3
   greatest, whose entries sum to exactly 3, and it has a gradient.  The example prints the
   hard and the soft selection, then learns scores whose soft top-3 picks a target set of
   three items, by gradient descent on the squared distance to it (its gradient: the vjp of
   the perturbed top-k with y_bar = 2 (y - target)).  Last, two groups of items select
   their own top 2 and top 1 (pt_fn_top_k_segments), with block_diagonal: each group's
   gradient carries only its own cotangent. */
#include <perturb.h>
#include <stdio.h>
#include <stdlib.h>

enum { D = 8, K = 3 };

static void show(const char *name, const float *v, size_t n) {
  printf("%-22s [", name);
  for (size_t i = 0; i < n; i++) printf("%s%.3f", i ? " " : "", (double)v[i]);
  printf("]\n");
}

static void check(pt_status s, const char *what) {
  if (s != PT_OK) {
    fprintf(stderr, "%s: %s\n", what, pt_strerror(s));
    exit(1);
  }
}

static double sum(const float *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += v[i];
  return s;
}

int main(void) {
  float x[D] = {0.8f, -0.3f, 1.2f, 0.1f, 0.9f, -1.0f, 0.4f, 0.0f};
  const float target[D] = {0, 1, 0, 1, 0, 0, 1, 0}; /* items 1, 3 and 6 */
  pt_fn *top = NULL, *soft = NULL;
  check(pt_fn_top_k(D, K, &top), "pt_fn_top_k");
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 4000;
  o.sigma = 0.5f;
  check(pt_make_perturbed_fun_ex(top, &o, &soft), "pt_make_perturbed_fun_ex");

  float hard[D], y[D], y_bar[D], grad[D];
  const pt_key key = pt_key_make(2026);
  check(pt_fn_eval(top, key, x, hard), "top-k");
  check(pt_fn_eval(soft, key, x, y), "perturbed top-k");
  show("scores", x, D);
  show("top-3", hard, D);
  show("perturbed top-3", y, D);
  printf("%-22s %.6f\n", "its sum", sum(y, D));

  /* gradient descent toward the target set: fresh samples every step */
  for (int step = 0; step <= 200; step++) {
    const pt_key k = pt_key_fold_in(key, (uint64_t)step + 1);
    double loss = 0;
    check(pt_fn_eval(soft, k, x, y), "perturbed top-k");
    for (size_t i = 0; i < D; i++) {
      y_bar[i] = 2.0f * (y[i] - target[i]);
      loss += (double)(y[i] - target[i]) * (y[i] - target[i]);
    }
    if (step % 50 == 0) printf("step %3d  loss %.4f\n", step, loss);
    check(pt_fn_vjp(soft, k, x, y_bar, grad), "vjp");
    for (size_t i = 0; i < D; i++) x[i] -= 0.5f * grad[i];
  }
  check(pt_fn_eval(top, key, x, hard), "top-k");
  show("learned scores", x, D);
  show("their top-3", hard, D);
  show("target", target, D);

  /* two groups: the 2 greatest of the first 5, the greatest of the last 3 */
  const size_t sizes[2] = {5, 3}, ks[2] = {2, 1};
  pt_fn *groups = NULL, *soft_groups = NULL;
  check(pt_fn_top_k_segments(sizes, ks, 2, &groups), "pt_fn_top_k_segments");
  o.block_diagonal = 1;
  check(pt_make_perturbed_fun_ex(groups, &o, &soft_groups), "block_diagonal");
  const float scores[D] = {0.8f, -0.3f, 1.2f, 0.1f, 0.9f, -1.0f, 0.4f, 0.0f};
  const float w[D] = {1, 0, 0, 0, 0, 0, 0, -1}; /* favour item 0, disfavour item 7 */
  check(pt_fn_eval(soft_groups, key, scores, y), "perturbed segments");
  check(pt_fn_vjp(soft_groups, key, scores, w, grad), "segments vjp");
  show("groups' top-2, top-1", y, D);
  printf("%-22s %.6f, %.6f\n", "their sums", sum(y, 5), sum(y + 5, 3));
  show("gradient of w . y", grad, D);

  pt_fn_free(soft_groups);
  pt_fn_free(groups);
  pt_fn_free(soft);
  pt_fn_free(top);
  return 0;
}

/* SPDX-License-Identifier: MIT */
/* learning_to_rank: a linear scoring model trained with the perturbed Fenchel-Young loss of the
   ranking (pt_fenchel_young_loss(3)) on synthetic queries, and its precision@k on held-out
   queries before and after.

   Each query has N items with P features; an item's true relevance is <w_true, features> plus
   noise, and the target of a query is the ranking of its true relevances.  The model scores
   item i of a query as theta_i = <w, features_i>; the loss of a query is
   F_eps(theta) - <theta, rank_true>, whose gradient in theta is E[rank(theta + sigma Z)] -
   rank_true: the perturbed ranking's mean minus the target, no Jacobian of the ranking needed.
   The chain rule to w is features^T (that gradient).  All random numbers come from libperturb's
   stream (pt_noise_fill), so every run prints the same. */
#include <math.h>
#include <perturb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "progress_bar.h"

enum { N = 20, P = 8, K = 5, TRAIN = 256, TEST = 128, BATCH = 32, EPOCHS = 30 };

static void check(pt_status s, const char *what) {
  if (s != PT_OK) {
    fprintf(stderr, "learning_to_rank: %s: %s\n", what, pt_strerror(s));
    exit(1);
  }
}

typedef struct queries {
  size_t count;
  float *features; /* count x N x P */
  float *relevance; /* count x N */
} queries;

/* Queries whose features are standard normal and whose relevance is <w_true, features> plus
   normal noise of 0.5, from the stream of `key`. */
static queries make_queries(size_t count, const float *w_true, pt_key key) {
  queries q = {count, malloc(count * N * P * sizeof(float)), malloc(count * N * sizeof(float))};
  if (!q.features || !q.relevance) check(PT_ENOMEM, "queries");
  check(pt_noise_fill(PT_NOISE_NORMAL, key, 0, q.features, count * N * P), "features");
  check(pt_noise_fill(PT_NOISE_NORMAL, key, count * N * P, q.relevance, count * N), "noise");
  for (size_t j = 0; j < count * N; j++) {
    double s = 0.5 * q.relevance[j];
    for (size_t f = 0; f < P; f++) s += (double)w_true[f] * q.features[j * P + f];
    q.relevance[j] = (float)s;
  }
  return q;
}

/* theta (N) = features (N x P) w */
static void scores(const float *features, const float *w, float *theta) {
  for (size_t i = 0; i < N; i++) {
    double s = 0.0;
    for (size_t f = 0; f < P; f++) s += (double)features[i * P + f] * w[f];
    theta[i] = (float)s;
  }
}

/* The fraction of the model's K best items that are among the K most relevant, over queries. */
static double precision_at_k(const queries *q, const float *w) {
  size_t hits = 0;
  for (size_t c = 0; c < q->count; c++) {
    float theta[N];
    int32_t model[N], truth[N];
    scores(q->features + c * N * P, w, theta);
    check(pt_rank_rows(theta, 1, N, N, model, N), "rank");
    check(pt_rank_rows(q->relevance + c * N, 1, N, N, truth, N), "rank");
    for (size_t i = 0; i < N; i++) hits += model[i] >= N - K && truth[i] >= N - K;
  }
  return (double)hits / (double)(q->count * K);
}

int main(void) {
  const float w_true[P] = {1.0f, -0.8f, 0.6f, 0.0f, 0.4f, -0.3f, 0.2f, 0.0f};
  queries train = make_queries(TRAIN, w_true, pt_key_make(1));
  queries test = make_queries(TEST, w_true, pt_key_make(2));
  progress_bar_start("learning to rank");

  pt_fn *ranking, *loss;
  check(pt_fn_ranking(N, &ranking), "pt_fn_ranking");
  pt_perturb_options o = pt_perturb_defaults();
  o.num_samples = 100;
  o.sigma = 1.0f;
  o.noise = PT_NOISE_NORMAL;
  check(pt_fenchel_young_loss(ranking, &o, &loss), "pt_fenchel_young_loss");

  float w[P];
  check(pt_noise_fill(PT_NOISE_NORMAL, pt_key_make(3), 0, w, P), "initial w");
  for (size_t f = 0; f < P; f++) w[f] *= 0.1f;
  printf("learning to rank: %d queries of %d items, %d features; FY loss of the ranking, "
         "M = %zu, sigma = %g\n", TRAIN, N, P, o.num_samples, (double)o.sigma);
  printf("held-out precision@%d before training: %.3f (chance: %.3f)\n", K,
         precision_at_k(&test, w), (double)K / N);

  /* rows of (theta, rank_true) for a batch of queries, and the loss's value and gradient */
  static float x[BATCH][2 * N], value[BATCH], grad[BATCH][2 * N];
  const float rate = 0.002f;
  for (int epoch = 0; epoch < EPOCHS; epoch++) {
    double total = 0.0;
    for (size_t b0 = 0; b0 < TRAIN; b0 += BATCH) {
      for (size_t b = 0; b < BATCH; b++) {
        const size_t c = b0 + b;
        int32_t truth[N];
        scores(train.features + c * N * P, w, x[b]);
        check(pt_rank_rows(train.relevance + c * N, 1, N, N, truth, N), "rank");
        for (size_t i = 0; i < N; i++) x[b][N + i] = (float)truth[i];
      }
      const pt_key key = pt_key_fold_in(pt_key_make(4), (uint64_t)epoch * TRAIN + b0);
      check(pt_fn_value_and_grad_batch(loss, key, BATCH, &x[0][0], value, &grad[0][0]),
            "value_and_grad_batch");
      double step[P] = {0};
      for (size_t b = 0; b < BATCH; b++) {
        total += value[b];
        const float *features = train.features + (b0 + b) * N * P;
        for (size_t i = 0; i < N; i++)
          for (size_t f = 0; f < P; f++) step[f] += (double)grad[b][i] * features[i * P + f];
      }
      for (size_t f = 0; f < P; f++) w[f] -= rate * (float)(step[f] / BATCH);
    }
    if (epoch == 0 || epoch % 5 == 4)
      printf("epoch %2d: mean loss %.4f, held-out precision@%d %.3f\n", epoch + 1,
             total / TRAIN, K, precision_at_k(&test, w));
  }
  printf("held-out precision@%d after training: %.3f\n", K, precision_at_k(&test, w));
  double cos = 0.0, nw = 0.0, nt = 0.0;
  for (size_t f = 0; f < P; f++) {
    cos += (double)w[f] * w_true[f];
    nw += (double)w[f] * w[f];
    nt += (double)w_true[f] * w_true[f];
  }
  printf("cosine of the learned w with w_true: %.3f\n", cos / sqrt(nw * nt));

  pt_fn_free(loss);
  pt_fn_free(ranking);
  free(train.features);
  free(train.relevance);
  free(test.features);
  free(test.relevance);
  progress_bar_end();
  return 0;
}

/* SPDX-License-Identifier: MIT */
/* The perturbed estimator, written once for every path (the fused kernels of built-ins and the
   generic path of any function) and every way of splitting its samples (threads, shards,
   machines).

   Samples are cut into groups of pt_estimate_group(M) consecutive indices.  Inside a group a
   path adds its samples' terms in sample order, into double sums (the fused vjp first into
   float sums of PT_FUSED_GROUP samples); each finished group then joins the call's sums through
   the exact accumulator of xsum.h (integer-valued terms, the built-ins' values, in uint64).
   Both steps depend on sample indices alone, so any split of the groups among workers, and any
   order of merging the workers' sums, gives the same bits: a call on any number of threads, and
   a set of shards merged in any order, equal one pass on one thread. */
#ifndef PT_ESTIMATE_H
#define PT_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#include "fn/fn.h"
#include "fn/fn_perturbed.h"
#include "fn/xsum.h"

/* The groups of M samples: the least multiple of 128 samples (a power of two times 128) that
   cuts M into at most PT_ESTIMATE_MAX_GROUPS groups, so that a shard's coverage map is small
   and no exact sum ever takes more addends than it can hold. */
#define PT_ESTIMATE_MIN_GROUP 128
#define PT_ESTIMATE_MAX_GROUPS ((uint64_t)1 << 16)
uint64_t pt_estimate_group(uint64_t samples);

/* What one call estimates, fixed before any sample is drawn. */
enum {
  PT_WANT_VALUE = 1, /* (1/M) sum_m Y_m                                    n_out */
  PT_WANT_VJP = 2,   /* (1/(M s)) sum_m ((Y_m - b) . y_bar) grad_nu(Z_m)    n_in */
  PT_WANT_JVP = 4,   /* (1/(M s)) sum_m (Y_m - b) (grad_nu(Z_m) . x_dot)    n_out */
  PT_WANT_JAC = 8,   /* (1/(M s)) sum_m (Y_m - b) grad_nu(Z_m)^T            n_out x n_in */
  PT_WANT_HESS = 16  /* (1/(M s^2)) sum_m (Y_m - b) (grad_nu grad_nu^T - diag nu'')   n_in^2 */
};
/* With the leave-one-out baseline, b_m = (sum_k Y_k - Y_m)/(M - 1) depends on every sample, so
   the sums are those of b = 0 and, beside them, the sums of what b_m multiplies: a derivative
   term T_m (grad_nu, t_m or the Hessian's) and its Y_m give
     sum_m (Y_m - b_m) T_m = (M/(M - 1)) [sum_m Y_m T_m - Ybar sum_m T_m],  Ybar = (1/M) sum_m Y_m,
   where every sum is additive over groups and the product is formed once, by
   pt_estimate_write.  The cells of those sums (pt_layout): the value's sums for the jvp, the
   Jacobian and the Hessian, and
     loo_c  vjp: sum_m Y_m . y_bar; with block_diagonal, per input i the sum of segment s(i)'s
            part of it (the vjp of each segment has its own cotangent)        1 or n_in
     loo_t  jvp: sum_m t_m; with block_diagonal per output j, of segment s(j)'s dots
                                                                               1 or n_out
     loo_g  vjp, Jacobian: sum_m grad_nu(Z_m); with block_diagonal, the Jacobian's holds it for
            every entry of the diagonal blocks (row j, column i of one segment) and 0 across
            them, so that finishing needs no segment map                n_in or n_out x n_in
     loo_h  Hessian: sum_m (grad_nu grad_nu^T - diag nu'')(Z_m)                n_in^2
   With antithetic pairs a sample's partner is not independent of it, so each leaves out its
   whole pair P = {2p, 2p + 1}: b_P = (S - Y_2p - Y_2p+1)/(M - 2), S = sum_k Y_k (M >= 4), and
     sum_m (Y_m - b_P) T_m = sum_P [Y_2p T'_2p + Y_2p+1 T'_2p+1] - (M/(M - 2)) Ybar sum_m T_m,
     T'_m = T_m + w (T_2p + T_2p+1),  w = 1/(M - 2) (pt_estimate_pair_weight),
   or Y'_m = Y_m + w (Y_2p + Y_2p+1) in place of T'_m (the pair's extra w (Y_2p + Y_2p+1)
   (T_2p + T_2p+1) is symmetric in Y and T): a path adds each pair's adjusted terms to the
   derivative's own cells, whichever side is cheaper for it, and the leave-one-out's cells
   above still hold the plain sums of the c, t, grad_nu and Hessian terms. */

/* w of the leave-one-pair-out above, 1/(M - 2), for antithetic pairs with the leave-one-out
   baseline; 0 (no pair's terms adjusted) otherwise. */
static inline double pt_estimate_pair_weight(const pt_perturbation *p) {
  return p->antithetic && p->baseline == PT_BASELINE_LEAVE_ONE_OUT
             ? 1.0 / (double)(p->samples - 2)
             : 0.0;
}

/* With the pathwise gradient (p.pathwise) the derivatives are f's own at the samples x_m =
   x + s Z_m instead: vjp (1/M) sum_m J f(x_m)^T y_bar, jvp (1/M) sum_m J f(x_m) x_dot,
   jacobian (1/M) sum_m J f(x_m), in the same cells; no Hessian. */

typedef struct pt_estimator pt_estimator;

/* Zeroed scratch of one call on its own thread: carved from a buffer on the caller's stack
   while it lasts, then from the heap, so that a small call (d = 5, M = 100) does not pay for
   allocations.  A NULL arena is the heap alone; pt_arena_free frees heap blocks only. */
typedef struct pt_arena {
  unsigned char *base;
  size_t size, used;
} pt_arena;
#define PT_ARENA_BYTES 8192
void *pt_arena_zalloc(pt_arena *a, size_t bytes);
void pt_arena_free(pt_arena *a, void *p);

/* A path: how the terms of a range of samples are computed.  `prepare` runs once per call on
   the calling thread (baselines, coefficients); `run` adds the terms of samples [m0, m1), all
   in one group, into `sums` (the doubles of the layout below, zero at the group's start) and
   `counts` (n_out integers, when the path counts its value), with its own `scratch` of
   scratch_bytes; it may run on any thread when `thread_safe`, else on the calling thread only.
   A path whose function must stay on the calling thread, in row order, may split a group's work
   around it, so that the rest runs on the pool: `stage` (any thread) draws the group's noise and
   inputs into a buffer of staged_bytes, `call` (the calling thread) runs the function on them,
   and `finish` (any thread) adds the group's terms to `sums`; NULL when it cannot. */
typedef struct pt_path {
  int counted; /* the value's terms are integers, counted exactly in uint64 instead of cells */
  pt_status (*prepare)(pt_estimator *e);
  pt_status (*run)(const pt_estimator *e, void *scratch, uint64_t m0, uint64_t m1, double *sums,
                   uint64_t *counts);
  void (*release)(pt_estimator *e);
  void (*stage)(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1);
  pt_status (*call)(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1);
  void (*finish)(const pt_estimator *e, void *buffer, uint64_t m0, uint64_t m1, double *sums);
} pt_path;

struct pt_estimator {
  const pt_fn *f;             /* the function perturbed */
  pt_perturbation p;
  pt_key key;
  const float *x;
  const float *y_bar, *x_dot; /* for PT_WANT_VJP, PT_WANT_JVP */
  pt_arena *arena;            /* the calling thread's scratch (NULL: the heap) */
  unsigned want;
  uint64_t group;             /* pt_estimate_group(p.samples) */
  /* where each wanted term's sums start among the `cells` (SIZE_MAX: not wanted) */
  size_t at_value, at_x_bar, at_y_dot, at_jac, at_hess, cells;
  size_t at_loo_c, at_loo_t, at_loo_g, at_loo_h; /* the leave-one-out sums, above */
  /* the Jacobian's band: its output rows [jac_row0, jac_row0 + jac_rows) have cells, at
     at_jac + (j - jac_row0) n_in (the block-diagonal leave-one-out's loo_g likewise); every
     row (0, n_out) unless a large Jacobian is summed in bands (estimate.c) */
  size_t jac_row0, jac_rows;
  int counted;                /* the path counts the value (path->counted) */
  size_t counts;              /* n_out when the value is counted and wanted (or the
                                 leave-one-out's derivatives need it), else 0 */
  /* set by the path's prepare */
  const pt_path *path;
  void *prep;                 /* the path's precomputed state, freed by release */
  size_t scratch_bytes;
  size_t staged_bytes;        /* a group's staged buffer; 0: no staging (too large, or none) */
  int thread_safe;            /* run may be called from several threads at once */
  double work;                /* about how many element-operations a sample costs */
};

/* Row j of the Jacobian's sums among a group's `sums`, whose rows start at `at` (at_jac, or a
   block-diagonal leave-one-out's at_loo_g): NULL when j is outside e's band, so that every
   path adds the terms of the band's rows alone, each as it would unbanded. */
static inline double *pt_jac_row(const pt_estimator *e, double *sums, size_t at, size_t j) {
  return j - e->jac_row0 < e->jac_rows ? sums + at + (j - e->jac_row0) * e->f->n_in : NULL;
}

/* A Jacobian whose band of every row would take more than this many bytes of sums on one
   thread (an exact sum and a group's double per cell) is summed in bands of fewer rows, all
   the samples once per band (pt_fn_jacobian(3)): its extra memory is then about this much
   per thread.  pt_estimate_set_jacobian_tile sets another size (0: this one), for the tests
   to band small Jacobians. */
#define PT_JACOBIAN_TILE_BYTES ((size_t)8 << 20)
void pt_estimate_set_jacobian_tile(size_t bytes);

/* The sums of a range of groups: the payload of a partial. */
typedef struct pt_sums {
  pt_xsum *cell;    /* cells */
  uint64_t *count;  /* the estimator's `counts` integers (NULL when 0) */
  uint8_t *covered; /* bit g: group g is in (groups bits) */
  uint64_t groups;
} pt_sums;

/* Where each wanted term's sums start among a call's cells (SIZE_MAX: not wanted), how many
   cells there are, and how many counted values: a function of the op, the sizes, the
   perturbation and whether the path counts the value, so that a partial's bytes can be
   checked against it (src/fn/partial.c).  0 when the counts overflow a size_t. */
typedef struct pt_layout {
  size_t at_value, at_x_bar, at_y_dot, at_jac, at_hess, cells, counts;
  size_t at_loo_c, at_loo_t, at_loo_g, at_loo_h;
} pt_layout;
int pt_estimate_layout(unsigned want, size_t n_in, size_t n_out, const pt_perturbation *p,
                       int counted, pt_layout *layout);

/* x must be finite, and with the multiplicative score function nonzero for a derivative
   (`derivative`): PT_EINVAL with the sentence naming x[i], else PT_OK. */
pt_status pt_estimate_check(const pt_perturbation *p, const float *x, size_t n, int derivative);

/* Sets e up for f perturbed by p at x with key, wanting `want` (the v of vjp or jvp given):
   chooses the path and lays out the sums.  pt_estimator_end releases what it took. */
pt_status pt_estimator_begin(pt_estimator *e, const pt_fn *f, const pt_perturbation *p,
                             pt_key key, const float *x, const float *y_bar, const float *x_dot,
                             unsigned want, pt_arena *arena);
void pt_estimator_end(pt_estimator *e);

/* Empty sums for e (every group absent), from arena a; pt_sums_free frees them. */
pt_status pt_sums_alloc(const pt_estimator *e, pt_arena *a, pt_sums *s);
pt_status pt_sums_alloc_shape(size_t cells, size_t counts, uint64_t groups, pt_arena *a,
                              pt_sums *s);
void pt_sums_free(pt_sums *s, pt_arena *a);

/* Adds the groups covering samples [m0, m1) (group boundaries, or M) into s, on the library's
   threads when the work pays for them. */
pt_status pt_estimator_sum(const pt_estimator *e, uint64_t m0, uint64_t m1, pt_sums *s);

/* Adds `from` into `into` exactly (the caller has checked that they cover no group twice). */
void pt_sums_merge(pt_sums *into, const pt_sums *from, size_t cells, size_t counts);

/* The estimate from sums covering every sample: y, x_bar, y_dot, jac, hess of want (each NULL
   when not wanted), scaled as the API says. */
typedef struct pt_outputs {
  float *y, *x_bar, *y_dot, *jac, *hess;
} pt_outputs;
void pt_estimate_write(const pt_sums *s, unsigned want, size_t n_in, size_t n_out,
                       const pt_perturbation *p, int counted, const pt_outputs *out);

/* The key whose samples a call with `key` wanting `want` draws: with independent_jacobian,
   derivatives draw those of pt_key_fold_in(key, 1) (a call wanting a value and a derivative is
   two estimates); otherwise `key`. */
pt_key pt_estimate_key(const pt_perturbation *p, pt_key key, unsigned want);

/* One whole estimate (every sample) into out: the perturbed functions' calls. */
pt_status pt_estimate(const pt_fn *f, const pt_perturbation *p, pt_key key, const float *x,
                      const float *y_bar, const float *x_dot, const pt_outputs *out);

/* The paths (fn_fused.c, fn_perturbed.c): pt_fused_path gives the fused path for f, p and want,
   or NULL when there is none. */
const pt_path *pt_fused_path(const pt_fn *f, const pt_perturbation *p, unsigned want);
extern const pt_path pt_generic_path;

#endif

/* SPDX-License-Identifier: MIT */
/* The fused perturbed kernels' jobs (src/kernels/fused_argmax.c.j2, driven by src/fn/fn_fused.c).

   A fused kernel runs one tile of samples of a perturbed built-in: it generates the tile's
   noise from the counter-based stream (never stored beyond the tile), settles each sample's
   argmax, and accumulates the estimator's per-sample terms.  Everything a kernel computes per
   element is the same sequence of IEEE operations on every ISA, and every sum has a fixed
   order, so its results are bitwise identical across ISAs. */
#ifndef PT_FUSED_H
#define PT_FUSED_H

#include <stddef.h>
#include <stdint.h>

#include "perturb.h"
#include "gen/isas.h" /* PT_MAX_LANES */
#include "kernels/rows.h"

/* Samples whose vjp terms sum in float before joining the group's double sums: the flush
   follows the sample number m (after m % PT_FUSED_GROUP == PT_FUSED_GROUP - 1, and after the
   last one), not the tiling, so it is the same for every ISA and tile size; the estimator's
   sample groups (src/fn/estimate.h) are multiples of it, so a flush never straddles two. */
#define PT_FUSED_GROUP 32

/* The most inputs per sample that the argmax kernels settle PT_LANES samples at once, one per
   lane: a job's short_max (vf_load_stride down the tile's noise) is at most PT_FUSED_SHORT and
   its bounded_short_max (vf_load_columns across its uniforms, PT_LANES inputs at a time) at
   most PT_FUSED_BOUNDED_SHORT.  Bounds of the buffers' padding (the largest stride of those
   loads), not widths. */
#define PT_FUSED_SHORT 16
#define PT_FUSED_BOUNDED_SHORT 32

/* The argmax kernels' thresholds of speed, never of the bits (gen/kernel_table.py's
   FUSED_THRESHOLDS, one per ISA in its pt_kernel_table; perturb-bench --thresholds measures
   them): every setting gives the same output bits.
     short_max    samples of at most short_max inputs (and PT_FUSED_SHORT) are settled PT_LANES
                  at a time, one per lane; longer ones run along their inputs;
     bounded_min  a Gumbel job that wants the value alone (no terms) and whose segments average
                  at least bounded_min inputs keeps the tile's uniforms and takes the logarithm
                  only of the keys that bounds without one leave as candidates
                  (src/kernels/fused_argmax.c.j2, docs/design.md "The value without most
                  logarithms");
     bounded_short_max  such a job whose samples have at most bounded_short_max inputs (and
                  PT_FUSED_BOUNDED_SHORT) settles their candidates PT_LANES samples at a time, one per
                  lane; longer ones along their inputs. */
typedef struct pt_fused_thresholds {
  size_t short_max, bounded_min, bounded_short_max;
} pt_fused_thresholds;

/* Floats every per-row buffer of a job carries past its end: a whole-vector store of a row's
   last elements stays inside it, and so do the strided loads of a short tile's last lanes
   (up to PT_LANES samples of PT_FUSED_BOUNDED_SHORT >= PT_FUSED_SHORT inputs, plus the
   PT_LANES past the last that vf_load_stride or vf_load_columns may read), for the widest
   ISA. */
_Static_assert(PT_FUSED_BOUNDED_SHORT >= PT_FUSED_SHORT, "the padding covers both loads");
#define PT_FUSED_PAD (PT_MAX_LANES * PT_FUSED_BOUNDED_SHORT + 2 * PT_MAX_LANES)

/* The jvp's virtual lanes (pt_fused_terms): the order of its sums, so part of the bits and the
   same for every ISA; not a vector width, but every ISA's PT_LANES must divide it. */
#define PT_FUSED_DOT_LANES 16
_Static_assert(PT_FUSED_DOT_LANES % PT_MAX_LANES == 0,
               "an ISA's vector is wider than the jvp's virtual lanes: widening them moves its bits");

/* What every fused kernel computes for the estimator (src/fn/estimate.h), the same for the argmax
   and the ranking: sample m, input i has the noise word m*n + i of `key` (with antithetic, samples
   2p and 2p + 1 the pair of word p*n + i: src/kernels/noise_lib.j2's pairs); after a kernel has
   settled a tile's samples, each sample r adds its terms through fused_lib.j2's sample_terms,
   given the sample's cotangents c[b] = Y_m . y_bar over each of the `blocks` consecutive
   blocks of inputs [block_at[b], block_at[b + 1]) (one block of every input, or each segment's
   own with block_diagonal):
     vjp (y_bar != NULL): with c' = c[b] - c_base[b] (in double), partial_i += c' * grad_nu_i
        for the inputs i of block b (a float fma; skipped when c' == 0, which changes no bit);
        after each run of PT_FUSED_GROUP samples partial joins x_bar_sum, the current group's
        double sums, and is cleared; c_sum[b] += c[b] (when c_sum, in double);
     jvp (x_dot != NULL): t[r * blocks + b] = grad_nu(sample r) . x_dot over block b, over
        PT_FUSED_DOT_LANES = 16 virtual lanes (lane j sums the block's inputs o + i with
        i = j mod 16 in order, padded with zeros to a multiple of 16) then the fixed tree
        ((l0 + l8) + (l4 + l12)) + ...; t_sum[b] += t[r * blocks + b] (when t_sum, in double);
     jacobian (g != NULL): the rows grad_nu(sample r), n apart;
     g_sum (when not NULL): g_sum_i += grad_nu_i in double, in sample order.
   With pair_weight w != 0 (antithetic pairs leaving out their pair, src/fn/estimate.h) a
   pair's vjp terms join at its second sample, each with c'_m = c_m + w (c_2p + c_2p+1) in
   place of c_m, sample 2p first; then the pair's t (per block) and rows of the Jacobian's g
   become T_m + w (T_2p + T_2p+1), in double rounded to float, for the paths to use as they
   are.  c_sum, t_sum and g_sum always take the plain terms.
   The sums start at zero with each group of samples (the path clears them). */
typedef struct pt_fused_terms {
  pt_key key;
  int antithetic;        /* the noise of antithetic pairs (fused_lib.j2's tile_noise): every
                            tile starts on an even sample and holds whole pairs */
  size_t n;
  float sigma;
  uint64_t samples;      /* M: the last sample flushes its run */
  size_t blocks;         /* >= 1 */
  const size_t *block_at; /* blocks + 1, from 0 to n */
  const float *y_bar;
  const double *c_base;  /* blocks */
  double pair_weight;    /* w above, or 0 */
  double *c_pair;        /* 2 * blocks with pair_weight and y_bar: a pair's cotangents */
  double *c_sum;         /* blocks, or NULL */
  float *partial;        /* n + PT_FUSED_PAD, zero before the first tile */
  double *x_bar_sum;     /* n */
  const float *x_dot;
  float *t;              /* tile * blocks */
  double *t_sum;         /* blocks, or NULL */
  float *g;              /* tile * n + PT_FUSED_PAD */
  double *g_sum;         /* n, or NULL */
  float *g_row;          /* n + PT_FUSED_PAD: grad_nu of one sample for g_sum, when g is NULL */
  float *noise;          /* tile * n + PT_FUSED_PAD: the tile's noise, generated by the kernel */
  double *c;             /* blocks: the kernel's scratch for a sample's cotangents */
} pt_fused_terms;

/* One perturbed argmax one-hot (segments) evaluation.  The argmax of a segment is the first
   index of the least key:
     Gumbel: key_i = E_i * a_i with E = -log(uniform) and a_i = exp((max_seg x - x_i) / sigma)
             (argmax_i x_i + sigma G_i with G = -log E, one logarithm per element), and
             grad_nu = 1 - E;
     normal: key_i = -(a_i + sigma z_i) with a = x, and grad_nu = z.
   A sample's cotangent over a block is the sum of y_bar[winner of s] over its segments s, in
   segment order (the blocks are one, or the segments).  With winner_noise, each winner's noise
   as the stream gives it (Gumbel G = -log E, bit for bit pt_noise_fill's; normal z), from which
   the perturbed max x_w + sigma Z_w is formed. */
typedef struct pt_fused_argmax_job {
  pt_fused_terms terms;
  size_t segments;
  const size_t *offsets; /* segments + 1 */
  const float *a;        /* n */
  size_t stride;         /* of winner: the tile rounded up to a multiple of PT_MAX_LANES */
  int32_t *winner;       /* segments x stride: winner[s * stride + r] is the argmax of segment s
                            of sample r, an input index (whole vectors stored: the lanes past
                            the tile hold garbage) */
  uint64_t *count;       /* n: how many samples each input won, added to */
  float *winner_noise;   /* segments x stride, as winner (whole vectors stored); NULL: not
                            wanted */
  pt_fused_thresholds thresholds; /* the ISA's (pt_kernel_table's fused), or a benchmark's */
} pt_fused_argmax_job;

/* One perturbed evaluation of a function of the ranks (the ranking, the permutation matrix, the
   sort): the sample's ranks are those of its keys x + sigma Z (Z the stream's Gumbel or normal
   noise) within each segment [offsets[s], offsets[s + 1]), as pt_rank_rows gives them; its
   cotangent is, in index order,
     c_b = rank . y_bar over block b        (the ranking: Y = rank)
     c_b = sum_{s of b} sum_{i < d_s} y_bar[cells[s] + rank_(o_s+i) * d_s + i]
                                            (the permutation matrix: segment s of size d_s
                                             from input o_s has the d_s x d_s block of cells
                                             from cells[s], Y[cells[s] + p*d_s + i] =
                                             [rank_(o_s+i) == p]; the blocks are one, or the
                                             segments) */
typedef struct pt_fused_rank_job {
  pt_fused_terms terms;
  size_t segments;       /* >= 1 */
  const size_t *offsets; /* segments + 1, from 0 to n */
  const float *x;        /* n */
  float *keys;           /* tile * n + PT_FUSED_PAD: the tile's keys, a per-tile result */
  int64_t *work;         /* PT_SORT_WORK(n): the rank kernel's */
  pt_row_thresholds rows; /* the rank kernel's: the ISA's (pt_kernel_table's rows) */
  int32_t *rank;         /* tile * n: the ranks of the tile's samples within their segments,
                            the per-tile result */
  const size_t *cells;   /* segments + 1: the permutation matrix's blocks of cells (the
                            cotangent of the permutation matrix); NULL: of the ranks */
} pt_fused_rank_job;

/* One perturbed top-k one-hot (segments) evaluation: segment s of a sample, inputs
   [offsets[s], offsets[s + 1]), takes its k[s] greatest perturbed keys x + sigma Z (formed as
   the fused rank kernel forms them, so bit for bit the generic path's inputs) in the row
   kernels' order: stable ascending, NaN greatest, so that of equal keys the later index is the
   greater (the last k[s] of pt_rank_rows' order).  Its winners fill the slots
   [slot_at[s], slot_at[s + 1]) (slot_at[s + 1] - slot_at[s] = k[s]) in ascending index order.
   A sample's cotangent over a block is the sum of y_bar over the winners of its segments, in
   slot order (the blocks are one, or the segments).
   Gumbel noise with a (src/fn/fn_fused_bounds.c's pt_fused_gumbel_coefficients and
   pt_fused_topk_margin) bounds the keys without their logarithms, so that only a few inputs of
   a segment take them; the winners are the same bits with a or without. */
typedef struct pt_fused_topk_job {
  pt_fused_terms terms;
  size_t segments;
  const size_t *offsets; /* segments + 1 */
  const size_t *slot_at; /* segments + 1, from 0 to the slots, sum_s k[s] */
  const float *x;        /* n */
  const float *a;        /* Gumbel: n coefficients exp((max x - x_i) / sigma) of each segment's
                            first greatest x, or NULL (no bounds); normal: unused */
  const float *margin;   /* with a: segments margins of the bounds, +inf where none holds */
  size_t stride;         /* of winner: at least the tile */
  int32_t *winner;       /* slots x stride: winner[j * stride + r] is slot j's input index in
                            sample r */
  uint64_t *count;       /* n: how many samples took each input, added to */
  float *keys;           /* n + PT_FUSED_PAD: a segment's candidates' keys */
  float *bound;          /* n + PT_FUSED_PAD: a segment's group minima, then its candidates'
                            inputs x */
  float *survivor;       /* n + 1: the buffer entries of a segment's candidates, the inputs that
                            may be among its k greatest */
  int32_t *survivor_at;  /* n + 1: their indices within the segment */
  int32_t *rank;         /* n: the survivors' ranks */
  int64_t *work;         /* PT_SORT_WORK(n): the rank kernel's */
  pt_row_thresholds rows; /* the rank kernel's: the ISA's (pt_kernel_table's rows) */
} pt_fused_topk_job;

#endif

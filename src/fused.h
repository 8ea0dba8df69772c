/* The fused perturbed kernels' jobs (templates/fused_argmax.c.j2, driven by src/fn_fused.c).

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

/* Samples whose vjp terms sum in float before joining the group's double sums: the flush
   follows the sample number m (after m % PT_FUSED_GROUP == PT_FUSED_GROUP - 1, and after the
   last one), not the tiling, so it is the same for every ISA and tile size; the estimator's
   sample groups (src/estimate.h) are multiples of it, so a flush never straddles two. */
#define PT_FUSED_GROUP 32

/* Inputs per sample up to which the argmax kernels settle PT_LANES samples at once, one per
   lane (vf_load_stride down the tile's noise); longer samples run along their inputs.  Both
   ways give the same bits. */
#define PT_FUSED_SHORT 16

/* Floats every per-row buffer of a job carries past its end: a whole-vector store of a row's
   last elements stays inside it, and so do the strided loads of a short tile's last lanes
   (up to 16 samples of PT_FUSED_SHORT inputs, plus vf_load_stride's 16). */
#define PT_FUSED_PAD (16 * PT_FUSED_SHORT + 32)

/* One perturbed argmax one-hot (segments) evaluation.  Sample m, input i has the noise word
   m*n + i of `key`.  The argmax of a segment is the first index of the least key:
     Gumbel: key_i = E_i * a_i with E = -log(uniform) and a_i = exp((max_seg x - x_i) / sigma)
             (argmax_i x_i + sigma G_i with G = -log E, one logarithm per element), and
             grad_nu = 1 - E;
     normal: key_i = -(a_i + sigma z_i) with a = x, and grad_nu = z. */
typedef struct pt_fused_argmax_job {
  pt_key key;
  size_t n, segments;
  const size_t *offsets; /* segments + 1 */
  const float *a;        /* n */
  float sigma;
  uint64_t samples;      /* M: the last sample flushes its group */
  /* vjp (y_bar != NULL): per sample c = sum_s y_bar[winner of s] - c_base (in double, segment
     order), and partial_i += c * grad_nu_i (a float fma; skipped when c == 0, which changes no
     bit); each group of samples adds partial into x_bar_sum and clears it. */
  const float *y_bar;
  double c_base;
  float *partial;        /* n + PT_FUSED_PAD, zero before the first tile */
  double *x_bar_sum;     /* n: the sums of the current group of samples (src/estimate.h) */
  /* jvp (x_dot != NULL): t[r] = grad_nu(sample r) . x_dot, over 16 virtual lanes (lane j sums
     the inputs i = j mod 16 in order, padded with zeros to a multiple of 16) then the fixed
     tree ((l0 + l8) + (l4 + l12)) + ... */
  const float *x_dot;
  float *t;              /* tile */
  /* jacobian (g != NULL): the rows grad_nu(sample r), n apart */
  float *g;              /* tile * n + PT_FUSED_PAD */
  /* scratch and the results */
  float *noise;          /* tile * n + PT_FUSED_PAD */
  size_t stride;         /* of winner: the tile rounded up to a multiple of 16 */
  int32_t *winner;       /* segments x stride: winner[s * stride + r] is the argmax of segment s
                            of sample r, an input index (whole vectors stored: the lanes past
                            the tile hold garbage) */
  uint64_t *count;       /* n: how many samples each input won, added to */
} pt_fused_argmax_job;

/* One perturbed ranking evaluation: sample m, input i has the noise word m*n + i of `key`;
   the sample's ranks are those of x + sigma Z (Z the stream's Gumbel or normal noise), as
   pt_rank_rows gives them.  grad_nu, the vjp, jvp and Jacobian outputs are as for the argmax
   job, with c = rank . y_bar - c_base (in double, index order). */
typedef struct pt_fused_rank_job {
  pt_key key;
  size_t n;
  const float *x;        /* n */
  float sigma;
  uint64_t samples;
  const float *y_bar;
  double c_base;
  float *partial;        /* n + PT_FUSED_PAD, zero before the first tile */
  double *x_bar_sum;     /* n: the current group's sums */
  const float *x_dot;
  float *t;              /* tile */
  float *g;              /* tile * n + PT_FUSED_PAD */
  float *noise;          /* tile * n + PT_FUSED_PAD */
  float *keys;           /* tile * n + PT_FUSED_PAD */
  int64_t *work;         /* PT_SORT_WORK(n): the rank kernel's */
  int32_t *rank;         /* tile * n: the ranks of the tile's samples, the per-tile result */
} pt_fused_rank_job;

#endif

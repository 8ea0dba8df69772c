/* SPDX-License-Identifier: MIT */
/* libperturb: differentiable functions by random perturbation (Berthet et al. 2020).
 *
 * This header is the public contract; the man pages explain it in full (perturb(7) the
 * concepts and guarantees, perturb(3) the page of each call).  Only <stddef.h> and <stdint.h>
 * are used, and no SIMD type appears here: the kernels behind these calls are chosen at run
 * time for the CPU (see pt_isa_*).  All floating data is IEEE binary32; matrices are row-major
 * with an explicit row stride `ld` in elements.  Every call that can fail returns a pt_status
 * and, on error, writes nothing to its outputs. */
#ifndef PERTURB_H
#define PERTURB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PT_API __attribute__((visibility("default")))
#else
#define PT_API
#endif

/* ---- Status and version ------------------------------------------------------------------ */

/* PT_VERSION_MAJOR, PT_VERSION_MINOR and PT_VERSION_PATCH: the version of this header, which
   configure writes into perturb_version.h (installed beside it). */
#include "perturb_version.h"

/* "MAJOR.MINOR.PATCH": the version of the library actually loaded, which may differ from the
   macros above when a program runs against a newer shared library than it was compiled with. */
PT_API const char *pt_version(void);

typedef enum pt_status {
  PT_OK = 0,
  PT_EINVAL = 1,       /* NULL pointer, zero/inconsistent size, ld < d, sigma not finite or <= 0,
                          num_samples == 0, unknown enum value, non-finite input where refused */
  PT_ENOMEM = 2,       /* an allocation failed */
  PT_EOVERFLOW = 3,    /* a size product overflows size_t, or a dimension exceeds INT32_MAX */
  PT_EUNSUPPORTED = 4, /* ISA not available; operation a function does not provide */
  PT_ECALLBACK = 5,    /* a user callback returned non-zero */
  PT_ECANCELED = 6     /* a progress handler asked to stop (pt_set_progress_handler) */
} pt_status;

/* A short English description; never NULL ("unknown status" for values outside the enum). */
PT_API const char *pt_strerror(pt_status s);

/* A short English sentence about the last failed call made by the calling thread: which
   function, which argument, which value or limit (e.g. "pt_fn_jacobian: x[7] is nan").  ""
   when this thread has had no failure; a call that succeeds leaves it as it was.  Valid until
   this thread's next library call.  Recording it allocates nothing. */
PT_API const char *pt_last_error(void);

/* Progress of long computing calls made by the calling thread: fn(user, done, total) is called
   from that thread, at most every `interval_s` seconds (and never for calls shorter than that),
   with done <= total in units of the call's own choosing; a non-zero return cancels the call,
   which then returns PT_ECANCELED and writes nothing.  fn NULL removes the handler.  The
   handler applies to the thread's outermost call (not to calls a callback makes inside it) and
   is checked once per group of samples, per stage of a composition, per row of a batch and per
   block of rows or noise, on every thread the call uses. */
typedef int (*pt_progress_fn)(void *user, uint64_t done, uint64_t total);
PT_API void pt_set_progress_handler(pt_progress_fn fn, void *user, double interval_s);

/* ---- ISA dispatch ------------------------------------------------------------------------- */

typedef enum pt_isa { PT_ISA_SCALAR = 0, PT_ISA_AVX2 = 1, PT_ISA_AVX512 = 2, PT_ISA_NEON = 3 } pt_isa;

/* "scalar", "avx2", "avx512", "neon"; NULL for a value outside the enum. */
PT_API const char *pt_isa_name(pt_isa isa);
/* 1 when the ISA's kernels are built into this library AND the CPU and OS can run them. */
PT_API int pt_isa_supported(pt_isa isa);
/* The ISA computing calls use now: the best supported one, unless PERTURB_ISA (read once, at
   first use; empty or "auto" mean the best) or pt_isa_select chose another.  While PERTURB_ISA
   names an unknown or unsupported ISA, every computing call returns PT_EUNSUPPORTED and this
   returns PT_ISA_SCALAR. */
PT_API pt_isa pt_isa_active(void);
/* Makes `isa` the active ISA for every thread; PT_EUNSUPPORTED if it is not supported (a value
   outside the enum included). */
PT_API pt_status pt_isa_select(pt_isa isa);

/* ---- Keys and random streams ---------------------------------------------------------------
 * Every random number is a pure function of a key and a position: the same (key, position)
 * gives the same bits forever, on every ISA and machine, in any order and thread count. */

typedef struct pt_key {
  uint64_t seed;
  uint64_t stream;
} pt_key;

/* {seed, 0}. */
PT_API pt_key pt_key_make(uint64_t seed);

/* A new key, independent of `key` and of every other (key, data) pair: the 128-bit output of
 * Philox4x32-10 keyed by key.seed XOR 0x6A09E667F3BCC908 (the fraction of sqrt 2) on the
 * counter {lo32(data), hi32(data), lo32(key.stream), hi32(key.stream)}, read as
 * {seed = out[0] | out[1] << 32, stream = out[2] | out[3] << 32}.  For one seed this is a
 * bijection of (stream, data), so the children of one key never collide; the XOR keeps them
 * apart from the noise words of the same seed, which run Philox on the plain seed.  This
 * derivation is normative: it will not change. */
PT_API pt_key pt_key_fold_in(pt_key key, uint64_t data);

/* out[i] = pt_key_fold_in(key, i) for i < n (nothing when out is NULL or n is 0). */
PT_API void pt_key_split(pt_key key, pt_key *out, size_t n);

/* Philox4x32 with 10 rounds, identical to Random123's philox4x32_10. */
PT_API void pt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

typedef enum pt_noise { PT_NOISE_GUMBEL = 0, PT_NOISE_NORMAL = 1, PT_NOISE_UNIFORM = 2 } pt_noise;

/* out[i] = kind(key, offset + i) for i < n, where word k of key K is
 *   c = (k / 64) * 16 + (k % 16),  w = (k % 64) / 16,
 *   word(K, k) = pt_philox4x32_10({lo32(c), hi32(c), lo32(K.stream), hi32(K.stream)},
 *                                 {lo32(K.seed), hi32(K.seed)})[w]
 * and
 *   uniform(K, k) = ((word(K, k) >> 8) | 1) * 2^-24     in [2^-24, 1 - 2^-24], exact
 *   gumbel(K, k)  = -log(-log(uniform(K, k)))           within 1e-6 * max(1, |g|)
 *   normal(K, k)  = Box-Muller on the words w and w^1 of counter c: a = uniform at the even
 *                   word, b = at the odd one, r = sqrt(-2 log a), t = 2 pi b; the even word
 *                   gives r cos t, the odd one r sin t                 within 1e-5 * max(1, |n|)
 * The bits are the same on every ISA and machine, except with the scalar kernels on an x86
 * CPU without FMA, where SLEEF's deterministic functions cannot run and its non-FMA ones may
 * differ in the last bit of a Gumbel or Normal value (perturb(7), "DETERMINISM").
 * Any offset; n == 0 writes nothing.  PT_EINVAL: unknown kind, or out NULL with n > 0;
 * PT_EOVERFLOW: offset + n past 2^64 (the last word is 2^64 - 1), or n floats past
 * PTRDIFF_MAX bytes. */
PT_API pt_status pt_noise_fill(pt_noise kind, pt_key key, uint64_t offset, float *out, size_t n);

/* ---- Kernels on batches of rows ------------------------------------------------------------
 * Order used by all of them: ascending by value; -0.0 == +0.0; ties keep index order; NaN is
 * greater than every number (NaNs sort last, among themselves by index).  x is `rows` rows of
 * `d` floats, row r starting at x + r*ld.  rows == 0 is allowed and writes nothing; d == 0 or
 * ld < d is PT_EINVAL; d > INT32_MAX, or an extent of (rows - 1)*ld + d elements past
 * PTRDIFF_MAX bytes, is PT_EOVERFLOW (so one row takes any ld >= d). */

/* idx[r] = first index of the greatest element of row r (the first NaN if there is one). */
PT_API pt_status pt_argmax_rows(const float *x, size_t rows, size_t d, size_t ld, int32_t *idx);

/* perm[r*ld_out + p] = index of the p-th smallest element of row r (a stable sort); ld_out >= d.
   PT_ENOMEM if the work space of long rows (about 16 bytes per element of a row, for each thread
   the call runs on) cannot be allocated. */
PT_API pt_status pt_argsort_rows(const float *x, size_t rows, size_t d, size_t ld,
                                 int32_t *perm, size_t ld_out);

/* rank[r*ld_out + i] = position of element i of row r in that sorted order (0 for the
   smallest), i.e. argsort(argsort(x)) with a stable sort; ld_out >= d.  PT_ENOMEM as above. */
PT_API pt_status pt_rank_rows(const float *x, size_t rows, size_t d, size_t ld,
                              int32_t *rank, size_t ld_out);

/* out[j] = sum_r w[r] * x[r*ld + j] for j < d; w == NULL means every weight is 1.  The order of
   operations depends only on the shape (blocked sums), so every ISA gives the same bits; the
   error is at most 1e-5 * sum_r |w[r] x[r*ld + j]| against exact arithmetic for up to 10^7
   rows (4e-6 by construction, for any number of rows).  A NaN result is written as the quiet
   NaN 0x7fc00000, whatever NaN the inputs held. */
PT_API pt_status pt_weighted_sum_rows(const float *x, size_t rows, size_t d, size_t ld,
                                      const float *w, float *out);

/* ---- Differentiable functions --------------------------------------------------------------
 * A pt_fn is an immutable function R^n_in -> R^n_out with optional derivatives, safe to use
 * from many threads at once (user callbacks then run concurrently too).  A function built from
 * others keeps them alive (reference-counted): the parts may be freed in any order.
 *
 * Every computing call returns PT_EINVAL for a NULL function or pointer, PT_EUNSUPPORTED for a
 * derivative the function does not provide, PT_ECALLBACK when a user callback returns non-zero,
 * PT_ENOMEM, or PT_EOVERFLOW for sizes whose products overflow; on any error it writes nothing
 * (a function stays usable after an error).
 *
 * Keys: a function's random parts are its perturbed functions (pt_make_perturbed_fun), counted
 * through compositions in evaluation order, inner first.  Called with key K, a function with one
 * random part gives it K itself (so loss o perturbed draws exactly the samples of perturbed
 * alone); with several, part p gets pt_key_fold_in(K, p), so every part has independent noise
 * and the numbering does not depend on how a chain of compositions is bracketed.  A perturbed
 * function of a function g with random parts evaluates sample m of g as row m of
 * pt_fn_eval_batch(g, pt_key_fold_in(K', 0), ...), K' its own key, and the baseline g(x) as the
 * row after the last sample. */

typedef struct pt_fn pt_fn;

/* x: batch x n_in row-major, y: batch x n_out; return 0 on success, non-zero on failure */
typedef int (*pt_eval_fn)(void *user, size_t batch, const float *x, float *y);
/* at one point x (n_in): x_bar (n_in) = J(x)^T y_bar, y_bar has n_out entries */
typedef int (*pt_vjp_fn)(void *user, const float *x, const float *y_bar, float *x_bar);

/* A black box: eval works, derivatives return PT_EUNSUPPORTED; it can be perturbed.  n_in or
   n_out 0 is PT_EINVAL. */
PT_API pt_status pt_fn_from_callback(size_t n_in, size_t n_out, pt_eval_fn f, void *user,
                                     pt_fn **out);
/* The value of fx; every derivative through gx as its vector-Jacobian product (the jvp and the
   Jacobian from VJPs against basis vectors); fx's own derivative is never used. */
PT_API pt_status pt_custom_gradient(size_t n_in, size_t n_out, pt_eval_fn fx, pt_vjp_fn gx,
                                    void *user, pt_fn **out);
/* y = one_hot(argmax(x)), argmax as pt_argmax_rows.  d > INT32_MAX: PT_EOVERFLOW. */
PT_API pt_status pt_fn_argmax_one_hot(size_t d, pt_fn **out);
/* The same on each consecutive segment of the given sizes; n_in = n_out = sum(sizes).  A size of
   0 is PT_EINVAL; a sum above INT32_MAX is PT_EOVERFLOW. */
PT_API pt_status pt_fn_argmax_one_hot_segments(const size_t *sizes, size_t count, pt_fn **out);
/* y_i = rank of x_i (as pt_rank_rows, as float). */
PT_API pt_status pt_fn_ranking(size_t d, pt_fn **out);
/* The same on each consecutive segment: y_i = the rank of x_i within its segment. */
PT_API pt_status pt_fn_ranking_segments(const size_t *sizes, size_t count, pt_fn **out);
/* The perturbed function of f: see pt_make_perturbed_fun(3).  num_samples == 0,
   sigma not finite or <= 0, or a noise other than Gumbel and normal: PT_EINVAL;
   num_samples * n_in of 2^64 or more (noise positions; the end of the last sample must be
   representable too): PT_EOVERFLOW.  Non-finite x is refused (PT_EINVAL) by every call of the
   result.  The Hessian needs f's n_out to be 1.
   When f is a built-in (argmax one-hot, segments, ranking, permutation matrix) every call but
   the Hessian runs in fused kernels that never hold more than a tile of the noise: memory
   O(n_in + tile), the Jacobian's n_out x n_in aside.  The Gumbel argmax uses
   argmin_i E_i exp((max x - x_i)/sigma) with E = -log(uniform), one logarithm per element,
   which may settle a float near-tie differently from the literal formula; ranking, the
   permutation matrix and the normal argmax use the literal one.  (Max and sort are fused with
   the pathwise gradient of pt_make_perturbed_fun_ex, their default there.)
   Any other f runs on tiles of samples through its batch evaluation. */
PT_API pt_status pt_make_perturbed_fun(const pt_fn *f, size_t num_samples, float sigma,
                                       pt_noise noise, int use_baseline, pt_fn **out);
/* outer(inner(x)); PT_EINVAL unless outer's n_in is inner's n_out.  Differentiable when both
   parts are (chain rule); no Hessian. */
PT_API pt_status pt_fn_compose(const pt_fn *outer, const pt_fn *inner, pt_fn **out);

PT_API size_t pt_fn_n_in(const pt_fn *f);   /* 0 for NULL */
PT_API size_t pt_fn_n_out(const pt_fn *f);  /* 0 for NULL */
PT_API void pt_fn_free(pt_fn *f);           /* NULL is a no-op */

/* The calls below compute in scratch memory and write their outputs only at the end, on
   success: an output may be the memory of an input (y over x, x_bar over y_bar, ...).  The two
   outputs of pt_fn_value_and_grad must not overlap each other. */
PT_API pt_status pt_fn_eval(const pt_fn *f, pt_key key, const float *x, float *y);
/* Row b uses pt_key_fold_in(key, b): equals `batch` calls of pt_fn_eval.  batch == 0 is allowed
   and writes nothing. */
PT_API pt_status pt_fn_eval_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                                  float *y);
PT_API pt_status pt_fn_vjp(const pt_fn *f, pt_key key, const float *x, const float *y_bar,
                           float *x_bar);
PT_API pt_status pt_fn_jvp(const pt_fn *f, pt_key key, const float *x, const float *x_dot,
                           float *y_dot);
PT_API pt_status pt_fn_jacobian(const pt_fn *f, pt_key key, const float *x,
                                float *jac); /* n_out x n_in */
/* n_out must be 1 (else PT_EINVAL); value and gradient from the same samples. */
PT_API pt_status pt_fn_value_and_grad(const pt_fn *f, pt_key key, const float *x, float *value,
                                      float *grad);
/* n_in x n_in; perturbed functions with n_out == 1 only, others PT_EUNSUPPORTED. */
PT_API pt_status pt_fn_hessian(const pt_fn *f, pt_key key, const float *x, float *hess);

/* ---- Threads (v0.2) -------------------------------------------------------------------------
 * Computing calls run on a pool of threads inside the library (pthreadpool), the calling
 * thread among them.  Calls from several user threads at once neither queue nor
 * oversubscribe: a call that finds the pool busy runs on its own thread.  Work is split by
 * rows, by blocks of columns of a weighted sum (whose order of operations is per column), by
 * positions of a random stream, and by sample groups.
 *
 * Every result is bitwise the same for any thread count and any split into shards, because
 * the order of every sum over samples depends on the sample index alone.  The M samples of a
 * perturbed function are cut into groups of G = pt_fn_sample_group(f) consecutive indices
 * (G = 128, doubled until M / G <= 2^16).  Inside a group each estimator adds its samples'
 * terms in sample order in double (the fused score-function vector-Jacobian product first in
 * float over runs of 32 samples, m = 32k .. 32k + 31); a finished group's sums are then added
 * into an exact accumulator: each double is cut into integer slices on one fixed grid of
 * 32-bit bins, and the three bins below the highest any group reached are kept, so that the
 * kept integers, and the double they round to, are a function of the set of group sums alone
 * (bits more than 64 places below the largest group sum's leading bit are dropped).
 * Integer-valued terms (the piecewise-constant built-ins' values: winner counts, rank sums)
 * are counted exactly in 64 bits.  Groups are split among threads, shards and machines in any
 * way and merged in any order: the result is the one-thread result.  Rows of batched calls
 * are independent calls (keys folded by row). */

/* 1 <= n <= 1024, else PT_EINVAL; applies to later calls, in every thread.  Default: the
   number of CPUs this process may run on (its affinity mask, read at first use; at most 1024),
   or PERTURB_NUM_THREADS=N (read once, at first use); a value that is not a positive decimal
   integer of at most 1024 (the empty string included: unlike PERTURB_ISA's, it does not mean
   the default) makes every computing call return PT_EINVAL until pt_set_num_threads is
   called.  The count is a ceiling: a call splits its work only where each thread gets enough
   to pay for its wake-up, so small calls run on the calling thread alone. */
PT_API pt_status pt_set_num_threads(size_t n);
/* The count computing calls use now (>= 1); the default while a refused PERTURB_NUM_THREADS
   holds. */
PT_API size_t pt_get_num_threads(void);

/* ---- Callbacks with options (v0.2) ---------------------------------------------------------- */

typedef void (*pt_free_fn)(void *user);
enum { PT_CALLBACK_THREAD_SAFE = 1u };

/* gx == NULL: a black box, as pt_fn_from_callback; otherwise as pt_custom_gradient.
   free_user (may be NULL) is called once with user when the object is destroyed; if this
   constructor fails it is not called (the caller still owns user).  PT_CALLBACK_THREAD_SAFE:
   the library may call f and gx from its own threads, on different rows at once; without it
   they are only ever called from the thread that made the computing call, in row order.
   Unknown flag bits: PT_EINVAL. */
PT_API pt_status pt_fn_from_callback_ex(size_t n_in, size_t n_out, pt_eval_fn f, pt_vjp_fn gx,
                                        void *user, pt_free_fn free_user, unsigned flags,
                                        pt_fn **out);

/* ---- Batched derivatives (v0.2) ------------------------------------------------------------
 * Row b (of x, y_bar, x_dot and the outputs: batch rows, row-major) uses pt_key_fold_in(key, b),
 * exactly as pt_fn_eval_batch: each equals `batch` calls of the single-row function, bit for
 * bit.  batch == 0 is allowed and writes nothing. */
PT_API pt_status pt_fn_vjp_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                                 const float *y_bar, float *x_bar);
PT_API pt_status pt_fn_jvp_batch(const pt_fn *f, pt_key key, size_t batch, const float *x,
                                 const float *x_dot, float *y_dot);
/* n_out must be 1 (else PT_EINVAL). */
PT_API pt_status pt_fn_value_and_grad_batch(const pt_fn *f, pt_key key, size_t batch,
                                            const float *x, float *value, float *grad);

/* ---- Shards of a perturbed estimate (v0.2) -------------------------------------------------- */

typedef enum pt_op { PT_OP_EVAL = 0, PT_OP_VJP = 1, PT_OP_JVP = 2, PT_OP_JACOBIAN = 3,
                     PT_OP_HESSIAN = 4 } pt_op;
typedef struct pt_partial pt_partial;

/* The granularity of shards of f: a partial's range starts and ends at a multiple of it (or at
   num_samples).  It depends on f alone (never on the ISA or the thread count); 1 means any
   range.  0 when f is not a perturbed function. */
PT_API uint64_t pt_fn_sample_group(const pt_fn *f);
/* The estimate of `op` of the perturbed function f (made by pt_make_perturbed_fun) at x, with
   key, over the samples m0 <= m < m1 only.  v is y_bar for PT_OP_VJP, x_dot for PT_OP_JVP, and
   NULL otherwise.  m0 == m1 is an empty partial (a rank with no samples); m0 > m1,
   m1 > num_samples, or an end that is neither a multiple of pt_fn_sample_group(f) nor
   num_samples: PT_EINVAL.  Functions that are not perturbed functions: PT_EUNSUPPORTED. */
PT_API pt_status pt_fn_partial(const pt_fn *f, pt_op op, pt_key key, const float *x,
                               const float *v, uint64_t m0, uint64_t m1, pt_partial **out);
/* Adds `from` into `into`: exactly associative and commutative.  Partials of another function,
   op, key, x or v, or with overlapping sample ranges: PT_EINVAL, `into` unchanged.  "Another
   function" is told by structure (sizes, samples, sigma, noise, baseline, the built-in and its
   segments): two user black boxes of the same sizes are not told apart. */
PT_API pt_status pt_partial_merge(pt_partial *into, const pt_partial *from);
/* When the merged ranges cover exactly [0, num_samples): writes the op's output (as the
   one-call function would, bit for bit); otherwise PT_EINVAL. */
PT_API pt_status pt_partial_finish(const pt_partial *p, float *out);
/* Portable bytes (the same on every machine and byte order): the size, then the bytes.  The
   size depends only on f, op and the sample count, not on the range. */
PT_API size_t pt_partial_size(const pt_partial *p);
/* size too small: PT_EINVAL. */
PT_API pt_status pt_partial_save(const pt_partial *p, void *buf, size_t size);
/* malformed (truncated or too long, corrupted: a checksum covers every byte, another format
   version): PT_EINVAL. */
PT_API pt_status pt_partial_load(const void *buf, size_t size, pt_partial **out);
/* Merges the saved partial in `in` into the saved partial in `inout`, both `size` bytes, in
   place (an MPI_User_function can call it directly); the merged partial has the same size. */
PT_API pt_status pt_partial_merge_bytes(const void *in, void *inout, size_t size);
PT_API void pt_partial_free(pt_partial *p); /* NULL: no-op */

/* ---- More perturbed optimizers (v0.2) -------------------------------------------------------
 * Built-ins beside the argmax one-hot and the ranking, with the row kernels' order (ascending,
 * stable, NaN greatest): "the k greatest" are the last k of the stable ascending order, so of
 * equal values the later index counts as greater.  Unperturbed, top-k and the permutation matrix
 * are piecewise constant (zero derivatives, as the argmax); max and sort are differentiable
 * almost everywhere and return their derivatives (the argmax one-hot, the permutation). */

/* y_i = 1 for the k greatest x_i, else 0; 1 <= k <= d, else PT_EINVAL. */
PT_API pt_status pt_fn_top_k(size_t d, size_t k, pt_fn **out);
/* The same on each consecutive segment: ks[s] of the sizes[s] inputs of segment s. */
PT_API pt_status pt_fn_top_k_segments(const size_t *sizes, const size_t *ks, size_t count,
                                      pt_fn **out);
/* y = max_i x_i (n_out = 1): NaN when x holds a NaN, as pt_argmax_rows picks it. */
PT_API pt_status pt_fn_max(size_t d, pt_fn **out);
/* y_s = the max of segment s (n_out = count). */
PT_API pt_status pt_fn_max_segments(const size_t *sizes, size_t count, pt_fn **out);
/* y = x in ascending order (y_p = x[perm_p], perm as pt_argsort_rows). */
PT_API pt_status pt_fn_sort(size_t d, pt_fn **out);
/* The same on each consecutive segment: each segment's inputs in ascending order, in place of
   the segment's (n_out = n_in = sum(sizes)). */
PT_API pt_status pt_fn_sort_segments(const size_t *sizes, size_t count, pt_fn **out);
/* n_out = d*d: y[p*d + i] = 1 when element i has position p (p = rank of x_i), else 0.
   d*d above INT32_MAX: PT_EOVERFLOW. */
PT_API pt_status pt_fn_permutation_matrix(size_t d, pt_fn **out);
/* The same on each consecutive segment: segment s (sizes[s] = d_s inputs from o_s) has its own
   d_s x d_s block of cells, the blocks one after another (n_out = sum of d_s^2): cell
   c_s + p*d_s + (i - o_s), with c_s the cells of the blocks before, is 1 when input i has
   position p within its segment.  The cells past INT32_MAX: PT_EOVERFLOW. */
PT_API pt_status pt_fn_permutation_matrix_segments(const size_t *sizes, size_t count,
                                                   pt_fn **out);

/* Options of a perturbation: see pt_make_perturbed_fun_ex(3). */
typedef enum pt_baseline { PT_BASELINE_NONE = 0, PT_BASELINE_F_X = 1,
                           PT_BASELINE_LEAVE_ONE_OUT = 2 } pt_baseline;
typedef enum pt_gradient { PT_GRADIENT_AUTO = 0, PT_GRADIENT_SCORE = 1,
                           PT_GRADIENT_PATHWISE = 2 } pt_gradient;
typedef struct pt_perturb_options {
  size_t size;              /* sizeof(pt_perturb_options) as the caller compiled it (set by
                               pt_perturb_defaults): later versions may add fields at the end
                               and read only those the caller's size covers */
  size_t num_samples;       /* as pt_make_perturbed_fun */
  float sigma;
  pt_noise noise;
  pt_baseline baseline;
  pt_gradient gradient;     /* AUTO: pathwise where f provides it, else score function */
  int antithetic;           /* samples in antithetic pairs (num_samples even, and at least 4
                               with the leave-one-out, which then leaves out whole pairs;
                               else PT_EINVAL) */
  int multiplicative;       /* x * exp(sigma Z - sigma^2 / 2) instead of x + sigma Z (normal
                               noise; the score function's derivatives need x_i != 0) */
  int block_diagonal;       /* segments: drop the cross-segment terms (zero in expectation) */
  int independent_jacobian; /* derivatives from samples independent of the value's */
} pt_perturb_options;
/* optax's defaults: 1000 samples, sigma 0.1, Gumbel, baseline F_X, gradient AUTO, the rest 0;
   size = sizeof(pt_perturb_options). */
PT_API pt_perturb_options pt_perturb_defaults(void);
/* The perturbed function of f with these options (NULL: PT_EINVAL).  pt_make_perturbed_fun
   equals this call with the defaults, its four arguments, and gradient PT_GRADIENT_SCORE.
   Options that do not apply to f are refused with PT_EINVAL, and so is a size smaller than
   this struct (or a larger one whose bytes past it are not all zero). */
PT_API pt_status pt_make_perturbed_fun_ex(const pt_fn *f, const pt_perturb_options *options,
                                          pt_fn **out);

/* ---- Fenchel-Young losses (v0.2) ------------------------------------------------------------
 * See pt_fenchel_young_loss(3). */

/* The perturbed Fenchel-Young loss of the optimizer opt, y*(theta) = argmax over C of
   <y, theta> (n_in = n_out = n: the argmax one-hot or its segments, top-k, ranking, or a user's
   solver without random parts): n_in = 2n (theta, then y_true), n_out = 1, value
   F_eps(theta) - <theta, y_true> with F_eps(theta) = E[<y*(theta + sigma Z), theta + sigma Z>],
   gradient (E[y*(theta + sigma Z)] - y_true, -theta).  options NULL: the defaults; gradient
   AUTO means pathwise (Danskin).  Non-finite theta or y_true: PT_EINVAL. */
PT_API pt_status pt_fenchel_young_loss(const pt_fn *opt, const pt_perturb_options *options,
                                       pt_fn **out);

#ifdef __cplusplus
}
#endif

#endif /* PERTURB_H */

/* SPDX-License-Identifier: MIT */
/* Fuzzes the function layer: a built-in (argmax one-hot and its segments, ranking, top-k, max,
   sort, permutation matrix), perturbed with options from the input (samples, sigma, noise,
   baseline, gradient, antithetic, multiplicative, block-diagonal, independent Jacobian), maybe
   composed under another built-in, then one computing call (eval, vjp, jvp, Jacobian, value and
   gradient, Hessian, batched forms) on inputs of every kind, on 1 or 2 threads, with one
   allocation made to fail.  A refused constructor writes nothing; a failed call writes nothing,
   fails with PT_ENOMEM only when an allocation failed, and leaves the function usable; a
   successful call gives the same bits again, with its output over its input, on the other
   thread count, and (batched) as its rows with pt_key_fold_in(key, b). */
#include <math.h>
#include <stdlib.h>

#include "fuzz.h"

enum { EVAL, VJP, JVP, JACOBIAN, VALUE_AND_GRAD, HESSIAN, EVAL_BATCH, VJP_BATCH, OPS };

static pt_status builtin(fuzz_input *in, size_t d, pt_fn **out) {
  size_t sizes[3] = {1 + d / 2, 1 + d / 3, 1 + fuzz_below(in, 4)}, ks[3] = {1, 1, 1};
  const size_t count = 1 + fuzz_below(in, 3);
  for (size_t s = 0; s < count; s++) ks[s] = fuzz_below(in, sizes[s] + 1); /* 0: refused */
  switch (fuzz_below(in, 10)) {
    case 0: return pt_fn_argmax_one_hot(d, out);
    case 1: return pt_fn_argmax_one_hot_segments(sizes, count, out);
    case 2: return pt_fn_ranking(d, out);
    case 3: return pt_fn_top_k(d, fuzz_below(in, d + 2), out);
    case 4: return pt_fn_top_k_segments(sizes, ks, count, out);
    case 5: return pt_fn_max(d, out);
    case 6: return pt_fn_max_segments(sizes, count, out);
    case 7: return pt_fn_sort(d, out);
    case 8: return pt_fn_permutation_matrix(d, out);
    default: return pt_fn_permutation_matrix_segments(sizes, count, out);
  }
}

/* The output's floats of `op` on f (batch rows for the batched forms). */
static size_t out_floats(int op, const pt_fn *f, size_t batch) {
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f);
  switch (op) {
    case EVAL: return n_out;
    case VJP: return n_in;
    case JVP: return n_out;
    case JACOBIAN: return n_out * n_in;
    case VALUE_AND_GRAD: return 1 + n_in;
    case HESSIAN: return n_in * n_in;
    case EVAL_BATCH: return batch * n_out;
    default: return batch * n_in;
  }
}

/* One call; v is y_bar or x_dot as the op needs (as many rows as x). */
static pt_status compute(int op, const pt_fn *f, pt_key key, const float *x, const float *v,
                         size_t batch, float *out) {
  switch (op) {
    case EVAL: return pt_fn_eval(f, key, x, out);
    case VJP: return pt_fn_vjp(f, key, x, v, out);
    case JVP: return pt_fn_jvp(f, key, x, v, out);
    case JACOBIAN: return pt_fn_jacobian(f, key, x, out);
    case VALUE_AND_GRAD: return pt_fn_value_and_grad(f, key, x, out, out + 1);
    case HESSIAN: return pt_fn_hessian(f, key, x, out);
    case EVAL_BATCH: return pt_fn_eval_batch(f, key, batch, x, out);
    default: return pt_fn_vjp_batch(f, key, batch, x, v, out);
  }
}

static void check_call(fuzz_input *in, const pt_fn *f) {
  const int op = (int)fuzz_below(in, OPS);
  const size_t n_in = pt_fn_n_in(f), n_out = pt_fn_n_out(f), batch = fuzz_below(in, 3);
  const size_t rows = op >= EVAL_BATCH ? batch : 1, wide = n_in > n_out ? n_in : n_out;
  const pt_key key = {fuzz_bits(in, 2), fuzz_bits(in, 1)};
  const int awkward = (fuzz_bits(in, 1) & 7) == 0; /* inputs of every kind, NaN included */
  const size_t failing = fuzz_failing_allocation(in);
  const size_t threads = 1 + fuzz_below(in, 2);
  float *x = malloc((rows * wide + 1) * sizeof *x), *v = malloc((rows * wide + 1) * sizeof *v);
  const size_t floats = out_floats(op, f, batch) + 1;
  float *out = malloc(floats * sizeof *out), *again = malloc(floats * sizeof *again);
  fuzz_check(x && v && out && again);
  for (size_t i = 0; i < rows * wide; i++) {
    x[i] = awkward ? fuzz_float(in) : fuzz_finite(in);
    v[i] = fuzz_finite(in);
  }
  pt_set_num_threads(threads);
  fuzz_fill_canary(out, floats * sizeof *out);
  pt_alloc_fail_after(failing);
  const pt_status s = compute(op, f, key, x, v, batch, out);
  pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
  if (s != PT_OK) {
    fuzz_check(fuzz_untouched(out, floats * sizeof *out) && pt_last_error()[0] != '\0');
    fuzz_check(s != PT_ENOMEM || failing != PT_ALLOC_NEVER_FAIL);
    fuzz_check(s != PT_ECALLBACK && s != PT_ECANCELED);
    if (s == PT_ENOMEM) { /* still usable: the call without the failure succeeds or refuses */
      const pt_status retry = compute(op, f, key, x, v, batch, again);
      fuzz_check(retry != PT_ENOMEM);
    }
  } else {
    fuzz_check(fuzz_untouched(out + floats - 1, sizeof *out));
    const size_t n = floats - 1;
    /* the same bits on the other thread count */
    pt_set_num_threads(3 - threads);
    fuzz_check(compute(op, f, key, x, v, batch, again) == PT_OK);
    fuzz_check(memcmp(out, again, n * sizeof *out) == 0);
    /* the output over its input (perturb.h: the outputs may be the inputs' memory) */
    if (op == EVAL || op == EVAL_BATCH || op == JACOBIAN) {
      float *both = malloc((n > rows * n_in ? n : rows * n_in) * sizeof *both);
      fuzz_check(both != NULL);
      memcpy(both, x, rows * n_in * sizeof *x);
      fuzz_check(compute(op, f, key, both, v, batch, both) == PT_OK);
      fuzz_check(memcmp(out, both, n * sizeof *out) == 0);
      free(both);
    }
    /* a batch is its rows, row b with pt_key_fold_in(key, b) */
    for (size_t b = 0; b < rows && op >= EVAL_BATCH; b++) {
      const size_t per = op == EVAL_BATCH ? n_out : n_in;
      fuzz_check(compute(op == EVAL_BATCH ? EVAL : VJP, f, pt_key_fold_in(key, b), x + b * n_in,
                         v + b * n_out, 1, again) == PT_OK);
      fuzz_check(memcmp(out + b * per, again, per * sizeof *out) == 0);
    }
  }
  free(x);
  free(v);
  free(out);
  free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {data, size};
  const size_t d = fuzz_below(&in, 13); /* 0: refused */
  static const float sigmas[] = {0.5f, 1.0f, 0.05f, 3.0f, 0.0f, -1.0f, INFINITY, NAN};
  pt_fn *canary = (pt_fn *)(uintptr_t)0x5eed, *f = canary, *p = canary, *top = canary;
  pt_status s = builtin(&in, d, &f);
  fuzz_check(s == PT_OK ? f != canary && f != NULL : f == canary);
  if (s != PT_OK) return 0;
  const unsigned flags = (unsigned)fuzz_bits(&in, 2);
  if (flags & 1) { /* perturbed */
    pt_perturb_options o = pt_perturb_defaults();
    o.num_samples = fuzz_below(&in, 65);
    o.sigma = sigmas[fuzz_below(&in, 8)];
    o.noise = (pt_noise)fuzz_below(&in, 3);
    o.baseline = (pt_baseline)fuzz_below(&in, 4);
    o.gradient = (pt_gradient)fuzz_below(&in, 4);
    o.antithetic = (flags >> 1) & 1;
    o.multiplicative = (flags >> 2) & 1;
    o.block_diagonal = (flags >> 3) & 1;
    o.independent_jacobian = (flags >> 4) & 1;
    pt_alloc_fail_after(flags >> 5 & 1 ? fuzz_below(&in, 4) : PT_ALLOC_NEVER_FAIL);
    s = pt_make_perturbed_fun_ex(f, &o, &p);
    pt_alloc_fail_after(PT_ALLOC_NEVER_FAIL);
    fuzz_check(s == PT_OK ? p != canary && p != NULL : p == canary);
    if (s == PT_OK) {
      pt_fn_free(f);
      f = p;
    }
  }
  if (flags & 0x40) { /* composed under a built-in of its outputs */
    pt_fn *outer = NULL;
    if (pt_fn_max(pt_fn_n_out(f), &outer) == PT_OK) {
      s = pt_fn_compose(outer, f, &top);
      fuzz_check(s == PT_OK ? top != canary : top == canary);
      pt_fn_free(outer);
      if (s == PT_OK) {
        pt_fn_free(f);
        f = top;
      }
    }
  }
  check_call(&in, f);
  pt_fn_free(f);
  return 0;
}

/* SPDX-License-Identifier: MIT */
/* Shards of a perturbed estimate (perturb.h, "Shards"): the sums of estimate.h over a range of
   sample groups, tagged with everything that must match for two of them to be added (the
   function, op, key, x and v), merged exactly, finished into the op's output, and carried
   between machines as portable bytes:

     offset  size          field (integers little-endian)
     0       8             magic "ptpart\0\1"
     8       4 x 6         format version (2), op, noise, options, counted, sigma's bits
     32      8 x 12        n_in, n_out, samples, group, function hash, key seed, key stream,
                           hash of x, hash of v, cells, counts, groups
     128     B             the covered groups, bit g of byte g / 8, padded with zeros to 8 bytes
     128+B   32 x cells    the exact sums: top (int32), flags (uint32), three bins (int64)
     ...     8 x counts    the counted values (uint64)
     end-8   8             FNV-1a of every byte before it

   Its size depends on the function, op and sample count only, never on the range.  Loading
   checks every field against the others and the checksum, so truncated, corrupted or foreign
   bytes are refused with PT_EINVAL rather than read. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/error.h"
#include "runtime/alloc.h"
#include "fn/estimate.h"
#include "fn/fn_builtin.h"

/* 2: the options word (fn_perturbed.h) took the place of version 1's baseline flag */
#define PT_PARTIAL_VERSION 2u
#define HEADER_BYTES 128
static const unsigned char magic[8] = {'p', 't', 'p', 'a', 'r', 't', 0, 1};

typedef struct partial_id {
  uint32_t op, noise, options, counted; /* options: pt_perturbation_bits */
  float sigma;
  uint64_t n_in, n_out, samples, group, fn_hash, seed, stream, x_hash, v_hash;
} partial_id;

struct pt_partial {
  partial_id id;
  size_t cells, counts;
  pt_sums sums;
};

static int same_id(const partial_id *a, const partial_id *b) {
  return a->op == b->op && a->noise == b->noise && a->options == b->options &&
         a->counted == b->counted && memcmp(&a->sigma, &b->sigma, sizeof a->sigma) == 0 &&
         a->n_in == b->n_in && a->n_out == b->n_out && a->samples == b->samples &&
         a->group == b->group && a->fn_hash == b->fn_hash && a->seed == b->seed &&
         a->stream == b->stream && a->x_hash == b->x_hash && a->v_hash == b->v_hash;
}

/* The perturbation an identity describes; 0 when its options word is not one. */
static int id_perturbation(const partial_id *id, pt_perturbation *p) {
  memset(p, 0, sizeof *p);
  p->samples = (size_t)id->samples;
  p->sigma = id->sigma;
  p->noise = (pt_noise)id->noise;
  return pt_perturbation_from_bits(id->options, p);
}

/* ---- hashes: FNV-1a over values taken least significant byte first ------------------------- */

#define FNV_START 0xcbf29ce484222325ull

static uint64_t fnv(uint64_t h, uint64_t v, int bytes) {
  for (int b = 0; b < bytes; b++) h = (h ^ ((v >> (8 * b)) & 0xff)) * 0x100000001b3ull;
  return h;
}

static uint64_t hash_floats(const float *v, size_t n) {
  uint64_t h = FNV_START;
  for (size_t i = 0; v && i < n; i++) {
    uint32_t bits;
    memcpy(&bits, &v[i], sizeof bits);
    h = fnv(h, bits, 4);
  }
  return h;
}

/* The structure of the function perturbed: its kind and sizes.  Two black boxes of the same
   sizes cannot be told apart; a built-in's segments can. */
static uint64_t hash_function(const pt_fn *f) {
  const pt_builtin b = pt_fn_builtin(f);
  uint64_t h = fnv(fnv(fnv(FNV_START, (uint64_t)b.kind, 4), f->n_in, 8), f->n_out, 8);
  for (size_t s = 0; b.kind != PT_BUILTIN_NONE && s <= b.count; s++) h = fnv(h, b.offsets[s], 8);
  for (size_t s = 0; b.k && s < b.count; s++) h = fnv(h, b.k[s], 8);
  return h;
}

/* ---- what an op is ---------------------------------------------------------------------------- */

static unsigned op_want(pt_op op) {
  static const unsigned want[] = {PT_WANT_VALUE, PT_WANT_VJP, PT_WANT_JVP, PT_WANT_JAC,
                                  PT_WANT_HESS};
  return want[op];
}

/* Floats of the op's output; 0 if that size does not fit. */
static size_t op_outputs(uint32_t op, uint64_t n_in, uint64_t n_out) {
  uint64_t n;
  switch (op) {
    case PT_OP_EVAL: case PT_OP_JVP: return n_out <= SIZE_MAX ? (size_t)n_out : 0;
    case PT_OP_VJP: return n_in <= SIZE_MAX ? (size_t)n_in : 0;
    case PT_OP_JACOBIAN: return __builtin_mul_overflow(n_out, n_in, &n) || n > SIZE_MAX ? 0 : (size_t)n;
    default: return __builtin_mul_overflow(n_in, n_in, &n) || n > SIZE_MAX ? 0 : (size_t)n;
  }
}

static pt_outputs op_outputs_at(pt_op op, float *out) {
  pt_outputs o = {NULL, NULL, NULL, NULL, NULL};
  switch (op) {
    case PT_OP_EVAL: o.y = out; break;
    case PT_OP_VJP: o.x_bar = out; break;
    case PT_OP_JVP: o.y_dot = out; break;
    case PT_OP_JACOBIAN: o.jac = out; break;
    case PT_OP_HESSIAN: o.hess = out; break;
  }
  return o;
}

static uint64_t groups_of(const partial_id *id) { return (id->samples - 1) / id->group + 1; }

/* ---- making, merging, finishing --------------------------------------------------------------- */

static pt_partial *partial_new(const partial_id *id, size_t cells, size_t counts, pt_status *s) {
  pt_partial *p = pt_calloc(1, sizeof *p);
  if (!p) {
    *s = pt_fail(PT_ENOMEM, "no memory for a partial");
    return NULL;
  }
  p->id = *id;
  p->cells = cells;
  p->counts = counts;
  *s = pt_sums_alloc_shape(cells, counts, groups_of(id), NULL, &p->sums);
  if (*s != PT_OK) {
    free(p);
    return NULL;
  }
  return p;
}

void pt_partial_free(pt_partial *p) {
  if (!p) return;
  pt_sums_free(&p->sums, NULL);
  free(p);
}

static int on_boundary(uint64_t m, uint64_t group, uint64_t samples) {
  return m % group == 0 || m == samples;
}

pt_status pt_fn_partial(const pt_fn *f, pt_op op, pt_key key, const float *x, const float *v,
                        uint64_t m0, uint64_t m1, pt_partial **out) {
  PT_CALL("pt_fn_partial");
  pt_status s = pt_fn_ready(f);
  if (s != PT_OK) return s;
  if (!x || !out) return pt_fail(PT_EINVAL, "x or out is NULL");
  if ((unsigned)op > PT_OP_HESSIAN) return pt_fail(PT_EINVAL, "op is %d, not a pt_op", (int)op);
  const pt_fn *inner;
  const pt_perturbation *pert = pt_fn_perturbation(f, &inner);
  if (!pert)
    return pt_fail(PT_EUNSUPPORTED, "f is not a perturbed function: only those have partials");
  if (op == PT_OP_HESSIAN && !(f->caps & PT_CAP_HESSIAN)) return pt_fn_unsupported("Hessian");
  const int has_v = op == PT_OP_VJP || op == PT_OP_JVP;
  if (has_v && !v) return pt_fail(PT_EINVAL, "v is NULL for a vjp or jvp");
  const uint64_t group = pt_estimate_group(pert->samples);
  if (m0 > m1 || m1 > pert->samples)
    return pt_fail(PT_EINVAL, "samples [%" PRIu64 ", %" PRIu64 ") are not within [0, %zu)", m0,
                   m1, pert->samples);
  if (!on_boundary(m0, group, pert->samples) || !on_boundary(m1, group, pert->samples))
    return pt_fail(PT_EINVAL,
                   "samples [%" PRIu64 ", %" PRIu64 ") do not start and end on groups of %" PRIu64
                   " (pt_fn_sample_group)",
                   m0, m1, group);
  /* the op's output (a Jacobian's n_out x n_in) must be addressable before x is read */
  if (op_outputs((uint32_t)op, f->n_in, f->n_out) == 0 ||
      pt_fn_too_big(op_outputs((uint32_t)op, f->n_in, f->n_out), 1, sizeof(pt_xsum)))
    return pt_fail(PT_EOVERFLOW, "the sums of this op's %zu x %zu outputs are too large",
                   f->n_out, f->n_in);
  if ((s = pt_check_finite("x", x, f->n_in)) != PT_OK) return s;

  /* the identity holds the call's key; a derivative with independent_jacobian sums the
     samples of its own (pt_estimate_key), as the one call does */
  pt_estimator e;
  s = pt_estimator_begin(&e, inner, pert, pt_estimate_key(pert, key, op_want(op)), x,
                         op == PT_OP_VJP ? v : NULL, op == PT_OP_JVP ? v : NULL, op_want(op),
                         NULL);
  const partial_id id = {
      .op = (uint32_t)op, .noise = (uint32_t)pert->noise, .options = pt_perturbation_bits(pert),
      .counted = (uint32_t)e.counted, .sigma = pert->sigma, .n_in = f->n_in, .n_out = f->n_out,
      .samples = pert->samples, .group = group, .fn_hash = hash_function(inner),
      .seed = key.seed, .stream = key.stream, .x_hash = hash_floats(x, f->n_in),
      .v_hash = has_v ? hash_floats(v, op == PT_OP_VJP ? f->n_out : f->n_in) : 0};
  pt_partial *p = s == PT_OK ? partial_new(&id, e.cells, e.counts, &s) : NULL;
  if (p) s = pt_estimator_sum(&e, m0, m1, &p->sums);
  pt_estimator_end(&e);
  if (s != PT_OK) {
    pt_partial_free(p);
    return pt_failed(s);
  }
  *out = p;
  return PT_OK;
}

static size_t map_bytes(uint64_t groups) { return (size_t)((groups + 7) / 8); }

pt_status pt_partial_merge(pt_partial *into, const pt_partial *from) {
  PT_CALL("pt_partial_merge");
  if (!into || !from) return pt_fail(PT_EINVAL, "into or from is NULL");
  if (!same_id(&into->id, &from->id))
    return pt_fail(PT_EINVAL, "the partials are of different calls (function, op, key, x or v)");
  const size_t bytes = map_bytes(into->sums.groups);
  for (size_t b = 0; b < bytes; b++)
    if (into->sums.covered[b] & from->sums.covered[b])
      return pt_fail(PT_EINVAL, "both partials hold sample group %zu",
                     b * 8 + (size_t)__builtin_ctz(into->sums.covered[b] & from->sums.covered[b]));
  pt_sums_merge(&into->sums, &from->sums, into->cells, into->counts);
  return PT_OK;
}

pt_status pt_partial_finish(const pt_partial *p, float *out) {
  PT_CALL("pt_partial_finish");
  if (!p || !out) return pt_fail(PT_EINVAL, "p or out is NULL");
  const uint64_t groups = p->sums.groups;
  for (uint64_t g = 0; g < groups; g++)
    if (!(p->sums.covered[g / 8] >> (g % 8) & 1))
      return pt_fail(PT_EINVAL, "sample group %" PRIu64 " of %" PRIu64 " is missing", g, groups);
  const pt_outputs o = op_outputs_at((pt_op)p->id.op, out);
  pt_perturbation pert;
  id_perturbation(&p->id, &pert);
  pt_estimate_write(&p->sums, op_want((pt_op)p->id.op), (size_t)p->id.n_in, (size_t)p->id.n_out,
                    &pert, (int)p->id.counted, &o);
  return PT_OK;
}

/* ---- bytes ------------------------------------------------------------------------------------ */

static void put(unsigned char **at, uint64_t v, int bytes) {
  for (int b = 0; b < bytes; b++) (*at)[b] = (unsigned char)(v >> (8 * b));
  *at += bytes;
}

static uint64_t get(const unsigned char **at, int bytes) {
  uint64_t v = 0;
  for (int b = 0; b < bytes; b++) v |= (uint64_t)(*at)[b] << (8 * b);
  *at += bytes;
  return v;
}

static uint64_t checksum(const unsigned char *p, size_t n) {
  uint64_t h = FNV_START;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* The byte size of a partial of these sizes; 0 if it does not fit in a size_t. */
static size_t bytes_for(size_t cells, size_t counts, uint64_t groups) {
  const uint64_t map = (groups + 7) / 8;
  size_t total = HEADER_BYTES + 8, part;
  if (map > SIZE_MAX - 7 || __builtin_add_overflow(total, (size_t)(map + 7) / 8 * 8, &total) ||
      __builtin_mul_overflow(cells, (size_t)32, &part) ||
      __builtin_add_overflow(total, part, &total) ||
      __builtin_mul_overflow(counts, (size_t)8, &part) || __builtin_add_overflow(total, part, &total))
    return 0;
  return total;
}

size_t pt_partial_size(const pt_partial *p) {
  return p ? bytes_for(p->cells, p->counts, p->sums.groups) : 0;
}

pt_status pt_partial_save(const pt_partial *p, void *buf, size_t size) {
  PT_CALL("pt_partial_save");
  if (!p || !buf) return pt_fail(PT_EINVAL, "p or buf is NULL");
  const size_t total = pt_partial_size(p);
  if (size < total)
    return pt_fail(PT_EINVAL, "size is %zu, less than the %zu bytes needed", size, total);
  unsigned char *at = buf;
  memcpy(at, magic, sizeof magic);
  at += sizeof magic;
  uint32_t sigma_bits;
  memcpy(&sigma_bits, &p->id.sigma, sizeof sigma_bits);
  const partial_id *id = &p->id;
  const uint32_t small[] = {PT_PARTIAL_VERSION, id->op, id->noise, id->options, id->counted,
                            sigma_bits};
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) put(&at, small[i], 4);
  const uint64_t large[] = {id->n_in, id->n_out, id->samples, id->group, id->fn_hash, id->seed,
                            id->stream, id->x_hash, id->v_hash, p->cells, p->counts,
                            p->sums.groups};
  for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) put(&at, large[i], 8);
  const size_t map = map_bytes(p->sums.groups), padded = (map + 7) / 8 * 8;
  memcpy(at, p->sums.covered, map);
  memset(at + map, 0, padded - map);
  at += padded;
  for (size_t c = 0; c < p->cells; c++) {
    const pt_xsum *x = &p->sums.cell[c];
    put(&at, (uint32_t)x->top, 4);
    put(&at, x->flags, 4);
    for (int j = 0; j < PT_XSUM_BINS; j++) put(&at, (uint64_t)x->bin[j], 8);
  }
  for (size_t c = 0; c < p->counts; c++) put(&at, p->sums.count[c], 8);
  put(&at, checksum(buf, total - 8), 8);
  return PT_OK;
}

/* The fields of a header, checked against one another: PT_OK with *total its size. */
static pt_status read_header(const unsigned char *buf, size_t size, partial_id *id,
                             size_t *cells, size_t *counts, uint64_t *groups, size_t *total) {
  pt_perturbation pert;
  if (size < HEADER_BYTES + 8 || memcmp(buf, magic, sizeof magic) != 0)
    return pt_fail(PT_EINVAL, "the buffer does not start with a partial's header");
  const unsigned char *at = buf + sizeof magic;
  const uint32_t version = (uint32_t)get(&at, 4);
  id->op = (uint32_t)get(&at, 4);
  id->noise = (uint32_t)get(&at, 4);
  id->options = (uint32_t)get(&at, 4);
  id->counted = (uint32_t)get(&at, 4);
  const uint32_t sigma_bits = (uint32_t)get(&at, 4);
  memcpy(&id->sigma, &sigma_bits, sizeof id->sigma);
  id->n_in = get(&at, 8);
  id->n_out = get(&at, 8);
  id->samples = get(&at, 8);
  id->group = get(&at, 8);
  id->fn_hash = get(&at, 8);
  id->seed = get(&at, 8);
  id->stream = get(&at, 8);
  id->x_hash = get(&at, 8);
  id->v_hash = get(&at, 8);
  const uint64_t n_cells = get(&at, 8), n_counts = get(&at, 8);
  *groups = get(&at, 8);
  if (version != PT_PARTIAL_VERSION || id->op > PT_OP_HESSIAN || id->noise > PT_NOISE_NORMAL ||
      !id_perturbation(id, &pert) || id->counted > 1 || !isfinite(id->sigma) || id->sigma <= 0.0f ||
      id->n_in == 0 || id->n_out == 0 || id->samples == 0 || id->samples > UINT64_MAX / id->n_in ||
      (id->op == PT_OP_HESSIAN && id->n_out != 1) ||
      id->group != pt_estimate_group(id->samples) || *groups != groups_of(id))
    return version != PT_PARTIAL_VERSION
               ? pt_fail(PT_EINVAL, "the partial is of format version %u, not %u", version,
                         (unsigned)PT_PARTIAL_VERSION)
               : pt_fail(PT_EINVAL, "the partial's header is inconsistent");
  /* the sums an estimator of this op lays out (estimate.c) */
  pt_layout l;
  if (op_outputs(id->op, id->n_in, id->n_out) == 0 ||
      !pt_estimate_layout(op_want((pt_op)id->op), (size_t)id->n_in, (size_t)id->n_out, &pert,
                          (int)id->counted, &l) ||
      n_cells != l.cells || n_counts != l.counts)
    return pt_fail(PT_EINVAL, "the partial's sums do not match its op and options");
  *cells = (size_t)n_cells;
  *counts = (size_t)n_counts;
  *total = bytes_for(*cells, *counts, *groups);
  if (*total == 0 || *total != size)
    return pt_fail(PT_EINVAL, "size is %zu, but the partial's header says %zu bytes", size, *total);
  return PT_OK;
}

pt_status pt_partial_load(const void *buf, size_t size, pt_partial **out) {
  PT_CALL("pt_partial_load");
  if (!buf || !out) return pt_fail(PT_EINVAL, "buf or out is NULL");
  partial_id id;
  size_t cells = 0, counts = 0, total = 0;
  uint64_t groups = 0;
  pt_status s = read_header(buf, size, &id, &cells, &counts, &groups, &total);
  if (s != PT_OK) return s;
  const unsigned char *at = (const unsigned char *)buf + total - 8;
  if (get(&at, 8) != checksum(buf, total - 8))
    return pt_fail(PT_EINVAL, "the partial's checksum does not match: damaged in transit?");
  /* the coverage map's padding and the bits past the last group are zero */
  const size_t map = map_bytes(groups), padded = (map + 7) / 8 * 8;
  at = (const unsigned char *)buf + HEADER_BYTES;
  for (size_t b = map; b < padded; b++)
    if (at[b]) return pt_fail(PT_EINVAL, "the partial's coverage map has bits past its groups");
  if (groups % 8 && at[map - 1] >> (groups % 8))
    return pt_fail(PT_EINVAL, "the partial's coverage map has bits past its groups");

  pt_partial *p = partial_new(&id, cells, counts, &s);
  if (!p) return s;
  memcpy(p->sums.covered, at, map);
  uint64_t covered = 0; /* groups, and so addends of each sum */
  for (size_t b = 0; b < map; b++) covered += (uint64_t)__builtin_popcount(at[b]);
  at += padded;
  for (size_t c = 0; c < cells; c++) {
    pt_xsum *x = &p->sums.cell[c];
    x->top = (int32_t)(uint32_t)get(&at, 4);
    x->flags = (uint32_t)get(&at, 4);
    for (int j = 0; j < PT_XSUM_BINS; j++) x->bin[j] = (int64_t)get(&at, 8);
    if (!pt_xsum_valid(x, covered)) {
      pt_partial_free(p);
      return pt_fail(PT_EINVAL, "sum %zu of the partial is not a valid exact sum", c);
    }
  }
  for (size_t c = 0; c < counts; c++) p->sums.count[c] = get(&at, 8);
  *out = p;
  return PT_OK;
}

pt_status pt_partial_merge_bytes(const void *in, void *inout, size_t size) {
  PT_CALL("pt_partial_merge_bytes");
  pt_partial *a = NULL, *b = NULL;
  pt_status s = pt_partial_load(in, size, &a);
  if (s == PT_OK) s = pt_partial_load(inout, size, &b);
  if (s == PT_OK) s = pt_partial_merge(b, a);
  if (s == PT_OK) s = pt_partial_save(b, inout, size);
  pt_partial_free(a);
  pt_partial_free(b);
  return pt_failed(s);
}

/* SPDX-License-Identifier: MIT */
/* mpi_vjp: one perturbed-argmax VJP shared out over the ranks of an MPI job, and the same bits
   as the one-process pt_fn_vjp.

   mpirun -np N examples/mpi_vjp [--out FILE] [--check]

   The function is the perturbed argmax one-hot of d = 1000 logits over M = 10^6 samples
   (Gumbel noise, sigma 0.5, the baseline), at logits x and cotangent y_bar drawn from a fixed
   key.  Each rank computes the partial estimate of its own samples (pt_fn_partial), saves it
   to bytes, and MPI_Allreduce merges the bytes of every rank with pt_partial_merge_bytes; each
   rank finishes the merged partial to x_bar, as each rank of a training job would to take its
   next step.  Rank 0 then
     --out FILE  writes x_bar to FILE: its d floats, IEEE binary32 little-endian, nothing else;
     --check     computes pt_fn_vjp in this one process with the same key and requires it to be
                 bitwise equal to x_bar (exit 1 otherwise).
   Without either it prints the time and the first entries of x_bar.

   Every rank computes the same x, y_bar and function; only the samples differ.  The library
   never prints: every error is reported here, and a rank that fails aborts the whole job (its
   peers would otherwise wait in MPI_Allreduce forever). */
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <perturb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { D = 1000 };
static const uint64_t SAMPLES = 1000000;
static const float SIGMA = 0.5f;

static int rank_id;

static void check(pt_status s, const char *what) {
  if (s != PT_OK) {
    fprintf(stderr, "mpi_vjp: rank %d: %s: %s\n", rank_id, what, pt_strerror(s));
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
}

/* Does not return, so that no check after it (a division by what it refused) can be reached:
   MPI_Abort ends every rank, but mpi.h does not declare it noreturn, hence the abort. */
_Noreturn static void fail(const char *what) {
  fprintf(stderr, "mpi_vjp: rank %d: %s\n", rank_id, what);
  MPI_Abort(MPI_COMM_WORLD, 1);
  abort();
}

/* The MPI reduction of saved partials: each element of the datatype is one whole partial
   (MPI_Type_contiguous of its size), so MPI never hands this function a piece of one.  The
   size comes from the datatype (a local query; only communication is barred in here). */
static void merge_partials(void *in, void *inout, int *len, MPI_Datatype *type) {
  int size;
  MPI_Type_size(*type, &size);
  for (int i = 0; i < *len; i++)
    check(pt_partial_merge_bytes((const char *)in + (size_t)i * (size_t)size,
                                 (char *)inout + (size_t)i * (size_t)size, (size_t)size),
          "pt_partial_merge_bytes");
}

static void fail_file(const char *path) {
  fprintf(stderr, "mpi_vjp: rank %d: cannot write %s: %s\n", rank_id, path, strerror(errno));
  MPI_Abort(MPI_COMM_WORLD, 1);
}

/* x_bar as d little-endian binary32 floats, whatever this machine's byte order. */
static void write_floats(const char *path, const float *v, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) fail_file(path);
  for (size_t i = 0; i < n; i++) {
    uint32_t w;
    memcpy(&w, &v[i], sizeof w);
    const unsigned char b[4] = {(unsigned char)w, (unsigned char)(w >> 8),
                                (unsigned char)(w >> 16), (unsigned char)(w >> 24)};
    if (fwrite(b, 1, sizeof b, f) != sizeof b) fail_file(path);
  }
  if (fclose(f) != 0) fail_file(path);
}

int main(int argc, char **argv) {
  /* MPI's default error handler, MPI_ERRORS_ARE_FATAL, aborts the job on any MPI error: the
     MPI calls below need no status checks of their own. */
  MPI_Init(&argc, &argv);
  int ranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_id);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  const char *out_path = NULL;
  int want_check = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--check")) want_check = 1;
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
    else {
      /* every rank sees the same arguments, so every rank stops here: no one is left waiting */
      if (rank_id == 0) fprintf(stderr, "usage: %s [--out FILE] [--check]\n", argv[0]);
      MPI_Finalize();
      return 2;
    }
  }

  pt_fn *argmax = NULL, *perturbed = NULL;
  check(pt_fn_argmax_one_hot(D, &argmax), "pt_fn_argmax_one_hot");
  check(pt_make_perturbed_fun(argmax, SAMPLES, SIGMA, PT_NOISE_GUMBEL, 1, &perturbed),
        "pt_make_perturbed_fun");
  pt_fn_free(argmax); /* perturbed keeps what it needs */
  static float x[D], y_bar[D], x_bar[D];
  const pt_key inputs = pt_key_make(20250101), key = pt_key_make(7);
  check(pt_noise_fill(PT_NOISE_NORMAL, pt_key_fold_in(inputs, 0), 0, x, D), "pt_noise_fill x");
  check(pt_noise_fill(PT_NOISE_NORMAL, pt_key_fold_in(inputs, 1), 0, y_bar, D),
        "pt_noise_fill y_bar");

  /* This rank's samples: a contiguous block of whole sample groups, the groups split as evenly
     as integers allow.  Shards must start and end at a multiple of the group (or at M); when
     there are more ranks than groups, some ranks get an empty range, which is a valid partial
     that merges as nothing. */
  const uint64_t group = pt_fn_sample_group(perturbed);
  if (group == 0) fail("pt_fn_sample_group: not a perturbed function");
  const uint64_t groups = SAMPLES / group + (SAMPLES % group != 0);
  const uint64_t g0 = groups * (uint64_t)rank_id / (uint64_t)ranks;
  const uint64_t g1 = groups * ((uint64_t)rank_id + 1) / (uint64_t)ranks;
  const uint64_t m0 = g0 * group < SAMPLES ? g0 * group : SAMPLES;
  const uint64_t m1 = g1 * group < SAMPLES ? g1 * group : SAMPLES;

  const double t0 = MPI_Wtime();
  pt_partial *part = NULL;
  check(pt_fn_partial(perturbed, PT_OP_VJP, key, x, y_bar, m0, m1, &part), "pt_fn_partial");
  const size_t size = pt_partial_size(part);
  /* The size depends on the function, the op and M alone, so every rank's is the same, and it
     must be for the datatype below to match across ranks: check it rather than trust it. */
  unsigned long long local = size, least, most;
  MPI_Allreduce(&local, &least, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&local, &most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  if (least != most) fail("the ranks' partials differ in size");
  if (size > (size_t)INT_MAX) fail("a partial too large for one MPI datatype");
  unsigned char *bytes = malloc(size);
  if (!bytes) fail("out of memory");
  check(pt_partial_save(part, bytes, size), "pt_partial_save");
  pt_partial_free(part);

  /* One element of this datatype is one whole partial.  The merge is exactly associative and
     commutative, so MPI may combine the ranks in any order or tree (commute = 1) and the bits
     cannot depend on it. */
  MPI_Datatype partial_type;
  MPI_Type_contiguous((int)size, MPI_BYTE, &partial_type);
  MPI_Type_commit(&partial_type);
  MPI_Op merge;
  MPI_Op_create(merge_partials, 1, &merge);
  MPI_Allreduce(MPI_IN_PLACE, bytes, 1, partial_type, merge, MPI_COMM_WORLD);
  MPI_Op_free(&merge);
  MPI_Type_free(&partial_type);

  pt_partial *all = NULL;
  check(pt_partial_load(bytes, size, &all), "pt_partial_load");
  check(pt_partial_finish(all, x_bar), "pt_partial_finish");
  pt_partial_free(all);
  free(bytes);
  const double seconds = MPI_Wtime() - t0;

  int status = 0;
  if (rank_id == 0) {
    if (out_path) write_floats(out_path, x_bar, D);
    if (want_check) {
      static float one[D];
      check(pt_fn_vjp(perturbed, key, x, y_bar, one), "pt_fn_vjp");
      if (memcmp(one, x_bar, sizeof one) == 0) {
        printf("mpi_vjp: %d ranks, bitwise equal to pt_fn_vjp\n", ranks);
      } else {
        size_t i = 0;
        while (memcmp(&one[i], &x_bar[i], sizeof one[i]) == 0) i++;
        fprintf(stderr, "mpi_vjp: %d ranks differ from pt_fn_vjp: x_bar[%zu] = %.9g, not %.9g\n",
                ranks, i, (double)x_bar[i], (double)one[i]);
        status = 1;
      }
    }
    if (!out_path && !want_check)
      printf("mpi_vjp: %d ranks, d = %d, M = %llu in %.3f s; x_bar[0..3] = %.6g %.6g %.6g %.6g\n",
             ranks, D, (unsigned long long)SAMPLES, seconds, (double)x_bar[0], (double)x_bar[1],
             (double)x_bar[2], (double)x_bar[3]);
  }
  pt_fn_free(perturbed);
  MPI_Finalize();
  return status;
}

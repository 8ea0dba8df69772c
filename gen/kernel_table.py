# SPDX-License-Identifier: MIT
"""The kernel table: every kernel family, the ISAs it is rendered for, and their parameters.

This file is the single list that feeds the generated sources, the dispatcher's tables
(src/gen/dispatch_tables.inc, src/gen/dispatch_isas.inc), the ISA facts of the library, tests and
benchmarks (src/gen/isas.h), and the build: which ISAs configure builds (m4/pt_isas.m4) and
how automake compiles them (gen/sources.am).  Adding a kernel family is adding an entry to
KERNELS and a template; adding an ISA is adding a row to ISAS, a layer header in src/isa/, its
pt_isa enum entry and the detection of any CPU feature it needs that cpu.c does not yet
detect (docs/adding-an-isa.md).  It imports nothing beyond the standard library, so the build
can list the generated files without Jinja2.
"""

from collections import namedtuple

# One row per ISA; everything else that names ISAs is generated from these rows (gen/generate.py:
# the dispatch tables and name, preference and feature tables, the configure and automake
# fragments, the ISA count and widest vector that tests and shared code use).  The steps to
# add an ISA are in docs/adding-an-isa.md.
#   name: the token in file and function names and in pt_isa (PT_ISA_<NAME>, whose value must be
#     the row's index: the enum is public API, so rows are only ever appended).
#   arch: the $host_cpu values (configure.ac's AC_CANONICAL_HOST) whose builds compile it;
#     () for every host.
#   cflags: what its kernels are compiled with on top of the library's flags; configure tests
#     that the compiler takes them and leaves the ISA out otherwise.
#   features: what the CPU must have for the kernels to run, as the PT_CPU_* bits that
#     src/dispatch/cpu.c detects (lower case, without PT_CPU_).
#   lanes: floats per vector register, the layer's PT_LANES (checked in every rendered file).
#   preference: the default dispatch tries the supported ISAs from the highest preference down;
#     the lowest must run everywhere (no arch, cflags or features): it is the fallback.
#   header: the operation layer (src/isa/README.md), relative to src/.
#   sources: C files of the layer beside its header, compiled with its cflags.
#   sleef: the SLEEF functions the layer calls, each probed by configure where the ISA is built:
#     a name, or (name, arch) for one called on some hosts only.  The generator checks the list
#     against the Sleef_ calls in the header and sources.
Isa = namedtuple("Isa", "name arch cflags features lanes preference header sources sleef")

X86_64 = ("x86_64", "amd64")
AARCH64 = ("aarch64", "arm64")

ISAS = [
    # SLEEF's finz purecfma functions need FMA; on an x86 CPU without it, the cinz purec ones
    # (src/isa/scalar_sleef.c says why).
    Isa("scalar", arch=(), cflags="", features=(), lanes=1, preference=0,
        header="isa/scalar.h", sources=("isa/scalar_sleef.c",),
        sleef=("Sleef_finz_logf1_u35purecfma", "Sleef_finz_sincospif1_u35purecfma",
               "Sleef_finz_expf1_u10purecfma",
               ("Sleef_cinz_logf1_u35purec", X86_64), ("Sleef_cinz_sincospif1_u35purec", X86_64),
               ("Sleef_cinz_expf1_u10purec", X86_64))),
    Isa("avx2", arch=X86_64, cflags="-mavx2 -mfma", features=("fma", "avx2"), lanes=8,
        preference=20, header="isa/avx2.h", sources=(),
        sleef=("Sleef_finz_logf8_u35avx2", "Sleef_finz_sincospif8_u35avx2",
               "Sleef_finz_expf8_u10avx2")),
    Isa("avx512", arch=X86_64, cflags="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma",
        features=("fma", "avx512"), lanes=16, preference=30, header="isa/avx512.h", sources=(),
        sleef=("Sleef_finz_logf16_u35avx512f", "Sleef_finz_sincospif16_u35avx512f",
               "Sleef_finz_expf16_u10avx512f")),
    # AArch64 has Advanced SIMD and FMA architecturally: cpu.c reports them on every AArch64 CPU.
    Isa("neon", arch=AARCH64, cflags="", features=("advsimd",), lanes=4, preference=10,
        header="isa/neon.h", sources=(),
        sleef=("Sleef_finz_logf4_u35advsimd", "Sleef_finz_sincospif4_u35advsimd",
               "Sleef_finz_expf4_u10advsimd")),
]

# The widest vector of any row: what shared code sizes whole-vector padding and rounding by.
MAX_LANES = max(isa.lanes for isa in ISAS)

# op: the kernel family, also its slot in the dispatch table.  template: src/kernels/<file>.
# ret, params: its C signature.  variants: ISA name -> template parameters; every ISA of
# ISAS must appear, so that no dispatch table has a hole.
Kernel = namedtuple("Kernel", "op template ret params variants")


def per_isa(default, **tuned):
    """Template parameters for every row: `default`, updated for the ISAs `tuned` names.  A new
    row renders with the defaults until it is measured and given its own entry."""
    unknown = sorted(set(tuned) - {isa.name for isa in ISAS})
    if unknown:
        raise ValueError(f"gen/kernel_table.py: tuning for ISAs that have no row: {unknown}")
    return {isa.name: dict(default, **tuned.get(isa.name, {})) for isa in ISAS}


def sort_variants(output):
    """The row-sorting template's parameters; `output` names the kernel's result argument.

    block_vectors: 64-bit key vectors sorted at once in registers (the network's size; 16
    measured faster than 8 on AVX2 too, its spills to L1 costing less than a merge pass).
    Which path a row takes is ROW_THRESHOLDS' choice, at run time."""
    return per_isa({"block_vectors": 16, "output": output})


# The row kernels' thresholds of speed, never of the bits (pt_row_thresholds in
# src/kernels/rows.h, one per ISA in its pt_kernel_table; every call passes its table's on).
# `perturb-bench --thresholds` times both paths on either side of each on the machine it runs
# on and prints the crossover it finds beside these values, which are set from its runs.
#   argmax_columns_max: argmax_rows of rows up to this long PT_LANES rows at a time (0: never);
#   count_max: argsort_rows and rank_rows of rows up to this long by counting comparisons;
#   count_columns_max: of those, rows up to this long PT_LANES rows at a time (0: never);
#   radix_min: the shortest row radix sorted rather than merged.
# Scalar and AVX2 were set on a Zen 3 core (2026-12-03, three runs; scalar's "columns" of one
# lane are plain loops, faster than its vector-shaped paths at every length timed), AVX-512 on
# a Zen 4 core (2026-12-04, three runs; where a run's range fell between two lengths timed, the
# middle of it); NEON, never measured, takes the defaults, AVX2's.  argmax_columns_max of AVX2
# and AVX-512 was measured again on a Zen 4 core (2026-12-07) once the columns came from
# vf_load_columns rather than gathers: 6 and 12 (rows of 5 on AVX-512 0.34 ns an element
# against 0.40 with gathers).
ROW_THRESHOLDS = per_isa({"argmax_columns_max": 6, "count_max": 80, "count_columns_max": 5,
                          "radix_min": 1024},
                         scalar={"argmax_columns_max": 1 << 20, "count_max": 3,
                                 "count_columns_max": 16, "radix_min": 257},
                         avx512={"argmax_columns_max": 12, "count_max": 56, "count_columns_max": 16,
                                 "radix_min": 2048})


KERNELS = [
    Kernel(
        op="argmax_rows",
        template="argmax_rows.c.j2",
        ret="void",
        params="const float *x, size_t rows, size_t d, size_t ld, int32_t *idx, "
               "const pt_row_thresholds *t",
        # unroll: independent running-maximum accumulators per row (hides compare latency).
        variants=per_isa({"unroll": 4}),
    ),
    Kernel(
        op="argsort_rows",
        template="sort_rows.c.j2",
        ret="void",
        params="const float *x, size_t rows, size_t d, size_t ld, int32_t *perm, size_t ld_out, "
               "int64_t *work, const pt_row_thresholds *t",
        variants=sort_variants("perm"),
    ),
    Kernel(
        op="rank_rows",
        template="sort_rows.c.j2",
        ret="void",
        params="const float *x, size_t rows, size_t d, size_t ld, int32_t *rank, size_t ld_out, "
               "int64_t *work, const pt_row_thresholds *t",
        variants=sort_variants("rank"),
    ),
    Kernel(
        op="weighted_sum_rows",
        template="weighted_sum_rows.c.j2",
        ret="void",
        params="const float *x, size_t rows, size_t d, size_t ld, const float *w, float *out",
        variants=per_isa({}),
    ),
]

# pt_noise_fill's kernels, one per kind of noise (src/kernels/noise.c.j2 on noise_lib.j2).
# unroll: pieces of PT_LANES counters whose Philox rounds run interleaved, to hide the latency
# of the 32x32->64 multiplies (4 pieces are 4 chunks on AVX-512, 2 on AVX2, 1 on NEON).
# Scalar takes 2: four would need 16 live words, as many as x86-64 has registers.
UNROLL = {"scalar": 2}


def noise_kernel(kind):
    return Kernel(
        op=f"noise_{kind}",
        template="noise.c.j2",
        ret="void",
        params="pt_key key, uint64_t offset, float *out, size_t n",
        variants={isa.name: {"kind": kind, "unroll": UNROLL.get(isa.name, 4), "pairs": False}
                  for isa in ISAS},
    )


KERNELS += [noise_kernel(kind) for kind in ("uniform", "gumbel", "normal")]


# The antithetic pairs of the generic perturbed path (perturb(7)): rows 2p and 2p + 1 of n
# inputs from the words of pair pair0 + p (noise_lib.j2's pairs), the same template and
# stream as pt_noise_fill's kernels.
def noise_pairs_kernel(kind):
    return Kernel(
        op=f"noise_pairs_{kind}",
        template="noise.c.j2",
        ret="void",
        params="pt_key key, uint64_t pair0, size_t pairs, size_t n, float *out",
        variants={isa.name: {"kind": kind, "unroll": UNROLL.get(isa.name, 4), "pairs": True}
                  for isa in ISAS},
    )


KERNELS += [noise_pairs_kernel(kind) for kind in ("gumbel", "normal")]

# The perturbed functions' kernels (src/fn/fn_perturbed.c, src/fn/fn_fused*.c).  perturb_tile is the
# generic estimator's per-tile arithmetic (perturb_tile_multiplicative its multiplicative noise's:
# x times exp(sigma z - sigma^2/2)); fused_argmax_<kind> runs one tile of a perturbed
# argmax one-hot (segments) with its noise generated inside (src/kernels/noise_lib.j2).
KERNELS += [
    Kernel(
        op="perturb_tile",
        template="perturb_tile.c.j2",
        ret="void",
        params="const float *z, size_t rows, size_t n, const float *x, float sigma, float *xt, "
               "float *e",
        variants={isa.name: {"multiplicative": False} for isa in ISAS},
    ),
    Kernel(
        op="perturb_tile_multiplicative",
        template="perturb_tile.c.j2",
        ret="void",
        params="const float *z, size_t rows, size_t n, const float *x, float sigma, float *xt, "
               "float *e",
        variants={isa.name: {"multiplicative": True} for isa in ISAS},
    ),
]


def fused_argmax_kernel(kind):
    return Kernel(
        op=f"fused_argmax_{kind}",
        template="fused_argmax.c.j2",
        ret="void",
        params="const pt_fused_argmax_job *job, uint64_t m0, size_t rows",
        # unroll: interleaved Philox pieces, as for pt_noise_fill's kernels
        variants={isa.name: {"kind": kind, "unroll": 4} for isa in ISAS},
    )


KERNELS += [fused_argmax_kernel(kind) for kind in ("gumbel", "normal")]

# The fused argmax's thresholds of speed, never of the bits (pt_fused_thresholds in
# src/kernels/fused.h; the estimator puts them in every job).  `perturb-bench --thresholds`
# times both paths on either side of each on the machine it runs on and prints the crossover
# it finds beside these values, which are set from those runs (scalar and AVX2 on a Zen 3 core
# whose timings swing by 1.5x between runs; three runs agreed on each value but scalar's
# short_max, which they put at 8, 12 and 14, the paths within 5% of each other), AVX-512 on a
# Zen 4 core (2026-12-04, three runs agreeing but for one short_max of 14 to 15).  NEON, not
# measured since the candidates' path came, takes the defaults.
#   short_max: samples of at most this many inputs (up to PT_FUSED_SHORT) are settled PT_LANES
#     at a time, one per lane, instead of along their inputs;
#   bounded_min: a Gumbel job wanting the value alone whose segments average at least this many
#     inputs scans the uniforms and takes the logarithm of its candidates only;
#   bounded_short_max: such a job whose samples have at most this many inputs (up to
#     PT_FUSED_BOUNDED_SHORT) settles them PT_LANES at a time, one per lane (0: never).  On
#     AVX2 one per lane won at every d timed, 2 to 16 (1.6x at 16, 2.4x at 2), and brought
#     bounded_min from 12 down to 8 (three runs: 5 to 8); on scalar, one lane, the scan along
#     the inputs won at every d.  On AVX-512 one per lane won at every d too, 2.0x at 8 and
#     1.6x at 16 once vf_load_columns transposed in registers (1.5x and 1.1x with a gather per
#     column).  Up to 16 inputs only at first, rows of 17 to 31 went along their inputs at 1.6x
#     the time an input of rows of 16 or 32 (Zen 5, 2026-12-08); one per lane up to 32 won on
#     AVX2 at every d timed to 32 and on AVX-512 to 24, within 5% at 28 and 32.
FUSED_THRESHOLDS = per_isa({"short_max": 16, "bounded_min": 32, "bounded_short_max": 0},
                           scalar={"short_max": 12, "bounded_min": 8, "bounded_short_max": 0},
                           avx2={"short_max": 9, "bounded_min": 8, "bounded_short_max": 32},
                           avx512={"short_max": 16, "bounded_min": 13, "bounded_short_max": 32})

# The limits: the unavoidable work of the noise and fused kernels, alone, which perturb-bench
# --limits times beside them (src/kernels/limits.c.j2): Philox words (`unroll` as the noise's),
# logarithms, Box-Muller pairs.  Nothing in the library calls them.
def limit_kernel(kind):
    return Kernel(
        op=f"limit_{kind}",
        template="limits.c.j2",
        ret="float",
        params="pt_key key, const float *in, size_t n",
        variants={isa.name: {"kind": kind, **({"unroll": UNROLL.get(isa.name, 4)}
                                              if kind == "philox" else {})}
                  for isa in ISAS},
    )


KERNELS += [limit_kernel(kind) for kind in ("philox", "log", "box_muller")]

# Macro libraries the kernel templates import: inputs of the generator like the templates.
LIBRARIES = ["noise_lib.j2", "fused_lib.j2"]


def function_name(kernel, isa):
    """pt_<op>_f32__<isa>[_u<unroll>], the naming rule of docs/design.md."""
    unroll = kernel.variants[isa.name].get("unroll")
    suffix = f"_u{unroll}" if unroll else ""
    return f"pt_{kernel.op}_f32__{isa.name}{suffix}"


def source_name(kernel, isa):
    """Path of the generated source, relative to the build directory."""
    return f"src/gen/{kernel.op}__{isa.name}.c"


# fused_rank_<kind>: one tile of a perturbed ranking, its keys ranked by the same ISA's
# rank_rows kernel (rank_fn, named here so the table stays the one list of functions).
def fused_rank_kernel(kind):
    rank_rows = next(k for k in KERNELS if k.op == "rank_rows")
    return Kernel(
        op=f"fused_rank_{kind}",
        template="fused_rank.c.j2",
        ret="void",
        params="const pt_fused_rank_job *job, uint64_t m0, size_t rows",
        variants={isa.name: {"kind": kind, "unroll": 4, "rank_fn": function_name(rank_rows, isa)}
                  for isa in ISAS},
    )


KERNELS += [fused_rank_kernel(kind) for kind in ("gumbel", "normal")]


# fused_topk_<kind>: one tile of a perturbed top-k one-hot (segments), its survivors ranked by the
# same ISA's rank_rows kernel (rank_fn, as for fused_rank).
def fused_topk_kernel(kind):
    rank_rows = next(k for k in KERNELS if k.op == "rank_rows")
    return Kernel(
        op=f"fused_topk_{kind}",
        template="fused_topk.c.j2",
        ret="void",
        params="const pt_fused_topk_job *job, uint64_t m0, size_t rows",
        variants={isa.name: {"kind": kind, "unroll": 4, "rank_fn": function_name(rank_rows, isa)}
                  for isa in ISAS},
    )


KERNELS += [fused_topk_kernel(kind) for kind in ("gumbel", "normal")]


# ---- Test-only kernels ------------------------------------------------------------------------
# Rendered by gen/generate.py into tests/gen/ and compiled, per ISA with its flags, into the
# test-only libraries of Makefile.am (libpt_tests.la), which only tests/parity and tests/unit
# link: nothing here reaches libperturb.  tests/isa_tests.c runs them on every ISA the machine
# has.

# The conformance test of an operation layer (tests/isa_ops.c.j2), rendered once per ISA.
OPS_TEST_TEMPLATE = "isa_ops.c.j2"

# Parameters that tie a kernel to its own ISA's other kernels instead of tuning it (fused_rank's
# and fused_topk's rank_fn names the ISA's rank_rows): a test variant keeps the ISA's own value.
ISA_BOUND_PARAMS = {"rank_fn"}

# Row thresholds that no ISA selects, forced onto every ISA's own so that every path of the
# row kernels runs on every machine (the parity tests run the ISA's real kernels with them).
FORCED_ROW_THRESHOLDS = [
    # networks and merges from rows of two on, and the radix sort just above its floor
    {"count_max": 1, "radix_min": 257},
    # every path that counts, as far as it may (PT_ROWS_*_CAP)
    {"argmax_columns_max": 1 << 20, "count_max": 128, "count_columns_max": 16},
]

# A kernel rendered for `isa` with `params` in place of its own; label names what differs.
TestVariant = namedtuple("TestVariant", "kernel isa params label")


def differences(params, own):
    """A variant's label: the parameters that differ from the ISA's own, as name and value."""
    return "_".join(f"{k}{params[k]}" for k in sorted(params) if params[k] != own.get(k))


def test_variants():
    """Every tuning of a kernel that the table selects for some ISA, rendered for each other ISA
    (a path that one ISA's tuning enables then runs on every machine that has any of them);
    each distinct set of parameters once per ISA, and none that equals the ISA's own (its real
    kernel is tested)."""
    variants = []
    for kernel in KERNELS:
        for isa in ISAS:
            own = kernel.variants[isa.name]
            seen = [own]
            for other in ISAS:
                tuning = kernel.variants[other.name]
                params = {k: own[k] if k in ISA_BOUND_PARAMS else v for k, v in tuning.items()}
                if params in seen:
                    continue
                seen.append(params)
                variants.append(TestVariant(kernel, isa, params, differences(params, own)))
    return variants


def row_threshold_variants(isa):
    """The row thresholds the parity tests run `isa`'s real row kernels with: every other ISA's
    and the forced ones, each as (label, thresholds), distinct and none equal to its own."""
    own = ROW_THRESHOLDS[isa.name]
    seen, variants = [own], []
    for t in [ROW_THRESHOLDS[other.name] for other in ISAS] + [dict(own, **f) for f in
                                                               FORCED_ROW_THRESHOLDS]:
        if t not in seen:
            seen.append(t)
            variants.append((differences(t, own), t))
    return variants


def test_function_name(variant):
    """pt_test_<op>_f32__<isa>__<label>: never a name of the kernel table."""
    return f"pt_test_{variant.kernel.op}_f32__{variant.isa.name}__{variant.label}"


def test_source_name(variant):
    return f"tests/gen/{variant.kernel.op}__{variant.isa.name}__{variant.label}.c"


def ops_test_function_name(isa):
    return f"pt_isa_ops_check__{isa.name}"


def ops_test_source_name(isa):
    return f"tests/gen/isa_ops__{isa.name}.c"


# The C table of every ISA's test-only functions (gen/generate.py, render_test_table).
TEST_TABLE_SOURCE = "tests/gen/isa_tests_table.c"

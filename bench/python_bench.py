#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python package perturb against the C library and the numpy and PyTorch peers, in one run.

  python_bench.py PERTURBED_BENCH [--threads N] [--repeats N]

For each case it runs PERTURBED_BENCH (bench/perturbed-bench) on the ISA perturb dispatches
to, times the same call through the package (perturb.make_perturbed_fun, "perturb") and
through its C layer alone (perturb.Fn, "Fn"), and times the numpy and PyTorch peers of
perturbed_peer.py on the same sizes, all at --threads N (default: every CPU; torch-1 and
torch-all are always both timed).  Printed per case, in microseconds per call: C, perturb,
perturb's overhead over C (the difference and the ratio), Fn, and the fastest peer over
perturb.  Timed as perturbed-bench times (peer_timing.py): batches of calls lasting at least
20 ms, the median of --repeats.  Run it from the build tree as `make bench-python`, or with the
installed package on PYTHONPATH.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perturb  # noqa: E402
from peer_timing import Peers, cpus, median_ns  # noqa: E402
from perturbed_peer import BATCH, PEERS, SIGMA, TOP_K, batch_inputs, inputs  # noqa: E402

# (perturbed-bench's case, d, M): the sizes perturbed-bench runs them at
CASES = [("argmax_eval", 5, 100), ("argmax_vjp", 5, 100), ("argmax_eval", 1000, 1000),
         ("argmax_vjp", 1000, 1000), ("top_k_eval", 1000, 1000), ("top_k_vjp", 1000, 1000),
         ("ranking_eval", 100, 1000), ("ranking_vjp", 100, 1000),
         ("argmax_eval_batch", 100, 1000), ("argmax_vjp_batch", 100, 1000)]

BUILTINS = {"argmax": perturb.argmax_one_hot, "top_k": perturb.top_k(TOP_K),
            "ranking": perturb.ranking}


def python_calls(case, d, m):
    """The case's call through the package and through its Fn, on the peers' inputs."""
    name = case.split("_")[0] if not case.startswith("top_k") else "top_k"
    pert = perturb.make_perturbed_fun(BUILTINS[name], num_samples=m, sigma=SIGMA,
                                      noise=perturb.Gumbel(), use_baseline=True)
    if case.endswith("_batch"):
        _, x, y_bar = batch_inputs(d)
        assert x.shape[0] == BATCH
    else:
        _, x, y_bar = inputs(d)
    key = perturb.PRNGKey(42)
    fn = pert._plan(x, 0).fn  # the C layer's perturbed function for this shape
    if "_vjp" in case:
        return (lambda: pert.vjp(key, x, y_bar)), (lambda: fn.vjp(key, x, y_bar))
    return (lambda: pert(key, x)), (lambda: fn.eval(key, x))


def c_time(bench, case, d, m, threads, repeats):
    out = subprocess.run([bench, "--case", case, "--isa", perturb.isa_active(), "--json",
                          "--threads", str(threads), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        r = json.loads(line)
        if r["d"] == d and r["samples"] == m:
            return r["ns_per_call"]
    raise SystemExit(f"python_bench: {bench} has no {case} at d={d} M={m}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", help="bench/perturbed-bench")
    parser.add_argument("--threads", type=int, default=cpus())
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    perturb.set_num_threads(args.threads)
    peers = Peers()
    print(f"perturb {perturb.__version__} on {perturb.isa_active()}, {args.threads} threads; "
          f"{peers.banner()}")
    print(f"{'case':18} {'d':>5} {'M':>6} {'C us':>9} {'perturb':>9} {'overhead':>9} "
          f"{'ratio':>6} {'Fn us':>9} " + " ".join(f"{n:>9}" for n in peers.names) +
          "  fastest peer / perturb")
    for case, d, m in CASES:
        c = c_time(args.bench, case, d, m, args.threads, args.repeats)
        py_call, fn_call = python_calls(case, d, m)
        py, fn = median_ns(py_call, args.repeats), median_ns(fn_call, args.repeats)
        _, setup, torch_setup = PEERS[case]
        peer = peers.times(setup(d, m), torch_setup(peers.torch, d, m) if peers.torch else None)
        perturb.set_num_threads(args.threads)  # the torch peers set their own
        print(f"{case:18} {d:5} {m:6} {c / 1e3:9.2f} {py / 1e3:9.2f} {(py - c) / 1e3:9.2f} "
              f"{py / c:6.2f} {fn / 1e3:9.2f} " + " ".join(f"{t / 1e3:9.1f}" for t in peer) +
              f"  {min(peer) / py:.1f}x")


if __name__ == "__main__":
    main()

"""What the numpy peers (numpy_peer.py, perturbed_peer.py) share: the timer, the reading of
the benchmark's JSON lines and the per-ISA speedup cells of their tables.

The timer is bench/timing.h's, so that numpy and libperturb are timed alike: the batch of
calls doubles until it lasts 20 ms (the clock's resolution and cost vanish against it), then
the median of `repeats` batches (a batch another process interrupted is an outlier on one
side only).
"""

import json
import time

import numpy as np


def median_ns(call, repeats=11):
    iters = 1
    while True:
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            call()
        if time.perf_counter_ns() - t0 >= 20_000_000:
            break
        iters *= 2
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(iters):
            call()
        samples.append((time.perf_counter_ns() - t0) / iters)
    return sorted(samples)[repeats // 2]


def load_groups(path, fields):
    """The JSON lines of `path`, grouped by the values of `fields` (in the file's order): one
    group per benchmarked size, holding its runs on each ISA."""
    groups = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            groups.setdefault(tuple(r[f] for f in fields), []).append(r)
    return groups


def print_banner():
    print(f"numpy {np.__version__}; speedup = numpy time / libperturb time")


def speedup_cells(runs, field, numpy_time, digits, scale=1.0):
    """'isa time (speedup)' for each run: its `field` divided by `scale` and shown with `digits`
    decimals, and numpy_time (in the unit of `field`) over it."""
    return "  ".join(f"{r['isa']} {r[field] / scale:.{digits}f} ({numpy_time / r[field]:.1f}x)"
                     for r in runs)

# SPDX-License-Identifier: MIT
"""What the peers (numpy_peer.py, perturbed_peer.py) share: the timer, the reading of the
benchmark's JSON lines, the peers themselves (numpy, and PyTorch on one thread and on every
CPU, when it can be imported), the Gumbel noise as their users write it, the one table both
print and the counting of --check's verdicts.

The timer is bench/timing.h's, so that the peers and libperturb are timed alike: the batch of
calls doubles until it lasts 20 ms (the clock's resolution and cost vanish against it), then
the median of `repeats` batches (a batch another process interrupted is an outlier on one
side only).
"""

import json
import os
import time

import numpy as np

# A float32 uniform of exactly 0 (probability 2^-24 per draw, in numpy and in torch alike)
# makes the users' Gumbel formula -inf: a value their code meets, not an error to report on
# every call.
np.seterr(divide="ignore")


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


def gumbel_numpy(rng, shape):
    """Gumbel noise as a numpy user writes it in float32 (numpy's own gumbel is float64 only)."""
    return -np.log(-np.log(rng.random(shape, dtype=np.float32)))


def gumbel_torch(torch, shape):
    """The same in PyTorch, from its default generator."""
    return -torch.log(-torch.log(torch.rand(shape)))


def cpus():
    """The CPUs this process may run on: its affinity mask, as libperturb's default thread
    count (os.cpu_count() counts CPUs the process may be barred from)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Peers:
    """numpy, then PyTorch at torch.set_num_threads(1) ("torch-1") and at one thread per CPU
    ("torch-all"), timed on the same case in the same run.  PyTorch is optional: without it
    the peers are numpy alone."""

    def __init__(self):
        try:
            import torch
        except (ImportError, OSError) as e:  # OSError: a torch whose native libraries fail
            print(f"PyTorch cannot be imported ({e}): numpy peers only")
            torch = None
        self.torch = torch
        self.all_threads = cpus()
        self.torch_threads = (1, self.all_threads) if torch else ()
        self.names = ["numpy"] + (["torch-1", "torch-all"] if torch else [])

    def banner(self):
        text = f"numpy {np.__version__}"
        if self.torch:
            text += (f"; torch {self.torch.__version__} (torch-1: 1 thread, torch-all: "
                     f"{self.all_threads} threads)")
        return text

    def times(self, numpy_call, torch_call):
        """ns per call of each peer, in the order of self.names; torch_call is None without
        PyTorch."""
        result = [median_ns(numpy_call)]
        for n in self.torch_threads:
            self.torch.set_num_threads(n)
            result.append(median_ns(torch_call))
        return result

    def outputs(self, numpy_setup, torch_setup):
        """The first result of each peer as a float64 numpy array, in the order of self.names.
        Each peer is set up afresh (numpy_setup() and torch_setup() return the call), so that
        every one draws the first numbers of its seeded generator."""
        result = [np.asarray(numpy_setup()(), dtype=np.float64)]
        for n in self.torch_threads:
            self.torch.set_num_threads(n)
            result.append(torch_setup()().numpy().astype(np.float64))
        return result


def libperturb_threads(groups):
    """The distinct "threads" fields of the benchmark's runs (a benchmark given --threads N
    records it), None for a run without one."""
    return sorted({r.get("threads") for runs in groups.values() for r in runs},
                  key=lambda t: -1 if t is None else t)


class Table:
    """The table of both peer scripts: a case's key columns, each peer's time, which peer was
    fastest, then libperturb's time on each ISA with the fastest peer's time over it.

    keys: (header, width) of each key column, the first left-aligned.  field: the JSON field
    of libperturb's time; the peers' times are given in its unit, and both are shown divided
    by `scale` with `digits` decimals, under the name `unit`."""

    def __init__(self, peers, groups, keys, field, unit, scale=1.0, digits=1):
        self.peers, self.keys, self.field = peers, keys, field
        self.scale, self.digits = scale, digits
        threads = libperturb_threads(groups)
        shown = ", ".join("not recorded" if t is None else str(t) for t in threads)
        # Runs at several thread counts of one ISA would share a label: name their count.
        self.label = ((lambda r: f"{r['isa']}@{r.get('threads')}t") if len(threads) > 1
                      else (lambda r: r["isa"]))
        print(f"{peers.banner()}; libperturb threads: {shown}")
        print(f"{unit}; speedup = the fastest peer's time / libperturb's time")
        head = self._keys([h for h, _ in keys])
        head += "".join(f" {name:>10}" for name in peers.names)
        print(f"{head} {'fastest':<9}  libperturb per ISA (speedup)")

    def _keys(self, values):
        (_, w0), rest = self.keys[0], self.keys[1:]
        return f"{values[0]:<{w0}}" + "".join(f" {v:>{w}}" for v, (_, w) in zip(values[1:], rest))

    def row(self, key_values, peer_times, runs):
        fastest = min(range(len(peer_times)), key=peer_times.__getitem__)
        best = peer_times[fastest]
        line = self._keys(key_values)
        line += "".join(f" {t / self.scale:>10.{self.digits}f}" for t in peer_times)
        cells = "  ".join(f"{self.label(r)} {r[self.field] / self.scale:.{self.digits}f} "
                          f"({best / r[self.field]:.1f}x)" for r in runs)
        print(f"{line} {self.peers.names[fastest]:<9}  {cells}")

    def note(self, key_values, text):
        print(f"{self._keys(key_values)} {text}")


def print_legend(peers, what):
    """What the peers compute: what[case] is the code of both, or (numpy's, torch's)."""
    print("peers:")
    for case, code in what.items():
        if isinstance(code, str):
            print(f"  {case}: {code}")
        else:
            print(f"  {case}: numpy {code[0]}" + (f"; torch {code[1]}" if peers.torch else ""))


class Verdicts:
    """--check's verdicts, one line each, ending with "N passed, N failed"."""

    def __init__(self):
        self.passed = self.failed = 0

    def expect(self, ok, text):
        print(f"{'ok  ' if ok else 'FAIL'} {text}")
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return self.failed == 0

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Times two builds of libperturb against each other: `before` and `after` (build directories
where make has built bench/), each benchmark run alternately in each, so that the machine's
drift falls on both alike.  Prints every case's median ns per call in each build, their ratio,
and the geometric mean of the ratios.  Standard library only.

  bench/compare_builds.py BEFORE_DIR AFTER_DIR [ROUNDS]"""
import collections
import json
import math
import statistics
import subprocess
import sys

# program, arguments, the JSON fields that name a case
BENCHES = [
    ("perturb-bench", ["--threads", "1", "--json", "--repeats", "5"], ("op", "isa", "rows", "d")),
    ("perturbed-bench", ["--threads", "1", "--json", "--repeats", "5"],
     ("case", "isa", "d", "samples", "batch")),
]


def run(build, program, args, keys, into):
    out = subprocess.run([f"{build}/bench/{program}"] + args, capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            j = json.loads(line)
            into[(program,) + tuple(j.get(k) for k in keys)].append(j["ns_per_call"])


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    builds = sys.argv[1:3]
    rounds = int(sys.argv[3]) if len(sys.argv) == 4 else 3
    times = [collections.defaultdict(list), collections.defaultdict(list)]
    for r in range(rounds):
        for program, args, keys in BENCHES:
            order = (0, 1) if r % 2 == 0 else (1, 0)  # alternate which build goes first
            for b in order:
                run(builds[b], program, args, keys, times[b])
    print(f"{'case':64} {'before ns':>13} {'after ns':>13} {'after/before':>12}")
    ratios = []
    for case in sorted(set(times[0]) & set(times[1]), key=str):
        before, after = (statistics.median(t[case]) for t in times)
        ratios.append(after / before)
        print(f"{' '.join(str(x) for x in case):64} {before:13.1f} {after:13.1f} {after / before:12.3f}")
    if ratios:
        mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"{len(ratios)} cases, {rounds} rounds: geometric mean after/before {mean:.3f}, "
              f"range {min(ratios):.3f} to {max(ratios):.3f}")


if __name__ == "__main__":
    main()

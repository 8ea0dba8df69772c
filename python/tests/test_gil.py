# SPDX-License-Identifier: MIT
"""The GIL is released while libperturb computes: a Python thread keeps running during a long
perturbed call.  A thread holding the GIL in C lets no other Python code run at all, so the
test asks for ticks of a ticking thread inside the middle half of the call: none can happen
there unless the call released the GIL, whatever the machine's speed or load (the edges are
left out because the caller itself runs Python between its clock reading and the C call)."""

import threading
import time

import numpy as np
import pytest

import perturb

D = 1000
LONG = 0.5  # seconds: a call at least this long has 0.25 s of middle, some 200 ticks


def perturbed_call(method, samples):
    x = np.linspace(-1.0, 1.0, D, dtype=np.float32)
    key = perturb.PRNGKey(5)
    pert = perturb.make_perturbed_fun(perturb.argmax_one_hot, num_samples=samples, sigma=0.5)
    if method == "vjp":
        return lambda: pert.vjp(key, x, x)
    return lambda: pert(key, x)


@pytest.mark.parametrize("method", ["eval", "vjp"])
def test_python_threads_run_during_a_call(method):
    ticks, stop = [], threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)  # the GIL is free between ticks; a list of 1000 a second
    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        samples = 10_000
        while True:  # more samples until the call lasts LONG, whatever this machine's speed
            call = perturbed_call(method, samples)
            start = time.perf_counter()
            call()
            end = time.perf_counter()
            if end - start >= LONG or samples >= 10 ** 8:
                break
            samples = int(samples * min(2 * LONG / max(end - start, 1e-3), 1000))
    finally:
        stop.set()
        ticker.join()
    quarter = (end - start) / 4
    inside = [t for t in ticks if start + quarter < t < end - quarter]
    assert len(inside) >= 20, (f"{len(inside)} ticks in the middle {2 * quarter:.2f} s of a "
                               f"call of {samples} samples: the GIL was held")

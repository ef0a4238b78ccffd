"""Sampler engine: what one sample costs, and the rate the default budget leaves, in-process.

Threads under captures of the engine (as requests are in request mode), at the bottom of a stack
of DEPTH frames, burning CPU (busy) or sleeping (idle); the engine at 100 Hz, first without a
budget (``MAX_OVERHEAD=off``: the cost of a sample at the interval), then with the default (1 %).
From the engine's own counters: the sampler thread's CPU per sample (its sleep and wake-up,
taking the GIL, the sample), the share of one CPU it used, and the rate achieved.

``.venv/bin/python bench/sample_cost.py``; ``--seconds 1`` for a quick look.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from gunicorn_pyinstrument.settings import SAMPLER_INTERVAL, load
from gunicorn_pyinstrument.worker.engines.sampler import SamplerEngine

#: (request threads, stack depth, busy)
CASES = [(1, 30, False), (1, 30, True), (4, 30, True), (1, 100, True), (4, 100, True)]
DEFAULT_BUDGET = load({}).max_overhead


def at_depth(depth: int, work: Callable[[], None]) -> None:
    if depth <= 1:
        work()
    else:
        at_depth(depth - 1, work)


def run(
    engine: SamplerEngine, threads: int, depth: int, busy: bool, seconds: float
) -> tuple[float, float, float]:
    """(CPU per sample in us, share of one CPU, samples per second) over ``seconds``."""
    stop = threading.Event()
    started = threading.Barrier(threads + 1)

    def request() -> None:
        handle = engine.start("GET /bench")
        started.wait()

        def work() -> None:
            while not stop.is_set():
                if busy:
                    sum(i * i for i in range(200))
                else:
                    stop.wait(0.05)

        at_depth(depth, work)
        engine.discard(handle)

    pool = [threading.Thread(target=request, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    started.wait()
    time.sleep(0.3)  # the first adjustment periods
    cpu0, ticks0, t0 = engine.cpu, engine.ticks, time.perf_counter()
    time.sleep(seconds)
    cpu, ticks, elapsed = engine.cpu - cpu0, engine.ticks - ticks0, time.perf_counter() - t0
    stop.set()
    for thread in pool:
        thread.join()
    return (cpu / ticks * 1e6 if ticks else 0.0), cpu / elapsed, ticks / elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=3.0, help="per measure; default 3")
    args = p.parse_args()
    assert DEFAULT_BUDGET is not None
    hz = 1 / SAMPLER_INTERVAL
    print(f"sampler at {hz:g} Hz; each measure {args.seconds:g} s; budget {DEFAULT_BUDGET:.0%} = the default")
    print(
        f"{'threads':>7} {'depth':>5} {'work':>5} | {'us/sample':>9} {'CPU %':>6} {'Hz':>5} "
        f"| budget: {'Hz':>5} {'CPU %':>6}"
    )
    for threads, depth, busy in CASES:
        free = SamplerEngine(SAMPLER_INTERVAL)
        cost, share, rate = run(free, threads, depth, busy, args.seconds)
        bounded = SamplerEngine(SAMPLER_INTERVAL, max_overhead=DEFAULT_BUDGET)
        _, bounded_share, bounded_rate = run(bounded, threads, depth, busy, args.seconds)
        print(
            f"{threads:>7} {depth:>5} {'busy' if busy else 'idle':>5} | {cost:>9.0f} {share * 100:>6.2f} "
            f"{rate:>5.0f} | {'':>7} {bounded_rate:>5.0f} {bounded_share * 100:>6.2f}"
        )
    print(f"Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

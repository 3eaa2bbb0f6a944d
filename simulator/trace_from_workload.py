"""`python -m simulator trace`: an arrival trace (`t_s,case` CSV, loadlab/trace.py) drawn from the
simulator's own workload model (hour-of-day and day-of-week weights, bursts, case mix, seed), its
times divided by `--time-scale` so that Locust can send the same arrival sequence in minutes and the
simulator can replay it (`simulator run --trace`)."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from loadlab.trace import MAX_ROWS, write_trace
from simulator.workload import MonthlyWorkload


def draw_trace(workload: MonthlyWorkload, seed: int = 1, time_scale: float = 1.0,
               max_rows: int = MAX_ROWS) -> tuple[int, Iterator[tuple[float, str]]]:
    """(arrivals, the rows): the workload's arrivals (the same draw as `simulator run` with this seed),
    times / time_scale, drawn as they are written. ValueError over `max_rows`, before any is drawn."""
    if time_scale <= 0:
        raise ValueError("--time-scale must be > 0")
    if workload.expected_requests() > max_rows:
        raise ValueError(_over(workload.expected_requests(), max_rows))
    arrivals = workload.arrivals(np.random.default_rng(seed))
    if arrivals.total > max_rows:     # the bursts' random count
        raise ValueError(_over(arrivals.total, max_rows))
    rows = ((t / time_scale, case) for times, cases, _ in arrivals for t, case in zip(times.tolist(), cases, strict=True))
    return arrivals.total, rows


def _over(n: float, max_rows: int) -> str:
    return f"{n:,.0f} arrivals: over the trace bound of {max_rows:,} rows (lower --monthly or --days)"


def cmd_trace(args: argparse.Namespace) -> int:
    from simulator.month import workload_from

    workload = workload_from(args, args.monthly)
    n, rows = draw_trace(workload, args.seed, args.time_scale)
    mix: Counter[str] = Counter()
    out = write_trace(args.out, _counted(rows, mix))
    span = workload.days * 86400 / args.time_scale
    print(f"{n:,} arrivals ({args.monthly:,}/month over {workload.days:g} days, seed {args.seed}), "
          f"times / {args.time_scale:g}: {span:,.1f} s of trace, mean {n / span:.3f} arrivals/s; "
          f"cases {dict(sorted(mix.items()))}")
    print(f"trace: {Path(out)}")
    return 0


def _counted(rows: Iterator[tuple[float, str]], mix: Counter[str]) -> Iterator[tuple[float, str]]:
    """The rows, counting their cases into `mix` as they go by (the trace is written as it is drawn)."""
    for row in rows:
        mix[row[1]] += 1
        yield row

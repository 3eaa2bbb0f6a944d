"""`python -m simulator trace`: an arrival trace (`t_s,case` CSV, loadlab/trace.py) drawn from the
simulator's own workload model (hour-of-day and day-of-week weights, bursts, case mix, seed), its
times divided by `--time-scale` so that Locust can send the same arrival sequence in minutes and the
simulator can replay it (`simulator run --trace`)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from loadlab.trace import MAX_ROWS, write_trace
from simulator.workload import MonthlyWorkload


def draw_trace(workload: MonthlyWorkload, seed: int = 1, time_scale: float = 1.0) -> list[tuple[float, str]]:
    """The workload's arrivals (the same draw as `simulator run` with this seed), times / time_scale."""
    if time_scale <= 0:
        raise ValueError("--time-scale must be > 0")
    times, cases, _ = workload.generate(np.random.default_rng(seed))
    return [(t / time_scale, case) for t, case in zip(times.tolist(), cases, strict=True)]


def cmd_trace(args: argparse.Namespace) -> int:
    from simulator.month import workload_from

    workload = workload_from(args, args.monthly)
    rows = draw_trace(workload, args.seed, args.time_scale)
    if len(rows) > MAX_ROWS:
        raise ValueError(f"{len(rows):,} arrivals: over the trace bound of {MAX_ROWS:,} rows")
    out = write_trace(args.out, rows)
    span = workload.days * 86400 / args.time_scale
    mix = Counter(case for _, case in rows)
    print(f"{len(rows):,} arrivals ({args.monthly:,}/month over {workload.days:g} days, seed {args.seed}), "
          f"times / {args.time_scale:g}: {span:,.1f} s of trace, mean {len(rows) / span:.3f} arrivals/s; "
          f"cases {dict(sorted(mix.items()))}")
    print(f"trace: {Path(out)}")
    return 0

"""`python -m simulator trace fit LOG`: the workload model's inputs fitted to a log, printed as `simulator
run` flags, and how well draws of the fitted model reproduce the log over the same window of the week."""

from __future__ import annotations

import argparse
import math

import numpy as np

from loadlab.stats import coefficient_of_variation, mean
from simulator.traffic.commands import load_from
from simulator.traffic.fit import Fit, fit
from simulator.traffic.profile import peak_per_minute
from simulator.workload import DAY_S, MonthlyWorkload

WEEK_S = 7 * DAY_S
QUANTILES = (50, 90, 99)


def shape(times: np.ndarray, start: float, span_s: float) -> dict[str, float | None]:
    """What the fit is judged on, for sorted arrival times (s) in [start, start + span_s)."""
    hours = max(1, int(span_s // 3600))
    per_hour = np.bincount(np.clip(((times - start) // 3600).astype(int), 0, hours - 1), minlength=hours)
    q = np.percentile(per_hour, QUANTILES)
    seconds = np.unique(np.floor(times), return_counts=True)[1]
    return {**{f"hourly p{p}": float(v) for p, v in zip(QUANTILES, q, strict=True)},
            "hourly max": float(per_hour.max()), "interarrival CV": coefficient_of_variation(np.diff(times)),
            "peak minute": float(peak_per_minute(times)),
            "same-second %": 100 * float(seconds[seconds > 1].sum() / max(1, times.size))}


def model_draws(f: Fit, start_wall: float, span_s: float, seed: int, draws: int) -> list[dict]:
    """The fitted model drawn `draws` times over the log's window, placed on the week as the log's is."""
    offset = start_wall % WEEK_S - 4 * DAY_S      # seconds since the Monday 00:00 before the window
    offset = offset + WEEK_S if offset < 0 else offset
    days = math.ceil((offset + span_s) / DAY_S)
    wl = MonthlyWorkload(monthly=f.monthly, case_mix=f.case_mix, hour_weights=f.hour_weights,
                         day_weights=f.day_weights, bursts_per_day=f.bursts_per_day, burst_size=f.burst_size,
                         days=days)
    out = []
    for s in range(seed, seed + draws):
        times, _, _ = wl.generate(np.random.default_rng(s))
        inside = times[(times >= offset) & (times < offset + span_s)]
        out.append(shape(inside, offset, span_s))
    return out


def cmd_fit(args: argparse.Namespace) -> int:
    data = load_from(args)
    span = data.window.span_s
    if span < 3600:
        raise ValueError(f"the window spans {span:,.0f} s: fitting hour weights needs at least an hour of log")
    f = fit(data.epoch, data.wall, data.cases, data.start_wall, span)
    print(f"fitted to {data.epoch.size:,} arrivals of {data.log.path} over {f.span_days:.2f} days "
          f"(window {data.window.how}; clock of the log's zone)")
    if data.bad_line():
        print(data.bad_line())
    print(f"  bursts: {f.bursts:,} seconds holding {f.burst_requests:,} requests beyond their hour's Poisson rate "
          f"-> {f.bursts_per_day:.3f}/day of {f.burst_size} (the model places bursts in 9-18h)")
    if f.unobserved_hours or f.unobserved_days:
        print(f"  not in the window (given the mean of the others): hours {f.unobserved_hours or '-'}, "
              f"weekdays {f.unobserved_days or '-'} (0 = Monday)")
    print("simulator run flags:\n  " + " ".join(_quote(x) for x in f.flags()))
    log = shape(data.wall, data.start_wall, span)
    model = model_draws(f, data.start_wall, span, args.seed, args.draws)
    print(f"how the fitted model reproduces the log (same window of the week; model: mean and range of {args.draws} "
          f"draws, seeds {args.seed}..{args.seed + args.draws - 1}):")
    print(f"  {'':<16} {'log':>9} {'model':>9}  range")
    for key, value in log.items():
        values = [m[key] for m in model if m[key] is not None]
        rng = f"{min(values):.2f}..{max(values):.2f}" if values else "-"
        print(f"  {key:<16} {_num(value):>9} {_num(mean(values)):>9}  {rng}")
    return 0


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _quote(x: str) -> str:
    return x if all(ch.isalnum() or ch in "-_.,=" for ch in x) else f"'{x}'"

"""A trace's profile, from its arrival times: requests, span, mean rate, rate by hour of day, the peak
minute, the interarrival CV and how many arrivals share their second. All figures describe the log
itself (what was measured in production), not a model of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from loadlab.stats import coefficient_of_variation
from simulator.traffic.times import hour_of_day
from simulator.traffic.window import busiest

MAX_SPAN_HOURS = 24 * 366 * 5     # the hour-of-day exposure walks the span's hours: bounded


def profile(epoch: np.ndarray, wall: np.ndarray, cases: list[str], span_s: float, start_wall: float) -> dict[str, Any]:
    """The figures of arrivals sorted by `epoch` (s), `wall` their clock time (hour of day), over the
    window [start_wall, start_wall + span_s) in wall time."""
    n = int(epoch.size)
    gaps = np.diff(epoch)
    seconds = np.unique(np.floor(epoch), return_counts=True)[1]
    exposure = hour_exposure(start_wall, span_s)
    counts = np.bincount(hour_of_day(wall), minlength=24)
    return {
        "requests": n,
        "span_s": float(span_s),
        "mean_rate_per_s": n / span_s if span_s > 0 else None,
        "rate_per_hour_by_hour_of_day": [float(c / (e / 3600)) if e > 0 else None
                                         for c, e in zip(counts.tolist(), exposure.tolist(), strict=True)],
        "hours_observed_by_hour_of_day": [float(e / 3600) for e in exposure.tolist()],
        "peak_per_minute": peak_per_minute(epoch),
        "interarrival_cv": coefficient_of_variation(gaps),
        "interarrivals": int(gaps.size),
        "same_second_share": float(seconds[seconds > 1].sum() / n) if n else 0.0,
        "max_per_second": int(seconds.max()) if n else 0,
        "same_instant_share": float(1 - (np.count_nonzero(gaps) + 1) / n) if n else 0.0,
        "case_mix": dict(sorted(Counter(cases).items())),
    }


def peak_per_minute(epoch: np.ndarray) -> int:
    """The most arrivals in any 60 s (a sliding window, so it does not depend on where minutes start)."""
    if epoch.size == 0:
        return 0
    lo, hi = busiest(np.sort(epoch), 60.0)
    return hi - lo


def hour_exposure(start_wall: float, span_s: float) -> np.ndarray:
    """Seconds of the window that fall in each hour of day (0..23)."""
    out = np.zeros(24)
    if not span_s > 0:
        return out
    first, last = int(np.floor(start_wall / 3600)), int(np.floor((start_wall + span_s) / 3600))
    if last - first > MAX_SPAN_HOURS:
        raise ValueError(f"the window spans {(last - first) / 8760:.1f} years: over the bound of "
                         f"{MAX_SPAN_HOURS // 8784} (cut it with --from/--to)")
    end = start_wall + span_s
    for h in range(first, last + 1):
        out[h % 24] += max(0.0, min(end, (h + 1) * 3600) - max(start_wall, h * 3600))
    return out


def profile_lines(p: dict[str, Any], label: str = "log") -> list[str]:
    span = p["span_s"]
    rate = p["mean_rate_per_s"]
    cv = p["interarrival_cv"]
    lines = [f"profile of the {label} (measured from its {p['requests']:,} arrivals):",
             f"  requests {p['requests']:,} over {_span(span)}; mean rate "
             + (f"{rate:.4g}/s ({rate * 3600:,.1f}/h)" if rate else "- (one instant)"),
             f"  peak minute {p['peak_per_minute']:,} requests; interarrival CV "
             + (f"{cv:.2f} (n = {p['interarrivals']:,} gaps; 1 = Poisson)" if cv is not None else "- (too few arrivals)"),
             f"  simultaneous: {100 * p['same_second_share']:.1f} % of requests share their second with another "
             f"(at most {p['max_per_second']:,} in one second), {100 * p['same_instant_share']:.1f} % the same instant",
             f"  cases {p['case_mix']}",
             "  rate by hour of day (requests/h; '-' not in the window):"]
    rates = p["rate_per_hour_by_hour_of_day"]
    for row in range(0, 24, 8):
        lines.append("    " + "  ".join(f"{h:02d}h {_rate(rates[h]):>7}" for h in range(row, row + 8)))
    return lines


def _rate(r: float | None) -> str:
    return "-" if r is None else f"{r:,.1f}"


def _span(s: float) -> str:
    if s >= 2 * 86400:
        return f"{s / 86400:,.2f} days"
    if s >= 2 * 3600:
        return f"{s / 3600:,.2f} h"
    return f"{s:,.1f} s"

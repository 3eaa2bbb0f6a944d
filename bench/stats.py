"""The statistics every report uses; nothing else in the project computes percentiles or means."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

PERCENTILES = (50, 95, 99)


def summarize(values: Iterable[float]) -> dict[str, float | int | None]:
    """count, mean, std (sample, ddof=1), min, p50, p95, p99, max of `values` (seconds).

    Percentiles use linear interpolation (numpy's default), so p50 of [1, 2] is 1.5. An empty input
    gives count 0 and None elsewhere, so a stage where every job failed still has a summary."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None,
                **{f"p{p}": None for p in PERCENTILES}, "max": None}
    pct = np.percentile(arr, PERCENTILES)
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        **{f"p{p}": float(v) for p, v in zip(PERCENTILES, pct, strict=True)},
        "max": float(arr.max()),
    }


def relative_error(simulated: float | None, measured: float | None) -> float | None:
    """(simulated - measured) / measured, as a fraction; None when either side is missing or zero."""
    if simulated is None or measured is None or measured == 0:
        return None
    return (simulated - measured) / measured


def fifo_ideal_mean(n: int, service_s: float) -> float:
    """Mean latency of n jobs submitted at once to one FIFO worker with service time S: (n+1)/2 x S."""
    return (n + 1) / 2 * service_s

"""The statistics every report uses; nothing else in the project computes percentiles, means or errors."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

# Tail percentiles reported by default; p99.9 needs ≥ 1,000 samples to mean anything.
PERCENTILES: tuple[float, ...] = (50, 95, 99, 99.9)


def pct_key(p: float) -> str:
    """'p50', 'p95', 'p99.9': the summary key of a percentile."""
    return f"p{p:g}"


def summarize(values: Iterable[float], percentiles: Sequence[float] = PERCENTILES) -> dict[str, float | int | None]:
    """count, mean, std (sample, ddof=1), min, the percentiles, max of `values` (seconds).

    Percentiles use linear interpolation (numpy's default), so p50 of [1, 2] is 1.5. An empty input
    gives count 0 and None elsewhere, so a stage where every job failed still has a summary."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"count": 0, "mean": None, "std": None, "min": None,
                **{pct_key(p): None for p in percentiles}, "max": None}
    pct = np.percentile(arr, list(percentiles))
    return {
        "count": int(arr.size),
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        **{pct_key(p): float(v) for p, v in zip(percentiles, pct, strict=True)},
        "max": float(arr.max()),
    }


def mean(values: Iterable[float]) -> float | None:
    """The arithmetic mean, None for no values."""
    arr = np.asarray(list(values), dtype=float)
    return float(arr.mean()) if arr.size else None


def percentile(values: Iterable[float], p: float) -> float | None:
    """One percentile (linear interpolation, as in `summarize`), None for no values."""
    arr = np.asarray(list(values), dtype=float)
    return float(np.percentile(arr, p)) if arr.size else None


def mean_ci95(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and the half-width of its 95 % confidence interval (Student t; normal beyond 30 samples).

    Used over independent replications, where each value is one replication's figure."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return None, None
    if arr.size == 1:
        return float(arr[0]), None
    # two-sided 97.5 % t quantiles for 1..30 degrees of freedom; 1.96 beyond
    t975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
            2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
            2.052, 2.048, 2.045, 2.042)
    dof = arr.size - 1
    t = t975[dof - 1] if dof <= len(t975) else 1.96
    return float(arr.mean()), float(t * arr.std(ddof=1) / math.sqrt(arr.size))


def relative_error(simulated: float | None, measured: float | None) -> float | None:
    """(simulated - measured) / measured, as a fraction; None when either side is missing or zero."""
    if simulated is None or measured is None or measured == 0:
        return None
    return (simulated - measured) / measured


def fifo_ideal_mean(n: int, service_s: float) -> float:
    """Mean latency of n jobs submitted at once to one FIFO worker with service time S: (n+1)/2 x S."""
    return (n + 1) / 2 * service_s


def format_s(value: float | None, width: int = 7, digits: int = 2) -> str:
    """Seconds for a table column: right-aligned, '-' when missing."""
    return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"


def percentile_ci95(values: Iterable[float], p: float) -> tuple[float, float] | None:
    """A distribution-free 95 % confidence interval of the p-th percentile: the order statistics whose
    ranks bound the binomial(n, p/100) count of values below it (normal approximation). None when the
    sample is too small for the interval to have both ends (p99 needs a few hundred values)."""
    arr = np.sort(np.asarray(list(values), dtype=float))
    n, q = arr.size, p / 100
    if n == 0:
        return None
    half = 1.96 * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - half), math.ceil(n * q + half)
    if lo < 0 or hi > n - 1:
        return None
    return float(arr[lo]), float(arr[hi])

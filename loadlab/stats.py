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


# two-sided 97.5 % t quantiles for 1..30 degrees of freedom; the normal's beyond
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)
Z975 = 1.959964


def t975(dof: int) -> float:
    """The two-sided 95 % Student t quantile for `dof` degrees of freedom (>= 1)."""
    return _T975[dof - 1] if dof <= len(_T975) else Z975


def mean_ci95(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and the half-width of its 95 % confidence interval (Student t; normal beyond 30 samples).

    Used over independent replications, where each value is one replication's figure."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return None, None
    if arr.size == 1:
        return float(arr[0]), None
    t = t975(arr.size - 1)
    return float(arr.mean()), float(t * arr.std(ddof=1) / math.sqrt(arr.size))


def coefficient_of_variation(values: Iterable[float]) -> float | None:
    """Standard deviation (population, ddof=0) / mean: 1 for a Poisson process's interarrival times, above
    1 for bursty ones. None with fewer than 2 values or a mean of 0."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=float)
    if arr.size < 2 or not arr.mean() > 0:
        return None
    return float(arr.std() / arr.mean())


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



# -- intervals on both sides of a validation ---------------------------------------------------------
# A "+-10 %" statement needs the measured figure's 95 % interval within 10 % of the figure.
PRECISION = 0.10
BOOTSTRAP_DRAWS = 1000


def block_length(values: Sequence[float]) -> int:
    """A block for a moving-block bootstrap of a series in arrival order: twice its integrated
    autocorrelation time (lags summed until the sample autocorrelation first drops below zero), at least
    n^(1/3). Waits in one queue are correlated over a busy period: blocks must hold one."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n < 4 or float(arr.std()) == 0.0:
        return 1
    x = arr - arr.mean()
    acov = np.correlate(x, x, mode="full")[n - 1:] / n
    tau = 1.0
    for lag in range(1, n // 2):
        rho = acov[lag] / acov[0]
        if rho <= 0:
            break
        tau += 2 * rho
    return int(min(n // 2, max(round(n ** (1 / 3)), math.ceil(2 * tau))))


def block_bootstrap_ci(values: Sequence[float], statistic, draws: int = BOOTSTRAP_DRAWS,
                       seed: int = 0) -> tuple[float, float] | None:
    """The 95 % interval (percentile method) of `statistic(array)` over a moving-block bootstrap of
    `values` in their order (arrival order for a stage's jobs); None below 5 values."""
    arr = np.asarray(values, dtype=float)
    n = arr.size
    if n < 5:
        return None
    b = block_length(arr)
    rng = np.random.default_rng(seed)
    k = math.ceil(n / b)
    starts = rng.integers(0, n - b + 1, size=(draws, k))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(draws, -1)[:, :n]
    stats = np.array([statistic(arr[row]) for row in idx])
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def prediction_interval(values: Sequence[float], floor: float | None = None) -> tuple[float, float] | None:
    """The 95 % prediction interval of one more replication's figure from independent replications:
    mean +- t * s * sqrt(1 + 1/n), cut at `floor` for a figure that cannot be lower (a latency, a count:
    replications split by a discrete event, a scale-up or not, gave a stage's mean -2.3-14.1 s). None
    below 2 replications, or when they all agree (a deterministic replay: a point, about which "inside"
    says nothing)."""
    arr = np.asarray([v for v in values if v is not None], dtype=float)
    if arr.size < 2 or float(arr.std()) == 0.0:
        return None
    half = t975(arr.size - 1) * float(arr.std(ddof=1)) * math.sqrt(1 + 1 / arr.size)
    low = float(arr.mean() - half)
    return (low if floor is None else max(floor, low)), float(arr.mean() + half)


def precise_enough(ci: tuple[float, float] | None, value: float | None, precision: float = PRECISION) -> bool:
    """Whether a measured figure's 95 % interval lies within +-precision of it (a score means something)."""
    if ci is None or value is None or value == 0:
        return False
    return max(value - ci[0], ci[1] - value) <= precision * abs(value)


def inside(value: float | None, interval: tuple[float, float] | None) -> bool | None:
    if value is None or interval is None:
        return None
    return interval[0] <= value <= interval[1]


def rank_share(values: Sequence[float], measured: float) -> float:
    """Where the measured outcome falls among the replications': the share below it, ties counted half
    (0.5 = in the middle; 0 or 1 = outside every replication)."""
    below = sum(v < measured for v in values)
    ties = sum(v == measured for v in values)
    return (below + ties / 2) / len(values) if values else math.nan


def discrete_distribution(values: Sequence[float], gap: float, unit: str = "", digits: int = 0) -> str:
    """Replications' outcomes grouped where they lie within `gap` of each other: "52-53 s in 3 of 10,
    80-82 s in 7" (a value missing in a replication, None, counts as "none")."""
    present = sorted(v for v in values if v is not None)
    groups: list[list[float]] = []
    for v in present:
        if groups and v - groups[-1][-1] <= gap:
            groups[-1].append(v)
        else:
            groups.append([v])
    parts = []
    for g in groups:
        lo, hi = f"{g[0]:.{digits}f}", f"{g[-1]:.{digits}f}"
        parts.append(f"{lo if lo == hi else lo + '-' + hi}{unit} in {len(g)}")
    missing = len(values) - len(present)
    if missing:
        parts.append(f"none in {missing}")
    if parts:
        parts[0] += f" of {len(values)}"
    return ", ".join(parts)


# -- planning a stage's size -------------------------------------------------------------------------
def relative_asymptotic_variance(rho: float, service_cv: float = 0.1, jobs: int = 200_000, seed: int = 0) -> float:
    """n x Var(mean sojourn time) / E[sojourn]^2 of a FIFO single-server queue with Poisson arrivals at
    utilisation `rho` and gamma service times of coefficient of variation `service_cv` (mean 1), estimated
    by a Lindley recursion with batch means (a model input, stated: the queue the demo's stages load)."""
    if not 0 < rho < 1:
        raise ValueError("rho must be in (0, 1)")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / rho, jobs)
    shape = 1 / service_cv ** 2 if service_cv > 0 else None
    service = rng.gamma(shape, 1 / shape, jobs) if shape else np.ones(jobs)
    sojourn = np.empty(jobs)
    wait = 0.0
    for i in range(jobs):
        sojourn[i] = wait + service[i]
        if i + 1 < jobs:
            wait = max(0.0, sojourn[i] - gaps[i + 1])
    kept = sojourn[jobs // 10:]          # warm-up dropped
    batches = kept[: len(kept) // 50 * 50].reshape(50, -1).mean(axis=1)
    return float(batches.var(ddof=1) * (len(kept) // 50) / kept.mean() ** 2)


def jobs_needed(rho: float, precision: float = PRECISION, service_cv: float = 0.1) -> int:
    """Jobs an open-loop stage at utilisation `rho` needs for its mean latency's 95 % interval to be
    within +-precision (M/G/1 FIFO model, `relative_asymptotic_variance`); p95 needs more."""
    return math.ceil((Z975 / precision) ** 2 * relative_asymptotic_variance(rho, service_cv))


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

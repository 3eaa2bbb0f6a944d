"""Workloads: a month of open-loop arrivals, or a closed loop of N users (a Locust stage).

Monthly arrivals are a non-homogeneous Poisson process with a piecewise-constant rate per hour of the
week (hour-of-day x day-of-week weights), conditioned on the monthly total (so `--monthly 10000` gives
exactly 10,000 requests: a multinomial over the hours, uniform inside each hour, which is the NHPP
given its count). Each request draws a case from the case mix. A share `cache_hit_ratio` of requests
repeat the content of an earlier request (chosen uniformly among the earlier ones); it is a cache hit
(no GPU time) when that earlier request was less than `cache_ttl_s` ago. Optional bursts add
`burst_size` requests at the same instant `bursts_per_day` times a day, at random business-hour times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MONTH_S = 30 * 86400
DAY_S = 86400


def default_hour_weights() -> list[float]:
    """Most traffic in business hours (9-18), some in the evening, little at night."""
    return [0.05] * 7 + [0.3, 0.6] + [1.0] * 9 + [0.5, 0.35, 0.25, 0.15, 0.1, 0.05]


def default_day_weights() -> list[float]:
    """Monday..Friday 1.0, Saturday and Sunday 0.3."""
    return [1.0] * 5 + [0.3, 0.3]


@dataclass
class MonthlyWorkload:
    monthly: int
    case_mix: dict[str, float] = field(default_factory=lambda: {"small": 0.3, "medium": 0.5, "large": 0.2})
    hour_weights: list[float] = field(default_factory=default_hour_weights)
    day_weights: list[float] = field(default_factory=default_day_weights)
    cache_hit_ratio: float = 0.0
    cache_ttl_s: float = 86400.0
    bursts_per_day: float = 0.0
    burst_size: int = 0
    days: float = 30.0

    def generate(self, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(arrival times in s sorted, case names, cache-hit flags); `monthly` x days / 30 requests."""
        horizon = self.days * DAY_S
        n_hours = int(np.ceil(horizon / 3600))
        hours = np.arange(n_hours)
        w = np.asarray(self.hour_weights, float)[hours % 24] * np.asarray(self.day_weights, float)[(hours // 24) % 7]
        if w.sum() <= 0:
            raise ValueError("hour/day weights must not all be zero")
        counts = rng.multinomial(int(round(self.monthly * self.days / 30)), w / w.sum())
        times = np.repeat(hours * 3600.0, counts) + rng.random(int(counts.sum())) * 3600.0
        if self.bursts_per_day > 0 and self.burst_size > 0:
            n_bursts = rng.poisson(self.bursts_per_day * self.days)
            days = rng.integers(0, int(self.days), n_bursts)
            at = days * DAY_S + 9 * 3600 + rng.random(n_bursts) * 9 * 3600
            times = np.concatenate([times, np.repeat(at, self.burst_size)])
        times = np.sort(np.minimum(times, horizon - 1e-6))
        names = list(self.case_mix)
        p = np.asarray([self.case_mix[n] for n in names], float)
        idx = rng.choice(len(names), size=times.size, p=p / p.sum())
        cases = [names[i] for i in idx]
        hits = np.zeros(times.size, bool)
        if self.cache_hit_ratio > 0 and times.size > 1:
            repeat = rng.random(times.size) < self.cache_hit_ratio
            repeat[0] = False
            i = np.arange(times.size)
            earlier = np.floor(rng.random(times.size) * np.maximum(i, 1)).astype(int)
            hits = repeat & ((times - times[earlier]) <= self.cache_ttl_s)
            # a repeat takes the case of the content it repeats
            cases = [cases[earlier[k]] if repeat[k] else cases[k] for k in range(times.size)]
        return times, cases, hits


def parse_case_mix(spec: str) -> dict[str, float]:
    """'small=0.3,medium=0.5,large=0.2' or 'medium'."""
    mix: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.partition("=")
        try:
            mix[name.strip()] = float(weight) if sep else 1.0
        except ValueError:
            raise ValueError(f"bad case weight in {spec!r}") from None
    if not mix or any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"bad case mix {spec!r}; e.g. small=0.3,medium=0.5,large=0.2")
    return mix


def parse_weights(spec: str, n: int, what: str) -> list[float]:
    try:
        values = [float(x) for x in spec.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected {n} comma-separated numbers") from None
    if len(values) != n or any(v < 0 for v in values):
        raise ValueError(f"{what}: expected {n} non-negative comma-separated numbers, got {len(values)}")
    return values

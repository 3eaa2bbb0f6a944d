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

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from simulator.limits import MAX_REQUESTS, MAX_REQUESTS_WHY

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

    def expected_requests(self) -> float:
        """The requests the month holds on average (bursts at their mean count), known before any is drawn."""
        bursts = self.bursts_per_day * self.days * self.burst_size if self.bursts_per_day > 0 else 0.0
        return self.monthly * self.days / 30 + bursts

    def check(self) -> None:
        """ValueError (one line) for a month over MAX_REQUESTS: refused before anything is drawn."""
        requests = self.expected_requests()
        if requests > MAX_REQUESTS:
            raise ValueError(f"{requests:,.0f} requests ({self.monthly:,}/month over {self.days:g} days"
                             f"{', with bursts' if self.bursts_per_day > 0 and self.burst_size > 0 else ''}) "
                             f"is over the bound of {MAX_REQUESTS:,} requests per simulated run {MAX_REQUESTS_WHY}")

    def arrivals(self, rng: np.random.Generator) -> Arrivals:
        """The month's arrivals an hour at a time: `monthly` x days / 30 requests (plus bursts), the same
        draw as `generate` with this generator, in memory for one hour at a time."""
        self.check()
        horizon = self.days * DAY_S
        n_hours = int(np.ceil(horizon / 3600))
        hours = np.arange(n_hours)
        w = np.asarray(self.hour_weights, float)[hours % 24] * np.asarray(self.day_weights, float)[(hours // 24) % 7]
        if w.sum() <= 0:
            raise ValueError("hour/day weights must not all be zero")
        counts = rng.multinomial(int(round(self.monthly * self.days / 30)), w / w.sum())
        # The month was once drawn whole, one draw after the other from `rng`: the offsets inside the hours,
        # the bursts, a case per arrival, then the cache's repeats and what they repeat. Each of those draws
        # gets a copy of `rng` moved to where it began, so an hour at a time gives the same arrivals per seed.
        offsets = _fork(rng, int(counts.sum()))
        bursts = self._burst_instants(rng)
        total = int(counts.sum()) + bursts.size * self.burst_size
        cases = _fork(rng, total)
        cache = (_fork(rng, total), _fork(rng, total)) if self.cache_hit_ratio > 0 and total > 1 else None
        return Arrivals(total, self._hours(counts, offsets, bursts, cases, cache, total, horizon))

    def _burst_instants(self, rng: np.random.Generator) -> np.ndarray:
        """Sorted burst times (each brings burst_size arrivals), at random business-hour instants."""
        if not (self.bursts_per_day > 0 and self.burst_size > 0):
            return np.empty(0)
        n_bursts = rng.poisson(self.bursts_per_day * self.days)
        days = rng.integers(0, int(self.days), n_bursts)
        return np.sort(days * DAY_S + 9 * 3600 + rng.random(n_bursts) * 9 * 3600)

    def _hours(self, counts: np.ndarray, offsets: np.random.Generator, bursts: np.ndarray,
               case_rng: np.random.Generator, cache: tuple[np.random.Generator, np.random.Generator] | None,
               total: int, horizon: float) -> Iterator[Chunk]:
        names = list(self.case_mix)
        p = np.asarray([self.case_mix[n] for n in names], float)
        p /= p.sum()
        # bursts by the hour they fall in (by value, so the hours concatenated stay sorted)
        edges = np.searchsorted(bursts, np.arange(counts.size + 1) * 3600.0)
        history = _CacheHistory(self, total, len(names)) if cache is not None else None
        for h in np.flatnonzero(counts + np.diff(edges)).tolist():
            times = h * 3600.0 + offsets.random(int(counts[h])) * 3600.0
            times = np.sort(np.minimum(np.concatenate([times, np.repeat(bursts[edges[h]:edges[h + 1]], self.burst_size)]),
                                       horizon - 1e-6))
            idx = case_rng.choice(len(names), size=times.size, p=p)
            hits = np.zeros(times.size, bool)
            if history is not None:
                idx, hits = history.repeat(times, idx, *cache)
            yield times, [names[i] for i in idx.tolist()], hits

    def generate(self, rng: np.random.Generator) -> tuple[np.ndarray, list[str], np.ndarray]:
        """(arrival times in s sorted, case names, cache-hit flags) of the whole month at once."""
        chunks = list(self.arrivals(rng))
        return (np.concatenate([c[0] for c in chunks]) if chunks else np.empty(0),
                [case for c in chunks for case in c[1]],
                np.concatenate([c[2] for c in chunks]) if chunks else np.zeros(0, bool))


Chunk = tuple[np.ndarray, list[str], np.ndarray]   # an hour's sorted times (s), case names, cache-hit flags


@dataclass
class Arrivals:
    """Arrivals as chunks (`Chunk`s in time order), their total known before any is drawn."""
    total: int
    chunks: Iterator[Chunk]

    def __iter__(self) -> Iterator[Chunk]:
        return self.chunks


class _CacheHistory:
    """A repeat takes the content of an earlier request chosen uniformly among *all* earlier ones, so the
    cache cannot be streamed: it keeps every arrival's time and case index (9 bytes a request)."""

    def __init__(self, workload: MonthlyWorkload, total: int, n_cases: int):
        self.ratio, self.ttl = workload.cache_hit_ratio, workload.cache_ttl_s
        self.times = np.empty(total)
        self.cases = np.empty(total, np.min_scalar_type(n_cases))
        self.seen = 0

    def repeat(self, times: np.ndarray, idx: np.ndarray, repeat_rng: np.random.Generator,
               earlier_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(case indices with repeats taking their content's case, cache-hit flags) of the next arrivals."""
        start, end = self.seen, self.seen + times.size
        self.times[start:end], self.cases[start:end] = times, idx
        self.seen = end
        repeat = repeat_rng.random(times.size) < self.ratio
        if start == 0:
            repeat[0] = False      # the first request has nothing to repeat
        earlier = np.floor(earlier_rng.random(times.size) * np.maximum(np.arange(start, end), 1)).astype(int)
        hits = repeat & ((times - self.times[earlier]) <= self.ttl)
        return np.where(repeat, self.cases[earlier], idx), hits


def _fork(rng: np.random.Generator, draws: int) -> np.random.Generator:
    """A generator where `rng` is now; `rng` itself moves on as if it had drawn `draws` doubles."""
    bits = rng.bit_generator
    fork = type(bits)()
    fork.state = bits.state
    bits.advance(draws)     # PCG64 (default_rng): one 64-bit step per double
    return np.random.Generator(fork)


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
    if not mix or not all(0 <= v < math.inf for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"bad case mix {spec!r}; e.g. small=0.3,medium=0.5,large=0.2")
    return mix


def parse_weights(spec: str, n: int, what: str) -> list[float]:
    try:
        values = [float(x) for x in spec.split(",")]
    except ValueError:
        raise ValueError(f"{what}: expected {n} comma-separated numbers") from None
    if len(values) != n or not all(0 <= v < math.inf for v in values):    # NaN too
        raise ValueError(f"{what}: expected {n} finite non-negative comma-separated numbers, got {spec!r}")
    return values

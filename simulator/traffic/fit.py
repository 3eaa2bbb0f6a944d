"""The workload model (simulator/workload.py) fitted to a log's arrivals.

Bursts first: a second holding at least MIN_BURST arrivals, more than its hour's smooth rate makes
likely (fewer than BURST_FALSE such seconds expected in the whole log were every hour Poisson at its
rate), is a burst of that many requests at one instant; they are set aside. Then the hour-of-day and day-of-week weights of the rest
(the model's rate of an hour is hour_weight x day_weight): each is the arrivals in that hour of day (day
of week) over the window's time in it, weighted by the other's weights, alternated until they settle
(iterative proportional fitting); an hour or day the window never covers takes the mean of the others.
The monthly volume is the smooth arrivals scaled from the window's share of the month's weight to the
whole month (30 days from Monday 00:00, as `simulator run` draws it); the case mix is the shares."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from simulator.traffic.profile import MAX_SPAN_HOURS
from simulator.traffic.times import hour_of_day, weekday

BURST_FALSE = 0.5      # expected false bursts in the whole log
MIN_BURST = 3
IPF_ROUNDS = 20
MONTH_H = 30 * 24


@dataclass
class Fit:
    monthly: int
    hour_weights: list[float]
    day_weights: list[float]
    bursts_per_day: float
    burst_size: int
    case_mix: dict[str, float]
    span_days: float
    bursts: int = 0
    burst_requests: int = 0
    unobserved_hours: list[int] = field(default_factory=list)
    unobserved_days: list[int] = field(default_factory=list)

    def flags(self) -> list[str]:
        mix = ",".join(f"{c}={w:.3f}" for c, w in self.case_mix.items())
        return ["--monthly", str(self.monthly), "--hour-weights", ",".join(f"{w:.3f}" for w in self.hour_weights),
                "--day-weights", ",".join(f"{w:.3f}" for w in self.day_weights),
                "--bursts-per-day", f"{self.bursts_per_day:.3f}", "--burst-size", str(self.burst_size),
                "--case-mix", mix]


def find_bursts(epoch: np.ndarray) -> np.ndarray:
    """A mask of the arrivals that belong to bursts (see the module's docstring)."""
    second = np.floor(epoch).astype(np.int64)
    seconds, inverse, per_second = np.unique(second, return_inverse=True, return_counts=True)
    hours = seconds // 3600
    hour_ids, hour_of_second = np.unique(hours, return_inverse=True)
    in_hour = np.bincount(hour_of_second, weights=per_second)
    top = np.zeros(hour_ids.size)
    np.maximum.at(top, hour_of_second, per_second)
    lam = np.maximum(in_hour - top, 1.0) / 3600      # the hour's rate without its biggest second
    per_hour = BURST_FALSE / hour_ids.size
    threshold = np.asarray([_threshold(x, per_hour) for x in lam.tolist()])
    burst_second = per_second >= threshold[hour_of_second]
    return burst_second[inverse]


def _threshold(lam: float, false_per_hour: float) -> int:
    """The least k >= MIN_BURST with 3600 x P(Poisson(lam) >= k) < false_per_hour."""
    term = math.exp(-lam)
    below = term             # P(X <= k - 1), k = 1
    k = 1
    while k < 10_000:
        term *= lam / k
        below += term        # P(X <= k)
        k += 1
        if k >= MIN_BURST and 3600 * max(0.0, 1 - below) < false_per_hour:
            return k
    return k


def fit(epoch: np.ndarray, wall: np.ndarray, cases: list[str], start_wall: float, span_s: float) -> Fit:
    """The fitted model of arrivals sorted by `epoch`, over the window [start_wall, +span_s) of wall time."""
    burst = find_bursts(epoch)
    smooth = wall[~burst]
    exposure = _hour_week_exposure(start_wall, span_s)          # seconds of the window per (weekday, hour)
    counts = np.zeros((7, 24))
    np.add.at(counts, (weekday(smooth), hour_of_day(smooth)), 1)
    hw, dw = _ipf(counts, exposure)
    seen_h, seen_d = exposure.sum(axis=0) > 0, exposure.sum(axis=1) > 0
    hw, dw = _fill(hw, seen_h), _fill(dw, seen_d)
    w_span = float((exposure / 3600 * np.outer(dw, hw)).sum())
    hours = np.arange(MONTH_H)
    w_month = float((hw[hours % 24] * dw[(hours // 24) % 7]).sum())
    monthly = round(smooth.size * w_month / w_span) if w_span > 0 else 0
    days = span_s / 86400
    n_bursts = int(np.unique(np.floor(epoch[burst])).size)
    shares = {c: n / len(cases) for c, n in sorted(Counter(cases).items())}
    return Fit(monthly=int(monthly), hour_weights=hw.tolist(), day_weights=dw.tolist(),
               bursts_per_day=n_bursts / days if days > 0 else 0.0,
               burst_size=round(burst.sum() / n_bursts) if n_bursts else 0, case_mix=shares, span_days=days,
               bursts=n_bursts, burst_requests=int(burst.sum()),
               unobserved_hours=np.flatnonzero(~seen_h).tolist(), unobserved_days=np.flatnonzero(~seen_d).tolist())


def _ipf(counts: np.ndarray, exposure: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hour and day weights (each max 1) with counts[d, h] ~ exposure[d, h] x dw[d] x hw[h]."""
    hw, dw = np.ones(24), np.ones(7)
    for _ in range(IPF_ROUNDS):
        hw = _ratio(counts.sum(axis=0), (exposure * dw[:, None]).sum(axis=0))
        dw = _ratio(counts.sum(axis=1), (exposure * hw[None, :]).sum(axis=1))
    top_h, top_d = hw.max(), dw.max()
    return (hw / top_h if top_h > 0 else hw), (dw / top_d if top_d > 0 else dw)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _fill(w: np.ndarray, seen: np.ndarray) -> np.ndarray:
    out = w.copy()
    if seen.any() and not seen.all():
        out[~seen] = w[seen].mean()
    return np.round(out, 6)


def _hour_week_exposure(start_wall: float, span_s: float) -> np.ndarray:
    out = np.zeros((7, 24))
    end = start_wall + span_s
    if span_s > MAX_SPAN_HOURS * 3600:
        raise ValueError(f"the window spans over {MAX_SPAN_HOURS // 8784} years: cut it with --from/--to")
    for h in range(int(start_wall // 3600), int(end // 3600) + 1):
        seconds = max(0.0, min(end, (h + 1) * 3600) - max(start_wall, h * 3600))
        out[int((h // 24 + 3) % 7), h % 24] += seconds
    return out

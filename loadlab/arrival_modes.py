"""The arrival modes of a load test, in one table: `closed` (N users, each sending when its last job
answered), the open-loop rate laws, and `trace` (a replayed trace). A new rate law is one entry of
`RATE_LAWS`: the Locust options, the arrival plans and the report schema take their names from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RateLaw:
    """Gaps (seconds) between arrivals at a rate: gaps(rate_per_s, n, rng, burstiness) -> n gaps.
    `regular`: deterministic, the arrivals of a stage fall at k / rate from its start."""

    gaps: Callable[[float, int, np.random.Generator, float], np.ndarray]
    regular: bool = False


RATE_LAWS: dict[str, RateLaw] = {
    "poisson": RateLaw(lambda rate, n, rng, burstiness: rng.exponential(1.0 / rate, n)),
    "constant": RateLaw(lambda rate, n, rng, burstiness: np.full(n, 1.0 / rate), regular=True),
    # burstiness = the gamma shape: 1 is Poisson, below 1 burstier, above 1 more regular
    "gamma": RateLaw(lambda rate, n, rng, burstiness: rng.gamma(shape=burstiness, scale=1.0 / (rate * burstiness),
                                                                size=n)),
}
RATE_MODES: tuple[str, ...] = tuple(RATE_LAWS)
OPEN_MODES: tuple[str, ...] = (*RATE_MODES, "trace")
ARRIVAL_MODES: tuple[str, ...] = ("closed", *OPEN_MODES)


def interarrivals(arrival: str, rate_per_s: float, n: int, rng: np.random.Generator,
                  burstiness: float = 1.0) -> np.ndarray:
    """`n` gaps (seconds) of a `rate_per_s` arrival process of kind `arrival`."""
    law = RATE_LAWS.get(arrival)
    if law is None:
        raise ValueError(f"no interarrival law for arrival mode {arrival!r}")
    return law.gaps(rate_per_s, n, rng, burstiness)

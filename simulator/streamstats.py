"""`loadlab.stats.summarize` over a stream of values (a month's latencies) in bounded memory.

Up to `capacity` values (default 1,000,000: 8 MB) every value is kept and the summary is exactly
`summarize`'s. Beyond that:
  - count, min and max stay exact; mean and std are merged chunk by chunk (Chan et al.), equal to the
    whole-array figures up to float rounding (~1e-12 relative);
  - the percentiles come from a uniform random sample of `capacity` of the values (reservoir sampling,
    Algorithm R). The value given for percentile p sits, among all the values, at a rank within about
    +-100 x sqrt(p (1 - p) / capacity) percentile points of p (one standard deviation): at the default
    capacity +-0.022 points for p95, +-0.010 for p99, +-0.003 for p99.9.
"""

from __future__ import annotations

import math

import numpy as np

from loadlab.stats import PERCENTILES, pct_key, summarize

CAPACITY = 1_000_000
_CHUNK = 65_536      # values buffered in a list before numpy folds them in (one append per value is cheap)


class StreamingSummary:
    def __init__(self, capacity: int = CAPACITY, seed: int = 0):
        self.capacity = capacity
        self.count = 0                            # values folded in
        self._pending: list[float] = []
        self._kept: list[np.ndarray] = []         # every value, while count <= capacity
        self._sample: np.ndarray | None = None    # the reservoir, once count > capacity
        self._rng = np.random.default_rng(seed)   # its own generator: the simulation's draws stay as they were
        self._mean = self._m2 = 0.0
        self._min, self._max = math.inf, -math.inf

    def add(self, value: float) -> None:
        self._pending.append(value)
        if len(self._pending) >= _CHUNK:
            self._fold()

    def summary(self) -> dict[str, float | int | None]:
        """What `summarize` gives for every value added (exact up to `capacity` values, see the module)."""
        self._fold()
        if self._sample is None:
            return summarize(np.concatenate(self._kept) if self._kept else [])
        pct = np.percentile(self._sample, list(PERCENTILES))
        return {"count": self.count, "mean": self._mean, "std": math.sqrt(self._m2 / (self.count - 1)),
                "min": self._min, **{pct_key(p): float(v) for p, v in zip(PERCENTILES, pct, strict=True)},
                "max": self._max}

    def _fold(self) -> None:
        if not self._pending:
            return
        chunk = np.asarray(self._pending, dtype=float)
        self._pending = []
        self._merge_moments(chunk)
        start = self.count
        self.count += chunk.size
        room = max(0, self.capacity - start)
        if room:
            self._kept.append(chunk[:room])
        if self.count > self.capacity:
            self._resample(chunk[room:], start + room)

    def _merge_moments(self, chunk: np.ndarray) -> None:
        n_a, n_b = self.count, chunk.size
        mean_b = float(chunk.mean())
        delta = mean_b - self._mean
        self._mean += delta * n_b / (n_a + n_b)
        self._m2 += float(((chunk - mean_b) ** 2).sum()) + delta * delta * n_a * n_b / (n_a + n_b)
        self._min, self._max = min(self._min, float(chunk.min())), max(self._max, float(chunk.max()))

    def _resample(self, values: np.ndarray, first: int) -> None:
        """Algorithm R for values whose 0-based positions in the stream start at `first` (>= capacity)."""
        if self._sample is None:
            self._sample = np.concatenate(self._kept)
            self._kept = []
        slots = self._rng.integers(0, np.arange(first, first + values.size) + 1)
        take = slots < self.capacity
        # two values drawing one slot in a chunk: one of them stays, as one would in the sequential loop
        self._sample[slots[take]] = values[take]

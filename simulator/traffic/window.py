"""The arrivals sorted, cut to a window (`--from/--to`, or the busiest stretch of a given length), and
the time scale that compresses them (`--time-scale K`, or the K that gives a mean rate: `--rate R`, or
`--utilisation rho --service-s S`, i.e. R = rho / S)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(s|m|min|h|d)?\s*$")
UNIT_S = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass
class Window:
    start: float              # epoch s: t = 0 of the trace
    end: float                # epoch s (exclusive); the span is end - start
    how: str                  # all | from-to | busiest 1h
    index: np.ndarray         # the rows inside, in time order (indices into the parsed arrays)

    @property
    def span_s(self) -> float:
        return self.end - self.start


def parse_duration(text: str) -> float:
    """'1h', '30m', '90s', '2d', '600' (seconds) -> seconds > 0."""
    m = DURATION.match(text)
    seconds = float(m.group(1)) * UNIT_S[m.group(2)] if m else 0.0
    if not seconds > 0:
        raise ValueError(f"--busiest {text!r}: expected a duration such as 1h, 30m, 90s or 2d")
    return seconds


def select(epoch: np.ndarray, start: float | None = None, end: float | None = None,
           busiest_s: float | None = None, busiest_text: str = "") -> Window:
    """The rows in time order inside the window. ValueError when none is."""
    order = np.argsort(epoch, kind="stable")
    t = epoch[order]
    if busiest_s is not None:
        lo, hi = busiest(t, busiest_s)
        return Window(float(t[lo]), float(t[lo]) + busiest_s, f"busiest {busiest_text}", order[lo:hi])
    lo = 0 if start is None else int(np.searchsorted(t, start, "left"))
    hi = t.size if end is None else int(np.searchsorted(t, end, "left"))
    if hi <= lo:
        raise ValueError("no arrivals in the window" + (f" (the log's arrivals run from {t[0]:.0f} to {t[-1]:.0f} s)"
                                                        if t.size else ""))
    first, last = float(t[lo]), float(t[hi - 1])
    w_start = first if start is None else float(start)
    # a window with no end given ends at its last arrival (+1 µs so that arrival is inside [start, end))
    w_end = float(end) if end is not None else last + 1e-6
    how = "all" if start is None and end is None else "from-to"
    return Window(w_start, w_end, how, order[lo:hi])


def busiest(t: np.ndarray, length_s: float) -> tuple[int, int]:
    """[lo, hi): the rows of the window of `length_s` starting at an arrival that holds the most (the
    earliest such)."""
    if t.size == 0:
        raise ValueError("no arrivals to find the busiest window in")
    ends = np.searchsorted(t, t + length_s, "left")
    counts = ends - np.arange(t.size)
    lo = int(np.argmax(counts))
    return lo, int(ends[lo])


def time_scale(n: int, span_s: float, factor: float | None = None, rate: float | None = None,
               utilisation: float | None = None, service_s: float | None = None) -> tuple[float, str]:
    """(K, how it was chosen): trace time = log time / K."""
    given = sum(x is not None for x in (factor, rate, utilisation))
    if given > 1:
        raise ValueError("choose one of --time-scale, --rate, --utilisation (with --service-s)")
    if (utilisation is None) != (service_s is None):
        raise ValueError("--utilisation and --service-s go together (the mean rate becomes utilisation / service-s)")
    if factor is not None:
        return float(factor), f"--time-scale {factor:g}"
    if rate is None and utilisation is None:
        return 1.0, "none (real time)"
    target = rate if rate is not None else utilisation / service_s
    if not span_s > 0 or n < 2:
        raise ValueError("a mean rate needs arrivals over a span > 0 s (every arrival is at one instant)")
    k = target / (n / span_s)
    how = (f"--rate {rate:g}/s" if rate is not None
           else f"--utilisation {utilisation:g} --service-s {service_s:g} (rate {target:.4g}/s)")
    return k, f"{how}: x{k:.4g} the log's mean rate {n / span_s:.4g}/s"

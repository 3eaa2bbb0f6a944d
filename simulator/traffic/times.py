"""A log's time values as seconds: ISO 8601 datetimes (with or without a zone, fractional seconds; a
time without a zone is taken as UTC), epoch seconds or milliseconds, or seconds relative to any origin.

Each time has two readings: `epoch` orders the arrivals and measures the gaps between them; `wall` is
the clock the log was written in (the local time of its zone offset; UTC for epoch times; for relative
seconds, t = 0 is Monday 00:00, as the simulator takes a trace), which the hour-of-day and day-of-week
figures use. 1970-01-01 was a Thursday: `weekday` shifts by that."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from simulator.traffic.flags import UNITS

EPOCH_MS_FROM = 1e11     # as epoch seconds this is the year 5138; as milliseconds, 1973
EPOCH_S_FROM = 1e8       # 1973 as epoch seconds; as relative seconds, over 3 years
WEEK_S = 7 * 86400
DETECT_ROWS = 2000       # the unit is told from the first rows


@dataclass
class Times:
    epoch: np.ndarray        # s
    wall: np.ndarray         # s, the log's own clock
    unit: str                # iso | epoch-s | epoch-ms | relative-s
    bad: list[tuple[int, str]]
    keep: np.ndarray         # bool, which of the values parsed


def parse_times(values: list, lines: list[int], unit: str = "auto", column: str = "time") -> Times:
    """Parse every value; those that do not parse (or are not finite) are returned in `bad` with their
    line, and `keep` marks the others."""
    if unit not in UNITS:
        raise ValueError(f"time unit {unit!r}: choose from {', '.join(UNITS)}")
    if unit == "auto":
        unit = _detect(*_numbers(values[:DETECT_ROWS]))   # a sample: telling ISO text apart costs a try each
    if unit == "iso":
        epoch, wall, ok = _iso(values)
    else:
        numbers, ok = _numbers(values)
        scale = 1e-3 if unit == "epoch-ms" else 1.0
        epoch = numbers * scale
        wall = epoch.copy() if unit != "relative-s" else epoch + 4 * 86400   # t=0: Monday (epoch 0 is a Thursday)
    what = "an ISO 8601 time" if unit == "iso" else f"a number ({unit})"
    bad = [(lines[i], f"{column} {values[i]!r} is not {what}") for i in np.flatnonzero(~ok).tolist()]
    return Times(epoch[ok], wall[ok], unit, bad, ok)


def _numbers(values: list) -> tuple[np.ndarray, np.ndarray]:
    """(values as floats, NaN where not a finite number; which ones are)."""
    try:
        numbers = np.asarray(values, dtype=float)     # fast path: every value a number
    except (ValueError, TypeError):
        numbers = np.fromiter((_float(v) for v in values), float, len(values))
    return numbers, np.isfinite(numbers)


def _float(value) -> float:
    try:
        return float(value)
    except (ValueError, TypeError):
        return float("nan")


def _detect(numbers: np.ndarray, ok: np.ndarray) -> str:
    """Numbers when most values are (the rest are junk rows), by their size; else ISO datetimes."""
    if ok.size == 0 or ok.sum() < 0.5 * ok.size:
        return "iso"
    median = float(np.median(numbers[ok]))
    if median >= EPOCH_MS_FROM:
        return "epoch-ms"
    return "epoch-s" if median >= EPOCH_S_FROM else "relative-s"


def _iso(values: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    epoch = np.full(len(values), np.nan)
    offset = np.zeros(len(values))
    for i, value in enumerate(values):
        if not isinstance(value, str):
            continue
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        else:
            offset[i] = dt.utcoffset().total_seconds()
        epoch[i] = dt.timestamp()
    return epoch, epoch + offset, np.isfinite(epoch)


def hour_of_day(wall: np.ndarray) -> np.ndarray:
    return (np.floor(wall / 3600) % 24).astype(int)


def weekday(wall: np.ndarray) -> np.ndarray:
    """0 = Monday .. 6 = Sunday."""
    return ((np.floor(wall / 86400) + 3) % 7).astype(int)


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()

"""Request logs in the shapes production writes them (ISO with zone, epoch ms, relative seconds, JSON
Lines; unsorted; junk rows), generated from known arrival times so tests can check what is parsed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)     # a Monday, 00:00 UTC
HOUR_WEIGHTS = [0.05] * 8 + [1.0] * 10 + [0.3] * 6     # busy 8-18h


def realistic_times(days: int = 7, per_day: int = 600, bursts_per_day: float = 2.0, burst_size: int = 25,
                    seed: int = 0) -> np.ndarray:
    """Seconds from MONDAY: diurnal (HOUR_WEIGHTS), weekends at 0.3, bursts of `burst_size` in one second at
    business hours, times truncated to the second (as many logs write them): CV > 1, many same-second."""
    rng = np.random.default_rng(seed)
    hours = np.arange(days * 24)
    w = np.asarray(HOUR_WEIGHTS)[hours % 24] * np.where((hours // 24) % 7 >= 5, 0.3, 1.0)
    counts = rng.multinomial(per_day * days, w / w.sum())
    smooth = np.repeat(hours * 3600.0, counts) + rng.random(counts.sum()) * 3600
    n_bursts = rng.poisson(bursts_per_day * days)
    at = rng.integers(0, days, n_bursts) * 86400 + 9 * 3600 + rng.random(n_bursts) * 9 * 3600
    return np.floor(np.sort(np.concatenate([smooth, np.repeat(at, burst_size)])))


def iso_csv(path: Path, seconds: np.ndarray, zone_hours: int = 2, cases: list[str] | None = None) -> Path:
    """ISO 8601 with a zone offset and milliseconds, the rows shuffled, a junk row and a short row."""
    tz = timezone(timedelta(hours=zone_hours))
    order = np.random.default_rng(1).permutation(seconds.size)
    lines = ["request_id,timestamp,resolution"]
    for i in order.tolist():
        when = (MONDAY + timedelta(seconds=float(seconds[i]))).astimezone(tz)
        lines.append(f"r{i},{when.isoformat(timespec='milliseconds')},{(cases or ['1024'])[i % len(cases or [1])]}")
    lines.insert(3, "junk,not-a-time,1024")
    lines.insert(5, "short-row")
    path.write_text("\n".join(lines) + "\n")
    return path


def epoch_ms_csv(path: Path, seconds: np.ndarray) -> Path:
    base = MONDAY.timestamp()
    path.write_text("ts,path\n" + "".join(f"{int((base + s) * 1000)},/predict\n" for s in seconds.tolist()))
    return path


def relative_csv(path: Path, seconds: np.ndarray) -> Path:
    path.write_text("elapsed,kind\n" + "".join(f"{s:.3f},a\n" for s in seconds.tolist()))
    return path


def jsonl(path: Path, seconds: np.ndarray, cases: list[str]) -> Path:
    rows = [json.dumps({"time": (MONDAY + timedelta(seconds=float(s))).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                        "layers": cases[i % len(cases)]}) for i, s in enumerate(seconds.tolist())]
    rows.insert(2, "{not json")
    rows.insert(4, json.dumps({"layers": "3"}))
    path.write_text("\n".join(rows[::-1]) + "\n")   # newest first, as some exports are
    return path

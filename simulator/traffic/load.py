"""A log loaded for `trace import` and `trace fit`: read, times parsed, cases mapped, cut to the window,
with every unreadable row counted and the first of them named by line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator.traffic.read import RawLog, read_log
from simulator.traffic.times import iso, parse_times
from simulator.traffic.window import Window, parse_duration, select

SHOW_BAD = 10     # unreadable rows named one by one; the rest counted


@dataclass
class Loaded:
    log: RawLog
    unit: str
    epoch: np.ndarray           # the window's arrivals, sorted (s)
    wall: np.ndarray            # their clock time (s)
    cases: list[str]
    window: Window
    start_wall: float           # the window's start on the log's clock
    bad: list[tuple[int, str]] = field(default_factory=list)
    readable: int = 0

    def provenance(self) -> dict[str, Any]:
        return {"source": str(self.log.path), "format": self.log.format, "time_column": self.log.time_column,
                "time_unit": self.unit, "case_column": self.log.case_column, "rows_readable": self.readable,
                "rows_unreadable": len(self.bad), "window": self.window.how,
                "window_start": self._when(self.window.start), "window_end": self._when(self.window.end),
                "window_start_weekday_hour": _weekday_hour(self.start_wall), "span_s": self.window.span_s,
                "requests": int(self.epoch.size)}

    def _when(self, epoch_s: float) -> str | float:
        return epoch_s if self.unit == "relative-s" else iso(epoch_s)

    def bad_line(self) -> str | None:
        if not self.bad:
            return None
        shown = "; ".join(f"line {line}: {why}" for line, why in self.bad[:SHOW_BAD])
        more = f"; and {len(self.bad) - SHOW_BAD:,} more" if len(self.bad) > SHOW_BAD else ""
        return f"{len(self.bad):,} unreadable row(s) skipped: {shown}{more}"


def parse_case_map(spec: str | None) -> dict[str, str]:
    """'VALUE=case,...' ('*=case': every other value) -> {value: case}."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        value, sep, case = part.partition("=")
        if not sep or not case.strip() or not value.strip():
            raise ValueError(f"--case-map: expected VALUE=case,... got {part!r}")
        out[value.strip()] = case.strip()
    return out


def load(path: str | Path, time_column: str | None = None, unit: str = "auto", case_column: str | None = None,
         case_map: str | None = None, case: str = "medium", start: str | None = None, end: str | None = None,
         busiest: str | None = None) -> Loaded:
    """The window's arrivals of the log. ValueError (one line) when nothing can be read or nothing is in
    the window."""
    if busiest is not None and (start is not None or end is not None):
        raise ValueError("choose --busiest or --from/--to, not both")
    if case_map and not case_column:
        raise ValueError("--case-map maps the values of --case-column: name that column")
    log = read_log(path, time_column, case_column)
    times = parse_times(log.times, log.lines, log.unit if unit == "auto" and log.unit else unit, log.time_column)
    bad = sorted(log.bad + times.bad)
    cases, keep = _cases(log, times.keep, parse_case_map(case_map), case, bad)
    if not keep.any():
        first = "; ".join(f"line {line}: {why}" for line, why in bad[:3])
        raise ValueError(f"log {log.path}: no readable rows ({len(bad):,} unreadable" + (f": {first}" if first else "")
                         + ")")
    epoch, wall = times.epoch[keep], times.wall[keep]
    cases = [c for c, k in zip(cases, keep.tolist(), strict=True) if k]
    bounds = [_bound(v, times.unit, flag) for v, flag in ((start, "--from"), (end, "--to"))]
    window = select(epoch, *bounds, busiest_s=parse_duration(busiest) if busiest else None,
                    busiest_text=busiest or "")
    idx = window.index
    offset = wall[idx[0]] - epoch[idx[0]]     # the log's zone offset at the window's first arrival
    return Loaded(log, times.unit, epoch[idx], wall[idx], [cases[i] for i in idx.tolist()], window,
                  window.start + offset, bad, int(keep.sum()))


def _cases(log: RawLog, parsed: np.ndarray, mapping: dict[str, str], default: str,
           bad: list[tuple[int, str]]) -> tuple[list[str], np.ndarray]:
    """The case of each parsed row and which rows keep (a value missing from --case-map is unreadable)."""
    values = [c for c, ok in zip(log.cases, parsed.tolist(), strict=True) if ok]
    lines = [n for n, ok in zip(log.lines, parsed.tolist(), strict=True) if ok]
    if not log.case_column:
        return [default] * len(values), np.ones(len(values), bool)
    if not mapping:
        keep = np.asarray([bool(v) for v in values], bool)
        bad.extend((n, f"empty {log.case_column!r}") for n, v in zip(lines, values, strict=True) if not v)
        bad.sort()
        return values, keep
    rest = mapping.get("*")
    out = [mapping.get(v, rest) for v in values]
    keep = np.asarray([c is not None for c in out], bool)
    bad.extend((n, f"{log.case_column} {v!r} is not in --case-map")
               for n, v, c in zip(lines, values, out, strict=True) if c is None)
    bad.sort()
    return [c or "" for c in out], keep


def _bound(text: str | None, unit: str, flag: str) -> float | None:
    if text is None:
        return None
    t = parse_times([text], [0], unit, flag)
    if t.bad:
        raise ValueError(f"{flag} {text!r} is not a time in the log's unit ({unit})")
    return float(t.epoch[0])


def _weekday_hour(wall_s: float) -> str:
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    minute = int(wall_s % 86400 // 60)
    return f"{days[int((wall_s // 86400 + 3) % 7)]} {minute // 60:02d}:{minute % 60:02d}"

"""Arrival traces: a CSV with the header `t_s,case` (seconds from the start, case name), one arrival a row,
times sorted and non-negative. Written by `python -m simulator trace`, read by the Locust trace
replay and by the simulator; a trace exported from production logs in this format replays the same way.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Collection, Iterable
from pathlib import Path

HEADER = ("t_s", "case")
MAX_ROWS = 1_000_000     # a bound on what a replay holds in memory (a month at ~0.4 requests/s)


def read_trace(path: str | os.PathLike, max_rows: int = MAX_ROWS,
               cases: Collection[str] | None = None) -> list[tuple[float, str]]:
    """The (t_s, case) rows of a trace CSV. ValueError, naming the file and line, when the header is not
    `t_s,case`, a time is not a finite number >= 0 or goes backwards, a case is empty (or not in
    `cases` when given), there are no rows, or more than `max_rows`."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"trace {path} does not exist") from None
    except OSError as err:
        raise ValueError(f"cannot read trace {path}: {err}") from None
    rows: list[tuple[float, str]] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise ValueError(f"trace {path}: the first line must be the header 't_s,case', got {header!r}")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue        # blank lines (a trailing newline) are not arrivals
                if len(rows) >= max_rows:
                    raise ValueError(f"trace {path}: more than {max_rows:,} rows")
                rows.append(_check_row(path, line, row, rows[-1][0] if rows else None, cases))
        except csv.Error as err:
            raise ValueError(f"trace {path}, line {reader.line_num}: {err}") from None
        except UnicodeDecodeError:
            raise ValueError(f"trace {path} is not UTF-8 text") from None
    if not rows:
        raise ValueError(f"trace {path} has no arrivals (only its header)")
    return rows


def _check_row(path: Path, line: int, row: list[str], previous: float | None,
               cases: Collection[str] | None) -> tuple[float, str]:
    where = f"trace {path}, line {line}"
    if len(row) != 2:
        raise ValueError(f"{where}: expected 2 fields 't_s,case', got {len(row)}")
    try:
        t = float(row[0])
    except ValueError:
        raise ValueError(f"{where}: t_s {row[0]!r} is not a number") from None
    case = row[1].strip()
    _check(where, t, case, previous, cases)
    return t, case


def _check(where: str, t: float, case: str, previous: float | None, cases: Collection[str] | None) -> None:
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"{where}: t_s must be a finite number >= 0, got {t!r}")
    if previous is not None and t < previous:
        raise ValueError(f"{where}: t_s {t!r} is before the previous arrival ({previous!r}); sort the trace by t_s")
    if not case:
        raise ValueError(f"{where}: empty case name")
    if cases is not None and case not in cases:
        raise ValueError(f"{where}: unknown case {case!r}; known: {', '.join(sorted(cases))}")


def write_trace(path: str | os.PathLike, rows: Iterable[tuple[float, str]], max_rows: int = MAX_ROWS) -> Path:
    """Write (t_s, case) rows (sorted, t_s >= 0; times to the microsecond) as a trace CSV; the same checks
    as `read_trace`, so what is written can be read back."""
    path = Path(path)
    lines = [",".join(HEADER)]
    previous = None
    for i, (t, case) in enumerate(rows, 1):
        if i > max_rows:
            raise ValueError(f"trace {path}: more than {max_rows:,} rows")
        t = round(float(t), 6)
        _check(f"trace {path}, row {i}", t, case, previous, None)
        if "," in case or "\n" in case or '"' in case:
            raise ValueError(f"trace {path}, row {i}: a case name cannot hold ',', '\"' or a newline: {case!r}")
        lines.append(f"{t:.6f},{case}")
        previous = t
    if len(lines) == 1:
        raise ValueError(f"trace {path}: no arrivals to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path

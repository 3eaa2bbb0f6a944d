"""Arrival traces: a CSV with the header `t_s,case` (seconds from the start, case name), one arrival a row,
times sorted and non-negative. Written by `python -m simulator trace`, read by the Locust trace
replay and by the simulator; a trace exported from production logs in this format replays the same way.

Provenance (optional): lines before the header that start with `#` are comments; one of them may be
`# provenance: {JSON object}` (what `python -m simulator trace import` writes: the source log, the window,
the scaling). A reader that knows nothing of it skips the comments; `read_provenance` returns the object.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Collection, Iterable
from pathlib import Path

import numpy as np

HEADER = ("t_s", "case")
PROVENANCE = "# provenance: "
MAX_PROVENANCE_CHARS = 64_000     # a comment line is read whole: bounded
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
        try:
            skipped = _skip_comments(handle)
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != HEADER:
                raise ValueError(f"trace {path}: the first line must be the header 't_s,case', got {header!r}")
            for row in reader:
                line = skipped + reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue        # blank lines (a trailing newline) are not arrivals
                if len(rows) >= max_rows:
                    raise ValueError(f"trace {path}: more than {max_rows:,} rows")
                rows.append(_check_row(path, line, row, rows[-1][0] if rows else None, cases))
        except csv.Error as err:
            raise ValueError(f"trace {path}, line {skipped + reader.line_num}: {err}") from None
        except UnicodeDecodeError:
            raise ValueError(f"trace {path} is not UTF-8 text") from None
    if not rows:
        raise ValueError(f"trace {path} has no arrivals (only its header)")
    return rows


def _skip_comments(handle) -> int:
    """Move `handle` past the comment lines before the header (the provenance); how many there were.
    (Read apart from the CSV reader: a comment's quotes are not CSV quoting.)"""
    skipped = 0
    while True:
        at = handle.tell()
        line = handle.readline(MAX_PROVENANCE_CHARS + 1)
        if not line.startswith("#"):
            handle.seek(at)
            return skipped
        skipped += 1


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


def read_provenance(path: str | os.PathLike) -> dict | None:
    """The `# provenance: {...}` object of a trace (None when it has none, e.g. a trace written by hand)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.startswith("#"):
                    return None
                if line.startswith(PROVENANCE):
                    if len(line) > MAX_PROVENANCE_CHARS:
                        raise ValueError(f"trace {path}: provenance line over {MAX_PROVENANCE_CHARS:,} characters")
                    try:
                        value = json.loads(line[len(PROVENANCE):])
                    except json.JSONDecodeError as err:
                        raise ValueError(f"trace {path}: provenance is not JSON: {err}") from None
                    return value if isinstance(value, dict) else None
    except FileNotFoundError:
        raise ValueError(f"trace {path} does not exist") from None
    except UnicodeDecodeError:
        raise ValueError(f"trace {path} is not UTF-8 text") from None
    return None


def write_trace(path: str | os.PathLike, rows: Iterable[tuple[float, str]], max_rows: int = MAX_ROWS,
                provenance: dict | None = None) -> Path:
    """Write (t_s, case) rows (sorted, t_s >= 0; times to the microsecond) as a trace CSV; the same checks
    as `read_trace`, so what is written can be read back. `provenance` (JSON-able) goes in a comment line
    before the header. Written to a temporary file renamed at the end: never half a trace."""
    path = Path(path)
    times: list[float] = []
    cases: list[str] = []
    for i, (t, case) in enumerate(rows, 1):
        if i > max_rows:
            raise ValueError(f"trace {path}: more than {max_rows:,} rows")
        times.append(t)
        cases.append(case)
    if not times:
        raise ValueError(f"trace {path}: no arrivals to write")
    t = np.round(np.asarray(times, dtype=float), 6)
    _check_all(path, t, cases)
    head = [PROVENANCE + json.dumps(provenance, sort_keys=True)] if provenance else []
    body = "\n".join([*head, ",".join(HEADER), *(f"{x:.6f},{c}" for x, c in zip(t.tolist(), cases, strict=True))])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(body + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _check_all(path: Path, t: np.ndarray, cases: list[str]) -> None:
    """`_check` on every row, in bulk (a million rows in well under a second): the first bad row's error."""
    bad = ~np.isfinite(t) | (t < 0)
    bad[1:] |= t[1:] < t[:-1]
    for name in set(cases):
        if not name or "," in name or "\n" in name or '"' in name:
            bad[cases.index(name)] = True
    if bad.any():
        i = int(np.argmax(bad))
        where = f"trace {path}, row {i + 1}"
        _check(where, float(t[i]), cases[i], float(t[i - 1]) if i else None, None)
        raise ValueError(f"{where}: a case name cannot hold ',', '\"' or a newline: {cases[i]!r}")

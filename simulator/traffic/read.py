"""A request log read into columns: CSV (with a header), JSON Lines (one object a line) or parquet, the time
column named or detected, the case column optional. Rows that cannot be read are kept aside with their
line number (for parquet: the row number, from 1), never dropped silently.

The stdlib's csv and json readers (both in C) do the reading: they give each row's line number, which a
report of unreadable rows needs, and pandas' C reader does not (its `on_bad_lines` callable needs the
slow Python engine); the times are then parsed in bulk (simulator/traffic/times.py). Parquet is read with
pyarrow, only the two columns needed; a timestamp-typed column becomes epoch seconds there (UTC: a zone
of the column's type is not applied to the hour of day)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from loadlab.trace import HEADER as TRACE_HEADER

MAX_LOG_ROWS = 2_000_000      # rows of a log read at most (a million took ~0.45 GB of memory)
MAX_FIELD_CHARS = 100_000     # a CSV field or JSON line longer than this is not a request log's row

# column names taken as the time column when exactly one of them is present (case-insensitive)
TIME_NAMES = ("t_s", "timestamp", "time", "ts", "datetime", "date", "@timestamp", "created_at", "created",
              "start_time", "request_time", "received_at", "arrival", "arrival_time", "submitted_at")


@dataclass
class RawLog:
    """The readable rows' time values (str or number, as written), case values and line numbers."""
    path: Path
    format: str                       # csv | jsonl
    columns: list[str]
    time_column: str
    case_column: str | None
    times: list = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)    # (line, why) of each unreadable row
    unit: str | None = None           # the time unit when the file's types say it (parquet timestamps)


def log_format(path: Path) -> str:
    """csv or jsonl, from the suffix, else from the first character ('{': JSON Lines)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv", ".txt", ".log"):
        return "csv"
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if head.lstrip().startswith(b"{") else "csv"


def read_log(path: str | Path, time_column: str | None = None, case_column: str | None = None,
             max_rows: int = MAX_LOG_ROWS) -> RawLog:
    """The log's columns. ValueError (one line, naming the file) when it cannot be opened or decoded,
    the time or case column is missing, or the time column is not named and cannot be told."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"log {path} does not exist or is not a file")
    try:
        fmt = log_format(path)
        if fmt == "parquet":
            return _read_parquet(path, time_column, case_column, max_rows)
        with path.open(newline="", encoding="utf-8") as handle:
            reader = _read_csv if fmt == "csv" else _read_jsonl
            return reader(path, handle, time_column, case_column, max_rows)
    except UnicodeDecodeError as err:
        raise ValueError(f"log {path} is not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise ValueError(f"cannot read log {path}: {err.strerror or err}") from None


def pick_column(path: Path, columns: list[str], named: str | None, what: str) -> str:
    if named is not None:
        if named not in columns:
            raise ValueError(f"log {path}: no {what} column {named!r}; columns: {', '.join(columns) or 'none'}")
        return named
    lower = {c.lower(): c for c in columns}
    found = [lower[n] for n in TIME_NAMES if n in lower]
    if len(found) != 1:
        why = f"several could be it ({', '.join(found)})" if found else "none is named like one"
        raise ValueError(f"log {path}: which column holds the time? {why}; name it with --time-column "
                         f"(columns: {', '.join(columns) or 'none'})")
    return found[0]


def _read_csv(path: Path, handle, time_column, case_column, max_rows) -> RawLog:
    csv.field_size_limit(MAX_FIELD_CHARS)
    sample = handle.read(8192)
    handle.seek(0)
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    skipped = _skip_comments(handle)
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise ValueError(f"log {path}, line {skipped + 1}: {err}") from None
    if not header or not any(h.strip() for h in header):
        raise ValueError(f"log {path}, line 1: no header (a CSV log needs one naming its columns)")
    columns = [h.strip() for h in header]
    if columns == list(TRACE_HEADER) and case_column is None:
        case_column = "case"       # an arrival trace (loadlab/trace.py) keeps its cases
    log = RawLog(path, "csv", columns, pick_column(path, columns, time_column, "time"),
                 case_column and pick_column(path, columns, case_column, "case"))
    ti = columns.index(log.time_column)
    ci = columns.index(log.case_column) if log.case_column else None
    width = len(columns)
    times, cases, lines, bad = log.times, log.cases, log.lines, log.bad   # the loop runs per row: locals
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            bad.append((skipped + reader.line_num, str(err)))
            continue
        if not row:
            continue
        if len(row) != width:
            bad.append((skipped + reader.line_num, f"{len(row)} fields, the header has {width}"))
            continue
        value = row[ti].strip()
        if not value:
            bad.append((skipped + reader.line_num, f"empty {log.time_column!r}"))
            continue
        times.append(value)
        cases.append(row[ci].strip() if ci is not None else "")
        lines.append(skipped + reader.line_num)
        if len(times) > max_rows:
            raise ValueError(f"log {log.path}: more than {max_rows:,} rows (cut it, e.g. with head, first)")
    return log


def _read_parquet(path: Path, time_column, case_column, max_rows) -> RawLog:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise ValueError(f"log {path} is not a readable parquet file: {' '.join(str(err).split())}") from None
    if meta.metadata.num_rows > max_rows:
        raise ValueError(f"log {path}: more than {max_rows:,} rows (cut it first)")
    columns = meta.schema_arrow.names
    log = RawLog(path, "parquet", columns, pick_column(path, columns, time_column, "time"),
                 case_column and pick_column(path, columns, case_column, "case"))
    table = meta.read(columns=[c for c in (log.time_column, log.case_column) if c])
    times = table.column(log.time_column)
    if pa.types.is_timestamp(times.type):
        # to epoch seconds in the column's own unit (s, ms, us, ns)
        per_s = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[times.type.unit]
        values = [None if v is None else v / per_s for v in times.cast(pa.int64()).to_pylist()]
        log.unit = "epoch-s"
    else:
        values = times.to_pylist()
    cases = table.column(log.case_column).to_pylist() if log.case_column else [""] * len(values)
    for row, (value, case) in enumerate(zip(values, cases, strict=True), 1):
        if value is None or value == "":
            log.bad.append((row, f"empty {log.time_column!r}"))
            continue
        log.times.append(value.strip() if isinstance(value, str) else value)
        log.cases.append("" if case is None else str(case).strip())
        log.lines.append(row)
    return log


def _skip_comments(handle) -> int:
    """Past the `#` lines before the header (a trace's provenance); how many."""
    skipped = 0
    while True:
        at = handle.tell()
        if not handle.readline(MAX_FIELD_CHARS).startswith("#"):
            handle.seek(at)
            return skipped
        skipped += 1


def _read_jsonl(path: Path, handle, time_column, case_column, max_rows) -> RawLog:
    log = None
    for line, text in enumerate(handle, 1):
        if not text.strip():
            continue
        if len(text) > MAX_FIELD_CHARS:
            log = _bad(log, path, line, f"over {MAX_FIELD_CHARS:,} characters")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            log = _bad(log, path, line, f"not JSON ({err.msg})")
            continue
        if not isinstance(obj, dict):
            log = _bad(log, path, line, "not a JSON object")
            continue
        if log is None or not log.columns:
            bad = log.bad if log else []
            columns = list(obj)
            log = RawLog(path, "jsonl", columns, pick_column(path, columns, time_column, "time"),
                         case_column and pick_column(path, columns, case_column, "case"), bad=bad)
        value = obj.get(log.time_column)
        if value is None or isinstance(value, (dict, list, bool)):
            log.bad.append((line, f"no {log.time_column!r} value" if value is None else
                            f"{log.time_column!r} is not a time: {value!r}"))
            continue
        case = obj.get(log.case_column, "") if log.case_column else ""
        _keep(log, value.strip() if isinstance(value, str) else value, str(case).strip(), line, max_rows)
    if log is None:
        raise ValueError(f"log {path} holds no rows")
    return log


def _bad(log: RawLog | None, path: Path, line: int, why: str) -> RawLog:
    """Note an unreadable line, before the first readable object told the columns too."""
    if log is None:
        log = RawLog(path, "jsonl", [], "", None)
    log.bad.append((line, why))
    return log


def _keep(log: RawLog, time_value, case: str, line: int, max_rows: int) -> None:
    if time_value == "":
        log.bad.append((line, f"empty {log.time_column!r}"))
        return
    if len(log.times) >= max_rows:
        raise ValueError(f"log {log.path}: more than {max_rows:,} rows (cut it, e.g. with head, first)")
    log.times.append(time_value)
    log.cases.append(case)
    log.lines.append(line)

"""Arrival traces: a CSV with header `t_s,case` (seconds from the start, case name), one arrival a line."""

from __future__ import annotations

import csv
from pathlib import Path


def read_trace(path: str | Path) -> list[tuple[float, str]]:
    """The arrivals of a trace file as (t_s, case), in time order."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or {"t_s", "case"} - set(reader.fieldnames):
            raise ValueError(f"trace {path}: the header must be t_s,case (got {reader.fieldnames})")
        rows = [(float(row["t_s"]), row["case"].strip()) for row in reader]
    return sorted(rows, key=lambda r: r[0])

"""What the template (bench/templates/report.html.j2) renders: a page is a list of `Section`s, each a list of
blocks (`Para`, `Heading`, `Plot`, `Table`), a table's cells text or a `Fig` (a number with its origin
badge); and the number formats the cells use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MEASURED, SIMULATED, QUOTED = "measured", "simulated", "quoted"
LABELS = {MEASURED: "measured", SIMULATED: "simulated", QUOTED: "quoted from the article"}


@dataclass(frozen=True)
class Fig:
    """One figure and where it comes from (a table cell with its badge)."""

    text: str
    origin: str


@dataclass
class Para:
    text: str
    kind: str = "p"


@dataclass
class Heading:
    text: str
    kind: str = "h3"


@dataclass
class Plot:
    alt: str
    src: str              # a data: URI, so the page is one file
    kind: str = "plot"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]                 # cells: str, Fig or None
    title: str | None = None
    note: str | None = None
    empty: str | None = None
    kind: str = "table"


@dataclass
class Section:
    id: str
    title: str
    origins: list[str] = field(default_factory=list)
    blocks: list[Any] = field(default_factory=list)
    missing: str | None = None            # shown instead of figures when no report of the role was given


def fig(value: float | int | None, origin: str, unit: str = " s", digits: int = 2) -> Fig | None:
    """A number with its unit and origin; None (rendered '–') when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return Fig(fmt(value, unit, digits), origin)


def fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def money(value: float | None, origin: str, digits: int = 2) -> Fig | None:
    return None if value is None else Fig(f"${value:,.{digits}f}", origin)


def pct(value: float | None, origin: str, digits: int = 1) -> Fig | None:
    return None if value is None else Fig(f"{100 * value:.{digits}f} %", origin)

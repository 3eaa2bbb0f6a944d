"""The reports the page is built from: every report-schema document of reports/measured/ and
reports/simulated/ (other JSON files skipped with a note), looked up by role, and each validation matched
to the measured run it replayed."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bench.report.view import MEASURED
from loadlab.schema import Report

OPEN_MODES = ("open", "trace")


@dataclass
class Loaded:
    reports: list[Report]
    skipped: list[tuple[str, str]]        # (file, why)
    folder: Path                          # where they were read from (reports/)

    def role(self, role: str, kind: str | None = None) -> list[Report]:
        return [r for r in self.reports if r.role == role and (kind is None or r.kind == kind)]

    @property
    def measured(self) -> list[Report]:
        return [r for r in self.reports if r.kind == MEASURED]

    @cached_property
    def twin_of(self) -> dict[int, list[Report]]:
        """id(measured report) -> the validation reports that replayed it."""
        out: dict[int, list[Report]] = {}
        for v in self.role("validation"):
            m = match_measured(v, self.measured)
            if m is not None:
                out.setdefault(id(m), []).append(v)
        return out


def load_reports(reports_dir: Path) -> Loaded:
    """Every *.json of reports/measured and reports/simulated that is a Report; other files are skipped
    with a printed note (validation tables, sweep tables of older runs, Locust's JSON)."""
    loaded = Loaded([], [], reports_dir)
    for folder in (reports_dir / "measured", reports_dir / "simulated"):
        for path in sorted(folder.glob("*.json")):
            try:
                loaded.reports.append(Report.load(path))
            except ValueError as err:
                why = str(err).splitlines()[0]
                loaded.skipped.append((str(path), why))
                print(f"report: skipped {path}: not a report ({why})")
    return loaded


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def match_measured(validation: Report, measured: list[Report]) -> Report | None:
    """The measured report a validation replayed, from `config.simulation.measured`: the same file, else
    the same file name (the validation may have run from another folder), else the same report name."""
    ref = validation.config.simulation.measured if validation.config.simulation else None
    if not ref:
        return None
    for test in (lambda r: r.path is not None and _same_file(r.path, ref),
                 lambda r: r.path is not None and Path(r.path).name == Path(ref).name,
                 lambda r: r.name == ref):
        hits = [r for r in measured if test(r)]
        if hits:
            return hits[0]
    return None


def load_mode(report: Report) -> str:
    return report.config.load.mode if report.config.load else "closed"


def is_open_loop(report: Report) -> bool:
    """Arrivals scheduled independently of the answers (open or trace), not a closed loop or bursts."""
    return load_mode(report) in OPEN_MODES

"""`python -m bench report`: reports/index.html, one self-contained page built from the report-schema
documents in reports/measured/ and reports/simulated/: here the sections in page order (each a module of
sections/), the page rendered by bench/templates/report.html.j2, and the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from bench.report.loading import Loaded, load_reports
from bench.report.sections import (
    answer,
    article,
    autoscaling,
    calibration,
    capacity,
    coldstart,
    concurrency,
    monthly,
    open_loop,
    single,
    sources,
    sweep,
    validation,
)
from bench.report.sections.base import SectionSpec
from bench.report.view import LABELS, Section
from loadlab import article as quoted

# The page's sections, in the order it shows them: a new section is a module in sections/ and a line here.
SECTIONS: list[SectionSpec] = [
    answer.SECTION, single.SECTION, coldstart.SECTION, concurrency.SECTION, open_loop.SECTION, capacity.SECTION,
    autoscaling.SECTION, calibration.SECTION, validation.SECTION, article.SECTION, monthly.SECTION, sweep.SECTION,
    sources.SECTION,
]


def sections(loaded: Loaded) -> list[Section]:
    return [spec.build(loaded) for spec in SECTIONS]


def render(page_sections: list[Section], title: str = "decomposer-loadlab report") -> str:
    env = Environment(loader=PackageLoader("bench", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False)
    return env.get_template("report.html.j2").render(title=title, sections=page_sections, labels=LABELS,
                                                     source=quoted.SOURCE)


def build(reports_dir: Path) -> Path:
    page = render(sections(load_reports(reports_dir)))
    out = reports_dir / "index.html"
    out.write_text(page)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="reports folder")
    args = parser.parse_args(argv)
    out = build(args.reports)
    print(f"report: {out.resolve()}")
    return 0

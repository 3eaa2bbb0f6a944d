"""Article benchmark 1: one request at a time, ours per case and target beside the article's figures."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.view import MEASURED, QUOTED, Fig, Para, Table, fmt
from loadlab import article
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    ours = _ours(reports)
    targets = sorted({t for _, t in ours})
    rows = []
    for case in sorted({c for c, _ in ours} | set(article.SINGLE["local-3090"])):
        row: list[Any] = [case]
        for quoted in (article.SINGLE["local-3090"].get(case), article.SINGLE["vertex-t4"].get(case)):
            row.append(Fig(f"{quoted[0]} ± {quoted[1]} s", QUOTED) if quoted else None)
        row += [ours.get((case, t)) for t in targets]
        rows.append(row)
    return [
        Para("Ours run the tiny random model on this machine's CPU: absolute seconds are not comparable with "
             "a GPU; the split between queue, model and transfer is."),
        Table(["case", "article: local RTX 3090", "article: Vertex T4 (warm)", *[f"ours: {t}" for t in targets]],
              rows)]


def _ours(reports: list[Report]) -> dict[tuple[str, str], Fig]:
    """(case, target) -> our mean ± std (p95, model time), from the stages that ran one case."""
    ours: dict[tuple[str, str], Fig] = {}
    for report in reports:
        for stage in report.stages:
            cases = {j.case for j in stage.jobs}
            s = stage.summary
            if len(cases) != 1 or not s.count:
                continue
            model = s.service_s.mean
            ours[(cases.pop(), report.target)] = Fig(
                f"{fmt(s.mean)} ± {fmt(s.std)} s (p95 {fmt(s.p95)}, model {fmt(model)})", MEASURED)
    return ours


SECTION = SectionSpec(
    "single", "Single request (article benchmark 1)", (MEASURED, QUOTED), by_role("single", MEASURED),
    missing="No single-request report (role 'single'): run `python -m bench single`.", blocks=_blocks)

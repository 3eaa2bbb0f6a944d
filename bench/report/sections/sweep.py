"""Cost against monthly volume (`python -m simulator sweep`): its plot, the recommended setting per
volume, and the article's own recommendations."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import extra_tables
from bench.report.view import QUOTED, SIMULATED, Fig, Para, Plot, Table, fig, fmt, money
from loadlab.schema import Report

ARTICLE_RECOMMENDATIONS = Table(["volume/month", "the article's recommendation"], [
    ["< 100", Fig("Vertex, min replicas 0", QUOTED)], ["100–5,000", Fig("Vertex, min 0 (1 at peak)", QUOTED)],
    ["5,000–50,000", Fig("Vertex, min 1–2", QUOTED)], ["> 50,000", Fig("consider a local GPU", QUOTED)]])


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = []
    for report in reports:
        sweep = report.extra
        image = _sweep_png(report, loaded.folder)
        if image:
            blocks.append(Plot("Monthly cost vs volume per setting (simulated)",
                               "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()))
        be = sweep.get("break_even_per_month")
        blocks.append(Para(f"p95 SLO {fmt(sweep.get('slo_p95_s'), ' s')}. Local-GPU break-even: "
                           + (f"about {be:,.0f} requests/month." if be else "not within the volumes swept.")))
        rows = [[fmt(r.get("volume")), r.get("recommended") or "none meets the SLO",
                 money(r.get("cost"), SIMULATED), fig(r.get("p95_s"), SIMULATED, " s", 0),
                 r.get("runner_up") or "–", r.get("why", "")] for r in sweep.get("recommendations", [])]
        if rows:
            blocks.append(Table(["volume/month", "recommended", "per month", "p95", "runner-up", "why"], rows))
        blocks += extra_tables(report)
    blocks.append(ARTICLE_RECOMMENDATIONS)
    return blocks


def _sweep_png(report: Report, reports_dir: Path) -> Path | None:
    """The sweep's plot: the recorded path as written, else beside the report, else under reports/simulated."""
    recorded = report.extra.get("png")
    candidates = [Path(recorded)] if recorded else []
    if recorded and report.path:
        candidates.append(Path(report.path).parent / Path(recorded).name)
    candidates.append(reports_dir / "simulated" / "sweep.png")
    return next((p for p in candidates if p.is_file()), None)


SECTION = SectionSpec(
    "sweep", "Cost vs monthly volume and the recommendation", (SIMULATED, QUOTED),
    lambda loaded: [r for r in by_role("sweep")(loaded) if "recommendations" in r.extra],   # not the searches
    missing="No sweep (role 'sweep'): run `python -m simulator sweep`.", blocks=_blocks)

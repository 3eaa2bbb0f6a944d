"""The last section: every report read, and the files skipped because they are not reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec
from bench.report.view import Table
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    rows = [[Path(r.path).name if r.path else r.name, r.role, r.kind, r.target, r.name, r.created]
            for r in reports]
    blocks: list[Any] = [Table(["file", "role", "kind", "target", "name", "created"], rows,
                               empty="No report found.")]
    if loaded.skipped:
        blocks.append(Table(["file", "why"], [[Path(f).name, why] for f, why in loaded.skipped],
                            title="Files skipped (not reports)"))
    return blocks


# Shown with no report too: it says none was found, and which files were skipped.
SECTION = SectionSpec("sources", "Reports read", (), reports=lambda loaded: loaded.reports, missing=None,
                      blocks=_blocks)

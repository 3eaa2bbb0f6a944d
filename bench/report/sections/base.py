"""What a section module declares: its id, title and origins, which reports it shows, what it says when
there are none (and which command writes them), and how it builds its blocks from them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report.loading import Loaded
from bench.report.view import Section
from loadlab.schema import Report


def by_role(role: str, kind: str | None = None) -> Callable[[Loaded], list[Report]]:
    """The loaded reports of a role (and kind)."""
    return lambda loaded: loaded.role(role, kind)


@dataclass(frozen=True)
class SectionSpec:
    id: str
    title: str
    origins: tuple[str, ...]
    reports: Callable[[Loaded], list[Report]]
    missing: str | None                            # shown when there are no reports; None: built anyway
    blocks: Callable[[list[Report], Loaded], list[Any]]

    def build(self, loaded: Loaded) -> Section:
        section = Section(self.id, self.title, list(self.origins))
        reports = self.reports(loaded)
        if reports or self.missing is None:
            section.blocks = self.blocks(reports, loaded)
        else:
            section.missing = self.missing
        return section

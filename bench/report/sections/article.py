"""The article's scenario replayed from its own figures (`python -m simulator article`): its local bursts
under three queue models, its Vertex run against what its replicas can do, and its monthly bill."""

from __future__ import annotations

from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec, by_role
from bench.report.tables import extra_tables
from bench.report.view import QUOTED, SIMULATED, Fig, Para, Table, fig, fmt, money
from loadlab.blocks import ArticleLocalRow, ArticleReplay
from loadlab.schema import Report


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    blocks: list[Any] = []
    for report in reports:
        replay = ArticleReplay.of(report)
        rows = [_local_row(r) for r in replay.local]
        if rows:
            blocks += [
                Para("Local rows: the article's means match a server where all jobs share the GPU at once "
                     "(processor sharing, N×S), not a FIFO queue ((N+1)/2×S), and sharing is what ran it out "
                     "of memory at 20."),
                Table(["N at once", "article local", "FIFO server", "FIFO closed form", "processor sharing N·S",
                       "bounded queue 16"], rows)]
        if replay.vertex:
            blocks.append(_vertex_table(replay.vertex))
        if replay.cost:
            blocks.append(_cost_table(replay.cost))
        blocks += extra_tables(report)
    return blocks


def _local_row(r: ArticleLocalRow) -> list[Any]:
    """One burst size of the article's local run: quoted, and simulated under each queue model."""
    quoted = f"{r.quoted_succeeded}/{r.concurrency}, " + (
        fmt(r.quoted_mean_s, " s", 1) if r.quoted_mean_s else r.quoted_note or "")
    bounded = r.bounded_queue_16
    return [str(r.concurrency), Fig(quoted, QUOTED), fig(r.fifo_simulated_mean_s, SIMULATED,
            " s", 1), fig(r.fifo_closed_form_mean_s, SIMULATED, " s", 1),
            fig(r.processor_sharing_mean_s, SIMULATED, " s", 1),
            Fig(f"{bounded.served} served / {bounded.rejected} rejected (429)", SIMULATED)
            if bounded else None]


def _vertex_table(v: dict[str, Any]) -> Table:
    return Table(["article's Vertex run, 20 at once", "value"], [
        ["article: mean", fig(v.get("quoted_mean_s"), QUOTED, " s", 1)],
        ["rounds of 34.2 s needed on 3 replicas", fig(v.get("rounds_needed"), SIMULATED, "")],
        ["3 warm replicas, mean", fig(v.get("three_warm_replicas_simulated_mean_s"), SIMULATED, " s", 1)],
        ["1 warm, autoscaling to 3, mean", fig(v.get("one_warm_autoscaled_to_3_simulated_mean_s"),
                                               SIMULATED, " s", 1)]],
        note=v.get("note"))


def _cost_table(c: dict[str, Any]) -> Table:
    bill = c.get("replica_second_bill", {})
    on_demand, spot = bill.get("on_demand", {}), bill.get("spot", {})
    return Table(["10,000 requests/month", "$/month", "how"], [
        ["article naive", money(c.get("quoted_naive"), QUOTED), "10,000 × 30 s busy GPU time × $0.45/h"],
        ["article 'optimized'", money(c.get("quoted_optimized"), QUOTED),
         "20% cache, spot 70% off, busy time only"],
        ["replica-second bill, on demand", money(on_demand.get("monthly"), SIMULATED),
         f"{fmt(on_demand.get('replica_hours'), ' replica-h', 0)} billed, machine + T4"],
        ["replica-second bill, spot", money(spot.get("monthly"), SIMULATED),
         "the article's own settings, every replica billed while up"]])


SECTION = SectionSpec(
    "article", "The article replayed from its own figures", (SIMULATED, QUOTED), by_role("article"),
    missing="No article replay (role 'article'): run `python -m simulator article`.", blocks=_blocks)

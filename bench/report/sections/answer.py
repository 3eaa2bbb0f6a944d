"""The answer first: at each volume of the sweep (`python -m simulator sweep`, decided by default), the
recommended setting with its $/month, p95 and SLO attainment and their 95 % intervals, the runner-up, whether
the choice is decided, and beside each figure the simulator's validation error for that kind (the
validation reports loaded, simulator/recommend.py); the bill of the recommendation at one volume; the
search's best against the best fixed setting when a search report (`simulator search`) was given."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bench.report.loading import Loaded
from bench.report.sections.base import SectionSpec
from bench.report.view import SIMULATED, Fig, Para, Plot, Table, fmt
from loadlab.schema import Report
from simulator.recommend import block, validation_errors


def _reports(loaded: Loaded) -> list[Report]:
    return [r for r in loaded.role("sweep") if "recommendations" in r.extra][:1]


def _pm(value, half, digits=2, scale=1.0, unit="", prefix="") -> Fig | None:
    if value is None:
        return None
    text = f"{prefix}{value * scale:,.{digits}f}" + (f" ± {half * scale:,.{digits}f}" if half is not None else "")
    return Fig(text + unit, SIMULATED)


def _newest(reports: list[Report]) -> list[Report]:
    newest: dict[str, Report] = {}
    for r in reports:
        if r.name not in newest or r.created > newest[r.name].created:
            newest[r.name] = r
    return list(newest.values())


def _blocks(reports: list[Report], loaded: Loaded) -> list[Any]:
    sweep = reports[0].extra
    errors = validation_errors(_newest(loaded.role("validation")))
    volumes = sweep.get("volumes") or [r["volume"] for r in sweep["recommendations"]]
    answers = [block(sweep, v, errors) for v in volumes]
    rows = []
    for a in answers:
        b, s = a.get("best"), a.get("second")
        if b is None:
            rows.append([fmt(a["volume"]), "none meets the SLO", "–", None, "", None, "", None, "", "–", a.get("why")])
            continue
        choice = {True: "decided", False: "NOT decided"}.get(a["decided"], "one month: not decided")
        rows.append([fmt(a["volume"]), b["setting"], choice,
                     _pm(b["cost"], b["cost_ci95"], prefix="$"), b["errors"]["cost"],
                     _pm(b["p95_s"], b["p95_ci95"], 0, unit=" s"), b["errors"]["p95"],
                     _pm(b["slo_attainment"], b["slo_attainment_ci95"], 1, 100, " %"), b["errors"]["slo_attainment"],
                     f"{s['setting']} (${s['cost']:,.2f})" if s else "–", a.get("decision") or a.get("why")])
    out: list[Any] = [
        Para(f"Which deployment, at your volume, with what latency and what bill: the simulator's answer for a p95 SLO "
             f"of {sweep['slo_p95_s']:g} s, losing at most 0.1 % of requests. Intervals are 95 % over simulated "
             f"months with the same seeds for every setting; each figure's validation error is the largest "
             f"|error| the simulator showed against measured runs of that kind on this machine (or 'not "
             f"validated here'). {sweep.get('mode', '')}."),
        Table(["volume/month", "recommended", "choice", "$/month", "cost: validation", "p95", "p95: validation",
               "SLO attained", "attainment: validation", "runner-up", "why"], rows,
              title="The recommendation (simulated)")]
    out += _bill(answers)
    out += _search(loaded)
    return out


def _bill(answers: list[dict]) -> list[Any]:
    with_bill = [a for a in answers if a.get("bill")]
    if not with_bill:
        return []
    a = min(with_bill, key=lambda x: abs(x["volume"] - 10000))     # the article's volume, or the nearest
    rows = [[x["item"], f"{x['quantity']:,.2f} {x['unit']}", f"${x['price']:,.4g}", Fig(f"${x['cost']:,.2f}", SIMULATED),
             f"{100 * x['share']:.1f} %", x["source"]] for x in a["bill"]["lines"]]
    rows.append(["total", "", "", Fig(f"${a['bill']['total']:,.2f}", SIMULATED), "100 %", ""])
    return [Table(["line", "quantity", "price", "$/month", "share", "source"], rows,
                  title=f"The bill of {a['best']['setting']} at {a['volume']:,}/month (mean over its months)")]


def _search(loaded: Loaded) -> list[Any]:
    found = [r for r in loaded.role("sweep") if "search" in r.extra]
    if not found:
        return [Para("Settings searched: no search report; run `python -m simulator search --monthly 10000`.")]
    out: list[Any] = []
    for r in found:
        res, slo = r.extra["search"], r.extra["slo_p95_s"]
        best, fixed = res.get("best"), res.get("best_fixed")
        rows = [[what, fmt(c["cost"], digits=2) if c else "none qualifies", fmt(c["p95_s"], " s", 1) if c else "",
                 r.extra.get("best_flags") if c is best and c else (c and _flags(c))]
                for what, c in (("best searched", best), ("best fixed setting", fixed))]
        saving = res.get("saving")
        out.append(Table(["", "$/month", "p95", "as `simulator run` flags"], rows,
                         title=f"Settings searched at {r.config.simulation.monthly:,}/month, p95 <= {slo:g} s "
                               f"({len(res['trials'])} Optuna trials)",
                         note=(f"the searched configuration is {100 * saving:.1f} % cheaper" if saving and saving > 0
                               else "no searched configuration is cheaper than the best fixed setting")))
        png = Path(r.extra.get("png", ""))
        if png.is_file():
            out.append(Plot("Searched configurations: cost vs p95 and the Pareto frontier (simulated)",
                            "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()))
    return out


def _flags(c: dict) -> str:
    from simulator.search import flags
    return flags(c["point"])


SECTION = SectionSpec(
    "answer", "The answer: which deployment, at what cost and latency", (SIMULATED,), _reports,
    missing="No sweep (role 'sweep'): run `python -m simulator sweep` (decided by default).", blocks=_blocks)

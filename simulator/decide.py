"""A decided sweep: replications with common random numbers, added until the cheapest setting meeting the
SLO separates from the runner-up, or a cap is hit ("undecided: within X %").

1. Screening: every setting at every volume, one replication of `screen_days` days (seed `seed`); a setting
   stays in contention when it meets the SLO there with a margin (p95 <= `SCREEN_SLO_MARGIN` x SLO, losses
   within 0.1 %) and costs at most `SCREEN_COST_MARGIN` x the cheapest such; at most `top` of them, at
   least two (the runner-up the choice is decided against).
2. Months: the contenders, full months, replication i with seed `seed + i` for *every* setting (common random
   numbers: the settings see the same arrivals), two to start with; then one more for the best and the
   runner-up until the 95 % interval of their paired cost difference (runner-up - best, same seeds)
   excludes zero, or `cap` replications. The same cost in every replication (two fixed-cost local settings)
   answers the cost question at once ("either will do"); the lower mean p95 is listed first.
The seeds are fixed, so the output is the same run to run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from loadlab.stats import mean_ci95
from simulator.traffic.basis import MONTH, Basis

SCREEN_SLO_MARGIN = 1.25
SCREEN_COST_MARGIN = 1.5


def meets(r: dict, slo: float, margin: float = 1.0) -> bool:
    lost = r["failed"] + r["rejected"]
    return r["p95_s"] is not None and r["p95_s"] <= slo * margin and lost <= 0.001 * r["arrivals"]


def contenders(screen: list[dict], slo: float, top: int) -> list[str]:
    """The settings of one volume's screening rows worth full months, cheapest first."""
    ok = sorted((r for r in screen if meets(r, slo, SCREEN_SLO_MARGIN)), key=lambda r: r["monthly_cost"])
    if not ok:
        return []
    cheapest = ok[0]["monthly_cost"]
    near = [r["setting"] for r in ok if r["monthly_cost"] <= SCREEN_COST_MARGIN * cheapest + 1e-9][:top]
    return near if len(near) > 1 else [r["setting"] for r in ok[:2]]     # a runner-up to decide against


def separation(best: list[dict], second: list[dict]) -> dict:
    """The paired difference runner-up - best over the replications both have (same seeds)."""
    n = min(len(best), len(second))
    diffs = [second[i]["monthly_cost"] - best[i]["monthly_cost"] for i in range(n)]
    d, half = mean_ci95(diffs)
    if n > 1 and max(abs(x) for x in diffs) < 1e-9:
        # the same bill every month (fixed-cost settings): the cost question is answered, either will do;
        # the p95 difference is reported, not waited for
        p95 = [(second[i]["p95_s"] or 0.0) - (best[i]["p95_s"] or 0.0) for i in range(n)]
        pd, phalf = mean_ci95(p95)
        return {"on": "same cost", "difference": pd, "ci95": phalf, "n": n, "decided": True}
    decided = half is not None and d - half > 0
    return {"on": "cost", "difference": d, "ci95": half, "n": n, "decided": decided}


def rank(runs: dict[str, list[dict]], slo: float, combine: Callable) -> list[tuple[str, dict]]:
    """Contenders meeting the SLO over their months (means), cheapest first (ties: lower p95, then the name;
    simulator/sweep.py's `recommend` ranks the same way)."""
    rows = [(s, combine(rs)) for s, rs in runs.items() if rs]
    ok = [(s, r) for s, r in rows if meets(r, slo)]
    return sorted(ok, key=lambda x: (round(x[1]["monthly_cost"], 6), x[1]["p95_s"] or 0.0, x[0]))


def decide_volume(runs: dict[str, list[dict]], slo: float, combine: Callable, cap: int,
                  basis: Basis = MONTH) -> tuple[dict, list[str]]:
    """Where one volume stands: its decision, and the settings that need one more month (none when done).
    `basis`: how the text states a cost difference and a replication (a trace: its own span, simulator/traffic/basis.py)."""
    unit = basis.replications
    ranked = rank(runs, slo, combine)
    if not ranked:
        return {"decided": False, "decision": "no contender meets the SLO over full months"}, []
    if len(ranked) == 1:
        return {"decided": True, "decision": f"{ranked[0][0]} is the only contender meeting the SLO"}, []
    (best, _), (second, _) = ranked[0], ranked[1]
    sep = separation(runs[best], runs[second])
    if sep["decided"] and sep["on"] == "same cost":
        return {"decided": True, **sep, "decision": f"same cost every {'month' if unit == 'months' else 'replication'} as {second} (either will do); its p95 "
                f"is {sep['difference']:,.1f} +- {sep['ci95']:,.1f} s lower over {sep['n']} {unit}"}, []
    if sep["decided"]:
        return {"decided": True, **sep, "decision": f"decided over {sep['n']} {unit} (same seeds): runner-up "
                f"{second} costs ${basis.factor * sep['difference']:,.{basis.digits}f} +- "
                f"{basis.factor * sep['ci95']:,.{basis.digits}f} "
                f"more{'' if basis.per == '/month' else basis.per}"}, []
    if sep["n"] >= cap:
        best_cost = ranked[0][1]["monthly_cost"] or 1.0
        within = 100 * (abs(sep["difference"] or 0) + (sep["ci95"] or 0)) / best_cost
        return {"decided": False, **sep, "decision": f"undecided: within {within:.1f} % after {sep['n']} {unit} "
                f"({best} vs {second})"}, []
    return {"decided": False, **sep, "decision": "more months needed"}, [best, second]


def month_tasks(volume: int, settings: list[str], have: dict[str, list[dict]], base_task: Callable, seed: int,
                upto: int) -> list[dict]:
    """Tasks bringing each setting to `upto` months (seeds seed, seed + 1, ...: the same for every setting)."""
    return [base_task(volume, s, seed + i) for s in settings for i in range(len(have.get(s, [])), upto)]


def screening_workload(workload, screen_days: float):
    return replace(workload, days=min(screen_days, workload.days))

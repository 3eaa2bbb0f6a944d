"""`python -m simulator search`: each kind's settings searched with Optuna (TPE with constraints) for the
cheapest configuration that meets the p95 SLO and loses at most 0.1 % of requests with 95 % confidence.

- Space (`suggest`): Vertex min/max in business hours and at night, target utilisation, scale-down delay,
  spot; Ray min/max, target ongoing requests, up/downscale delays, the node idle timeout; local GPUs and
  micro-batch size.
- A trial is one simulated month (seed `seed`: every trial sees the same arrivals, common random numbers);
  constraints p95 - SLO <= 0 and lost share - 0.1 % <= 0.
- Check: the best trials (and the best fixed setting of simulator/sweep.py's list, same month) are run for
  `CHECK_MONTHS` months (seeds seed..): a configuration qualifies when the upper end of the 95 % interval of
  its p95 is within the SLO and that of its lost share within 0.1 %; the cheapest qualifying one wins.
- Output: the best as `simulator run` flags, how much cheaper than the best fixed setting, and the
  cost-vs-p95 Pareto frontier of the trials (a PNG beside the report).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

from loadlab.schema import LoadConfig, Report, RunConfig, SimulationConfig
from loadlab.stats import mean_ci95
from simulator import cluster
from simulator.autoscaling.vertex import hours_schedule
from simulator.engine import run_month
from simulator.scenarios import Scenario, ray_defaults, scenario
from simulator.sweep import SETTINGS, base
from simulator.traffic.basis import MONTH, Basis, TraceTraffic, run_priced

CHECK_MONTHS = 3
CHECK_TOP = 4
LOSS_LIMIT = 0.001


def suggest(trial, kinds: list[str]) -> dict:
    """One point of the space: {"kind": ..., settings...} (define-by-run: each kind its own parameters)."""
    kind = trial.suggest_categorical("kind", kinds)
    if kind == "vertex":
        bmax = trial.suggest_int("business_max", 1, 8)
        nmax = trial.suggest_int("night_max", 1, 4)
        return {"kind": kind, "business_min": min(trial.suggest_int("business_min", 0, 3), bmax), "business_max": bmax,
                "night_min": min(trial.suggest_int("night_min", 0, 2), nmax), "night_max": nmax,
                "target_utilisation": trial.suggest_float("target_utilisation", 0.3, 0.95),
                "scale_down_delay_s": trial.suggest_float("scale_down_delay_s", 30, 1800, log=True),
                "spot": trial.suggest_categorical("spot", [False, True])}
    if kind == "ray":
        hi = trial.suggest_int("ray_max", 1, 8)
        return {"kind": kind, "ray_min": min(trial.suggest_int("ray_min", 0, 2), hi), "ray_max": hi,
                "target_ongoing": trial.suggest_float("target_ongoing", 0.5, 3.0),
                "upscale_delay_s": trial.suggest_float("upscale_delay_s", 0, 120),
                "downscale_delay_s": trial.suggest_float("downscale_delay_s", 30, 1800, log=True),
                "node_idle_timeout_s": trial.suggest_float("node_idle_timeout_s", 0, 600)}
    return {"kind": "local", "gpus": trial.suggest_int("gpus", 1, 4), "max_batch": trial.suggest_int("max_batch", 1, 4)}


def build(point: dict, b: Scenario) -> Scenario:
    """The scenario of a point (a named fixed setting when it has "setting")."""
    if "setting" in point:
        return scenario(point["setting"], b)
    if point["kind"] == "vertex":
        v = replace(b.vertex, schedule=hours_schedule((point["business_min"], point["business_max"]),
                                                      (point["night_min"], point["night_max"])),
                    target_utilisation=point["target_utilisation"], scale_down_delay_s=point["scale_down_delay_s"],
                    spot=point["spot"])
        return replace(b, kind="vertex", vertex=v, name="vertex-searched")
    if point["kind"] == "ray":
        r = replace(ray_defaults(), min_replicas=point["ray_min"], max_replicas=point["ray_max"],
                    target_ongoing_requests=point["target_ongoing"], upscale_delay_s=point["upscale_delay_s"],
                    downscale_delay_s=point["downscale_delay_s"], node_idle_timeout_s=point["node_idle_timeout_s"])
        return replace(b, kind="ray", ray=r, name="ray-searched")
    return replace(b, kind="local", gpus=point["gpus"], max_batch=point["max_batch"], batch_marginal=0.7,
                   name="local-searched")


def flags(point: dict) -> str:
    """The point as `python -m simulator run` flags."""
    if "setting" in point:
        return f"--deployments {point['setting']}"
    if point["kind"] == "vertex":
        return (f"--deployments vertex --business-min-max {point['business_min']},{point['business_max']} "
                f"--night-min-max {point['night_min']},{point['night_max']} "
                f"--target-utilisation {point['target_utilisation']:.2f} --scale-down-delay "
                f"{point['scale_down_delay_s']:.0f}" + (" --spot" if point["spot"] else ""))
    if point["kind"] == "ray":
        return (f"--deployments ray --ray-min-max {point['ray_min']},{point['ray_max']} --ray-target-ongoing "
                f"{point['target_ongoing']:.2f} --ray-upscale-delay {point['upscale_delay_s']:.0f} "
                f"--ray-downscale-delay {point['downscale_delay_s']:.0f} --ray-node-idle-timeout "
                f"{point['node_idle_timeout_s']:.0f}")
    return f"--deployments local --gpus {point['gpus']} --max-batch {point['max_batch']} --batch-marginal 0.7"


def evaluate(task: dict) -> dict:
    """One month of one point: cost, p95, lost share, SLO attainment."""
    sc = build(task["point"], base(task["prices"], task["profile"], task["fit"]))
    if task.get("trace") is not None:     # the trace's arrivals, priced as `run --trace` (traffic/basis.py)
        r = run_priced(sc, task["trace"], task["seed"], task["slo"])
    else:
        r = run_month(sc, replace(task["workload"], monthly=task["monthly"]), seed=task["seed"], slo_e2e_s=task["slo"])
    lost = (r["failed"] + r["rejected"] + r["in_flight"]) / r["arrivals"] if r["arrivals"] else 0.0
    return {"point": task["point"], "seed": task["seed"], "cost": r["monthly_cost"], "p95_s": r["latency_s"]["p95"],
            "lost_share": lost, "slo_attainment": r.get("slo_attainment"), "arrivals": r["arrivals"]}


def verdict(months: list[dict], slo: float) -> dict:
    """Mean and 95 % interval over months of cost, p95 and lost share; qualified at the intervals' upper ends."""
    cost, cost_h = mean_ci95([m["cost"] for m in months])
    p95s = [m["p95_s"] if m["p95_s"] is not None else math.inf for m in months]
    p95, p95_h = mean_ci95(p95s) if all(math.isfinite(x) for x in p95s) else (math.inf, 0.0)
    lost, lost_h = mean_ci95([m["lost_share"] for m in months])
    ok = p95 + (p95_h or 0.0) <= slo and lost + (lost_h or 0.0) <= LOSS_LIMIT
    return {"point": months[0]["point"], "months": len(months), "cost": cost, "cost_ci95": cost_h, "p95_s": p95,
            "p95_ci95": p95_h, "lost_share": lost, "lost_share_ci95": lost_h, "qualified": ok}


def pareto(trials: list[dict]) -> list[dict]:
    """The trials no other beats on both cost and p95 (losses within the limit), cheapest first."""
    pts = sorted((t for t in trials if t["p95_s"] is not None and t["lost_share"] <= LOSS_LIMIT),
                 key=lambda t: (t["cost"], t["p95_s"]))
    front, best_p95 = [], math.inf
    for t in pts:
        if t["p95_s"] < best_p95:
            front.append(t)
            best_p95 = t["p95_s"]
    return front


ARTICLE_POINT = {"kind": "vertex", "business_min": 1, "business_max": 3, "night_min": 0, "night_max": 1,
                 "target_utilisation": 0.6, "scale_down_delay_s": 300.0, "spot": False}


def _evaluate_all(tasks: list[dict], pool) -> list[dict]:
    return list(pool.map(evaluate, tasks)) if pool is not None else [evaluate(t) for t in tasks]


def search(monthly: int, slo: float, kinds: list[str], trials: int, budget_s: float, prices: dict, workload,
           seed: int = 1, profile: str | None = None, fit: str = "empirical", processes: int = 2,
           ray_address: str | None = None, trace: TraceTraffic | None = None) -> dict:
    """The search's figures: trials, fixed settings, checked candidates, best (overall and per kind), saving
    against the best fixed setting, frontier, timings. One study per kind, `trials` shared evenly (the cheap
    kind's small space would otherwise take every trial); a point already simulated is not simulated again.
    `trace`: every trial on that trace's arrivals (a check's further "months" redraw its service times); the
    costs stay $/month of that traffic, the objective the same as its own bill x a constant."""
    common = {"monthly": monthly, "slo": slo, "prices": prices, "profile": profile, "fit": fit, "workload": workload,
              "trace": trace}
    t0 = time.time()
    fixed_names = [s for s in SETTINGS if scenario(s).kind in kinds]
    done: list[dict] = []
    with cluster.pool(processes, ray_address) as pool:
        fixed = _evaluate_all([{**common, "point": {"setting": s, "kind": scenario(s).kind}, "seed": seed}
                               for s in fixed_names], pool)
        for i, kind in enumerate(kinds):
            share = (trials - len(done)) // (len(kinds) - i)
            deadline = t0 + budget_s * (i + 1) / len(kinds)
            done += _study(kind, share, deadline, slo, common, seed, processes, pool)
        searched_s = time.time() - t0
        checked = _check(done, fixed, slo, common, seed, pool)
    best = next((c for c in checked if c["qualified"] and "setting" not in c["point"]), None)
    best_fixed = next((c for c in checked if c["qualified"] and "setting" in c["point"]), None)
    per_kind = {k: next((c for c in checked if c["qualified"] and "setting" not in c["point"]
                         and c["point"]["kind"] == k), None) for k in kinds}
    saving = (1 - best["cost"] / best_fixed["cost"]) if best and best_fixed and best_fixed["cost"] else None
    return {"trials": done, "fixed": fixed, "checked": checked, "best": best, "best_fixed": best_fixed,
            "best_per_kind": per_kind, "saving": saving, "pareto": pareto(done), "search_s": searched_s,
            "wall_s": time.time() - t0}


def _study(kind: str, trials: int, deadline: float, slo: float, common: dict, seed: int, processes: int,
           pool) -> list[dict]:
    """One kind's Optuna study: `trials` trials (or until `deadline`), `processes` at a time."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)   # constraints_func
    sampler = optuna.samplers.TPESampler(seed=seed, constraints_func=lambda t: t.user_attrs["constraints"])
    study = optuna.create_study(direction="minimize", sampler=sampler)
    if kind == "vertex":        # the article's own settings are a point of the space: start from them
        study.enqueue_trial({k: v for k, v in ARTICLE_POINT.items() if k != "kind"} | {"kind": "vertex"})
    seen: dict[str, dict] = {}
    done: list[dict] = []
    while len(done) < trials and time.time() < deadline:
        asked = [study.ask() for _ in range(min(processes, trials - len(done)))]
        points = [suggest(t, [kind]) for t in asked]
        new = {flags(p): p for p in points if flags(p) not in seen}
        for res in _evaluate_all([{**common, "point": p, "seed": seed} for p in new.values()], pool):
            seen[flags(res["point"])] = res
        for trial, p in zip(asked, points, strict=True):
            res = seen[flags(p)]
            trial.set_user_attr("constraints", [(res["p95_s"] if res["p95_s"] is not None else 1e9) - slo,
                                                res["lost_share"] - LOSS_LIMIT])
            study.tell(trial, res["cost"])
            done.append({**res, "point": p})
    return done


def _check(done: list[dict], fixed: list[dict], slo: float, common: dict, seed: int, pool) -> list[dict]:
    """The cheapest feasible trials of each kind and fixed settings, CHECK_MONTHS months each; cheapest first."""
    def firsts(rows: list[dict], n: int) -> list[dict]:
        ok = sorted((r for r in rows if r["p95_s"] is not None and r["p95_s"] <= slo and r["lost_share"] <= LOSS_LIMIT),
                    key=lambda r: r["cost"])
        seen, out = set(), []
        for r in ok:
            key = flags(r["point"])
            if key not in seen:
                seen.add(key)
                out.append(r)
        return out[:n]

    kinds = sorted({r["point"]["kind"] for r in done})
    cands = [c for k in kinds for c in firsts([r for r in done if r["point"]["kind"] == k], CHECK_TOP // 2)]
    cands += firsts(fixed, 2)
    more = _evaluate_all([{**common, "point": c["point"], "seed": seed + i} for c in cands
                          for i in range(1, CHECK_MONTHS)], pool)
    verdicts = []
    for c in cands:
        months = [c] + [m for m in more if flags(m["point"]) == flags(c["point"])]
        verdicts.append(verdict(months, slo))
    return sorted(verdicts, key=lambda v: v["cost"])


def plot(result: dict, slo: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for kind, marker in (("vertex", "o"), ("ray", "s"), ("local", "^")):
        pts = [t for t in result["trials"] if t["point"]["kind"] == kind and t["p95_s"] is not None]
        ax.scatter([t["p95_s"] for t in pts], [t["cost"] for t in pts], marker=marker, alpha=0.4, label=f"{kind} trials")
    front = result["pareto"]
    ax.step([t["p95_s"] for t in front], [t["cost"] for t in front], where="post", color="k", lw=1.2,
            label="Pareto frontier (cost vs p95)")
    fx = [t for t in result["fixed"] if t["p95_s"] is not None]
    ax.scatter([t["p95_s"] for t in fx], [t["cost"] for t in fx], marker="x", color="r", label="fixed settings")
    ax.axvline(slo, color="grey", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("p95 latency, s (simulated month)")
    ax.set_ylabel("monthly cost, $ (simulated)")
    ax.set_title("Searched configurations: cost vs p95 (dashed: the SLO)")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _describe(c: dict | None, basis: Basis = MONTH) -> str:
    if c is None:
        return "none qualifies"
    f, d = basis.factor, basis.digits
    return (f"${f * c['cost']:,.{d}f} +- {f * (c['cost_ci95'] or 0):,.{d}f}{basis.per}, p95 {c['p95_s']:,.1f} +- "
            f"{c['p95_ci95'] or 0:,.1f} s, lost {100 * c['lost_share']:.3f} % over {c['months']} {basis.replications}: "
            f"{flags(c['point'])}")


def cmd_search(args: argparse.Namespace) -> int:
    from simulator.recommend import traffic_and_volume

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in ("vertex", "ray", "local") for k in kinds):
        raise ValueError(f"--kinds: comma-separated from vertex, ray, local; got {args.kinds!r}")
    prices, workload, traffic, monthly = traffic_and_volume(args)
    what = f" --trace: {traffic.describe()};" if traffic else f": {monthly:,}/month,"
    print(f"search{what} p95 <= {args.slo_p95:g} s, kinds {','.join(kinds)}, up to {args.trials} "
          f"trials or {args.budget_s:g} s on {args.processes} processes ...", flush=True)
    res = search(monthly, args.slo_p95, kinds, args.trials, args.budget_s, prices, workload, args.seed,
                 args.profile, args.fit, args.processes, args.ray_address, trace=traffic)
    basis = traffic.basis if traffic else MONTH
    _print(res, basis)
    name = f"search-trace-{Path(traffic.path).stem}" if traffic else f"search-{monthly}"
    out = args.out or Path("reports/simulated") / f"{name}.json"
    png = out.with_suffix(".png")
    plot(res, args.slo_p95, png)
    if traffic:
        cases = [c for _, c in traffic.rows]
        simulation = SimulationConfig(seed=args.seed, monthly=monthly, days=traffic.horizon_s / 86400, prices=prices,
                                      case_mix={c: cases.count(c) / len(cases) for c in sorted(set(cases))})
    else:
        simulation = SimulationConfig(seed=args.seed, monthly=monthly, days=workload.days,
                                      case_mix=workload.case_mix, prices=prices)
    load = LoadConfig(mode="trace", arrival="trace", trace=traffic.path) if traffic else None
    report = Report(role="sweep", kind="simulated", name=name, target="+".join(kinds),
                    config=RunConfig(driver="simulator search", simulation=simulation, load=load),
                    environment={"simulator": "simpy", "optimiser": "optuna TPE with constraints", "seed": args.seed},
                    extra={"slo_p95_s": args.slo_p95, "search": res, "png": str(png),
                           "best_flags": flags(res["best"]["point"]) if res["best"] else None,
                           **({"traffic": traffic.extra()} if traffic else {})})
    report.save(out)
    print(f"report: {out}\nplot: {png}")
    return 0


def _print(res: dict, basis: Basis) -> None:
    """The search's answer; costs on `basis` (a trace: its own span, or a month of it)."""
    print(f"{len(res['trials'])} trials in {res['search_s']:.0f} s, then {len(res['checked'])} candidates checked over "
          f"{CHECK_MONTHS} {basis.replications}; {res['wall_s']:.0f} s in all")
    print(f"best searched:      {_describe(res['best'], basis)}")
    print(f"best fixed setting: {_describe(res['best_fixed'], basis)}")
    for kind, c in res["best_per_kind"].items():
        print(f"  best {kind:<6} searched: {_describe(c, basis)}")
    if res["saving"] is not None:
        print(f"the searched configuration is {100 * res['saving']:.1f} % cheaper than the best fixed setting"
              if res["saving"] > 0 else "no searched configuration is cheaper than the best fixed setting")
    one = "one month" if basis.replications == "months" else "one replication of the trace"
    print(f"Pareto frontier ({one} each, cost{basis.per} vs p95):")
    for t in res["pareto"]:
        print(f"  ${basis.factor * t['cost']:>9,.{basis.digits}f}  p95 {t['p95_s']:>8,.1f} s  {flags(t['point'])}")

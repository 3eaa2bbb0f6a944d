"""`python -m simulator validate --measured REPORT`: replay every stage of a measured run and compare.

Service times (and the client overhead e2e - queue - service) come from the N=1 stage of the run (the
single-request part), else from all its stages. Each stage is replayed with its concurrency, duration or
jobs per user, its case mix (the cases of its jobs) and the server's workers / max batch
(report.config "workers", "max_batch"; default 1). Errors are (simulated - measured) / measured in % of
the mean, p95 and throughput of completed jobs; simulated figures are the average of `replications`.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from loadlab.schema import Report, RunConfig, ServerConfig, SimulationConfig
from loadlab.stats import relative_error
from simulator.closedloop import run_stage
from simulator.deployments import LocalGPU
from simulator.profiles import ServiceTimeProfile, from_report

HEADERS = ["stage", "jobs", "measured mean s", "simulated mean s", "error mean %", "measured p95 s",
           "simulated p95 s", "error p95 %", "measured thr /s", "simulated thr /s", "error thr %"]


def validate(measured: Report, profile: ServiceTimeProfile | None = None, seed: int = 1,
             replications: int = 5) -> dict[str, Any]:
    """Per stage: measured vs simulated mean, p95, throughput and errors; plus the simulated report."""
    profile = profile or from_report(measured)
    server = measured.config.server or ServerConfig()
    workers, max_batch = server.workers or 1, server.max_batch or 1
    rng = random.Random(seed)
    measured_load = measured.config.load
    sim_report = Report(role="validation", kind="simulated", name=f"validate-{measured.name}", target=measured.target,
                        cases=list(measured.cases), environment={"simulator": "simpy", "seed": seed},
                        model=profile.describe(),
                        config=RunConfig(driver="simulator validate", cases=measured.config.cases,
                                         server=ServerConfig(workers=workers, max_batch=max_batch),
                                         load=measured_load,
                                         simulation=SimulationConfig(seed=seed, replications=replications,
                                                                     measured=measured.path or measured.name)))
    rows, stages_out = [], []
    for mstage in measured.stages:
        ms = mstage.summary
        if not mstage.jobs:
            continue
        mix = Counter(j.case for j in mstage.jobs)
        users = mstage.concurrency or 1
        per_user = mstage.jobs_per_user
        duration = mstage.duration_s if not per_user else None
        if not per_user and not duration:
            per_user = max(1, round(len(mstage.jobs) / users))
        sims = []
        first = None
        for _ in range(max(1, replications)):
            sample = profile.sampler(rng)
            over = profile.overhead_sampler(rng)

            def make(env, ledger, _rng, sample=sample):
                return LocalGPU(env, ledger, sample, gpus=workers, max_batch=max_batch)
            st = run_stage(make, users, dict(mix), over, rng, duration_s=duration, jobs_per_user=per_user,
                           name=mstage.name)
            first = first or st
            sims.append(st.summary)
        sim = {k: _avg([s.get(k) for s in sims]) for k in ("mean", "p95", "throughput_per_s")}
        err = {k: relative_error(sim[k], ms.get(k)) for k in sim}
        stages_out.append({"stage": mstage.name, "concurrency": users, "jobs": len(mstage.jobs),
                           "measured": {k: ms.get(k) for k in sim}, "simulated": sim,
                           "error_pct": {k: None if v is None else 100 * v for k, v in err.items()}})
        rows.append([mstage.name, len(mstage.jobs), _f(ms.get("mean")), _f(sim["mean"]), _pct(err["mean"]),
                     _f(ms.get("p95")), _f(sim["p95"]), _pct(err["p95"]), _f(ms.get("throughput_per_s"), 4),
                     _f(sim["throughput_per_s"], 4), _pct(err["throughput_per_s"])])
        sim_report.stages.append(first)
    worst = max((abs(v) for s in stages_out for v in s["error_pct"].values() if v is not None), default=None)
    return {"title": f"{measured.name}: measured vs simulated ({workers} worker(s), max batch {max_batch})",
            "headers": HEADERS, "rows": rows, "stages": stages_out, "max_abs_error_pct": worst,
            "profile": profile.describe(), "report": sim_report}


def _avg(values):
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def cmd_validate(args: argparse.Namespace) -> int:
    measured = Report.load(args.measured)
    if args.profile:
        from simulator.profiles import load_profile
        profile = load_profile(args.profile, args.fit)
    else:
        profile = from_report(measured, fit=args.fit, stage=args.service_from)
    result = validate(measured, profile, seed=args.seed, replications=args.replications)
    widths = [max(len(str(r[i])) for r in [HEADERS, *result["rows"]]) for i in range(len(HEADERS))]
    for row in [HEADERS, *result["rows"]]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    stem = Path(args.measured).stem
    report = result.pop("report")
    out = args.out or Path("reports/simulated") / f"validate-{stem}.json"
    report.save(out)
    table_path = out.with_name(f"validation-{stem}.json")
    table_path.write_text(json.dumps(result, indent=1))
    print(f"simulated report: {out}\nvalidation table: {table_path}")
    worst = result["max_abs_error_pct"]
    print(f"largest |error|: {_f(worst, 1)} %")
    if args.max_error is not None and (worst is None or worst > args.max_error):
        print(f"FAIL: a stage is over --max-error {args.max_error:g} %")
        return 1
    return 0

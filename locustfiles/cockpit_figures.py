"""The figures of the web UI's cockpit (`locustfiles/cockpit.py`), from the stages as they stand
(`locustfiles/report.py` `stages_at`): per stage the outcomes, the end-to-end mean / p95 / p99 of the
exact per-job times with their 95 % intervals, SLO attainment and goodput, dispatch lateness p99, the
service time and its inflation over the calibration; beside them the simulator's prediction (run in
another process, `simulator/predict_stage.py`) and the simulated bill. No locust import: tested as is.

Every figure is labelled by where it comes from: "measured" (this run's jobs), "simulated" (the
prediction, the bill), "calibration" (the service times of the --calibration report).
"""

from __future__ import annotations

from typing import Any

from loadlab.schema import COMPLETED, Stage
from loadlab.stats import mean, mean_ci95, percentile, percentile_ci95, relative_error

COMPARED = (("mean", "mean"), ("p95", "p95"), ("p99", "p99"), ("slo_attainment", "slo_attainment"),
            ("throughput_per_s", "throughput_per_s"))


def stage_row(stage: Stage, now: float, calibration_service_s: dict[str, float] | None = None) -> dict[str, Any]:
    """One stage's measured figures (seconds, fractions, per-second rates; None where there is none)."""
    s = stage.summary
    done = [j for j in stage.jobs if j.status == COMPLETED and j.e2e_s is not None]
    e2e = [j.e2e_s for j in done]
    m, half = mean_ci95(e2e)
    late = [j.lateness_s for j in stage.jobs if j.lateness_s is not None]
    service = [(j.service_s, j.case) for j in done if j.service_s is not None]
    inflation = None
    if calibration_service_s and service and all(c in calibration_service_s for _, c in service):
        # the same case mix at calibration speed: what the service time would be without the load
        calibrated = mean(calibration_service_s[c] for _, c in service)
        inflation = mean(v for v, _ in service) / calibrated if calibrated else None
    started = stage.started_at if stage.started_at is not None else now
    return {
        "stage": stage.name, "elapsed_s": max(0.0, min(now - started, stage.duration_s or now - started)),
        "arrivals": s.jobs, "completed": s.completed, "failed": s.failed, "rejected": s.rejected, "dropped": s.dropped,
        "in_flight": sum(j.status == "in_flight" for j in stage.jobs),
        "mean": m, "mean_ci95": [m - half, m + half] if half is not None else None,
        "p95": s.p95, "p95_ci95": percentile_ci95(e2e, 95),
        "p99": s.p99, "p99_ci95": percentile_ci95(e2e, 99),
        "slo_e2e_s": stage.slo_e2e_s, "slo_attainment": s.slo_attainment,
        "goodput_per_s": s.goodput_per_s, "throughput_per_s": s.throughput_per_s,
        "lateness_p99_s": percentile(late, 99), "lateness_n": len(late),
        "service_mean_s": mean(v for v, _ in service), "service_inflation": inflation,
    }


def compare(row: dict[str, Any], predicted: dict[str, Any] | None) -> dict[str, Any]:
    """Measured against simulated, per metric: the simulated mean and 2.5-97.5 % range of its
    replications, the error (simulated - measured) / measured and whether the measured value is inside."""
    if not predicted:
        return {}
    out = {}
    for metric, key in COMPARED:
        p = predicted.get(key) or {}
        measured = row.get(metric)
        inside = None
        if measured is not None and p.get("lo") is not None:
            inside = p["lo"] <= measured <= p["hi"]
        out[metric] = {"measured": measured, "simulated": p.get("mean"), "lo": p.get("lo"), "hi": p.get("hi"),
                       "n": p.get("n"), "error": relative_error(p.get("mean"), measured), "inside": inside}
    return out


def prediction_request(stages: list[Stage], now: float, calibration: list[str], open_loop: bool,
                       current: str | None, replications: int = 20) -> dict[str, Any]:
    """The stdin of `python -m simulator.predict_stage`: each stage's arrivals (times from its start,
    cases, outcomes) and shape; `current` is the stage still running (simulated up to now)."""
    specs = []
    for st in stages:
        t0 = st.started_at if st.started_at is not None else now
        specs.append({"name": st.name, "open_loop": open_loop, "done": st.name != current,
                      "elapsed_s": max(0.0, now - t0), "concurrency": st.concurrency, "duration_s": st.duration_s,
                      "jobs_per_user": st.jobs_per_user, "arrival_rate_per_s": st.arrival_rate_per_s,
                      "slo_e2e_s": st.slo_e2e_s,
                      "jobs": [{"case": j.case, "status": j.status, "t_s": j.origin - t0} for j in st.jobs]})
    return {"calibration": calibration, "replications": replications, "seed": 1, "stages": specs}


def current_rate(row: dict[str, Any] | None) -> float | None:
    """The arrival rate the run sends now: the running stage's arrivals per second so far (a closed
    loop sends what it completes)."""
    if not row or not row["elapsed_s"]:
        return None
    return row["arrivals"] / row["elapsed_s"] if row["arrivals"] else None


# --- the web UI's table: one row per stage, text cells -----------------------------------------------

def _s(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _with_ci(x: float | None, ci, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else f"{x:.{digits}f} (too few jobs)"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _versus(c: dict[str, Any] | None, digits: int = 2, as_pct: bool = False) -> str:
    """'1.52 [1.48, 1.61] err +3 % in' : simulated mean, its range, the error, measured inside or not."""
    if not c or c.get("simulated") is None:
        return "-"
    fmt = _pct if as_pct else (lambda v: _s(v, digits))
    err = "" if c["error"] is None else f" err {100 * c['error']:+.0f} %"
    where = "" if c["inside"] is None else (" in" if c["inside"] else " OUT")
    return f"{fmt(c['simulated'])} [{fmt(c['lo'])}, {fmt(c['hi'])}]{err}{where}"


def table_row(row: dict[str, Any]) -> dict[str, str]:
    cmp = row.get("predicted") or {}
    late = row["lateness_p99_s"]
    return {
        "stage": row["stage"], "arrivals": str(row["arrivals"]), "completed": str(row["completed"]),
        "failed": str(row["failed"]), "rejected": str(row["rejected"]), "dropped": str(row["dropped"]),
        "in_flight": str(row["in_flight"]),
        "mean": _with_ci(row["mean"], row["mean_ci95"]), "p95": _with_ci(row["p95"], row["p95_ci95"]),
        "p99": _with_ci(row["p99"], row["p99_ci95"]),
        "slo": "-" if row["slo_e2e_s"] is None else f"{_pct(row['slo_attainment'])} ≤ {row['slo_e2e_s']:g} s",
        "goodput": _s(row["goodput_per_s"], 3), "lateness_p99_ms": "-" if late is None else f"{1000 * late:.1f}",
        "service_s": _s(row["service_mean_s"]),
        "inflation": "-" if row["service_inflation"] is None else f"×{row['service_inflation']:.2f}",
        "sim_mean": _versus(cmp.get("mean")), "sim_p95": _versus(cmp.get("p95")),
        "sim_p99": _versus(cmp.get("p99")), "sim_slo": _versus(cmp.get("slo_attainment"), as_pct=True),
        "sim_throughput": _versus(cmp.get("throughput_per_s"), digits=3),
    }


MEASURED_COLUMNS = [("stage", "Stage"), ("arrivals", "Arrivals"), ("completed", "Completed"), ("failed", "Failed"),
                    ("rejected", "Rejected"), ("dropped", "Dropped"), ("in_flight", "In flight"),
                    ("mean", "Mean s [95 % CI]"), ("p95", "p95 s [95 % CI]"), ("p99", "p99 s [95 % CI]"),
                    ("slo", "SLO attained"), ("goodput", "Goodput /s"), ("lateness_p99_ms", "Lateness p99 ms"),
                    ("service_s", "Service s"), ("inflation", "Service ÷ calibration")]
PREDICTED_COLUMNS = [("sim_mean", "Simulated mean s [range] err"), ("sim_p95", "Simulated p95 s"),
                     ("sim_p99", "Simulated p99 s"), ("sim_slo", "Simulated SLO"),
                     ("sim_throughput", "Simulated throughput /s")]


def bill_rows(bill: dict[str, Any] | None) -> list[dict[str, str]]:
    """The simulated bill's table: one row per deployment kind, or one row saying what is happening."""
    if not bill or not bill.get("deployments"):
        why = (bill or {}).get("status") or "waiting for an arrival rate"
        return [{"deployment": why, "cost": "-", "per_request": "-", "p95": "-", "served": "-", "basis": "-"}]
    rows = []
    for d in bill["deployments"]:
        cost, p95 = d["monthly_cost"], d["p95_s"]
        rows.append({
            "deployment": d["deployment"],
            "cost": f"${cost['mean']:,.2f} ± {cost['ci95'] or 0:,.2f}",
            "per_request": f"${d['cost_per_request']:.4f}" if d.get("cost_per_request") is not None else "-",
            "p95": "-" if p95["mean"] is None else f"{p95['mean']:,.1f} ± {p95['ci95'] or 0:,.1f}",
            "served": _pct(d["served_share"]),
            "basis": f"simulated, {cost['n']} replications, {bill['rate_per_s']:.3g}/s, {bill['days']:.3g} d → 30 d",
        })
    return rows


BILL_COLUMNS = [("deployment", "Deployment (simulated)"), ("cost", "$ / month ± 95 %"),
                ("per_request", "$ / request"), ("p95", "p95 s ± 95 %"), ("served", "Served"), ("basis", "Basis")]

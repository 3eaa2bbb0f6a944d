"""`simulator recommend --trace` and `search --trace`: the traffic is exactly the trace's arrivals, priced as
`simulator run --trace` prices them (the trace's own span, or a month of it with --repeat-to-month)."""

from __future__ import annotations

import json
import random

import pytest

from loadlab.schema import Report
from loadlab.trace import write_trace
from simulator.cli import main
from simulator.workload import MONTH_S

DRAIN = 1800.0


@pytest.fixture
def burst_trace(tmp_path):
    """~1.5 h of Poisson arrivals (one per 60 s) and a burst of 15 at 1,200 s, on a Monday's business hours."""
    rng = random.Random(5)
    t, rows = 0.0, []
    while len(rows) < 60:
        t += rng.expovariate(1 / 60)
        rows.append((round(t, 1), rng.choice(["small", "medium"])))
    rows = sorted(rows + [(1200.0, "medium")] * 15)
    path = write_trace(tmp_path / "burst.csv", rows,
                       provenance={"source": "generated", "window": "all", "window_start": "2026-11-30T10:00:00",
                                   "window_start_weekday_hour": "Monday 10:00", "time_scale": 1, "scaling": "none"})
    return path, rows, rows[-1][0] + DRAIN


def _recommend(tmp_path, trace, *more):
    out = tmp_path / "rec.json"
    code = main(["recommend", "--trace", str(trace), "--drain-s", str(DRAIN), "--slo-p95", "600",
                 "--processes", "1", "--validations", str(tmp_path), "--out", str(out), *more])
    return code, Report.load(out) if code == 0 else None


def test_recommend_decides_on_the_traces_arrivals_priced_for_its_span(tmp_path, burst_trace, capsys):
    trace, rows, horizon = burst_trace
    code, report = _recommend(tmp_path, trace)
    assert code == 0
    printed = capsys.readouterr().out
    assert f"priced for the trace's span ({horizon / 3600:,.2f} h" in printed and "$ trace" in printed
    extra = report.extra
    assert extra["traffic"]["arrivals"] == len(rows) and extra["traffic"]["horizon_s"] == pytest.approx(horizon)
    assert all(r["arrivals"] == len(rows) for r in extra["rows"])          # every run saw the trace, no model month
    assert report.config.load.trace == str(trace)
    answer = extra["answer"]
    best = next(r for r in extra["rows"] if r["setting"] == answer["recommended"])
    assert answer["best"]["cost"] == pytest.approx(best["monthly_cost"] * horizon / MONTH_S)
    assert answer["bill"]["total"] == pytest.approx(answer["best"]["cost"])
    # replications: seeds seed, seed + 1, ... for every contender (common random numbers), the first the screening run
    replicated = [r for r in extra["rows"] if r.get("stage") == "trace replication"]
    assert replicated and all(r["replications"] >= 2 for r in replicated)
    assert all(r["trace_cost"] == pytest.approx(r["monthly_cost"] * horizon / MONTH_S) for r in extra["rows"])
    # a setting out of contention keeps its screening run: the same bill as `run --trace` of it, same seed
    other = next(r for r in extra["rows"] if str(r.get("stage")).startswith("screening"))
    out = tmp_path / "run.json"
    assert main(["run", "--trace", str(trace), "--drain-s", str(DRAIN), "--deployments", other["setting"],
                 "--no-progress", "--out", str(out)]) == 0
    ran = Report.load(out).extra["results"][0]
    assert other["trace_cost"] == pytest.approx(ran["trace_cost"]) and other["p95_s"] == pytest.approx(ran["latency_s"]["p95"])


def test_repeat_to_month_prices_a_month_of_the_trace(tmp_path, burst_trace, capsys):
    trace, rows, horizon = burst_trace
    code, report = _recommend(tmp_path, trace, "--repeat-to-month")
    assert code == 0
    assert f"repeated to 30 days ({round(len(rows) * MONTH_S / horizon):,}/month)" in capsys.readouterr().out
    answer = report.extra["answer"]
    best = next(r for r in report.extra["rows"] if r["setting"] == answer["recommended"])
    assert answer["best"]["cost"] == pytest.approx(best["monthly_cost"])


def test_search_optimises_on_the_trace(tmp_path, burst_trace, capsys):
    trace, rows, horizon = burst_trace
    out = tmp_path / "s.json"
    assert main(["search", "--trace", str(trace), "--drain-s", str(DRAIN), "--slo-p95", "600", "--kinds", "local",
                 "--trials", "3", "--processes", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())["extra"]
    assert all(t["arrivals"] == len(rows) for t in res["search"]["trials"] + res["search"]["fixed"])
    assert len(res["search"]["trials"]) == 3 and res["traffic"]["arrivals"] == len(rows)
    one_gpu = next(f for f in res["search"]["fixed"] if f["point"].get("setting") == "local-1gpu")
    assert one_gpu["cost"] == pytest.approx(80.0)        # $/month of the traffic; printed for the trace's span
    assert "for the trace" in printed and "replications of the trace" in printed
    assert f"${80.0 * horizon / MONTH_S:,.4f}" in printed


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:        # argparse's own errors (simulator.cli.Parser: one line, exit 2)
        return stop.code


@pytest.mark.parametrize("command", ["recommend", "search"])
def test_monthly_and_trace_are_one_or_the_other(tmp_path, burst_trace, capsys, command):
    trace = burst_trace[0]
    out = tmp_path / "x.json"
    for argv in (["--monthly", "100", "--trace", str(trace)], ["--repeat-to-month"],
                 ["--trace", str(tmp_path / "missing.csv")]):
        assert _exit_code([command, *argv, "--out", str(out)]) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "error" in err, (argv, err)
        assert not out.exists()


def test_replications_of_a_trace_average_its_own_bill_as_the_monthly_one():
    from simulator.sweep import combine

    def run(cost: float) -> dict:
        return {"served": 10, "failed": 0, "rejected": 0, "in_flight": 0, "arrivals": 10, "mean_s": 5.0,
                "cost_per_request": cost / 10, "replica_hours": 1.0, "cold_start_share": 0.0, "p95_s": 9.0,
                "monthly_cost": cost, "trace_cost": cost / 100, "slo_attainment": 1.0, "bill": None,
                "seed": int(cost)}

    row = combine([run(100.0), run(300.0)])
    assert row["monthly_cost"] == pytest.approx(200.0) and row["trace_cost"] == pytest.approx(2.0)

"""`--replications N` on run and sweep: independent months, cost and p95 with a 95 % interval, and the
sweep's recommendation when the runner-up is within that interval."""

from __future__ import annotations

import pytest

from loadlab.schema import Report
from loadlab.stats import mean_ci95
from simulator.cli import main
from simulator.pricing import DEFAULT_PRICES
from simulator.sweep import recommend, sweep
from simulator.workload import MonthlyWorkload


def test_run_reports_the_interval_over_independent_months(tmp_path, capsys):
    one, three = tmp_path / "one.json", tmp_path / "three.json"
    common = ["--monthly", "3000", "--days", "3", "--deployments", "vertex", "--no-progress", "--seed", "7"]
    assert main([*common, "--out", str(one)]) == 0
    first = capsys.readouterr().out
    assert main([*common, "--replications", "3", "--out", str(three)]) == 0
    text = capsys.readouterr().out
    # the table is still the --seed month's; the interval comes on top
    assert first.splitlines()[3] == text.splitlines()[3]
    assert "Over 3 replications (seeds 7..9)" in text and "Over" not in first
    result = Report.load(three).extra["results"][0]
    reps = result["replications"]
    assert reps["seeds"] == [7, 8, 9]
    costs = reps["monthly_cost"]["values"]
    assert costs[0] == pytest.approx(result["monthly_cost"]) and len(set(costs)) == 3
    assert (reps["monthly_cost"]["mean"], reps["monthly_cost"]["ci95"]) == pytest.approx(mean_ci95(costs))
    assert reps["p95_s"]["ci95"] > 0
    assert Report.load(three).config.simulation.replications == 3


def row(setting, cost, ci, p95=100.0):
    return {"volume": 1000, "setting": setting, "kind": "vertex", "served": 1000, "failed": 0, "rejected": 0,
            "in_flight": 0, "arrivals": 1000, "p95_s": p95, "mean_s": 50.0, "monthly_cost": cost,
            "cost_per_request": cost / 1000, "replica_hours": 10.0, "cold_start_share": 0.0, "replications": 5,
            "monthly_cost_ci95": ci, "p95_ci95": 1.0}


def test_the_recommendation_says_when_the_runner_up_is_within_the_interval():
    close = recommend([row("a", 100.0, 6.0), row("b", 110.0, 5.0)], 300.0)[0]
    assert close["recommended"] == "a" and close["runner_up_within_ci95"] is True
    assert "within the 95 % interval" in close["why"]
    apart = recommend([row("a", 100.0, 3.0), row("b", 110.0, 5.0)], 300.0)[0]
    assert apart["runner_up_within_ci95"] is False and "within" not in apart["why"]
    single = recommend([{**row("a", 100.0, None), "replications": 1}, {**row("b", 101.0, None), "replications": 1}],
                       300.0)[0]
    assert single["runner_up_within_ci95"] is None


def test_sweep_rows_are_means_over_replications():
    report = sweep([2000], slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2),
                   processes=1, only=["vertex-zero", "vertex-always1"], replications=3, seed=4)
    rows = {r["setting"]: r for r in report.extra["rows"]}
    assert all(r["replications"] == 3 and r["monthly_cost_ci95"] > 0 for r in rows.values())
    alone = [sweep([2000], slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2),
                   processes=1, only=["vertex-zero"], seed=s).extra["rows"][0]["monthly_cost"] for s in (4, 5, 6)]
    assert rows["vertex-zero"]["monthly_cost"] == pytest.approx(sum(alone) / 3)
    assert report.extra["recommendations"][0]["cost_ci95"] is not None

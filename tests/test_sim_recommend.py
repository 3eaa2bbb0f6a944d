"""`simulator recommend` (simulator/recommend.py), the answer section of the report, and `simulator search`."""

import json

import pytest

from loadlab.schema import ErrorRow, Report, RunConfig, SimulationConfig
from simulator.cli import main
from simulator.pricing import DEFAULT_PRICES
from simulator.recommend import block, error_label, format_block, latest_validations, validation_errors
from simulator.search import build, flags, pareto, verdict
from simulator.sweep import base, sweep
from simulator.workload import MonthlyWorkload


def _validation(folder, name, target, rows, created):
    r = Report(role="validation", kind="simulated", name=name, target=target, created=created,
               config=RunConfig(driver="simulator validate", simulation=SimulationConfig()))
    r.errors = rows
    return r.save(folder / f"{name}.json")


def test_validation_errors_take_the_worst_scored_row_of_the_newest_report_per_run(tmp_path):
    row = lambda metric, err, scored=True, **kw: ErrorRow(stage="n=4", metric=metric, measured=1.0,  # noqa: E731
                                                          simulated=1 + err, error=err, scored=scored, **kw)
    # unscored, too few jobs, or the mechanics replay: none of them is the prediction's error
    _validation(tmp_path, "validate-concurrency-local", "local",
                [row("p95_s", 0.12), row("p95_s", -0.31), row("p95_s", 0.9, scored=False),
                 row("p95_s", 0.8, too_few=True), row("p95_s", 0.7, layer="mechanics")], "2026-12-01T00:00:00Z")
    _validation(tmp_path, "validate-autoscale-rayserve", "rayserve", [row("replica_seconds", 0.05)],
                "2026-12-01T00:00:00Z")
    # attainment in points: measured 2 %, simulated 4 % is a 100 % relative error but 2 points
    _validation(tmp_path, "validate-open-local", "local", [ErrorRow(stage="s", metric="slo_attainment", measured=0.02,
                                                                    simulated=0.04, error=1.0)], "2026-12-01T00:00:00Z")
    (tmp_path / "validate-broken.json").write_text("{")
    errors = validation_errors(latest_validations(tmp_path))
    assert errors["local"]["p95"]["max_abs_error_pct"] == pytest.approx(31.0)      # the unscored 90 % is not a score
    assert errors["ray"]["cost"]["max_abs_error_pct"] == pytest.approx(5.0)
    assert "31 %" in error_label(errors, "local", "p95")
    assert error_label(errors, "vertex", "p95") == "not validated here"
    assert error_label(errors, "local", "cost") == "not validated here"
    assert errors["local"]["slo_attainment"]["max_abs_error_pct"] == pytest.approx(2.0)
    assert "2 points" in error_label(errors, "local", "slo_attainment")


def test_the_block_carries_intervals_the_decision_and_the_bill():
    rep = sweep([1500], slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2),
                processes=1, only=["vertex-zero", "vertex-always1", "local-1gpu"], replications=None, screen_days=1)
    b = block(rep.extra, 1500, {})
    assert b["best"]["setting"] == rep.extra["recommendations"][0]["recommended"]
    assert b["best"]["months"] >= 2 and b["best"]["cost_ci95"] is not None
    assert 0 <= b["best"]["slo_attainment"] <= 1 and b["bill"]["total"] == pytest.approx(b["best"]["cost"])
    text = format_block(b)
    assert "recommended: " + b["best"]["setting"] in text and "not validated here" in text and "+-" in text


def test_search_points_become_the_run_flags_that_rebuild_them():
    point = {"kind": "vertex", "business_min": 1, "business_max": 2, "night_min": 0, "night_max": 1,
             "target_utilisation": 0.7, "scale_down_delay_s": 120.0, "spot": True}
    sc = build(point, base(dict(DEFAULT_PRICES), None, "empirical"))
    assert sc.vertex.schedule(10) == (1, 2) and sc.vertex.schedule(22) == (0, 1) and sc.vertex.spot
    assert flags(point).endswith("--scale-down-delay 120 --spot")
    ray = build({"kind": "ray", "ray_min": 0, "ray_max": 2, "target_ongoing": 1.0, "upscale_delay_s": 5.0,
                 "downscale_delay_s": 60.0, "node_idle_timeout_s": 30.0}, base(dict(DEFAULT_PRICES), None, "empirical"))
    assert (ray.kind, ray.ray.max_replicas, ray.ray.node_idle_timeout_s) == ("ray", 2, 30.0)


def test_pareto_and_the_95_percent_verdict():
    t = lambda c, p, lost=0.0: {"point": {"kind": "local"}, "cost": c, "p95_s": p, "lost_share": lost}  # noqa: E731
    front = pareto([t(10, 100), t(12, 90), t(11, 120), t(20, 50), t(5, 40, lost=0.01)])
    assert [(x["cost"], x["p95_s"]) for x in front] == [(10, 100), (12, 90), (20, 50)]
    months = [t(10, 100), t(10, 115), t(10, 118)]
    assert not verdict(months, slo=120)["qualified"]           # the mean is within, the interval's top is not
    assert verdict([t(10, 100), t(10, 101), t(10, 102)], slo=120)["qualified"]


@pytest.mark.slow
def test_recommend_and_search_commands_end_to_end(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["recommend", "--monthly", "1500", "--days", "2", "--slo-p95", "300", "--validations", str(tmp_path),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recommended:" in text and "the bill of" in text
    assert Report.load(out).extra["answer"]["volume"] == 1500
    s = tmp_path / "s.json"
    assert main(["search", "--monthly", "1500", "--days", "2", "--slo-p95", "300", "--trials", "4",
                 "--processes", "1", "--out", str(s)]) == 0
    res = json.loads(s.read_text())["extra"]
    assert len(res["search"]["trials"]) == 4 and (tmp_path / "s.png").is_file()

"""The simulator's scenario registry, the deployments' wiring and dispatch, and its reports' roles."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import simpy

from loadlab.schema import Report
from simulator.autoscaling.vertex import fixed_schedule
from simulator.cli import main
from simulator.deployments import Hybrid, LocalGPU, VertexConfig, VertexEndpoint
from simulator.engine import run_month
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES
from simulator.scenarios import REGISTRY, Scenario, scenario
from simulator.sweep import SETTINGS
from simulator.workload import MonthlyWorkload


def test_every_sweep_setting_is_a_registered_scenario_with_the_settings_its_name_promises():
    assert set(SETTINGS) <= set(REGISTRY)
    assert (scenario("local-2gpu").kind, scenario("local-2gpu").gpus) == ("local", 2)
    assert scenario("local-1gpu-batch3").max_batch == 3
    spot = scenario("vertex-zero-spot")
    assert spot.kind == "vertex" and spot.vertex.spot and spot.vertex.schedule(12) == (0, 3)
    article = scenario("vertex-article")
    assert not article.vertex.spot and article.vertex.schedule(10) == (1, 3) and article.vertex.schedule(20) == (0, 1)
    assert scenario("hybrid-article").kind == "hybrid"


def test_named_scenarios_build_on_the_base_settings():
    base = Scenario(gpus=3, prices={**DEFAULT_PRICES, "local_fixed_per_month": 50.0})
    local = scenario("local", base)
    assert (local.kind, local.gpus, local.name, local.prices["local_fixed_per_month"]) == ("local", 3, "local", 50.0)
    r = run_month(local, MonthlyWorkload(monthly=300, days=1), seed=1)
    assert r["monthly_cost"] == pytest.approx(3 * 50.0)


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(ValueError, match="vertex-zero-spot"):
        scenario("cloud")


def test_run_accepts_any_registered_scenario(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["--monthly", "300", "--days", "1", "--deployments", "local-2gpu,vertex-zero-spot",
                 "--out", str(out), "--no-progress"]) == 0
    assert [s.name for s in Report.load(out).stages] == ["local-2gpu", "vertex-zero-spot"]
    assert "local-2gpu" in capsys.readouterr().out


def test_hybrid_is_wired_when_constructed_and_falls_back_on_failure():
    env = simpy.Environment()
    ledger = Ledger()
    local = LocalGPU(env, ledger, lambda case, **_: 5.0)
    hybrid = Hybrid(env, local, lambda on_fail: VertexEndpoint(
        env, ledger, lambda case, **_: 5.0, VertexConfig(schedule=fixed_schedule(1, 1), endpoint="shared"),
        DEFAULT_PRICES, provision_s=1, load_s=1, rng=random.Random(1), on_fail=on_fail), fallback_after_s=None)
    big = Job("large", 0.0)           # 2.8 MB: over the shared endpoint's 1.5 MB
    ledger.arrive(big)
    hybrid.submit(big)
    env.run(until=100)
    assert big.status == "completed" and big.served_by == "local-gpu0" and big.error.startswith("fell back")
    assert hybrid.fallbacks == 1


def _warm_endpoint(env, ledger, service_s=10.0):
    ep = VertexEndpoint(env, ledger, lambda case, **_: service_s, VertexConfig(schedule=fixed_schedule(1, 2)),
                        DEFAULT_PRICES, provision_s=1, load_s=1, rng=random.Random(1))
    env.run(until=5)                   # replica 0 is ready and idle
    assert len(ep.idle) == 1
    return ep


def test_a_request_handed_to_an_idle_replica_in_the_instant_it_is_stopped_is_served_by_it():
    env = simpy.Environment()
    ledger = Ledger()
    ep = _warm_endpoint(env, ledger)
    job = Job("small", env.now)
    ledger.arrive(job)
    ep.submit(job)                     # handed to replica 0 ...
    ep.stop_replica(ep.replicas[0])    # ... which is told to stop in the same instant
    env.run(until=60)
    assert job.status == "completed" and job.served_by == "vertex-replica0"
    assert ep.replicas[0].stopped_at == pytest.approx(15.0)   # after serving it, not before


def test_a_stopped_idle_replica_takes_no_request_and_the_request_waits_for_the_next():
    env = simpy.Environment()
    ledger = Ledger()
    ep = _warm_endpoint(env, ledger)
    ep.stop_replica(ep.replicas[0])
    job = Job("small", env.now)
    ledger.arrive(job)
    ep.submit(job)
    env.run(until=200)
    assert ep.replicas[0].stopped_at == pytest.approx(5.0)
    assert job.status == "completed" and job.served_by != "vertex-replica0"


def test_simulator_uses_only_simpy_public_api():
    root = Path(__file__).resolve().parent.parent / "simulator"
    private = re.compile(r"\._(trigger_get|trigger_put|do_get|do_put|queue|value|ok)\b")
    offenders = [f"{p.name}:{i}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if private.search(line)]
    assert offenders == []


def test_sweep_and_article_write_reports_with_their_role(tmp_path, capsys):
    out = tmp_path / "sweep.json"
    png = tmp_path / "sweep.png"
    assert main(["sweep", "--volumes", "100", "--days", "1", "--processes", "1", "--out", str(out),
                 "--png", str(png)]) == 0
    report = Report.load(out)
    assert report.role == "sweep" and png.exists()
    assert {r["setting"] for r in report.extra["rows"]} == set(SETTINGS)
    assert report.extra["recommendations"][0]["volume"] == 100
    assert report.config.simulation.prices == DEFAULT_PRICES


def test_run_shows_a_progress_bar_from_20000_requests(tmp_path, capsys):
    assert main(["--monthly", "20000", "--days", "0.5", "--deployments", "local",
                 "--out", str(tmp_path / "m.json")]) == 0
    err = capsys.readouterr().err
    assert "local" in err and "100%" in err


def test_sweep_uses_the_workload_it_is_given():
    from simulator.sweep import sweep
    flat = MonthlyWorkload(monthly=0, days=2, hour_weights=[1.0] * 24, day_weights=[1.0] * 7)
    peaky = MonthlyWorkload(monthly=0, days=2, hour_weights=[0.0] * 12 + [1.0] + [0.0] * 11)   # all at noon
    rows = {}
    for label, wl in (("flat", flat), ("peaky", peaky)):
        report = sweep([3000], slo=300.0, prices=dict(DEFAULT_PRICES), workload=wl, processes=1, only=["local-1gpu"])
        assert report.config.simulation.hour_weights == wl.hour_weights
        rows[label] = report.extra["rows"][0]
    assert rows["peaky"]["p95_s"] > 2 * rows["flat"]["p95_s"]    # the same volume in one hour a day queues

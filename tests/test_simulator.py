"""The SimPy simulator: queueing theory, conservation, determinism, billing, the article's arithmetic, CLI."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import numpy as np
import pytest
import simpy

from simulator.__main__ import main
from simulator.autoscaling.vertex import fixed_schedule
from simulator.deployments import LocalGPU, VertexConfig, VertexEndpoint
from simulator.engine import run_month
from simulator.ledger import Job, Ledger
from simulator.pricing import DEFAULT_PRICES, article_naive_cost, billed_seconds, replica_price_per_hour
from simulator.scenarios import Scenario
from simulator.workload import MonthlyWorkload


def open_queue(lam: float, sample_factory, servers: int, n: int, seed: int = 7) -> float:
    """Mean waiting time (queue_s) of n Poisson arrivals at rate lam on `servers` FIFO workers."""
    rng = random.Random(seed)
    times = np.cumsum(np.random.default_rng(seed).exponential(1 / lam, n))
    env = simpy.Environment()
    ledger = Ledger()
    gpu = LocalGPU(env, ledger, sample_factory(rng), gpus=servers)

    def source():
        now = 0.0
        for t in times.tolist():
            yield env.timeout(t - now)
            now = t
            job = Job("x", now)
            ledger.arrive(job)
            gpu.submit(job)
    env.process(source())
    env.run()
    waits = [j.started - j.submitted for j in ledger.jobs[n // 10:]]   # drop the warm-up
    return sum(waits) / len(waits)


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    a = lam / mu
    rho = a / c
    top = a ** c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a ** k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - lam)


def test_mm1_mean_wait_matches_closed_form():
    lam, mu = 0.5, 1.0
    got = open_queue(lam, lambda rng: (lambda case, **_: rng.expovariate(mu)), 1, 200_000)
    want = erlang_c_wait(lam, mu, 1)   # = rho / (mu - lam) = 1.0
    assert want == pytest.approx(1.0)
    assert got == pytest.approx(want, rel=0.05)


def test_mmc_mean_wait_matches_erlang_c():
    lam, mu, c = 2.0, 1.0, 3
    got = open_queue(lam, lambda rng: (lambda case, **_: rng.expovariate(mu)), c, 200_000)
    assert got == pytest.approx(erlang_c_wait(lam, mu, c), rel=0.05)


def test_md1_mean_wait_matches_pollaczek_khinchine():
    lam, d = 0.6, 1.0
    got = open_queue(lam, lambda rng: (lambda case, **_: d), 1, 200_000)
    rho = lam * d
    want = rho * d / (2 * (1 - rho))       # P-K with zero service variance
    assert got == pytest.approx(want, rel=0.05)


def _conserved(r):
    ledger = r["_ledger"]
    statuses = [j.status for j in ledger.jobs]
    served, failed, rejected = statuses.count("completed"), statuses.count("failed"), statuses.count("rejected")
    in_flight = statuses.count("queued")
    assert (served, failed, rejected) == (ledger.served, ledger.failed, ledger.rejected)
    assert ledger.arrivals == served + failed + rejected + in_flight
    assert ledger.arrivals == r["arrivals"]


@pytest.mark.parametrize("kind,extra", [
    ("local", {"queue_limit": 2}),
    ("vertex", {}),
    ("vertex", {"vertex": VertexConfig(spot=True, preemptions_per_hour=0.5, stockout_probability=0.2)}),
    ("vertex", {"vertex": VertexConfig(endpoint="shared")}),
    ("hybrid", {"vertex": VertexConfig(endpoint="shared"), "fallback_after_s": 60.0}),
])
def test_conservation_in_every_deployment(kind, extra):
    wl = MonthlyWorkload(monthly=3000, days=3, bursts_per_day=2, burst_size=15, cache_hit_ratio=0.1)
    r = run_month(Scenario(kind=kind, **extra), wl, seed=3, keep_jobs=None)
    _conserved(r)
    assert r["served"] > 0
    if kind == "local":
        assert r["rejected"] > 0          # bursts of 15 over a queue bound of 2
    if extra.get("vertex") and extra["vertex"].endpoint == "shared" and kind == "vertex":
        assert r["failed"] > 0            # Large (82 s on T4, 2.8 MB) cannot pass a shared endpoint
        large = [j for j in r["_ledger"].jobs if j.case == "large" and j.status != "queued" and j.served_by != "cache"]
        assert large and all(j.status == "failed" for j in large)
    if kind == "hybrid":
        assert r["failed"] == 0 and r["deployment_stats"]["fallbacks"] > 0
    if extra.get("vertex") and extra["vertex"].preemptions_per_hour:
        assert r["retried"] > 0 and r["failed"] == 0   # preempted jobs are retried, nothing lost


def test_same_seed_same_output_other_seed_differs():
    wl = MonthlyWorkload(monthly=2000, days=5)

    def key(seed):
        r = run_month(Scenario(kind="vertex"), wl, seed=seed, keep_jobs=None)
        return (r["latency_s"], r["monthly_cost"], r["replica_hours"],
                [(j.submitted, j.finished) for j in r["_ledger"].jobs])
    assert key(5) == key(5)
    assert key(5) != key(6)


def test_replica_up_one_hour_is_billed_one_hour():
    env = simpy.Environment()
    ep = VertexEndpoint(env, Ledger(), lambda case, **_: 1.0, VertexConfig(schedule=fixed_schedule(1, 1)),
                        DEFAULT_PRICES, rng=random.Random(1))
    env.run(until=3600)
    assert len(ep.replicas) == 1 and ep.replicas[0].started_at == 0
    price = DEFAULT_PRICES["machine_per_hour"] + DEFAULT_PRICES["accelerator_per_hour"]
    assert ep.cost(3600)["usage"] == pytest.approx(price, abs=1e-12)
    assert ep.cost(3601)["usage"] == pytest.approx(price * 3630 / 3600)   # 30 s increments
    assert billed_seconds(3600.0, 30) == 3600.0
    assert replica_price_per_hour(DEFAULT_PRICES, spot=True) == pytest.approx(price * 0.3)


def test_article_naive_figures_and_replica_second_bill():
    naive = article_naive_cost(10_000, 30.0, 0.45)
    assert naive["gpu_hours"] == pytest.approx(83.33, abs=0.01)
    assert naive["monthly"] == pytest.approx(37.50)
    opt = article_naive_cost(10_000, 30.0, 0.45, cache_hit_ratio=0.2, spot_discount=0.7)
    assert opt["monthly"] == pytest.approx(9.0)
    # the same month billed per replica-second with the article's own settings
    wl = MonthlyWorkload(monthly=10_000, case_mix={"medium": 1.0}, cache_hit_ratio=0.2)
    r = run_month(Scenario(kind="vertex", vertex=VertexConfig(spot=True)), wl, seed=1)
    busy_h = r["deployment_stats"]["busy_hours"]
    assert r["replica_hours"] > 3 * busy_h          # idle-but-up replicas are billed too
    assert r["replica_hours"] >= 9 * 30 - 1         # min=1 in business hours alone
    assert r["monthly_cost"] > 5 * opt["monthly"]


def test_scale_to_zero_rules_are_checked():
    with pytest.raises(ValueError):
        VertexConfig(idle_scaledown_period_s=100).check()
    with pytest.raises(ValueError):
        VertexConfig(min_scaleup_period_s=30000).check()


def test_cli_run_writes_report(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["--monthly", "500", "--days", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "naive" in text and "vertex" in text
    from loadlab.schema import Report
    rep = Report.load(out)
    assert rep.kind == "simulated" and [s.name for s in rep.stages] == ["local", "vertex", "hybrid"]


@pytest.mark.parametrize("argv", [["--monthly", "abc"], ["--bogus"], ["--profile", "/nonexistent.json"],
                                  ["--deployments", "cloud"], ["validate", "--measured", "/nonexistent.json"],
                                  ["--idle-scaledown-period", "10"], ["--price", "nope=1"]])
def test_cli_user_mistakes_exit_2_without_traceback(argv):
    proc = subprocess.run([sys.executable, "-m", "simulator", *argv, "--no-progress"] if argv[0] != "validate"
                          else [sys.executable, "-m", "simulator", *argv], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "error" in proc.stderr


def test_help_documents_flags():
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--monthly", "--seed", "--profile", "--spot", "--endpoint", "--idle-scaledown-period"):
        assert flag in proc.stdout


def test_sweep_recommends_and_finds_break_even(tmp_path):
    from simulator.sweep import sweep
    report = sweep([200, 20_000], slo=300.0, prices=dict(DEFAULT_PRICES),
                   workload=MonthlyWorkload(monthly=0, case_mix={"medium": 1.0}, days=3),
                   processes=1, only=["local-1gpu", "vertex-zero-spot", "vertex-always1"])
    assert report.role == "sweep" and report.kind == "simulated"
    res = report.extra
    recs = {r["volume"]: r for r in res["recommendations"]}
    assert recs[200]["recommended"] == "vertex-zero-spot"      # a few requests: pay only when up
    assert recs[20_000]["recommended"] == "local-1gpu"          # many: the fixed-cost GPU wins
    assert recs[200]["runner_up"] and "runner-up" in recs[200]["why"]
    assert 200 < res["break_even_per_month"] < 20_000


def test_article_replay_numbers(tmp_path):
    from loadlab.schema import Report
    assert main(["article", "--out", str(tmp_path / "article.json")]) == 0
    report = Report.load(tmp_path / "article.json")
    assert report.role == "article" and report.kind == "simulated"
    res = report.extra
    local = {row["concurrency"]: row for row in res["local"]}
    # the simulated FIFO server lands on the closed form (N+1)/2 x S, not on the article's means
    assert local[5]["fifo_simulated_mean_s"] == pytest.approx(3 * 28.7, rel=0.05)
    assert local[10]["fifo_simulated_mean_s"] == pytest.approx(5.5 * 28.7, rel=0.05)
    assert local[10]["quoted_over_fifo"] > 1.7
    assert local[20]["bounded_queue_16"]["served"] == 16 and local[20]["bounded_queue_16"]["rejected"] == 4
    assert res["vertex"]["three_warm_replicas_simulated_mean_s"] > 2.5 * res["vertex"]["quoted_mean_s"]
    assert res["cost"]["replica_second_bill"]["spot"]["monthly"] > 5 * res["cost"]["optimized_formula"]["monthly"]


@pytest.mark.parametrize("command", ["", "run", "sweep", "validate", "trace", "article", "bench"])
def test_every_help_renders(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"] if command else ["--help"])
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_cost_per_request_is_a_months_bill_over_a_months_requests_whatever_the_days_simulated():
    # the bill is scaled to 30 days; the served count must be too, or a 3-day run prices each request 10x
    wl = MonthlyWorkload(monthly=3000, days=3)
    r = run_month(Scenario(kind="vertex"), wl, seed=2)
    assert r["served"] > 0
    assert r["cost_per_request"] == pytest.approx(r["monthly_cost"] / (r["served"] * 10), rel=0.01)

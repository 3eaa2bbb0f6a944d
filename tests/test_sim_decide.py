"""The decided sweep (simulator/decide.py, `sweep(replications=None)`): common random numbers, months added
until the choice separates or the cap."""

import pytest

from simulator import decide
from simulator.pricing import DEFAULT_PRICES
from simulator.sweep import combine, sweep
from simulator.workload import MonthlyWorkload


def _row(setting, cost, p95=50.0, seed=1, lost=0):
    return {"volume": 1000, "setting": setting, "kind": "vertex", "served": 100, "failed": lost, "rejected": 0,
            "in_flight": 0, "arrivals": 100, "p95_s": p95, "mean_s": 10.0, "monthly_cost": cost,
            "cost_per_request": cost / 100, "replica_hours": 1.0, "cold_start_share": 0.0, "replications": 1,
            "monthly_cost_ci95": None, "p95_ci95": None, "seed": seed}


def test_paired_difference_decides_what_unpaired_intervals_cannot():
    # both vary a lot month to month, but the runner-up is always ~5 $ dearer on the same seeds
    best = [_row("a", c, seed=i) for i, c in enumerate([100, 140, 90, 130])]
    second = [_row("b", c + 5 + 0.1 * i, seed=i) for i, c in enumerate([100, 140, 90, 130])]
    sep = decide.separation(best, second)
    assert sep["decided"] and sep["on"] == "cost" and sep["difference"] == pytest.approx(5.15)
    a, b = combine(best), combine(second)
    assert b["monthly_cost"] - b["monthly_cost_ci95"] < a["monthly_cost"] + a["monthly_cost_ci95"]   # overlap


def test_replications_combine_to_the_same_row_in_whatever_order_a_pool_returns_them():
    # a pool's as_completed order differs run to run: the row (its seed, its float sums) must not
    runs = [_row("a", c, p95=40 + c / 7, seed=i) for i, c in enumerate([100.1, 140.3, 90.7, 130.9])]
    assert combine(runs[::-1]) == combine(runs) and combine(runs[::-1])["seed"] == 0


def test_same_cost_every_month_is_decided_at_once_and_noise_stays_undecided_at_the_cap():
    best = [_row("local-1gpu", 80.0, p95=40 + 7 * i, seed=i) for i in range(2)]
    second = [_row("local-batch", 80.0, p95=45 + i, seed=i) for i in range(2)]
    assert decide.separation(best, second)["on"] == "same cost"
    got, more = decide.decide_volume({"local-batch": second, "local-1gpu": best}, 120.0, combine, cap=8)
    assert got["decided"] and not more and "either will do" in got["decision"]
    assert got["decision"].startswith("same cost every month as local-batch")   # lower mean p95 first
    # b is dearer on average (+1 $) but not on every seed: no decision yet
    noisy = {"a": [_row("a", c, seed=i) for i, c in enumerate([100, 110])],
             "b": [_row("b", c, seed=i) for i, c in enumerate([111, 101])]}
    got, more = decide.decide_volume(noisy, 120.0, combine, cap=8)
    assert not got["decided"] and set(more) == {"a", "b"}          # another month for both
    got, more = decide.decide_volume(noisy, 120.0, combine, cap=2)
    assert not got["decided"] and not more and got["decision"].startswith("undecided: within")


def test_screening_keeps_the_cheap_settings_meeting_the_slo():
    screen = [_row("a", 100), _row("b", 140), _row("c", 160), _row("d", 50, p95=500), _row("e", 60, lost=1)]
    assert decide.contenders(screen, 120.0, top=3) == ["a", "b"]      # c over 1.5x, d too slow, e loses requests
    assert decide.contenders(screen, 120.0, top=1) == ["a", "b"]      # always a runner-up
    assert decide.contenders([_row("a", 100), _row("c", 160)], 120.0, top=3) == ["a", "c"]


def test_decided_sweep_is_stable_and_uses_the_same_seeds_for_every_contender():
    kw = dict(slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2), processes=1,
              only=["vertex-zero", "vertex-always1", "local-1gpu"], replications=None, screen_days=1, cap=4)
    first, again = sweep([1500], **kw), sweep([1500], **kw)
    assert first.extra["recommendations"] == again.extra["recommendations"]
    rec = first.extra["recommendations"][0]
    assert "decided" in rec and rec["decision"]
    months = [r for r in first.extra["rows"] if r.get("stage") == "month"]
    assert months and all(r["replications"] >= 2 for r in months)
    assert {r["seed"] for r in months} == {1}          # month i has the same seed for every contender
    screened = [r for r in first.extra["rows"] if str(r.get("stage", "")).startswith("screening")]
    assert all(r["days"] == 1 for r in screened)

"""A month in bounded memory: arrivals drawn an hour at a time (the same draw as the whole month at
once), figures streamed from the ledger, latencies summarised exactly up to a capacity and from a
reservoir beyond it, a report and a ledger holding a bounded number of jobs."""

from __future__ import annotations

import functools
import hashlib
import math
import tracemalloc

import numpy as np
import pytest

from loadlab.schema import COMPLETED, Report
from loadlab.stats import PERCENTILES, pct_key, summarize
from simulator import ledger as ledger_module
from simulator import month
from simulator.cli import main
from simulator.engine import run_month
from simulator.limits import MAX_REQUESTS
from simulator.scenarios import Scenario
from simulator.streamstats import StreamingSummary
from simulator.workload import MonthlyWorkload


def _fingerprint(times, cases, hits) -> str:
    digest = hashlib.sha256(np.asarray(times).tobytes())
    digest.update(",".join(cases).encode())
    digest.update(np.asarray(hits).tobytes())
    return digest.hexdigest()[:16]


# drawn by the whole-month `generate` of commit 0ef874d, before arrivals were streamed: the same seed
# still gives the same month (and the README's worked example its numbers)
@pytest.mark.parametrize("workload,seed,n,fingerprint", [
    (MonthlyWorkload(monthly=3000, days=3, bursts_per_day=2, burst_size=15, cache_hit_ratio=0.1), 3, 375,
     "03201fc32c0377ec"),
    (MonthlyWorkload(monthly=20000, days=7.5, cache_hit_ratio=0.4, cache_ttl_s=3600), 1, 5000, "a1699b72af48566e"),
    (MonthlyWorkload(monthly=10000), 1, 10000, "ade0c3813d9ecd4a"),
])
def test_streamed_arrivals_are_the_whole_month_draw(workload, seed, n, fingerprint):
    chunks = list(workload.arrivals(np.random.default_rng(seed)))
    times = np.concatenate([c[0] for c in chunks])
    assert len(chunks) > 24 and times.size == n
    assert _fingerprint(times, [case for c in chunks for case in c[1]],
                        np.concatenate([c[2] for c in chunks])) == fingerprint
    assert _fingerprint(*workload.generate(np.random.default_rng(seed))) == fingerprint


def test_the_biggest_month_is_drawn_an_hour_at_a_time():
    tracemalloc.start()
    try:
        arrivals = MonthlyWorkload(monthly=MAX_REQUESTS).arrivals(np.random.default_rng(1))
        first = [next(iter(arrivals)) for _ in range(48)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert arrivals.total == MAX_REQUESTS
    assert max(c[0].size for c in first) < 50_000        # an hour, not the month
    assert peak < 20e6                                     # the whole month's arrays would take ~400 MB


def test_a_month_over_the_bound_is_refused_before_drawing():
    with pytest.raises(ValueError, match="over the bound of 10,000,000 requests"):
        MonthlyWorkload(monthly=MAX_REQUESTS, days=31).arrivals(np.random.default_rng(1))
    with pytest.raises(ValueError, match="with bursts"):
        MonthlyWorkload(monthly=0, days=30, bursts_per_day=1000, burst_size=1000).check()


def test_summary_is_exact_up_to_the_capacity():
    values = np.random.default_rng(2).lognormal(3, 1, 5000)
    stream = StreamingSummary(capacity=5000)
    for v in values.tolist():
        stream.add(v)
    assert stream.summary() == summarize(values)


def _rank_within(sample_value: float, exact: np.ndarray, p: float, capacity: int, sigmas: float = 4) -> bool:
    """Whether `sample_value` sits, among `exact`, within the stated +- sigmas x sd of percentile p."""
    rank = 100 * np.searchsorted(np.sort(exact), sample_value) / exact.size
    sd = 100 * math.sqrt(p / 100 * (1 - p / 100) / capacity)
    return abs(rank - p) <= sigmas * sd + 100 / exact.size


def test_reservoir_beyond_the_capacity_within_the_stated_error():
    # increasing, as in a month whose queue grows: a sample that kept early values would show it
    values = np.sort(np.random.default_rng(3).lognormal(3, 1, 300_000))
    stream = StreamingSummary(capacity=20_000)
    for v in values.tolist():
        stream.add(v)
    got, want = stream.summary(), summarize(values)
    assert got["count"] == want["count"] and (got["min"], got["max"]) == (want["min"], want["max"])
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12) and got["std"] == pytest.approx(want["std"], rel=1e-9)
    assert stream._sample.size == 20_000                  # memory: the capacity, whatever the count
    for p in PERCENTILES:
        assert _rank_within(got[pct_key(p)], values, p, 20_000), p


def test_streamed_month_figures_match_the_jobs(monkeypatch):
    """A small month with a reservoir of 500 latencies: the figures against those of every job."""
    capacity = 500
    wl = MonthlyWorkload(monthly=6000, days=10, cache_hit_ratio=0.1, bursts_per_day=1, burst_size=10)
    exact = run_month(Scenario(kind="hybrid"), wl, seed=2, slo_e2e_s=90.0)     # the default capacity: exact
    monkeypatch.setattr(ledger_module, "StreamingSummary", functools.partial(StreamingSummary, capacity=capacity))
    r = run_month(Scenario(kind="hybrid"), wl, seed=2, slo_e2e_s=90.0, keep_jobs=None)
    done = [j for j in r["_ledger"].jobs if j.status == COMPLETED]
    e2e = np.asarray([j.finished - j.submitted for j in done])
    want, got = summarize(e2e), r["latency_s"]
    assert len(done) > 4 * capacity
    assert got["count"] == want["count"] == r["served"] and (got["min"], got["max"]) == (want["min"], want["max"])
    assert got["mean"] == pytest.approx(want["mean"], rel=1e-12) and got["std"] == pytest.approx(want["std"], rel=1e-9)
    for p in PERCENTILES:
        assert _rank_within(got[pct_key(p)], e2e, p, capacity), p
    assert r["slo_attainment"] == sum(e2e <= 90.0) / len(r["_ledger"].jobs)
    assert r["goodput_per_s"] == sum(e2e <= 90.0) / (10 * 86400)
    assert r["cold_start_share"] == pytest.approx(np.mean([j.cold_start for j in done]), abs=1e-15)
    assert exact["latency_s"]["p95"] == pytest.approx(want["p95"], rel=1e-12)
    assert {k: exact[k] for k in ("served", "monthly_cost", "slo_attainment")} == \
        {k: r[k] for k in ("served", "monthly_cost", "slo_attainment")}


def test_ledger_and_report_hold_a_bounded_number_of_jobs(tmp_path, monkeypatch):
    r = run_month(Scenario(kind="local"), MonthlyWorkload(monthly=3000, days=2), seed=1, keep_jobs=50)
    assert len(r["_ledger"].jobs) == 50 and r["arrivals"] == 200 and r["latency_s"]["count"] == r["served"]
    monkeypatch.setattr(month, "REPORT_JOBS", 30)
    out = tmp_path / "m.json"
    assert main(["--monthly", "3000", "--days", "2", "--deployments", "local,vertex", "--out", str(out),
                 "--no-progress"]) == 0
    report = Report.load(out)
    assert [len(s.jobs) for s in report.stages] == [30, 30]
    assert [x["arrivals"] for x in report.extra["results"]] == [200, 200]
    assert "first 30 jobs" in report.extra["stage_jobs"]

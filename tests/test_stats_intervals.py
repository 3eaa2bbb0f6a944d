"""loadlab.stats' intervals for validations: the block bootstrap widens with autocorrelation, the
prediction interval of one more replication, the precision rule behind "too few jobs", the distribution
of a discrete outcome over replications, and the planner of a stage's size."""

from __future__ import annotations

import numpy as np
import pytest

from loadlab.stats import (
    block_bootstrap_ci,
    block_length,
    discrete_distribution,
    inside,
    jobs_needed,
    precise_enough,
    prediction_interval,
    rank_share,
)


def ar1(n: int, phi: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty(n)
    x[0] = 0.0
    for i in range(1, n):
        x[i] = phi * x[i - 1] + rng.normal()
    return 10.0 + x


def test_block_bootstrap_is_wider_for_correlated_waits_and_covers_the_mean():
    iid, correlated = ar1(400, 0.0), ar1(400, 0.9)
    assert block_length(correlated) > 3 * block_length(iid)
    w_iid = np.diff(block_bootstrap_ci(iid, np.mean))[0]
    w_cor = np.diff(block_bootstrap_ci(correlated, np.mean))[0]
    # an AR(1) with phi 0.9 has sqrt((1+phi)/(1-phi)) / sqrt(1/(1-phi^2)) ~ 3x the iid standard error
    assert w_cor > 2 * w_iid
    # coverage of the true mean (10) over independent series: near 95 %, far above an iid bootstrap's
    hits = sum(lo <= 10.0 <= hi for lo, hi in (block_bootstrap_ci(ar1(300, 0.8, s), np.mean, draws=300)
                                               for s in range(40)))
    assert hits >= 32
    assert block_bootstrap_ci([1.0, 2.0, 3.0], np.mean) is None


def test_prediction_interval_of_one_more_replication():
    lo, hi = prediction_interval([1.0, 2.0, 3.0])
    # mean 2, s 1, t(2) 4.303, sqrt(1 + 1/3)
    assert (lo + hi) / 2 == pytest.approx(2.0)
    assert (hi - lo) / 2 == pytest.approx(4.303 * np.sqrt(4 / 3))
    assert prediction_interval([5.0]) is None and prediction_interval([5.0, 5.0, 5.0]) is None
    assert inside(2.5, (lo, hi)) and not inside(9.0, (lo, hi)) and inside(None, (lo, hi)) is None
    # a figure that cannot be negative: the interval is cut at its floor, its top unchanged
    assert prediction_interval([1.0, 2.0, 3.0], floor=0.0) == pytest.approx((0.0, hi))
    assert prediction_interval([10.0, 11.0, 12.0], floor=0.0) == prediction_interval([10.0, 11.0, 12.0])


def test_precision_rule_of_a_ten_percent_statement():
    assert precise_enough((9.5, 10.6), 10.0)
    assert not precise_enough((8.9, 10.5), 10.0)
    assert not precise_enough(None, 10.0)


def test_discrete_outcomes_as_a_distribution_and_where_the_measured_one_falls():
    times = [52.1, 52.9, 53.0, 80.0, 81.0, 82.0, 80.5, 81.2, 81.9, 80.3]
    assert discrete_distribution(times, gap=2.0, unit=" s") == "52-53 s in 3 of 10, 80-82 s in 7"
    assert discrete_distribution([2, 2, 1, None], gap=0.5) == "1 in 1 of 4, 2 in 2, none in 1"
    assert rank_share(times, 52.4) == pytest.approx(0.1)
    assert rank_share([2, 2, 2, 2], 2) == pytest.approx(0.5)
    assert rank_share([1, 1], 3) == 1.0


def test_jobs_needed_grows_with_the_load_as_a_fifo_queue_has_it():
    low, mid, high = jobs_needed(0.3), jobs_needed(0.5), jobs_needed(0.85)
    assert low < mid < high
    # an M/D/1-like queue at rho 0.5 needs hundreds of jobs for +-10 %, at rho 0.85 thousands
    assert 100 < mid < 2000 and high > 5000
    assert jobs_needed(0.5, precision=0.2) == pytest.approx(mid / 4, rel=0.02)
    with pytest.raises(ValueError):
        jobs_needed(1.0)

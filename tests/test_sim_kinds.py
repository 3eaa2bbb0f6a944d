"""Where a new deployment kind and a new arrival mode are written: one registry call, one table entry."""

from __future__ import annotations

import typing

import pytest

from loadlab.arrival_modes import ARRIVAL_MODES, RATE_LAWS, RATE_MODES
from loadlab.schema import LoadConfig
from locustfiles.options import BY_DEST
from simulator.deployments import LocalGPU
from simulator.engine import run_month
from simulator.scenarios import KINDS, REGISTRY, register_kind, scenario
from simulator.workload import MonthlyWorkload


@pytest.fixture
def new_kind():
    """A kind registered the way a new one is: its builder and its description, nothing else."""
    def build(sc, env, ledger, rng):
        return LocalGPU(env, ledger, sc.vertex_profile.sampler(rng), gpus=2, fixed_per_month=0.0, name="rented")

    register_kind("rented-2gpu", "two rented cloud GPUs behind one queue", build)
    yield "rented-2gpu"
    KINDS.pop("rented-2gpu")
    REGISTRY.pop("rented-2gpu")


def test_a_registered_kind_runs_by_its_name_and_is_named_in_the_results(new_kind):
    sc = scenario(new_kind)
    assert sc.kind == new_kind and REGISTRY[new_kind][1] == "two rented cloud GPUs behind one queue"
    r = run_month(sc, MonthlyWorkload(monthly=300, days=1), seed=1)
    assert r["kind"] == new_kind and r["served"] == r["arrivals"] > 0
    with pytest.raises(ValueError, match="registered twice"):
        register_kind(new_kind, "again", KINDS[new_kind])


def test_the_arrival_modes_come_from_one_table():
    assert RATE_MODES == tuple(RATE_LAWS) and ARRIVAL_MODES == ("closed", *RATE_MODES, "trace")
    assert typing.get_args(LoadConfig.model_fields["arrival"].annotation) == ARRIVAL_MODES
    assert tuple(BY_DEST["arrival"].choices) == ARRIVAL_MODES

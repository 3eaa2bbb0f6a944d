"""Sweeps on a Ray cluster (simulator/cluster.py): the same figures as local processes."""

import shutil
import tempfile

import pytest

from simulator.pricing import DEFAULT_PRICES
from simulator.sweep import sweep
from simulator.workload import MonthlyWorkload


@pytest.mark.slow
def test_a_sweep_on_ray_tasks_gives_the_figures_of_local_processes():
    ray = pytest.importorskip("ray")
    kw = dict(slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=1),
              only=["vertex-zero", "local-1gpu"], replications=2)
    local = sweep([800], processes=1, **kw)
    # a local cluster of its own (temp dir, 2 CPUs); RayPool connects to it and shuts it down on leaving
    temp = tempfile.mkdtemp(prefix="raysim-", dir="/tmp")     # short: Ray's socket paths must fit 107 bytes
    ray.init(num_cpus=2, _temp_dir=temp, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = sweep([800], processes=2, ray_address="auto", **kw)
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    assert on_ray.extra["rows"] == local.extra["rows"]

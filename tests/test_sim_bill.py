"""The whole bill (simulator/bill.py): line items that add up to the run's monthly cost."""

from types import SimpleNamespace

import pytest

from simulator.bill import GIB, ray_nodes, result_bytes
from simulator.engine import run_month
from simulator.pricing import DEFAULT_PRICES
from simulator.scenarios import scenario
from simulator.workload import MONTH_S, MonthlyWorkload


def _replicas(*spans):
    return SimpleNamespace(replicas=[SimpleNamespace(id=i, started_at=a, stopped_at=b) for i, (a, b) in enumerate(spans)])


def test_a_node_outlives_its_replica_by_the_idle_timeout_and_is_reused_within_it():
    # replica 1 stops at 100; replica 2 starts at 250 (within 300 s: same node); replica 3 at 1000 (a new node)
    nodes = ray_nodes(_replicas((0, 100), (250, 400), (1000, None)), horizon_s=2000, idle_timeout_s=300)
    assert nodes == [(0, 700), (1000, 2000)]
    # two replicas up at once need two nodes
    assert len(ray_nodes(_replicas((0, 100), (50, 150)), 1000, 300)) == 2
    # no idle timeout: a node ends with its replica
    assert ray_nodes(_replicas((0, 100), (250, 400)), 1000, 0) == [(0, 100), (250, 400)]


def _run(name, monthly=3000, days=2, **prices):
    sc = scenario(name)
    sc.prices = {**DEFAULT_PRICES, **prices}
    return run_month(sc, MonthlyWorkload(monthly=monthly, days=days), seed=3)


def test_vertex_lines_split_the_billed_node_hours_and_add_egress():
    r = _run("vertex-article")
    bill = r["bill"]
    assert r["monthly_cost"] == pytest.approx(bill["total"]) == pytest.approx(sum(x["cost"] for x in bill["lines"]))
    assert sum(x["share"] for x in bill["lines"]) == pytest.approx(1.0)
    node_h = sum(x["quantity"] for x in bill["lines"] if x["unit"] == "node-h")
    assert node_h == pytest.approx(r["cost_breakdown"]["replica_hours_billed"] * 15)   # 2 days -> 30
    busy = next(x for x in bill["lines"] if x["item"].endswith("busy"))
    assert busy["quantity"] == pytest.approx(r["deployment_stats"]["busy_hours"] * 15)
    egress = next(x for x in bill["lines"] if "egress" in x["item"])
    per_job = {c: result_bytes(c, DEFAULT_PRICES["result_bytes_per_px"]) for c in ("small", "medium", "large")}
    assert min(per_job.values()) * r["served"] * 15 / GIB <= egress["quantity"] <= max(per_job.values()) * r["served"] * 15 / GIB
    assert egress["cost"] == pytest.approx(egress["quantity"] * DEFAULT_PRICES["egress_per_gib"])


def test_ray_bill_has_the_head_node_and_the_idle_nodes():
    r = _run("ray-zero")
    lines = {x["item"].split(" (")[0]: x for x in r["bill"]["lines"]}
    head = lines["Ray head node"]
    assert head["quantity"] == pytest.approx(MONTH_S / 3600) and head["price"] == DEFAULT_PRICES["ray_head_per_hour"]
    idle_nodes = next(x for x in r["bill"]["lines"] if x["item"].startswith("Ray GPU node idle after"))
    assert idle_nodes["quantity"] > 0
    gpu = sum(x["cost"] for x in r["bill"]["lines"] if x["item"].startswith("Ray GPU node"))
    assert gpu >= r["cost_breakdown"]["usage"] * 15 - 1e-9     # at least the replicas' own node time
    # no idle timeout: less node time
    sc = scenario("ray-zero")
    sc.ray.node_idle_timeout_s = 0.0
    short = run_month(sc, MonthlyWorkload(monthly=3000, days=2), seed=3)
    assert short["monthly_cost"] < r["monthly_cost"]


def test_local_has_no_egress_and_hybrid_bills_egress_only_for_cloud_served_results():
    local = _run("local-1gpu")
    assert [x["item"] for x in local["bill"]["lines"] if x["cost"]] == ["local GPU: fixed cost"]
    assert local["monthly_cost"] == pytest.approx(DEFAULT_PRICES["local_fixed_per_month"])
    sc = scenario("hybrid-article")
    r = run_month(sc, MonthlyWorkload(monthly=3000, days=2), seed=3, keep_jobs=None)
    ledger = r["_ledger"]
    cloud = sum(n * result_bytes(c, DEFAULT_PRICES["result_bytes_per_px"])
                for (c, who), n in ledger.served_by_case.items() if not who.startswith("local"))
    assert any(who.startswith("local") for _, who in ledger.served_by_case)   # some fell back
    egress = next(x for x in r["bill"]["lines"] if "egress" in x["item"])
    assert egress["quantity"] == pytest.approx(cloud * 15 / GIB)

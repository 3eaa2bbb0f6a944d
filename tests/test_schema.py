"""The report schema's typed blocks: what the JSON says and what readers get by attribute."""

import json

import pytest
from pydantic import ValidationError

from loadlab.blocks import ColdStart, FifoIdeal, FifoIdealStage
from loadlab.schema import JobRecord, Report, RunConfig, Stage, StageSummary, Summary
from loadlab.stats import PERCENTILES, pct_key, summarize

SUMMARY_KEYS = ["count", "mean", "std", "min", "p50", "p95", "p99", "p99.9", "max"]
STAGE_KEYS = SUMMARY_KEYS + ["jobs", "completed", "failed", "rejected", "dropped", "success_rate", "queue_s",
                             "service_s", "lateness_s", "wall_s", "throughput_per_s", "slo_e2e_s", "slo_attainment",
                             "goodput_per_s"]


def _stage() -> Stage:
    jobs = [JobRecord(case="light", status="completed", submitted=float(i), scheduled=i - 0.01, finished=i + 1.0 + i,
                      queue_s=float(i), service_s=1.0, e2e_s=1.01 + i) for i in range(4)]
    jobs.append(JobRecord(case="light", status="dropped", submitted=4.0))
    return Stage(name="r=1/s", slo_e2e_s=2.5, jobs=jobs)


def test_stage_summary_json_keeps_its_keys_in_order_with_p99_9():
    stage = _stage()
    written = Report(role="load", kind="measured", name="n", target="local", config=RunConfig(driver="t"),
                     stages=[stage]).to_dict()["stages"][0]["summary"]
    assert list(written) == STAGE_KEYS
    for nested in ("queue_s", "service_s", "lateness_s"):
        assert list(written[nested]) == SUMMARY_KEYS
    assert written["p99.9"] == summarize(j.e2e_s for j in stage.jobs if j.e2e_s is not None)["p99.9"]
    assert (written["dropped"], written["completed"], written["slo_attainment"]) == (1, 4, 2 / 5)


def test_summary_attributes_and_percentiles_by_number():
    s = _stage().summary
    assert isinstance(s, StageSummary) and isinstance(s.queue_s, Summary)
    e2e = summarize([1.01, 2.01, 3.01, 4.01])
    for p in PERCENTILES:
        assert s.pct(p) == e2e[pct_key(p)]
    assert s.p99_9 == e2e["p99.9"] and s.queue_s.mean == 1.5 and s.lateness_s.count == 4


def test_summary_is_recomputed_on_load(tmp_path):
    report = Report(role="load", kind="measured", name="n", target="local", config=RunConfig(driver="t"),
                    stages=[_stage()])
    data = report.to_dict()
    data["stages"][0]["summary"]["mean"] = 99.0      # a stale figure in the file is not believed
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data))
    assert Report.load(path).stages[0].summary.mean == report.stages[0].summary.mean


def test_coldstart_writes_back_only_the_half_its_writer_filled(tmp_path):
    report = Report(role="calibration", kind="measured", name="n", target="rayserve", config=RunConfig(driver="t"),
                    coldstart={"replica_start_s": [3.5], "zero_to_decision_s": [1.25], "back_at_rest": True})
    assert isinstance(report.coldstart, ColdStart) and report.coldstart.zero_to_decision_s == [1.25]
    assert report.to_dict()["coldstart"] == {"replica_start_s": [3.5], "zero_to_decision_s": [1.25],
                                             "back_at_rest": True}
    assert report.coldstart.stages_s == {}                     # the other writer's half reads as empty
    with pytest.raises(ValidationError):
        ColdStart(zero_to_decison_s=[1.0])                     # a misspelt key fails where it is written


def test_fifo_ideal_block_round_trips_through_extra():
    report = Report(role="load", kind="measured", name="n", target="local", config=RunConfig(driver="t"))
    assert FifoIdeal.of(report) is None
    report.extra[FifoIdeal.KEY] = FifoIdeal(service_s=2.0, source="s", formula="f",
                                            stages={"u=3": FifoIdealStage(ideal_mean_s=4.0, ratio=1.1)}).to_extra()
    assert report.extra["fifo_ideal"]["stages"]["u=3"]["ratio"] == 1.1
    assert FifoIdeal.of(report).stages["u=3"].ideal_mean_s == 4.0

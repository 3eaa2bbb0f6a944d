"""The report opens with the answer (bench/report/sections/answer.py)."""

from bench.report.build import SECTIONS
from bench.report.loading import load_reports
from bench.report.sections import answer
from bench.report.view import Table
from loadlab.schema import ErrorRow, Report, RunConfig, SimulationConfig
from simulator.pricing import DEFAULT_PRICES
from simulator.sweep import sweep
from simulator.workload import MonthlyWorkload


def test_the_answer_is_the_first_section_with_intervals_decision_and_validation(tmp_path):
    assert SECTIONS[0] is answer.SECTION
    rep = sweep([1500], slo=600.0, prices=dict(DEFAULT_PRICES), workload=MonthlyWorkload(monthly=0, days=2),
                processes=1, only=["vertex-zero", "vertex-always1", "local-1gpu"], replications=None, screen_days=1)
    rep.save(tmp_path / "simulated" / "sweep.json")
    v = Report(role="validation", kind="simulated", name="validate-x", target="local",
               config=RunConfig(driver="simulator validate", simulation=SimulationConfig()))
    v.errors = [ErrorRow(stage="a", metric="p95_s", measured=10.0, simulated=12.0, error=0.2)]
    v.save(tmp_path / "simulated" / "validate-x.json")
    (tmp_path / "measured").mkdir()
    section = answer.SECTION.build(load_reports(tmp_path))
    table = next(b for b in section.blocks if isinstance(b, Table) and b.title == "The recommendation (simulated)")
    row = table.rows[0]
    rec = rep.extra["recommendations"][0]
    assert row[1] == rec["recommended"] and row[2] == ("decided" if rec["decided"] else "NOT decided")
    assert "±" in row[3].text                                            # $/month with its interval
    assert rec["recommended"] == "local-1gpu" and row[2] == "decided"     # $80 against a Vertex bill, 3 months
    assert row[6] == f"validated: |error| <= 20 % (1 scored rows, validate-x, {v.created})"     # p95, local kind
    assert row[4] == "not validated here"                                # no replica-seconds row for local
    bill = next(b for b in section.blocks if isinstance(b, Table) and (b.title or "").startswith("The bill of"))
    assert bill.rows[-1][0] == "total"

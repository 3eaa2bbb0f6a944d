"""`simulator run --trace` prices the trace as what it is (its own span), `--repeat-to-month` as a month of
it; `simulator sweep --trace` recommends a setting for it."""

from __future__ import annotations

import pytest

from loadlab.schema import Report
from loadlab.trace import write_trace
from simulator.cli import main
from simulator.workload import MONTH_S


@pytest.fixture
def short_trace(tmp_path):
    rows = [(float(10 * i), "small") for i in range(20)] + [(200.0, "small")] * 5       # a burst at the end
    return write_trace(tmp_path / "short.csv", rows, provenance={"source": "x.log", "window": "all",
                                                                  "window_start_weekday_hour": "Friday 11:00",
                                                                  "time_scale": 60, "scaling": "--time-scale 60"})


def test_a_short_trace_is_priced_for_its_span_not_a_month(tmp_path, short_trace, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "--trace", str(short_trace), "--drain-s", "400", "--deployments", "local,ray",
                 "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "$ trace" in printed and "$/month" not in printed
    assert "compressed traffic" in printed and "reads the log's clock" not in printed   # scaled: no clock of its own
    results = {r["deployment"]: r for r in Report.load(out).extra["results"]}
    horizon = 200 + 400
    # the local GPU: $80 a month, bought for 600 s of it
    assert results["local"]["trace_cost"] == pytest.approx(80 * horizon / MONTH_S)
    assert results["local"]["cost_per_request"] == pytest.approx(results["local"]["trace_cost"] / 25)
    assert results["ray"]["replica_hours"] == pytest.approx(results["ray"]["replica_hours_per_month"] * horizon / MONTH_S)
    assert main(["run", "--trace", str(short_trace), "--drain-s", "400", "--deployments", "local",
                 "--no-progress", "--repeat-to-month", "--out", str(out)]) == 0
    assert "$/month" in capsys.readouterr().out
    local = Report.load(out).extra["results"][0]
    assert local["monthly_cost"] == pytest.approx(80.0) and local["cost_basis"] == "repeated to 30 days"


def test_sweep_on_a_trace_recommends_for_it(tmp_path, short_trace, capsys):
    out = tmp_path / "s.json"
    assert main(["sweep", "--trace", str(short_trace), "--processes", "1", "--slo-p95", "3600",
                 "--out", str(out)]) == 0
    extra = Report.load(out).extra
    assert len(extra["rows"]) == 14 and len(extra["recommendations"]) == 1
    rec = extra["recommendations"][0]
    meeting = [r for r in extra["rows"] if r["p95_s"] is not None and r["p95_s"] <= 3600
               and r["failed"] + r["rejected"] <= 0.001 * r["arrivals"]]
    cheapest = min(r["trace_cost"] for r in meeting)
    # settings at the same cost (one local GPU, batched or not) are equally cheap: the sweep breaks the tie
    assert rec["recommended"] in {r["setting"] for r in meeting if r["trace_cost"] == cheapest}
    assert "recommended for this trace" in capsys.readouterr().out
    assert main(["sweep", "--trace", str(short_trace), "--replications", "2", "--out", str(out)]) == 2


def test_vertex_schedules_read_the_log_clock_of_an_unscaled_trace(tmp_path):
    from simulator.autoscaling.vertex import article_schedule
    from simulator.scenarios import Scenario, scenario
    from simulator.traffic.price import log_start_hour, on_log_clock

    trace = write_trace(tmp_path / "t.csv", [(0.0, "small")],
                        provenance={"window_start_weekday_hour": "Friday 11:40", "time_scale": 1.0})
    assert log_start_hour(trace) == 12
    sc = on_log_clock(scenario("vertex", Scenario()), 12)
    assert [sc.vertex.schedule(h) for h in range(24)] == [article_schedule((h + 12) % 24) for h in range(24)]
    scaled = write_trace(tmp_path / "s.csv", [(0.0, "small")],
                         provenance={"window_start_weekday_hour": "Friday 11:40", "time_scale": 60})
    assert log_start_hour(scaled) is None and log_start_hour(write_trace(tmp_path / "p.csv", [(0.0, "small")])) is None
    # a trace starting at 20:00 on the log's clock: the article's night schedule (max 1) from t = 0
    night = write_trace(tmp_path / "n.csv", [(float(i), "small") for i in range(6)],
                        provenance={"window_start_weekday_hour": "Monday 20:00", "time_scale": 1})
    out = tmp_path / "r.json"
    assert main(["run", "--trace", str(night), "--deployments", "vertex", "--no-progress", "--out", str(out)]) == 0
    assert Report.load(out).extra["results"][0]["max_replicas"] == 1
    day = write_trace(tmp_path / "d.csv", [(float(i), "small") for i in range(6)],
                      provenance={"window_start_weekday_hour": "Monday 10:00", "time_scale": 1})
    assert main(["run", "--trace", str(day), "--deployments", "vertex", "--no-progress", "--out", str(out)]) == 0
    assert Report.load(out).extra["results"][0]["max_replicas"] > 1

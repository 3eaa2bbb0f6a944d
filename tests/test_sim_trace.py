"""Arrival traces: the `t_s,case` CSV (loadlab/trace.py), `simulator trace` and `simulator run --trace`."""

from __future__ import annotations

import numpy as np
import pytest

from loadlab.schema import Report
from loadlab.trace import read_trace, write_trace
from simulator.cli import main
from simulator.workload import MonthlyWorkload


def test_round_trip_and_blank_trailing_lines(tmp_path):
    rows = [(0.0, "small"), (0.0, "medium"), (1.25, "large"), (3600.123456, "medium")]
    path = write_trace(tmp_path / "t.csv", rows)
    assert path.read_text().splitlines()[0] == "t_s,case"
    assert read_trace(path) == rows
    path.write_text(path.read_text() + "\n\n")
    assert read_trace(path) == rows


@pytest.mark.parametrize("text,message", [
    ("time,case\n1,small\n", "header"),
    ("t_s,case\n", "no arrivals"),
    ("t_s,case\n-1,small\n", ">= 0"),
    ("t_s,case\nnan,small\n", "finite"),
    ("t_s,case\nsoon,small\n", "not a number"),
    ("t_s,case\n2,small\n1,small\n", "line 3"),
    ("t_s,case\n1,small,extra\n", "2 fields"),
    ("t_s,case\n1, \n", "empty case"),
])
def test_bad_traces_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_trace(path)


def test_bounds_and_known_cases(tmp_path):
    path = write_trace(tmp_path / "t.csv", [(float(i), "small") for i in range(5)])
    with pytest.raises(ValueError, match="more than 4 rows"):
        read_trace(path, max_rows=4)
    with pytest.raises(ValueError, match="unknown case 'small'"):
        read_trace(path, cases={"medium"})
    with pytest.raises(ValueError, match="before the previous"):
        write_trace(tmp_path / "u.csv", [(2.0, "small"), (1.0, "small")])
    with pytest.raises(ValueError, match="does not exist"):
        read_trace(tmp_path / "missing.csv")


def test_trace_command_draws_the_workload_model_compressed(tmp_path, capsys):
    out = tmp_path / "day.csv"
    night_off = ",".join(["0"] * 9 + ["1"] * 9 + ["0"] * 6)     # traffic only 9-18h
    argv = ["trace", "--monthly", "30000", "--days", "1", "--time-scale", "720", "--seed", "4",
            "--case-mix", "small=1,large=1", "--hour-weights", night_off, "--out", str(out)]
    assert main(argv) == 0
    rows = read_trace(out)
    wl = MonthlyWorkload(monthly=30000, days=1, case_mix={"small": 1, "large": 1},
                         hour_weights=[0.0] * 9 + [1.0] * 9 + [0.0] * 6)
    times, cases, _ = wl.generate(np.random.default_rng(4))
    assert [c for _, c in rows] == cases                       # the model's own draw, same seed
    assert [t for t, _ in rows] == pytest.approx((times / 720).tolist(), abs=1e-6)
    assert len(rows) == 1000 and {c for _, c in rows} == {"small", "large"}
    assert all(9 * 3600 / 720 <= t < 18 * 3600 / 720 for t, _ in rows)   # 9-18h became 45-90 s
    first = out.read_text()
    assert main(argv) == 0 and out.read_text() == first         # same seed, same trace
    assert main([*argv[:-4], "--seed", "5", "--out", str(out)]) == 0 and out.read_text() != first


def test_run_replays_a_trace_with_its_times_and_cases(tmp_path, capsys):
    trace = write_trace(tmp_path / "prod.csv", [(0.0, "small"), (10.0, "medium"), (10.0, "medium"), (500.0, "large")])
    out = tmp_path / "r.json"
    assert main(["run", "--trace", str(trace), "--deployments", "local", "--drain-s", "600", "--out", str(out),
                 "--no-progress"]) == 0
    report = Report.load(out)
    assert report.config.load.mode == "trace" and report.config.load.trace == str(trace)
    jobs = report.stage("local").jobs
    assert [(j.submitted, j.case) for j in jobs] == [(0.0, "small"), (10.0, "medium"), (10.0, "medium"),
                                                     (500.0, "large")]
    assert all(j.status == "completed" for j in jobs)
    assert "4 arrivals" in capsys.readouterr().out


def test_run_refuses_a_trace_case_without_service_times(tmp_path, capsys):
    trace = write_trace(tmp_path / "odd.csv", [(0.0, "gigantic")])
    assert main(["run", "--trace", str(trace), "--deployments", "local", "--out", str(tmp_path / "r.json"),
                 "--no-progress"]) == 2
    assert "gigantic" in capsys.readouterr().err

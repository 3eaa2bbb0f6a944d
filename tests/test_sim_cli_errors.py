"""Every `python -m simulator` mistake, for every command: one line on stderr, exit code 2, no traceback;
every numeric flag bounded, its range in the --help; huge inputs refused at once, before any work."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from loadlab.schema import Report
from simulator.cli import Bounded, main, parser
from simulator.trace_from_workload import draw_trace
from simulator.workload import MonthlyWorkload

MISTAKES = [
    # run
    ["--days", "1e9"], ["--days", "nan"], ["--days", "0"], ["--monthly", "200000000"], ["--monthly", "1.5"],
    ["--monthly", "5000000", "--days", "90"], ["--profile", "{tmp}"], ["--out", "{tmp}"],
    ["--out", "{file}/m.json"], ["--replications", "0"], ["--slo-e2e", "inf"], ["--cache-hit-ratio", "2"],
    ["--hour-weights", ",".join(["inf"] * 24)], ["--case-mix", "small=nan"], ["--price", "machine_per_hour=nan"],
    ["--ray-min-max", "0,5000"], ["--trace", "{tmp}"], ["--bursts-per-day", "1000", "--burst-size", "100000"],
    # the other commands
    ["sweep", "--volumes", "0"], ["sweep", "--volumes", "20000000"], ["sweep", "--volumes", "100,x"],
    ["sweep", "--volumes", "5000000", "--days", "90"], ["sweep", "--slo-p95", "0"], ["sweep", "--png", "{tmp}"],
    ["trace", "--monthly", "100000000", "--out", "{tmp}/t.csv"], ["trace", "--monthly", "5000000", "--out", "{tmp}/t.csv"],
    ["trace", "--time-scale", "0", "--out", "{tmp}/t.csv"], ["trace", "--out", "{file}/t.csv"],
    ["validate", "--measured", "{tmp}"], ["validate", "--measured", "{file}"],
    ["validate", "--measured", "{file}", "--replications", "1000"],
    ["article", "--out", "{file}/a.json"], ["article", "--seed", "-1"],
    ["bench", "--requests", "0"], ["bench", "--requests", "100000000"],
]


@pytest.mark.parametrize("argv", MISTAKES, ids=" ".join)
def test_a_mistake_is_one_line_exit_2_no_traceback(argv, tmp_path):
    file = tmp_path / "not-json.txt"
    file.write_text("not a report")
    argv = [a.format(tmp=tmp_path, file=file) for a in argv]
    # No wall-clock bound here (the machine is shared): that a huge month is refused before it is drawn
    # is asserted directly in test_sim_streaming.py and test_huge_trace_is_refused_before_drawing.
    proc = subprocess.run([sys.executable, "-m", "simulator", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m simulator ") and ": error: " in lines[0], proc.stderr
    assert not (tmp_path / "t.csv").exists()


def test_an_error_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    """An --out that looked writable but was not (a full disk, a permission changed during the run)."""
    def refuse(self, path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(Report, "save", refuse)
    assert main(["--monthly", "100", "--days", "1", "--deployments", "local", "--out", str(tmp_path / "m.json"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m simulator run: error: {tmp_path / 'm.json'}: Permission denied\n"


def test_huge_trace_is_refused_before_drawing(monkeypatch):
    def never(self, rng):
        raise AssertionError("drew the arrivals")
    monkeypatch.setattr(MonthlyWorkload, "arrivals", never)
    with pytest.raises(ValueError, match="over the trace bound of 100 rows"):
        draw_trace(MonthlyWorkload(monthly=3000), max_rows=100)


def _actions():
    top = parser()
    for sub in next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices.values():
        for action in sub._actions:
            yield sub.prog, action


def test_every_numeric_flag_is_bounded_and_its_range_in_the_help():
    numeric = [(prog, a) for prog, a in _actions() if isinstance(a.type, Bounded) or a.type in (int, float)]
    assert len(numeric) > 40
    for prog, action in numeric:
        assert isinstance(action.type, Bounded), (prog, action.option_strings)
        assert f"range {action.type}" in action.help, (prog, action.option_strings)
    help_text = subprocess.run([sys.executable, "-m", "simulator", "run", "--help"], capture_output=True,
                               text=True).stdout
    assert "range >0..365" in " ".join(help_text.split()) and "0..10,000,000" in help_text

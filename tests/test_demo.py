"""`make demo`: its inputs derived from the calibration run, its guards for commands not there yet, and
(slow) the short CI mode end to end, whose page must show the figures of every report it wrote."""

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from bench.demo import (
    LOADS,
    RAY_AUTOSCALING,
    SLO_MULTIPLE,
    Skip,
    Step,
    Steps,
    open_loop_rates,
    plan,
    require_locust_options,
    require_options,
    write_autoscale_scenario,
)
from bench.htmlreport import load_reports
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage
from tests.test_report import Page


def calibration(path: Path, service_s: float, e2e: list[float], workers: int = 1) -> Path:
    r = Report(role="single", kind="measured", name="single-local", target="local",
               config=RunConfig(driver="test", server=ServerConfig(workers=workers), load=LoadConfig(mode="single")))
    r.stages.append(Stage(name="light [u=1]", concurrency=1, jobs=[
        JobRecord(case="light", status="completed", submitted=0.0, finished=e, e2e_s=e, service_s=service_s)
        for e in e2e]))
    return r.save(path)


def test_open_loop_rates_are_shares_of_the_calibrated_capacity(tmp_path):
    path = calibration(tmp_path / "single.json", service_s=2.0, e2e=[2.4, 2.6])
    rates, slo = open_loop_rates(path)
    assert rates == [round(x / 2.0, 4) for x in LOADS] == [0.25, 0.425]      # capacity 1 / S = 0.5/s
    assert slo == SLO_MULTIPLE * 2.5                                          # from the e2e mean
    two = calibration(tmp_path / "two.json", service_s=2.0, e2e=[2.5], workers=2)
    assert open_loop_rates(two)[0] == [0.5, 0.85]                             # two workers: 1/s
    with pytest.raises(Skip, match="missing"):
        open_loop_rates(tmp_path / "absent.json")


def test_the_autoscaling_scenario_goes_idle_ramp_burst_idle(tmp_path):
    service_s = 2.0
    path = tmp_path / "scenario.csv"
    length = write_autoscale_scenario(path, service_s, idle_s=35.0, ramp_s=30.0, burst=6, tail_s=45.0)
    lines = path.read_text().splitlines()
    assert lines[0] == "t_s,case"
    times = [float(line.split(",")[0]) for line in lines[1:]]
    assert times == sorted(times)
    # idle first, long enough for a deployment that starts at its minimum (0) to be there
    assert times[0] == 35.0
    assert RAY_AUTOSCALING["min_replicas"] == 0
    # the ramp's last third arrives faster than one replica serves (1/S), so it must scale up
    last_third = [t for t in times if 55.0 <= t < 65.0]
    assert len(last_third) / 10.0 > 1 / service_s
    # then a burst at once, then idle long enough for both scale-down delays and the stop
    assert times.count(70.0) == 6 and times[-1] == 70.0
    idle_tail = length - times[-1]
    assert idle_tail > RAY_AUTOSCALING["downscale_delay_s"] + RAY_AUTOSCALING["downscale_to_zero_delay_s"]


def test_a_missing_command_is_skipped_and_a_failing_one_fails(capsys):
    def unavailable(url):
        raise Skip("`python -m nothing` is not available")

    steps = Steps(total=3)
    assert not steps.run(Step("not there yet", unavailable), None)
    assert not steps.run(Step("fails", lambda url: ["-c", "raise SystemExit(3)"]), None)
    assert steps.run(Step("works", lambda url: ["-c", "print('hello from ' + 'the step')"]), None)
    out = capsys.readouterr().out
    assert "[1/3] not there yet" in out and "skipped: `python -m nothing` is not available" in out
    assert "FAILED (exit 3)" in out and "[3/3] works" in out
    assert steps.failed == ["fails"]
    assert steps.skipped == [("not there yet", "`python -m nothing` is not available")]


def test_guards_read_the_commands_themselves():
    require_options(("-m", "simulator", "validate"), "--measured")           # there
    with pytest.raises(Skip, match="has no --no-such-option"):
        require_options(("-m", "simulator", "validate"), "--no-such-option")
    # an unknown subcommand falls back to `simulator run`'s help: not mistaken for the command
    with pytest.raises(Skip, match="is not available"):
        require_options(("-m", "simulator", "no-such-command"))
    require_locust_options("--stages", "--jobs-per-user")
    with pytest.raises(Skip, match="has no --no-such-option"):
        require_locust_options("--no-such-option")


def test_short_mode_skips_the_long_scenarios_with_a_reason(tmp_path):
    steps = plan(Namespace(reports=tmp_path, short=True))
    reasons = {}
    for step in steps:
        try:
            step.command("http://127.0.0.1:1")
        except Skip as why:
            reasons[step.title] = str(why)
    trace = [t for t in reasons if t.startswith("trace")]
    assert len(trace) == 2 and all("--short" in reasons[t] for t in trace)
    assert "--short" in reasons["benchmark 3, Locust stages 1,5 (bursts), vertex target"]
    # and the full demo plans every step of the short one, plus the long ones
    full = plan(Namespace(reports=tmp_path, short=False))
    assert [s.title for s in full if s.phase == "rayserve"] == [s.title for s in steps if s.phase == "rayserve"]
    assert len(full) == len(steps)


SECTION_OF = {"single": "single", "coldstart": "coldstart", "capacity": "capacity", "validation": "validation",
              "monthly": "monthly", "sweep": "sweep", "article": "article"}


@pytest.mark.slow
def test_demo_short_mode_produces_a_report_of_every_run(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "bench", "demo", "--short", "--reports", str(reports)],
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert list((reports / "layers").glob("layer_*.png")), "the tiny model's layers were not written"
    loaded = load_reports(reports)
    roles = {r.role for r in loaded.reports}
    assert {"single", "coldstart", "load", "monthly", "validation"} <= roles, roles
    page = Page((reports / "index.html").read_text())
    for report in loaded.reports:
        if report.role == "load":
            section = "open-loop" if report.config.load.mode in ("open", "trace") else "concurrency"
        elif report.role == "validation" and not report.errors:
            continue  # a validation without error rows has no figures to show
        else:
            section = SECTION_OF[report.role]
        assert page.figures(section, report.kind), f"{report.name} ({report.role}): no figures in {section}"
    # every step either ran or said why not
    skipped = [line for line in proc.stdout.splitlines() if line.startswith("    skipped: ")]
    ran = proc.stdout.count("    ok in ")
    assert ran + len(skipped) == proc.stdout.count("==> ["), proc.stdout[-4000:]

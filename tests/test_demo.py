"""`make demo`: its inputs derived from the calibration run, its steps skipped (with why) when an input is
missing or --short leaves them out, and (slow) the short CI mode end to end, whose page must show the
figures of every report it wrote."""

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from bench.autoscale.cli import parse_args as autoscale_args
from bench.calibrate import parse_args as calibrate_args
from bench.demo import (
    LOADS,
    RAY_AUTOSCALING,
    RAY_SHORT_SKIP,
    SLO_MULTIPLE,
    Skip,
    Step,
    Steps,
    calibration_of,
    open_loop_rates,
    plan,
)
from bench.report.loading import load_reports
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


def test_the_ray_phase_calibrates_then_runs_the_scenario_then_validates(tmp_path):
    steps = {s.title: s for s in plan(Namespace(reports=tmp_path, short=False))}
    calibrate, scenario, again, validate = (steps[t] for t in steps if "Ray Serve" in t or "ray-serve" in t)
    measured = tmp_path / "measured"
    cal = calibrate.command(None)
    assert cal[:3] == ["-m", "bench", "calibrate"]
    calibrating = calibrate_args(cal[3:])
    assert calibrating.target == "rayserve" and len(calibrating.loads) >= 2
    parsed = autoscale_args(calibrating.autoscale)         # the demo's flags are the Ray deployment's own
    assert {k: getattr(parsed, k) for k in RAY_AUTOSCALING} == RAY_AUTOSCALING
    parsed.out = calibrating.out
    assert parsed.out == measured / "calibration-rayserve.json"
    # the scenario waits for its calibration, then takes it (never runs without it)
    with pytest.raises(Skip, match="calibration"):
        scenario.command(None)
    parsed.out.parent.mkdir(parents=True)
    parsed.out.write_text("{}")
    run = autoscale_args(scenario.command(None)[3:])
    assert run.calibration == parsed.out and not run.calibrate and run.scenario == "demo"
    assert {k: getattr(run, k) for k in RAY_AUTOSCALING} == RAY_AUTOSCALING
    with pytest.raises(Skip, match="missing"):
        validate.command(None)
    with pytest.raises(Skip, match="missing"):           # the second calibration runs after the scenario
        again.command(None)
    run.out.write_text("{}")
    after = calibrate_args(again.command(None)[3:])
    assert after.out == measured / "calibration-rayserve-after.json" and after.target == "rayserve"
    assert 1 <= after.cold_starts < calibrating.cold_starts and len(after.loads) >= 2
    assert {k: getattr(autoscale_args(after.autoscale), k) for k in RAY_AUTOSCALING} == RAY_AUTOSCALING
    args = validate.command(None)
    assert args[args.index("--measured") + 1] == str(run.out)
    assert args[args.index("--calibration") + 1] == str(parsed.out) and str(after.out) not in args
    after.out.write_text("{}")                          # once written, the validation takes both
    args = validate.command(None)
    assert [args[i + 1] for i, a in enumerate(args) if a == "--calibration"] == [str(parsed.out), str(after.out)]
    # --short skips all four, saying why
    short = {s.title: s for s in plan(Namespace(reports=tmp_path, short=True))}
    for title in (calibrate.title, scenario.title, again.title, validate.title):
        with pytest.raises(Skip) as why:
            short[title].command(None)
        assert str(why.value) == RAY_SHORT_SKIP


def test_every_validation_takes_a_calibration_at_several_loads_never_a_fit_on_one_job(tmp_path):
    steps = plan(Namespace(reports=tmp_path, short=False))
    validations = [s for s in steps if s.argv[:3] == ("-m", "simulator", "validate")]
    assert len(validations) == 5
    made = {}
    for step in steps:
        if step.argv[:3] == ("-m", "bench", "calibrate"):
            for path, _ in step.inputs:         # Ray's second calibration waits for the scenario's run
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            args = calibrate_args(step.command("http://127.0.0.1:1")[3:])
            assert len(args.loads) >= 2
            made[args.out] = args.target
    assert set(made.values()) == {"local", "vertex", "rayserve"}
    for target in ("local", "vertex", "rayserve"):      # the second, after the runs
        assert made[tmp_path / "measured" / f"calibration-{target}-after.json"] == target
    for step in validations:
        calibration = step.argv[step.argv.index("--calibration") + 1]
        assert Path(calibration) in made
        assert (Path(calibration), "bench calibrate") in step.inputs or "rayserve" in calibration
    # the local and Vertex validations take the calibration after the runs too, once it was written
    def argv(step):      # its computed arguments filled in, its inputs not checked
        return [x for a in step.argv for x in ([a] if isinstance(a, str) else a(None))]

    for target, count in (("local", 3), ("vertex", 1), ("rayserve", 1)):
        after = tmp_path / "measured" / f"calibration-{target}-after.json"
        mine = [s for s in validations if str(calibration_of(tmp_path, target)) in argv(s)]
        assert len(mine) == count and all(str(after) not in argv(s) for s in mine)
        after.parent.mkdir(parents=True, exist_ok=True)
        after.write_text("{}")
        for step in mine:
            assert argv(step)[argv(step).index(str(after)) - 1] == "--calibration"


def test_a_step_without_its_input_is_skipped_and_a_failing_one_fails(capsys, tmp_path):
    absent = tmp_path / "absent.json"
    steps = Steps(total=3)
    assert not steps.run(Step("not there yet", ("-c", "pass"), inputs=((absent, "an earlier step"),)), None)
    assert not steps.run(Step("fails", ("-c", "raise SystemExit(3)")), None)
    assert steps.run(Step("works", ("-c", "print('hello from ' + 'the step')")), None)
    out = capsys.readouterr().out
    why = f"{absent} is missing (an earlier step did not write it)"
    assert "[1/3] not there yet" in out and f"skipped: {why}" in out
    assert "FAILED (exit 3)" in out and "[3/3] works" in out
    assert steps.failed == ["fails"]
    assert steps.skipped == [("not there yet", why)]


def test_computed_arguments_are_filled_in_when_the_step_runs(tmp_path):
    running: dict[str, int] = {}
    steps = {s.title: s for s in plan(Namespace(reports=tmp_path, short=True), running)}
    single = steps["benchmark 1, single request, local target (sizes the open-loop rates and the SLO)"]
    assert single.phase == "server"
    args = single.command("http://127.0.0.1:1")
    assert args[args.index("--url") + 1] == "http://127.0.0.1:1" and "--server-pid" not in args
    running["server"] = 4242                                  # the job server started: its pid is passed
    args = single.command("http://127.0.0.1:1")
    assert args[args.index("--server-pid") + 1] == "4242"
    poisson = next(s for t, s in steps.items() if t.startswith("open loop"))
    with pytest.raises(Skip, match="missing"):                # no calibration run yet
        poisson.command("http://127.0.0.1:1")
    calibration(tmp_path / "measured" / "single-local.json", service_s=2.0, e2e=[2.4, 2.6])
    args = poisson.command("http://127.0.0.1:1")
    assert args[args.index("--rates") + 1] == "0.25,0.425"    # LOADS x 1/S
    assert args[args.index("--slo-e2e") + 1] == f"{SLO_MULTIPLE * 2.5:g}"
    assert args[args.index("--host") + 1] == "http://127.0.0.1:1"


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
              "monthly": "monthly", "sweep": "sweep", "article": "article", "calibration": "calibration"}


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

"""Issue 22: the Cockpit tab of the Locust web UI — its figures (locustfiles/cockpit_figures.py), the
prediction's child process (simulator/predict_stage.py), the bill's plan, and a real web UI (stand-in
client) serving /cockpit.json behind the web UI's guard, its tabs and its start form. The browser test
against the job server is tests/test_locust_cockpit_browser.py (slow)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from loadlab.schema import JobRecord, Report, RunConfig, Stage
from loadlab.stats import percentile_ci95
from locustfiles.cockpit_background import BILL_REQUESTS, bill_plan
from locustfiles.cockpit_figures import compare, current_rate, prediction_request, stage_row, table_row
from locustfiles.options import BY_DEST, OptionError
from tests.locust_helpers import FAKE, ROOT, web_ui
from tests.test_locust_webui_security import EVIL, send

ENV = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0.05"}


def job(t, e2e=1.0, status="completed", service=0.5, case="light", late=0.004):
    return JobRecord(case=case, status=status, scheduled=t, submitted=t + late, finished=t + e2e if e2e else None,
                     queue_s=0.0 if e2e else None, service_s=service if e2e else None,
                     e2e_s=e2e if status == "completed" else None)


def calibration_report(path, service_s=0.5, overhead_s=0.01, n=40):
    jobs, t = [], 0.0
    for _ in range(n):
        jobs.append(JobRecord(case="light", status="completed", submitted=t, started=t, finished=t + service_s,
                              queue_s=0.0, service_s=service_s, e2e_s=service_s + overhead_s))
        t += service_s + overhead_s
    Report(role="load", kind="measured", name="cal", target="local", config=RunConfig(driver="test"),
           stages=[Stage(name="u=1", concurrency=1, jobs=jobs)]).save(path)
    return path


# --- figures ----------------------------------------------------------------------------------------

def test_stage_row_counts_outcomes_and_scores_the_exact_times():
    jobs = [job(i, e2e=1.0 + i / 100) for i in range(30)] + [
        job(40, status="failed", e2e=None), job(41, status="rejected", e2e=None), job(42, status="dropped", e2e=None),
        job(43, status="in_flight", e2e=None)]
    stage = Stage(name="r=1/s", arrival_rate_per_s=1.0, started_at=0.0, duration_s=60.0, slo_e2e_s=1.2, jobs=jobs)
    row = stage_row(stage, now=50.0, calibration_service_s={"light": 0.25})
    assert (row["arrivals"], row["completed"], row["failed"], row["rejected"], row["dropped"], row["in_flight"]) == (
        34, 30, 1, 1, 1, 1)
    assert row["mean"] == pytest.approx(1.145)
    lo, hi = row["mean_ci95"]
    assert lo < row["mean"] < hi
    assert row["p99_ci95"] is None                      # 30 jobs say nothing about a p99
    assert row["lateness_p99_s"] == pytest.approx(0.004)
    assert row["service_inflation"] == pytest.approx(2.0)   # 0.5 s measured, 0.25 s calibrated
    assert row["slo_attainment"] == pytest.approx(21 / 34)  # every arrival counts against the SLO
    assert row["elapsed_s"] == 50.0
    cells = table_row(row)
    assert cells["p99"].endswith("(too few jobs)") and cells["inflation"] == "×2.00"
    assert current_rate(row) == pytest.approx(34 / 50)


def test_percentile_interval_covers_the_true_percentile_and_needs_enough_values():
    rng = np.random.default_rng(7)
    hits = sum(lo <= np.log(20) <= hi for lo, hi in (percentile_ci95(rng.exponential(1, 400), 95)
                                                     for _ in range(400)))
    assert 0.92 <= hits / 400 <= 0.98
    assert percentile_ci95(rng.exponential(1, 50), 99) is None
    assert percentile_ci95([], 50) is None


def test_compare_says_error_and_whether_the_measured_value_is_inside():
    row = {"mean": 2.0, "p95": 3.0, "p99": None, "slo_attainment": 0.9, "throughput_per_s": 1.0}
    predicted = {"mean": {"mean": 2.2, "lo": 1.9, "hi": 2.5, "n": 20}, "p95": {"mean": 4.0, "lo": 3.5, "hi": 4.5, "n": 20}}
    c = compare(row, predicted)
    assert c["mean"]["inside"] is True and c["mean"]["error"] == pytest.approx(0.1)
    assert c["p95"]["inside"] is False
    assert c["p99"]["inside"] is None and c["slo_attainment"]["simulated"] is None
    assert compare(row, None) == {}


def test_bill_plan_bounds_the_simulation():
    monthly, days = bill_plan(0.5)
    assert monthly == 1_296_000 and days * 0.5 * 86400 == pytest.approx(BILL_REQUESTS)
    assert bill_plan(0.001)[1] == 30.0
    assert "over the simulator's bound" in bill_plan(20.0)


# --- the prediction's child process ------------------------------------------------------------------

def predict(request):
    return subprocess.run([sys.executable, "-m", "simulator.predict_stage"], input=json.dumps(request),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_prediction_of_an_open_stage_replays_its_arrivals_with_the_calibration(tmp_path):
    cal = str(calibration_report(tmp_path / "cal.json", service_s=0.5, overhead_s=0.01))
    # arrivals 2 s apart, service 0.5 s: nobody queues, every job takes service + overhead
    stage = Stage(name="r=0.5/s", arrival_rate_per_s=0.5, started_at=100.0, duration_s=20.0,
                  jobs=[job(100.0 + 2 * i) for i in range(10)])
    request = prediction_request([stage], now=120.0, calibration=[cal], open_loop=True, current=None, replications=5)
    proc = predict(request)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    mean = out["stages"]["r=0.5/s"]["mean"]
    assert mean["mean"] == pytest.approx(0.51) and mean["lo"] == pytest.approx(0.51) and mean["n"] == 5
    assert out["profile"]["service_mean_s"] == {"light": 0.5}


def test_prediction_refuses_bad_input_with_one_line(tmp_path):
    for bad in ("[]", json.dumps({"stages": []}), json.dumps({"calibration": [str(tmp_path / "none.json")], "stages": []})):
        proc = predict(json.loads(bad))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_calibration_option_is_checked(tmp_path):
    option = BY_DEST["calibration"]
    with pytest.raises(OptionError, match="--calibration must be a measured report"):
        option.check(str(tmp_path / "missing.json"))
    cal = str(calibration_report(tmp_path / "cal.json"))
    assert option.check(cal) == cal
    with pytest.raises(OptionError, match="under"):   # from the web form: only a file under reports/
        option.check(cal, from_web=True)


# --- a real web UI ------------------------------------------------------------------------------------

def cockpit(base):
    status, body = send(base, "/cockpit.json")
    assert status == 200, body
    return json.loads(body)


def wait_for(base, ok, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = cockpit(base)
        if ok(snap):
            return snap
        time.sleep(0.5)
    raise AssertionError(f"cockpit never got there: {snap}")


def test_web_ui_serves_the_cockpit_behind_its_guard_during_an_open_loop_run(tmp_path):
    cal = str(calibration_report(tmp_path / "cal.json", service_s=0.05, overhead_s=0.0))
    with web_ui(tmp_path, tmp_path / "ui.log", "--host", "http://fake", *FAKE, "--arrival", "poisson",
                "--rates", "4", "--stage-seconds", "6", "--slo-e2e", "1", "--calibration", cal,
                "--report-out", str(tmp_path / "report.json"), env=ENV) as base:
        port = base.rsplit(":", 1)[1]
        assert send(base, "/cockpit.json", headers={"Host": f"evil.example:{port}"})[0] == 403
        assert send(base, "/cockpit.json", headers={"Origin": EVIL})[0] == 403
        assert send(base, "/cockpit/static/form.js", headers={"Origin": EVIL})[0] == 403
        page = send(base, "/")[1]
        assert "/cockpit/static/form.css" in page and '"extended_tabs"' in page and "Simulated mean" in page
        assert cockpit(base)["stages"] == []
        assert send(base, "/swarm", {"user_count": "0", "spawn_rate": "1", "host": "http://fake"})[0] == 200
        snap = wait_for(base, lambda s: s["stages"] and s["stages"][0]["completed"] >= 5)
        row = snap["stages"][0]
        assert row["stage"] == "r=4/s" and row["mean"] > 0 and row["lateness_p99_s"] is not None
        stats = json.loads(send(base, "/stats/requests")[1])
        tables = {t["key"]: t["data"] for t in stats["extended_stats"]}
        assert tables["cockpit"][0]["stage"] == "r=4/s"
        assert len(tables["cockpit-bill"]) >= 1
        snap = wait_for(base, lambda s: s["state"] == "stopped" and s["prediction"]["status"] == "done"
                        and s["stages"][0]["predicted"])
        predicted = snap["stages"][0]["predicted"]["mean"]
        assert predicted["simulated"] > 0 and predicted["inside"] in (True, False)
        assert snap["prediction"]["label"] == "simulated" and snap["cost"]["computed"] >= 1


def test_web_ui_cockpit_of_a_closed_loop_run_without_calibration(tmp_path):
    with web_ui(tmp_path, tmp_path / "ui.log", "--host", "http://fake", *FAKE, "--stages", "2",
                "--stage-seconds", "3", "--report-out", str(tmp_path / "report.json"), env=ENV) as base:
        page = send(base, "/")[1]
        assert "Simulated mean" not in page            # no calibration: no prediction columns
        assert send(base, "/swarm", {"user_count": "0", "spawn_rate": "1", "host": "http://fake"})[0] == 200
        snap = wait_for(base, lambda s: s["state"] == "stopped" and s["stages"])
        row = snap["stages"][0]
        assert row["stage"] == "u=2" and row["completed"] >= 10 and row["predicted"] == {}
        assert snap["prediction"]["status"] == "no --calibration"


def test_the_start_form_as_a_shape_fills_it_is_accepted():
    # the form's user count and ramp-up are disabled by the shape and sent as 0: the Start button works
    from argparse import Namespace

    from locustfiles.options import OPTIONS, check_form

    options = Namespace(**{o.dest: o.default for o in OPTIONS}, num_users=0, spawn_rate=0, host="", run_time="",
                        profile="")
    merged = check_form({"user_count": ["0"], "spawn_rate": ["0"], "host": ["http://fake"]}, options, {})
    assert merged.spawn_rate == 0


def test_helper_serves_predictions_and_bills_one_line_each(tmp_path):
    from locustfiles.cockpit_background import parse_bill

    cal = str(calibration_report(tmp_path / "cal.json"))
    stage = Stage(name="r=0.5/s", arrival_rate_per_s=0.5, started_at=0.0, duration_s=20.0,
                  jobs=[job(2.0 * i) for i in range(10)])
    lines = [json.dumps(prediction_request([stage], 20.0, [cal], True, None, replications=3)),
             json.dumps({"kind": "bill", "args": ["--monthly", "3000", "--days", "1", "--deployments", "local,vertex",
                                                  "--replications", "2", "--no-progress"]}),
             json.dumps({"kind": "bill", "args": ["--out", "/etc/passwd"]}),
             "not json"]
    proc = subprocess.run([sys.executable, "-m", "simulator.predict_stage", "--serve"], input="\n".join(lines) + "\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["ok"] for a in answers] == [True, True, False, False], answers
    assert answers[0]["result"]["stages"]["r=0.5/s"]["mean"]["n"] == 3
    bill = parse_bill(answers[1]["result"], rate_per_s=3000 / (30 * 86400), days=1.0)
    assert [d["deployment"] for d in bill["deployments"]] == ["local", "vertex"]
    assert all(d["monthly_cost"]["n"] == 2 and d["monthly_cost"]["mean"] > 0 for d in bill["deployments"])

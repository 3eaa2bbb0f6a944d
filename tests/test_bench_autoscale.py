"""`python -m bench autoscale`: the scenario (idle -> ramp -> burst) as a trace and back into phase stages
through Locust's own trace plan, the recorded replica timeline as the report's `ReplicaRun`, the
first-request-at-zero figure, the settings the simulator's replay reads, the pinning rule, the Vertex
client's replica fields in each job record; and (slow) the short scenario end to end against Ray Serve."""

import base64
import io
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from bench.autoscale.calibration import warm_service_s
from bench.autoscale.cli import parse_args
from bench.autoscale.recording import at_rest, quiet_from
from bench.autoscale.scenario import (
    RAMP_SHARES,
    SCENARIOS,
    ScenarioShape,
    build_scenario,
    phase_stages,
    settle_s,
    write_scenario,
)
from bench.autoscale.target import autoscaling_settings, cpu_plan, settings_from_ready
from bench.pinning import CpuPlan
from bench.replicas import build_timeline, parse_controller_log
from clients.record import run_job
from clients.vertex import VertexAIClient
from loadlab.cases import ALL_CASES
from loadlab.schema import (
    JobRecord,
    LoadConfig,
    ReplicaInterval,
    ReplicaRun,
    Report,
    RunConfig,
    ScaleEvent,
    ServerConfig,
    Stage,
)
from loadlab.stats import mean
from loadlab.trace import read_trace
from locustfiles.arrivals import OpenLoopPlan
from tests.test_rayserve_timeline import LOG, _sample, at

ROOT = Path(__file__).resolve().parents[1]
# what `simulator validate` reads from config.server.autoscaling (Ray Serve's names)
REPLAY_KEYS = {"min_replicas", "max_replicas", "target_ongoing_requests", "upscale_delay_s", "downscale_delay_s",
               "downscale_to_zero_delay_s", "look_back_period_s", "max_ongoing_requests", "metrics_interval_s"}


# --- the scenario ---------------------------------------------------------------------------------

def test_scenario_is_idle_then_a_ramp_around_one_replicas_rate_then_a_burst():
    shape = ScenarioShape(idle_s=30.0, step_s=20.0, burst=8, gap_s=5.0, cold_starts=2, warm_runs=5)
    scenario = build_scenario(shape, service_s=2.0, cases=["light", "small"])
    ramp, burst = scenario.phases[:-1], scenario.phases[-1]
    # nothing during the idle start; the first arrival opens the ramp
    assert min(t for t, _, _ in scenario.rows()) == shape.idle_s == ramp[0].start_s
    # each step holds its share of one replica's rate 1/S, evenly spaced, steps back to back
    assert [p.rate_per_s for p in ramp] == [round(share * 20 / 2.0) / 20 for share in RAMP_SHARES] == [0.15, 0.3, 0.6]
    assert ramp[-1].rate_per_s > 1 / 2.0 > ramp[0].rate_per_s      # the last step is more than one replica serves
    assert all(a.end_s == b.start_s for a, b in zip(ramp, ramp[1:], strict=False))
    gaps = {round(b - a, 9) for a, b in zip(ramp[1].times, ramp[1].times[1:], strict=False)}
    assert gaps == {round(20 / 6, 9)}
    # then `burst` arrivals at the same instant, `gap_s` after the ramp
    assert burst.times == (ramp[-1].end_s + 5.0,) * 8 and burst.rate_per_s is None
    assert scenario.last_arrival_s == ramp[-1].end_s + 5.0
    # cases round robin by arrival index
    assert [case for _, case, _ in scenario.rows()[:4]] == ["light", "small", "light", "small"]
    with pytest.raises(ValueError, match="service time"):
        build_scenario(shape, 0.0, ["light"])


def test_the_first_step_holds_until_the_cold_start_has_left_the_look_back_window():
    shape = ScenarioShape(idle_s=30.0, step_s=20.0, burst=8, gap_s=5.0, cold_starts=2, warm_runs=5)
    # look-back 30 s + the calibration's mean first request at zero (a request that failed has no e2e)
    assert settle_s(30.0, [9.0, None, 10.0]) == 39.5 and settle_s(30.0, []) == 30.0
    plain, held = (build_scenario(shape, 2.0, ["light"], first) for first in (0.0, 39.5))
    first, rest = held.phases[0], held.phases[1:]
    # whole spacings of its own arrivals (20 s / 3): 6 arrivals, held 40 s
    assert first.times == tuple(30.0 + k * 20 / 3 for k in range(6)) and first.end_s == pytest.approx(70.0)
    assert first.rate_per_s == plain.phases[0].rate_per_s
    # the later steps and the burst as before, moved back by the 20 s added
    for a, b in zip(rest, plain.phases[1:], strict=True):
        assert a.times == pytest.approx(tuple(t + 20.0 for t in b.times)) and a.start_s == b.start_s + 20.0
    assert all(a.end_s == pytest.approx(b.start_s) for a, b in zip(held.phases, held.phases[1:-1], strict=False))
    assert held.to_dict()["first_step_at_least_s"] == 39.5
    # never shorter than step_s
    assert build_scenario(shape, 2.0, ["light"], 5.0).phases[0] == plain.phases[0]


def test_a_faster_model_gets_more_arrivals_so_the_ramp_still_crosses_one_replica():
    slow = build_scenario(SCENARIOS["short"], 2.0, ["light"])
    fast = build_scenario(SCENARIOS["short"], 0.1, ["light"])
    assert len(fast.rows()) > 5 * len(slow.rows())
    assert fast.phases[-2].rate_per_s == pytest.approx(1.2 / 0.1)


def test_the_trace_replays_through_locusts_plan_and_regroups_into_the_phases(tmp_path):
    scenario = build_scenario(SCENARIOS["short"], 1.5, ["light"])
    path = write_scenario(scenario, tmp_path / "s.csv")
    rows = read_trace(path)
    assert [(round(t, 6), c) for t, c in rows] == [(round(t, 6), c) for t, c, _ in scenario.rows()]
    # Locust cuts the trace into equal windows; the arrival index is the trace row
    plan = OpenLoopPlan(arrival="trace", stage_seconds=scenario.shape.step_s, trace=rows, time_scale=1.0)
    origin = 1_000.0
    jobs = [JobRecord(case=a.case, status="completed", scheduled=origin + a.t_s, submitted=origin + a.t_s + 0.001,
                      finished=origin + a.t_s + 2.0, e2e_s=2.0, extra={"arrival": a.index})
            for a in reversed(plan.arrivals())]
    assert {a.stage for a in plan.arrivals()} != {p.name for p in scenario.phases}
    stages = phase_stages(jobs, scenario, origin, slo_e2e_s=5.0)
    assert [s.name for s in stages] == [p.name for p in scenario.phases]
    assert [len(s.jobs) for s in stages] == [len(p.times) for p in scenario.phases]
    for stage, phase in zip(stages, scenario.phases, strict=True):
        assert stage.started_at == origin + phase.start_s and stage.slo_e2e_s == 5.0
        assert all(phase.start_s - 1e-6 <= j.scheduled - origin <= max(phase.end_s, phase.start_s) for j in stage.jobs)
        assert [j.scheduled for j in stage.jobs] == sorted(j.scheduled for j in stage.jobs)
    assert stages[0].duration_s == scenario.shape.step_s and stages[0].arrival_rate_per_s == scenario.phases[0].rate_per_s
    assert stages[-1].duration_s is None and stages[-1].summary.count == SCENARIOS["short"].burst
    # a job without its arrival index is placed by its scheduled time
    (late,) = phase_stages([JobRecord(case="light", status="dropped", scheduled=origin + scenario.phases[1].start_s + 0.1,
                                      submitted=origin)], scenario, origin, None)[1].jobs
    assert late.status == "dropped"


# --- the replica timeline in the report -------------------------------------------------------------

def _recorded_timeline():
    """A timeline as the recorder builds it: the controller log of a real run, samples around it."""
    events = parse_controller_log(LOG, "LayeredModel", "decomposer")
    r = {"id": "mlsq91ur", "pid": 10109, "start_time_s": at("12:23:49.415")}
    samples = [_sample(at("12:23:40.000"), 0, []),            # before the window: left out
               _sample(at("12:23:46.000"), 0, []),
               _sample(at("12:23:50.000"), 1, [{**r, "state": "STARTING"}]),
               _sample(at("12:23:56.000"), 1, [{**r, "state": "RUNNING"}])]
    start, end = at("12:23:45.000"), at("12:24:40.000")
    return build_timeline(samples, events, app="decomposer", deployment="LayeredModel", start=start, end=end)


def test_the_recorded_timeline_becomes_the_reports_replica_run(tmp_path):
    recorded = _recorded_timeline()
    timeline = json.loads(json.dumps(recorded.to_dict()))   # as plain JSON, the way the recorder's part is stored
    run = recorded.to_run()
    assert run.window == (at("12:23:45.000"), at("12:24:40.000"))
    assert [s.t for s in run.timeline] == [at("12:23:46.000"), at("12:23:50.000"), at("12:23:56.000")]
    assert [(s.target, s.starting, s.running) for s in run.timeline] == [(0, 0, 0), (1, 1, 0), (1, 0, 1)]
    by_id = {i.replica: i for i in run.intervals}
    assert by_id["mlsq91ur"].start == pytest.approx(at("12:23:49.415"), abs=1e-3)
    assert by_id["mlsq91ur"].ready == pytest.approx(at("12:23:55.009"), abs=1e-3)     # RUNNING, from the log
    assert by_id["7feydyom"].end == pytest.approx(at("12:24:39.311"), abs=1e-3)
    assert by_id["mlsq91ur"].end == pytest.approx(at("12:24:58.334"), abs=1e-3)       # as recorded (billing clips)
    assert [(e.from_replicas, e.to_replicas) for e in run.events] == [(0, 1), (1, 2), (2, 1)]
    assert run.replica_seconds == pytest.approx(timeline["replica_seconds"]) == pytest.approx(50.585 + 37.161, abs=1e-3)
    report = Report(role="load", kind="measured", name="r", target="rayserve", replicas=run,
                    config=RunConfig(driver="test", server=ServerConfig(autoscaling={"min_replicas": 0}),
                                     load=LoadConfig(mode="trace", arrival="trace")))
    assert Report.load(report.save(tmp_path / "r.json")).replicas == run


def _run(*intervals: tuple[float, float | None, float | None]) -> ReplicaRun:
    return ReplicaRun(window=(0.0, 100.0), intervals=[ReplicaInterval(replica=f"r{k}", start=s, ready=r, end=e)
                                                      for k, (s, r, e) in enumerate(intervals)],
                      events=[ScaleEvent(t=0.5, from_replicas=0, to_replicas=1), ScaleEvent(t=20.0, from_replicas=1,
                                                                                             to_replicas=2),
                              ScaleEvent(t=60.0, from_replicas=2, to_replicas=1)],
                      replica_seconds=123.0)


def _job(t: float, e2e: float, cold: bool = False) -> JobRecord:
    return JobRecord(case="light", status="completed", scheduled=t, submitted=t, finished=t + e2e, e2e_s=e2e,
                     cold_start=cold)


def test_first_request_at_zero_is_the_first_arrival_of_each_period_without_a_running_replica():
    # replica 0 runs 6 -> 50; replica 1 runs 80 -> ...
    run = _run((0.5, 6.0, 50.0), (75.0, 80.0, None))
    jobs = [_job(1.0, 9.0, True), _job(2.0, 8.5, True), _job(10.0, 2.0), _job(70.0, 12.0, True), _job(72.0, 11.0, True)]
    jobs[0].waited_for_start_s, jobs[1].waited_for_start_s = 5.0, 4.0
    assert [j.scheduled for j in run.first_requests_at_zero(jobs)] == [1.0, 70.0]
    figures = run.figures(jobs)
    assert figures.first_request_at_zero_e2e_s == [9.0, 12.0]
    assert (figures.scale_ups, figures.scale_downs, figures.cold_starts) == (2, 1, 4)
    assert figures.replica_seconds == 123.0 and figures.max_replicas == 1   # never both up at once
    assert figures.waited_for_start == 2


def test_warm_service_time_leaves_the_cold_requests_out():
    jobs = [JobRecord(case="light", status="completed", submitted=0.0, service_s=s, cold_start=c)
            for s, c in ((3.0, True), (1.0, False), (2.0, False))]
    report = Report(role="calibration", kind="measured", name="c", target="rayserve", config=RunConfig(driver="t"),
                    stages=[Stage(name="light [u=1]", concurrency=1, jobs=jobs)])
    assert warm_service_s(report) == 1.5 == warm_service_s(report, "light")
    with pytest.raises(ValueError, match="no warm"):
        warm_service_s(report, "small")


# --- settings, pinning, rest ------------------------------------------------------------------------

def test_settings_carry_every_key_the_simulators_replay_reads():
    args = parse_args(["--max-replicas", "3", "--upscale-delay-s", "4", "--metrics-interval-s", "0.25"])
    settings = autoscaling_settings(args)
    assert REPLAY_KEYS <= set(settings)
    assert (settings["max_replicas"], settings["upscale_delay_s"], settings["metrics_interval_s"]) == (3, 4.0, 0.25)
    # a running deployment (--url) says its own: the autoscaling config plus max_ongoing_requests
    ready = {"autoscaling": {"min_replicas": 0, "max_replicas": 2, "look_back_period_s": 30.0}, "max_ongoing_requests": 1}
    assert settings_from_ready(ready) == {"min_replicas": 0, "max_replicas": 2, "look_back_period_s": 30.0,
                                          "max_ongoing_requests": 1}
    with pytest.raises(SystemExit):
        parse_args(["--calibrate", "--calibration", "c.json"])


def test_pinning_only_when_the_servers_cpus_hold_one_per_replica():
    two = CpuPlan(server=frozenset({1}), load=frozenset({0}))
    four = CpuPlan(server=frozenset({1, 2, 3}), load=frozenset({0}))
    plan, why = cpu_plan(two, max_replicas=2)
    assert plan is None and "2 CPUs leave 1 for 2 replicas" in why
    assert cpu_plan(two, max_replicas=1)[0] is two
    assert cpu_plan(four, max_replicas=2)[0] is four
    assert cpu_plan(four, max_replicas=2, no_pin=True) == (None, "--no-pin")
    assert cpu_plan(None, max_replicas=2)[0] is None


def test_at_rest_means_the_minimum_with_nothing_starting_or_stopping():
    assert at_rest(_sample(0.0, 0, []), 0)
    assert not at_rest(_sample(0.0, 0, [{"id": "a", "state": "STOPPING"}]), 0)
    assert not at_rest(_sample(0.0, 1, [{"id": "a", "state": "STARTING"}]), 0)
    assert at_rest(_sample(0.0, 1, [{"id": "a", "state": "RUNNING"}]), 1)
    assert not at_rest(_sample(0.0, None, []), 0)      # deployment not found in the details


def test_a_request_at_zero_waits_until_the_deployment_has_been_at_rest_for_a_while():
    stopping = [{"id": "a", "state": "STOPPING"}]
    samples = [_sample(t / 4, 0, stopping if t in (8, 9) else []) for t in range(0, 80)]   # stopping at 2.0-2.25 s
    assert quiet_from(samples, 0, after=0.0, quiet_s=10.0) == 12.5          # 10 s after the last stopping sample
    assert quiet_from(samples, 0, after=15.0, quiet_s=10.0) == 15.0         # quiet already: at once
    assert quiet_from(samples[:50], 0, after=0.0, quiet_s=10.0) is None     # not yet
    assert quiet_from(samples, 0, after=0.0, quiet_s=0.0) == 0.0


# --- the Vertex client's replica fields ---------------------------------------------------------------

def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def predict_server():
    """A Vertex predict route answering like server/rayserve (replica fields) or like our job server (none)."""
    state = {"extra": {}}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            preds = [{"layers": [_png()] * int(i["layers"]), "timings": {"queue_s": 0.75, "inference_s": 1.25},
                      "cached": False, **state["extra"]} for i in body["instances"]]
            data = json.dumps({"predictions": preds, "deployedModelId": "1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_a_replicas_answer_names_the_replica_in_the_job_record(predict_server, tmp_path):
    image = tmp_path / "x.png"
    Image.new("RGB", (16, 16), "white").save(image)
    case = ALL_CASES["light"]
    predict_server["extra"] = {"replica_id": "mlsq91ur", "replica_pid": 10109, "cold_start": True}
    with VertexAIClient(api_endpoint=predict_server["url"]) as client:
        result = client.decompose_image(str(image), 2, 640)
        assert (result.replica_id, result.first_on_replica, result.served_by) == ("mlsq91ur", True, "vertex")
        rec = run_job(client, case, str(image), served_by="vertex")
    assert rec.served_by == "mlsq91ur" and rec.extra["replica_id"] == "mlsq91ur" and rec.extra["client"] == "vertex"
    assert rec.cold_start is True and (rec.queue_s, rec.service_s) == (0.75, 1.25)
    # a target that names no replica (our job server, Vertex AI): the client's name, nothing invented
    predict_server["extra"] = {}
    with VertexAIClient(api_endpoint=predict_server["url"]) as client:
        rec = run_job(client, case, str(image), served_by="vertex")
    assert rec.served_by == "vertex" and "replica_id" not in rec.extra and rec.cold_start is False
    assert (rec.queue_s, rec.service_s) == (0.75, 1.25)


# --- end to end -----------------------------------------------------------------------------------

def _alive(pids: list[int]) -> list[int]:
    from server.rayserve.process import alive

    return sorted(alive(set(pids)))


@pytest.mark.slow
def test_short_scenario_scales_from_zero_and_back_and_the_report_has_the_bill(tmp_path):
    out = tmp_path / "autoscale.json"
    # shorter downscale delays and look-back than the defaults keep the run under 3 minutes
    cmd = [sys.executable, "-m", "bench", "autoscale", "--scenario", "short", "--out", str(out),
           "--locust-dir", str(tmp_path / "locust"), "--downscale-delay-s", "5", "--downscale-to-zero-delay-s", "5",
           "--look-back-period-s", "10"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    report = Report.load(out)
    run = report.replicas
    assert report.role == "load" and report.target == "rayserve"
    assert report.config.server.autoscaling["max_replicas"] == 2 and REPLAY_KEYS <= set(report.config.server.autoscaling)
    ups = [e for e in run.events if e.direction == "up"]
    assert ups and ups[0].from_replicas == 0
    assert run.events[-1].to_replicas == 0 and report.extra["back_at_rest"] is True     # back at zero
    assert run.timeline[-1].target == 0 and run.timeline[-1].running == 0
    assert 0 < run.replica_seconds <= (run.window[1] - run.window[0]) * 2
    assert all(i.ready is not None and i.start < i.ready for i in run.intervals)
    jobs = [j for s in report.stages for j in s.jobs]
    assert jobs and all(j.status == "completed" and j.extra.get("replica_id") for j in jobs)
    assert {j.extra["replica_id"] for j in jobs} <= {i.replica for i in run.intervals}
    # the first request arrived at zero replicas and waited for its replica: its first job, with the wait
    first = min(jobs, key=lambda j: j.origin)
    assert first.cold_start and first.waited_for_start_s > 0 and first.extra["cold_wait_s"] > 0
    # one cold start per new replica: the first job each served
    assert sum(j.cold_start for j in jobs) == len({j.extra["replica_id"] for j in jobs})
    assert [s.name for s in report.stages] == [p["name"] for p in report.extra["scenario"]["phases"]]
    # the first step held until the cold start left the look-back window (10 s here)
    calibration = Report.load(tmp_path / "autoscale-calibration.json")
    held = 10.0 + mean(calibration.coldstart.first_request_e2e_s)
    first = report.extra["scenario"]["phases"][0]
    assert report.extra["scenario"]["first_step_at_least_s"] == pytest.approx(held)
    length = first["end_s"] - first["start_s"]
    assert held <= length < held + length / first["arrivals"]       # in whole spacings of its arrivals
    # the calibration run beside it: warm service times and the replica start, in its own window
    assert calibration.coldstart.replica_start_s and all(x > 0 for x in calibration.coldstart.replica_start_s)
    assert calibration.replicas.window[1] <= run.window[0]
    assert warm_service_s(calibration) > 0
    # Ray stopped: nothing had to be killed, no process of the cluster left
    assert report.extra["rayserve"]["leftover_pids"] == [] and report.extra["rayserve"]["pids"]
    assert _alive(report.extra["rayserve"]["pids"]) == []
    assert not Path(report.extra["rayserve"]["ray_temp_dir"]).exists()
    assert "replica-seconds" in proc.stdout and "first request at zero" in proc.stdout

"""The replica timeline's arithmetic without Ray: parsing Ray Serve 2.60's controller log, building
intervals, replica-seconds and scale events from samples, marking cold starts; and the rayserve
command's options as Ray Serve config."""

from datetime import datetime

import pytest

from bench.replicas import (
    RecordedInterval,
    Sample,
    build_timeline,
    mark_cold_starts,
    parse_controller_log,
    sample_from_details,
)
from server.rayserve.__main__ import options_from_args, parse_args

# Lines as Ray Serve 2.60's controller wrote them in a run on this machine (the ingress's lines and one
# of another app mixed in, which must be ignored).
LOG = """\
INFO 2026-11-25 12:23:42,065 controller 9912 -- Registering autoscaling state for deployment Deployment(name='LayeredModel', app='decomposer')
INFO 2026-11-25 12:23:43,090 controller 9912 -- Starting Replica(id='21oz1gqa', deployment='VertexIngress', app='decomposer').
INFO 2026-11-25 12:23:49,308 controller 9912 -- Upscaling Deployment(name='LayeredModel', app='decomposer') from 0 to 1 replicas. Current ongoing requests: 1.00, current running replicas: 0.
INFO 2026-11-25 12:23:49,414 controller 9912 -- Adding 1 replica to Deployment(name='LayeredModel', app='decomposer').
INFO 2026-11-25 12:23:49,415 controller 9912 -- Starting Replica(id='mlsq91ur', deployment='LayeredModel', app='decomposer').
INFO 2026-11-25 12:23:55,009 controller 9912 -- Replica(id='mlsq91ur', deployment='LayeredModel', app='decomposer') started successfully on node 'a541' after 5.6s (PID: 10109). Replica constructor, reconfigure method, and initial health check took 3.9s.
INFO 2026-11-25 12:24:02,042 controller 9912 -- Upscaling Deployment(name='LayeredModel', app='decomposer') from 1 to 2 replicas. Current ongoing requests: 1.89, current running replicas: 1.
INFO 2026-11-25 12:24:02,100 controller 9912 -- Upscaling Deployment(name='LayeredModel', app='other') from 1 to 2 replicas. Current ongoing requests: 3.00, current running replicas: 1.
INFO 2026-11-25 12:24:02,150 controller 9912 -- Starting Replica(id='7feydyom', deployment='LayeredModel', app='decomposer').
INFO 2026-11-25 12:24:08,911 controller 9912 -- Replica(id='7feydyom', deployment='LayeredModel', app='decomposer') started successfully on node 'a541' after 6.8s (PID: 10247). Replica constructor, reconfigure method, and initial health check took 4.8s.
INFO 2026-11-25 12:24:37,105 controller 9912 -- Downscaling Deployment(name='LayeredModel', app='decomposer') from 2 to 1 replicas. Current ongoing requests: 0.17, current running replicas: 2.
INFO 2026-11-25 12:24:37,212 controller 9912 -- Stopping Replica(id='7feydyom', deployment='LayeredModel', app='decomposer') (currently ReplicaState.RUNNING).
INFO 2026-11-25 12:24:39,311 controller 9912 -- Replica(id='7feydyom', deployment='LayeredModel', app='decomposer') is stopped.
INFO 2026-11-25 12:24:56,117 controller 9912 -- Downscaling Deployment(name='LayeredModel', app='decomposer') from 1 to 0 replicas. Current ongoing requests: 0.00, current running replicas: 1.
INFO 2026-11-25 12:24:56,226 controller 9912 -- Stopping Replica(id='mlsq91ur', deployment='LayeredModel', app='decomposer') (currently ReplicaState.RUNNING).
INFO 2026-11-25 12:24:58,334 controller 9912 -- Replica(id='mlsq91ur', deployment='LayeredModel', app='decomposer') is stopped.
"""


def at(clock: str) -> float:
    return datetime.strptime("2026-11-25 " + clock, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_controller_log_gives_decisions_and_replica_transitions_to_the_millisecond():
    events = parse_controller_log(LOG, "LayeredModel", "decomposer")
    scales = [e for e in events if e["kind"] == "scale"]
    assert [(e["from"], e["to"], e["direction"]) for e in scales] == [(0, 1, "up"), (1, 2, "up"), (2, 1, "down"),
                                                                      (1, 0, "down")]
    assert scales[0]["t"] == pytest.approx(at("12:23:49.308"), abs=1e-6)
    assert [e["ongoing_requests"] for e in scales] == [1.0, 1.89, 0.17, 0.0]
    kinds = [(e["kind"], e.get("replica_id")) for e in events if e["kind"] != "scale"]
    assert kinds == [("starting", "mlsq91ur"), ("running", "mlsq91ur"), ("starting", "7feydyom"),
                     ("running", "7feydyom"), ("stopping", "7feydyom"), ("stopped", "7feydyom"),
                     ("stopping", "mlsq91ur"), ("stopped", "mlsq91ur")]
    assert next(e for e in events if e["kind"] == "running")["pid"] == 10109


def test_timeline_from_the_log_bills_each_replica_from_start_to_stopped_clipped_to_the_window():
    events = parse_controller_log(LOG, "LayeredModel", "decomposer")
    start, end = at("12:23:45.000"), at("12:24:40.000")
    tl = build_timeline([], events, app="decomposer", deployment="LayeredModel", start=start, end=end)
    by_id = {r.replica_id: r for r in tl.replicas}
    a, b = by_id["mlsq91ur"], by_id["7feydyom"]
    assert a.start == pytest.approx(at("12:23:49.415")) and a.running_at == pytest.approx(at("12:23:55.009"))
    assert a.end == pytest.approx(at("12:24:58.334")) and a.pid == 10109
    assert b.startup_s == pytest.approx(6.761, abs=1e-3)
    # a: 49.415 -> clipped at 40.000 (50.585 s); b: 02.150 -> 39.311 (37.161 s)
    assert tl.replica_seconds == pytest.approx(50.585 + 37.161, abs=1e-3)
    assert tl.max_replicas == 2
    # events outside the window are dropped: the 1 -> 0 decision at 56.117 is after `end`
    assert [(e.from_replicas, e.to_replicas) for e in tl.scale_events] == [(0, 1), (1, 2), (2, 1)]
    assert all(e.source == "controller_log" for e in tl.scale_events)
    assert tl.running_at(at("12:23:55.000")) == 0 and tl.running_at(at("12:23:55.010")) == 1
    assert tl.running_at(at("12:24:10.000")) == 2 and tl.running_at(at("12:24:38.000")) == 1


def _sample(t, target, replicas):
    counts = {"starting": 0, "running": 0, "stopping": 0}
    for r in replicas:
        counts[{"STARTING": "starting", "RUNNING": "running", "STOPPING": "stopping"}[r["state"]]] += 1
    return Sample(t=t, target=target, replicas=replicas, **counts)


def test_timeline_from_samples_alone_when_the_log_is_not_readable():
    r1 = {"id": "a", "pid": 1, "start_time_s": 10.2}
    samples = [
        _sample(10.0, 0, []),
        _sample(10.5, 1, [{**r1, "state": "STARTING"}]),
        _sample(11.0, 1, [{**r1, "state": "RUNNING"}]),
        _sample(11.5, 0, [{**r1, "state": "STOPPING"}]),
        _sample(12.0, 0, []),
        _sample(12.5, 0, []),
    ]
    tl = build_timeline(samples, [], app="x", deployment="m")
    (r,) = tl.replicas
    assert (r.start, r.running_at, r.stopping_at, r.end) == (10.2, 11.0, 11.5, 12.0)
    assert tl.replica_seconds == pytest.approx(1.8)
    assert [(e.t, e.from_replicas, e.to_replicas, e.direction, e.source) for e in tl.scale_events] == [
        (10.5, 0, 1, "up", "samples"), (11.5, 1, 0, "down", "samples")]
    d = tl.to_dict()
    run = tl.to_run()
    assert run.scale_count("up") == 1 and run.scale_count("down") == 1 and d["replicas"][0]["startup_s"] == pytest.approx(0.8)
    assert d["samples"][2] == {"t": 11.0, "target": 1, "starting": 0, "running": 1, "stopping": 0, "total_requests": None,
                               "replicas": [{"id": "a", "pid": 1, "start_time_s": 10.2, "state": "RUNNING"}]}


def test_a_replica_still_up_at_the_end_is_billed_until_the_end():
    samples = [_sample(0.0, 1, [{"id": "a", "pid": 1, "start_time_s": -5.0, "state": "RUNNING"}]),
               _sample(4.0, 1, [{"id": "a", "pid": 1, "start_time_s": -5.0, "state": "RUNNING"}])]
    tl = build_timeline(samples, [], app="x", deployment="m", start=0.0, end=4.0)
    assert tl.replicas[0].end is None
    assert tl.replica_seconds == pytest.approx(4.0)


def test_sample_from_serve_details():
    details = {"applications": {"decomposer": {"deployments": {"LayeredModel": {
        "target_num_replicas": 2,
        "replicas": [{"replica_id": "a", "state": "RUNNING", "pid": 5, "start_time_s": 1.0},
                     {"replica_id": "b", "state": "STARTING", "pid": None, "start_time_s": 2.0},
                     {"replica_id": "c", "state": "STOPPING", "pid": 7, "start_time_s": 0.5}]}}}}}
    s = sample_from_details(details, "decomposer", "LayeredModel", 3.0)
    assert (s.target, s.starting, s.running, s.stopping) == (2, 1, 1, 1)
    missing = sample_from_details({"applications": {}}, "decomposer", "LayeredModel", 3.0)
    assert missing.target is None and missing.running == 0


def test_a_cold_start_is_the_first_job_of_a_new_replica_and_the_wait_for_a_start_is_apart():
    tl = build_timeline([], [], app="x", deployment="m", start=5.0, end=100.0)
    tl.replicas = [RecordedInterval("a", 1, start=10.0, running_at=15.0, stopping_at=50.0, end=52.0),
                   RecordedInterval("b", 2, start=20.0, running_at=27.0, stopping_at=None, end=None),
                   RecordedInterval("w", 3, start=1.0, running_at=3.0, stopping_at=None, end=None)]
    jobs = [
        {"submitted": 16.0, "started": 16.5, "extra": {"replica_id": "a"}},    # a running, not its first
        {"submitted": 11.0, "started": 15.0, "extra": {"replica_id": "a"}},    # a's first, waited 4 s for it
        {"submitted": 12.0, "scheduled": 12.0, "started": 23.3, "extra": {"replica_id": "a"}},  # waited, not first
        {"submitted": 28.0, "scheduled": 27.5, "started": 28.0, "extra": {"replica_id": "b"}},  # b's first, no wait
        {"submitted": 12.0, "extra": {}},                                      # no replica id (failed)
        {"submitted": 30.0, "extra": {"replica_id": "w"}},                     # w started before the recording
    ]
    assert mark_cold_starts(jobs, tl) == [False, True, False, True, False, False]
    assert [j["cold_start"] for j in jobs] == [False, True, False, True, False, False]
    assert [j["waited_for_start_s"] for j in jobs] == pytest.approx([None, 4.0, 3.0, None, None, None])
    assert jobs[2]["extra"]["cold_wait_s"] == pytest.approx(3.0)   # from `scheduled`
    assert jobs[0]["extra"]["cold_wait_s"] == 0.0


def test_the_timeline_becomes_the_reports_replica_run_and_its_figures():
    tl = build_timeline([], [], app="x", deployment="m", start=0.0, end=100.0)
    tl.replicas = [RecordedInterval("a", 1, start=10.0, running_at=15.0, stopping_at=50.0, end=52.0)]
    run = tl.to_run()
    assert [(i.replica, i.start, i.ready, i.end) for i in run.intervals] == [("a", 10.0, 15.0, 52.0)]
    assert run.running_at(14.0) == 0 and run.running_at(15.0) == 1 and run.max_replicas() == 1


def test_options_become_ray_serve_config():
    opts = options_from_args(parse_args(["--min-replicas", "0", "--max-replicas", "3", "--target-ongoing-requests",
                                         "2", "--upscale-delay-s", "1", "--downscale-delay-s", "5",
                                         "--downscale-to-zero-delay-s", "7", "--look-back-period-s", "4",
                                         "--metrics-interval-s", "0.5", "--max-ongoing-requests", "1"]))
    assert opts.autoscaling_config() == {
        "min_replicas": 0, "max_replicas": 3, "target_ongoing_requests": 2.0, "upscale_delay_s": 1.0,
        "downscale_delay_s": 5.0, "downscale_to_zero_delay_s": 7.0, "look_back_period_s": 4.0,
        "metrics_interval_s": 0.5}
    assert opts.autoscaling.max_ongoing_requests == 1
    cpu = opts.ray_actor_options()
    assert cpu["num_cpus"] == 1 and "num_gpus" not in cpu and cpu["runtime_env"]["env_vars"]["OMP_NUM_THREADS"] == "1"
    gpu = options_from_args(parse_args(["--device", "cuda"])).ray_actor_options()
    assert gpu["num_gpus"] == 1
    # Ray's own default push interval stays unless asked
    assert "metrics_interval_s" not in options_from_args(parse_args([])).autoscaling_config()


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()   # local time, as the log parser reads it


def _serve_logs(tmp_path, replica_lines: dict[str, str]):
    """A session dir with the controller log above and one Serve log per replica file name."""
    serve_dir = tmp_path / "logs" / "serve"
    serve_dir.mkdir(parents=True)
    (serve_dir / "controller_9912.log").write_text(LOG)
    for name, text in replica_lines.items():
        (serve_dir / name).write_text(text)
    return tmp_path


def test_a_replicas_start_up_is_split_into_parts_from_the_stamps_its_own_log_holds(tmp_path):
    import json

    from bench.replicas import ReplicaRecorder
    from bench.replicas.replica_log import PHASES
    from server.rayserve.options import STARTUP_LOG_PREFIX

    start, running = _epoch("2026-11-25 12:23:49,415"), _epoch("2026-11-25 12:23:55,009")
    stamps = {"init_at": start + 1.5, "imported_at": start + 4.0, "load_s": 0.5, "ready_at": start + 4.6}
    line = "INFO 2026-11-25 12:23:54,015 decomposer_LayeredModel mlsq91ur -- " + STARTUP_LOG_PREFIX + json.dumps(stamps)
    session = _serve_logs(tmp_path, {
        "replica_decomposer_LayeredModel_mlsq91ur.log": "INFO ... -- Started initializing replica.\n" + line + "\n",
        # no stamps (an older replica), stamps cut short by a crash, another deployment's replica
        "replica_decomposer_LayeredModel_7feydyom.log": "INFO ... -- Started initializing replica.\n",
        "replica_decomposer_LayeredModel_zz.log": "INFO ... -- " + STARTUP_LOG_PREFIX + '{"init_at": 1',
        "replica_decomposer_VertexIngress_mlsq91ur.log": line.replace("4.6", "9.9") + "\n",
    })
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"t": start - 1, "target": 0, "starting": 0, "running": 0, "stopping": 0}) + "\n")
    recorder = ReplicaRecorder("127.0.0.1:1", session_dir=str(session), samples_path=samples)

    timeline = recorder.stop(start=start - 1, end=running + 60)
    first, second = timeline.replica("mlsq91ur"), timeline.replica("7feydyom")
    parts = first.startup_phases
    assert list(parts) == list(PHASES)
    assert parts == pytest.approx({"worker_s": 1.5, "imports_s": 2.5, "load_s": 0.5, "setup_s": 0.1,
                                   "health_s": running - start - 4.6})
    assert sum(parts.values()) == pytest.approx(first.startup_s)
    assert second.startup_phases is None
    run = timeline.to_run()
    assert [i.startup_phases for i in run.intervals] == [parts, None]
    assert "startup_phases" in run.model_dump_json()

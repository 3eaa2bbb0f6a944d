"""`python -m server.rayserve` end to end on the tiny model: one Ray cluster for the module (its own temp
dir), min 0 / max 2 replicas with short delays; scale from zero with the request held, scale up under
concurrency, the Vertex SDK against it, scale down to zero, the recorded timeline against what the
answers say, and a shutdown that leaves no Ray process behind. Tests run in file order."""

import base64
import http.client
import io
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.vertex_bad_requests import CASES, check_answer

pytestmark = pytest.mark.slow

MAX_REPLICAS = 2
# Small, so a dozen simultaneous requests pass it; the 6 of the scale-up test stay within it.
MAX_QUEUED = 6
HEADER_NAMES = ("X-Replica-Id", "X-Replica-Pid", "X-Queue-S", "X-Model-S", "X-Cold-Start")


@pytest.fixture(scope="module")
def cluster():
    from bench.replicas import ReplicaRecorder
    from server.rayserve.process import RayServeProcess

    home_token = Path.home() / ".ray" / "auth_token"
    had_home_token = home_token.exists()
    rs = RayServeProcess(min_replicas=0, max_replicas=MAX_REPLICAS, target_ongoing_requests=1,
                         upscale_delay_s=1, downscale_delay_s=3, downscale_to_zero_delay_s=4,
                         look_back_period_s=2, metrics_interval_s=0.5, max_queued_requests=MAX_QUEUED,
                         ready_timeout_s=240)
    rs.start()
    state = {"rs": rs, "jobs": [], "had_home_token": had_home_token, "home_token": home_token}
    try:
        state["recorder"] = ReplicaRecorder.from_url(rs.url).start()
        state["t0"] = time.time()
        yield state
    finally:
        if "recorder" in state:
            state["recorder"].__exit__(None, None, None)  # stops the sampler, removes its files
        rs.stop()


def _image_b64(size=(64, 48)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _post(url: str, body: dict, timeout: float = 180.0) -> tuple[int, dict, Any]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read()), r.headers  # case-insensitive
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def _predict(state, layers=2) -> dict:
    """One Vertex prediction, recorded as a job dict the way a measured report holds it."""
    submitted = time.time()
    status, body, headers = _post(state["rs"].url + "/vertex/predict",
                                  {"instances": [{"image": _image_b64(), "layers": layers, "resolution": 640}]})
    finished = time.time()
    assert status == 200, body
    job = {"submitted": submitted, "finished": finished, "status": status, "body": body, "headers": headers,
           "extra": {"replica_id": headers.get("X-Replica-Id"), "first_request": headers.get("X-Cold-Start") == "1"}}
    state["jobs"].append(job)
    return job


def _samples(state):
    return state["recorder"].samples()


def test_ready_route_names_the_cluster_and_the_autoscaling_config(cluster):
    with urllib.request.urlopen(cluster["rs"].url + "/readyz", timeout=30) as r:
        ready = json.loads(r.read())
    assert ready["ready"] is True and ready["deployment"] == "LayeredModel"
    assert ready["autoscaling"]["min_replicas"] == 0 and ready["autoscaling"]["max_replicas"] == MAX_REPLICAS
    assert ready["ray"]["gcs_address"].startswith("127.0.0.1:")
    assert ready["ray"]["session_dir"].startswith(str(cluster["rs"].ray_temp_dir))
    assert cluster["rs"].ready_info["ready_s"] > 0


def test_request_at_zero_replicas_is_held_until_a_replica_starts(cluster):
    first = _samples(cluster)[0]
    assert (first.target, first.running, first.starting) == (0, 0, 0)  # really at zero before the request
    job = _predict(cluster)
    h = job["headers"]
    for name in HEADER_NAMES:
        assert name in h, f"missing {name}"
    assert h["X-Cold-Start"] == "1"
    assert len(job["body"]["predictions"][0]["layers"]) == 2
    queue_s, model_s = float(h["X-Queue-S"]), float(h["X-Model-S"])
    e2e = job["finished"] - job["submitted"]
    assert 0 < model_s < e2e and queue_s + model_s <= e2e
    # It waited for a replica to start (process, imports, model load); the timeline check comes later.
    assert queue_s > 1.0


def test_concurrent_requests_scale_up_to_max_replicas(cluster):
    with ThreadPoolExecutor(6) as pool:
        jobs = list(pool.map(lambda _: _predict(cluster), range(6)))
    replicas = {j["headers"]["X-Replica-Id"] for j in jobs}
    assert len(replicas) == MAX_REPLICAS
    samples = _samples(cluster)
    assert max(s.running for s in samples) == MAX_REPLICAS
    assert max(s.target for s in samples if s.target is not None) == MAX_REPLICAS
    assert all(s.starting + s.running <= MAX_REPLICAS for s in samples)


def test_vertex_sdk_drives_it_unchanged(cluster, tmp_path):
    from PIL import Image

    from clients.vertex import VertexAIClient

    path = tmp_path / "poster.png"
    Image.new("RGB", (80, 60), (30, 120, 200)).save(path)
    for api in ("gapic", "endpoint"):
        with VertexAIClient(api_endpoint=cluster["rs"].url, api=api, timeout_s=180) as client:
            result = client.decompose_image(str(path), 2, 640)
        assert len(result.layers) == 2 and result.layers[0].mode == "RGBA"
        assert result.timings["inference_s"] > 0 and result.timings["queue_s"] >= 0
        assert client.last_request_info["deployed_model_id"] == "rayserve"


def test_several_instances_in_one_request_answer_in_order_with_one_header_entry_each(cluster):
    submitted = time.time()
    status, body, headers = _post(cluster["rs"].url + "/vertex/predict", {"instances": [
        {"image": _image_b64(), "layers": 1, "resolution": 640},
        {"image": _image_b64((40, 40)), "layers": 3, "resolution": 640}]})
    assert status == 200
    assert [len(p["layers"]) for p in body["predictions"]] == [1, 3]
    ids = headers["X-Replica-Id"].split(",")
    assert ids == [p["replica_id"] for p in body["predictions"]]
    assert len(headers["X-Queue-S"].split(",")) == 2 and len(headers["X-Model-S"].split(",")) == 2
    for rid, queue_s in zip(ids, headers["X-Queue-S"].split(","), strict=True):
        cluster["jobs"].append({"submitted": submitted, "headers": {"X-Replica-Id": rid, "X-Queue-S": queue_s},
                                "extra": {"replica_id": rid}})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_requests_get_the_job_servers_answers_without_reaching_the_model(cluster, case):
    """The same bad requests as the job server's (tests/test_vertex_contract.py), the same answers."""
    host, port = cluster["rs"].url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        try:
            conn.request(case.method, case.path, case.body or None, case.headers)
        except (BrokenPipeError, ConnectionResetError):
            pass   # answered from the headers (a body over the limit) and closed while the body was still going
        answer = conn.getresponse()
        status, text = answer.status, answer.read().decode()
    finally:
        conn.close()
    check_answer(case, status, text)


def test_an_oversized_body_is_refused_from_its_content_length_before_it_is_sent(cluster):
    import socket

    host, port = cluster["rs"].url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(b"POST /vertex/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 40000000\r\n\r\n{")  # 40 MB announced, 1 byte sent
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 413") and b"RESOURCE_EXHAUSTED" not in head, head[:300]


def test_past_max_queued_requests_the_answer_is_429_with_retry_after(cluster):
    def send(_):
        return _post(cluster["rs"].url + "/vertex/predict",
                     {"instances": [{"image": _image_b64(), "layers": 1, "resolution": 640}]})

    n = MAX_REPLICAS + MAX_QUEUED + 6
    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(send, range(n)))
    statuses = sorted(status for status, _, _ in answers)
    assert set(statuses) == {200, 429} and statuses.count(200) >= MAX_REPLICAS, statuses
    for status, body, headers in answers:
        if status == 429:
            assert body["error"]["status"] == "RESOURCE_EXHAUSTED" and int(headers["Retry-After"]) >= 1
    # the queue drained: a request now is served
    assert send(0)[0] == 200


def test_scales_down_to_zero_and_the_timeline_matches_the_answers(cluster):
    from bench.replicas import mark_cold_starts

    deadline = time.time() + 90
    while time.time() < deadline:
        last = _samples(cluster)[-1]
        if last.target == 0 and last.running + last.starting + last.stopping == 0:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"not back at zero replicas: {last}")
    end = time.time()
    tl = cluster["recorder"].stop(start=cluster["t0"], end=end)
    wall = end - cluster["t0"]

    # samples at 4 Hz or better, counts within bounds
    gaps = [b.t - a.t for a, b in zip(tl.samples, tl.samples[1:], strict=False)]
    assert sorted(gaps)[len(gaps) // 2] <= 0.5
    assert all(0 <= s.starting + s.running + s.stopping <= MAX_REPLICAS + 1 for s in tl.samples)
    # every replica an answer named was recorded, up before it served, and down by the end
    seen = {j["extra"]["replica_id"] for j in cluster["jobs"]}
    recorded = {r.replica_id: r for r in tl.replicas}
    assert seen <= set(recorded) and len(recorded) >= MAX_REPLICAS
    for job in cluster["jobs"]:
        r = recorded[job["extra"]["replica_id"]]
        began = job["submitted"] + float(job["headers"]["X-Queue-S"])
        assert r.start <= r.running_at <= began + 0.05
    assert all(r.end is not None and r.end <= end for r in tl.replicas)
    # up at once (any state): a replica still STOPPING can overlap MAX_REPLICAS others after a quick
    # down-then-up, as the samples' bound above allows; the target itself never passes the max (below)
    assert MAX_REPLICAS <= tl.max_replicas <= MAX_REPLICAS + 1
    assert 0 < tl.replica_seconds <= wall * (MAX_REPLICAS + 1)
    # the decisions from the log chain from 0 to 0 through MAX_REPLICAS, and each sampled change of
    # the target follows a logged decision by at most the sampling interval (plus the call's time)
    ev = tl.scale_events
    assert all(e.source == "controller_log" for e in ev)
    assert ev[0].from_replicas == 0 and ev[-1].to_replicas == 0
    assert all(a.to_replicas == b.from_replicas for a, b in zip(ev, ev[1:], strict=False))
    assert max(e.to_replicas for e in ev) == MAX_REPLICAS
    changes = [b for a, b in zip(tl.samples, tl.samples[1:], strict=False) if a.target != b.target]
    assert len(changes) == len(ev)
    for sample, event in zip(changes, ev, strict=True):
        assert sample.target == event.to_replicas
        assert 0 <= sample.t - event.t <= tl.interval_s + 0.5
    # the request sent at zero met a cold start; a request that found its replica running did not
    marks = mark_cold_starts(cluster["jobs"], tl)
    assert marks[0] is True and cluster["jobs"][0]["extra"]["cold_wait_s"] > 1.0
    warm = [j for j in cluster["jobs"] if recorded[j["extra"]["replica_id"]].running_at < j["submitted"]]
    assert warm and all(j["cold_start"] is False for j in warm)
    # the controller's total (the autoscaler's input) read with every sample: up to the held and running
    # requests, and 0 once nothing ran for a whole look-back window
    totals = [s.total_requests for s in tl.samples if s.total_requests is not None]
    assert len(totals) >= 0.9 * len(tl.samples)
    # (at most the requests the module sends at once: the 429 test's, queued at the handle until refused)
    assert 2.0 <= max(totals) <= MAX_REPLICAS + MAX_QUEUED + 6 and totals[-1] == 0.0
    assert all(s.total_requests is not None for s in tl.to_run().timeline[-4:])
    # every replica that came up logged its start-up stamps, and its parts add up to its start-up (one
    # stopped before it was RUNNING has no start-up to split)
    for r in (r for r in tl.replicas if r.running_at is not None):
        assert r.startup_phases is not None and min(r.startup_phases.values()) > -0.05
        assert sum(r.startup_phases.values()) == pytest.approx(r.startup_s, abs=1e-6)
        assert r.startup_phases["imports_s"] > 0.1 and r.startup_phases["load_s"] > 0
        assert r.startup_phases["setup_s"] < 0.25 * r.startup_phases["imports_s"]   # no import left untimed
    json.dumps(tl.to_dict())  # plain JSON for the report


def test_shutdown_stops_every_ray_process(cluster):
    from server.rayserve.process import alive

    rs = cluster["rs"]
    tree = set(rs.tree)
    killed = rs.stop()
    assert killed == []                     # a clean SIGTERM shutdown, nothing had to be killed
    assert tree and not alive(tree | rs.tree)
    leftovers = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(rs.ray_temp_dir) in cmd:
            leftovers.append(cmd)
    assert leftovers == []                  # no raylet / gcs_server of this cluster
    if not cluster["had_home_token"]:
        assert not cluster["home_token"].exists()  # Ray wrote nothing under ~/.ray

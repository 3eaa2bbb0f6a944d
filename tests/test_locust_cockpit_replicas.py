"""Issue 22, the replica chart of the Cockpit tab: `--replica-samples FILE` (the replica recorder's samples
file of a Ray Serve target) tailed by locustfiles/cockpit_replicas.py, in /cockpit.json and the tab's
chart, and passed by `bench autoscale`. The lines are written as the sampler writes them
(`json.dumps(asdict(Sample(...)))`, bench/replicas/sampler.py), so a change of the format breaks these
tests. No Ray here: the file stands in for a recording; the real run is `bench autoscale --web-port`."""

import json
import subprocess
import sys
import time
from argparse import Namespace
from dataclasses import asdict
from pathlib import Path

import pytest

from bench.autoscale.scenario import SCENARIOS, build_scenario
from bench.autoscale.scenario_run import locust_command
from bench.replicas.types import Sample
from locustfiles.cockpit_replicas import MAX_LINE_BYTES, ReplicaTail, downsample
from locustfiles.options import BY_DEST, OPTIONS, OptionError, check_form
from server.process import free_port
from tests.locust_helpers import FAKE, LOCUSTFILE, ROOT
from tests.test_locust_cockpit import ENV
from tests.test_locust_webui_security import send


def line(t, target, starting, running, stopping=0, total=None):
    replicas = [{"id": f"r{i}", "state": "RUNNING", "pid": 100 + i, "start_time_s": t - 5} for i in range(running)]
    return json.dumps(asdict(Sample(t=t, target=target, starting=starting, running=running, stopping=stopping,
                                    replicas=replicas, total_requests=total))) + "\n"


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def test_tail_reads_only_complete_new_lines_and_counts_the_malformed(tmp_path):
    path = tmp_path / "samples.jsonl"
    tail = ReplicaTail(str(path))
    tail.update()
    assert tail.status == "waiting for the samples file" or tail.status.startswith("cannot read")
    append(path, line(100.0, 0, 0, 0) + line(100.25, 1, 1, 0, total=1.5))
    append(path, line(100.5, 1, 0, 1)[:20])          # the sampler is writing this one
    tail.update()
    f = tail.figures()
    # the counts, and the controller's total where the recorder read it (the autoscaler's input)
    assert f["n"] == 2 and f["samples"] == [[100.0, 0, 0, 0, None], [100.25, 1, 1, 0, 1.5]]
    assert f["latest"] == {"t": 100.25, "target": 1, "starting": 1, "running": 0, "stopping": 0, "total_requests": 1.5}
    append(path, line(100.5, 1, 0, 1)[20:])
    append(path, "not json\n" + '{"t": "soon", "target": 1, "starting": 0, "running": 1, "stopping": 0}\n'
           + "[1, 2]\n" + '{"target": 2, "starting": 0, "running": 2, "stopping": 0}\n'
           + '{"t": NaN, "target": 2, "starting": 0, "running": 2, "stopping": 0}\n'
           + '{"t": 1, "target": 2, "starting": -1, "running": 2, "stopping": 0}\n'
           + "x" * (MAX_LINE_BYTES + 10) + "\n" + line(101.0, 2, 1, 1, stopping=1))
    tail.update()
    f = tail.figures()
    assert f["malformed"] == 7 and f["n"] == 4
    assert f["samples"][-2:] == [[100.5, 1, 0, 1, None], [101.0, 2, 1, 1, None]]
    assert f["latest"]["stopping"] == 1 and f["latest"]["target"] == 2
    tail.update()                                     # nothing new: nothing read twice
    assert tail.figures()["n"] == 4 and tail.figures()["malformed"] == 7


def test_tail_skips_a_line_longer_than_the_bound_across_reads(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text("y" * (2 * MAX_LINE_BYTES))       # no newline yet: given up on, never held
    tail = ReplicaTail(str(path), max_read_bytes=MAX_LINE_BYTES)
    tail.update()
    assert tail.malformed == 1 and tail.offset == MAX_LINE_BYTES
    append(path, "\n" + line(5.0, None, 0, 0))
    tail.update()
    tail.update()
    f = tail.figures()
    assert f["malformed"] == 1 and f["n"] == 1 and f["samples"] == [[5.0, None, 0, 0, None]]


def test_tail_starts_again_when_the_recorder_truncates_the_file(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(line(1.0, 1, 0, 1) + line(2.0, 1, 0, 1))
    tail = ReplicaTail(str(path))
    tail.update()
    path.write_text(line(9.0, 3, 2, 1))               # ReplicaRecorder.start() empties its file
    tail.update()
    assert tail.figures()["samples"] == [[9.0, 3, 2, 1, None]]


def test_the_newest_samples_are_kept_and_at_most_600_points_answered(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(line(1000 + i / 4, 1 + i // 1000, 0, i // 1000) for i in range(5000)))
    tail = ReplicaTail(str(path), max_kept=4000)
    reads = 0
    while tail.update():   # at most 1 MB a read: a long file is caught up over several updates
        reads += 1
    assert reads > 1
    f = tail.figures()
    assert f["n"] == 4000 and f["dropped"] == 1000
    pts = f["samples"]
    assert len(pts) == 600
    assert pts[0][0] == 1000 + 1000 / 4 and pts[-1] == [1000 + 4999 / 4, 5, 0, 4, None]   # the whole span
    assert [p[0] for p in pts] == sorted({p[0] for p in pts})                       # in order, none twice
    assert downsample(list(range(10)), 600) == list(range(10))
    assert downsample(list(range(1000)), 3) == [0, 499, 999]


def test_replica_samples_comes_from_the_command_line_only(tmp_path):
    option = BY_DEST["replica_samples"]
    assert option.check(str(tmp_path / "later.jsonl")) == str(tmp_path / "later.jsonl")   # may come later
    for bad in (str(tmp_path), str(tmp_path / "no" / "dir.jsonl"), "a\nb"):
        with pytest.raises(OptionError, match="--replica-samples"):
            option.check(bad)
    options = Namespace(**{o.dest: o.default for o in OPTIONS}, num_users=0, spawn_rate=0, host="", run_time="",
                        profile="")
    with pytest.raises(OptionError, match="does not set 'replica_samples'"):
        check_form({"replica_samples": [str(tmp_path / "x.jsonl")]}, options, {})
    with pytest.raises(OptionError, match="does not set 'replica_samples'"):   # not even the CLI's own value
        check_form({"replica_samples": [""]}, options, {"replica_samples": ""})


def cockpit_replicas(base):
    status, body = send(base, "/cockpit.json")
    assert status == 200, body
    return json.loads(body)["replicas"]


def test_web_ui_charts_the_replicas_of_an_autostarted_run_and_quits_by_itself(tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text(line(time.time() - 1, 1, 0, 1) + "garbage\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "ui.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--web-port", str(port),
                                 "--autostart", "--autoquit", "1", "--host", "http://fake", *FAKE, "--stages", "1",
                                 "--stage-seconds", "4", "--replica-samples", str(samples),
                                 "--report-out", str(tmp_path / "report.json")],
                                cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                replicas = cockpit_replicas(base)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError(log.read_text()[-3000:])
        assert replicas["n"] == 1 and replicas["malformed"] == 1 and replicas["latest"]["running"] == 1
        page = send(base, "/?tab=cockpit")[1]
        assert "/cockpit/static/replicas.js" in page
        assert send(base, "/cockpit/static/replicas.js")[0] == 200
        append(samples, line(time.time(), 2, 1, 1, total=2.25))
        time.sleep(2.2)   # the figures are cached for UPDATE_S
        status, body = send(base, "/cockpit/replicas.json")
        assert status == 200
        replicas = json.loads(body)
        assert replicas["n"] == 2 and replicas["samples"][-1][1:] == [2, 1, 1, 2.25] and replicas["latest"]["target"] == 2
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]   # the shape's end, then Locust's --autoquit
        assert (tmp_path / "report.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_web_ui_without_replica_samples_has_no_chart(tmp_path):
    from tests.locust_helpers import web_ui

    with web_ui(tmp_path, tmp_path / "ui.log", "--host", "http://fake", *FAKE, env=ENV) as base:
        assert "replicas.js" not in send(base, "/")[1]
        assert cockpit_replicas(base) is None


def test_bench_autoscale_passes_the_recorders_samples_to_locust(tmp_path):
    args = Namespace(stop_timeout=30, slo_e2e=0.0, web_port=0)
    scenario = build_scenario(SCENARIOS["short"], 1.0, ["light"])
    samples = tmp_path / "replicas.jsonl"
    cmd = locust_command(args, "http://127.0.0.1:9", tmp_path / "t.csv", scenario, tmp_path / "r.json",
                         tmp_path / "p", samples)
    assert cmd[cmd.index("--replica-samples") + 1] == str(samples) and "--headless" in cmd
    args.web_port = 8123
    cmd = locust_command(args, "http://127.0.0.1:9", tmp_path / "t.csv", scenario, tmp_path / "r.json",
                         tmp_path / "p", samples)
    assert "--headless" not in cmd and "--autostart" in cmd
    assert cmd[cmd.index("--web-port") + 1] == "8123" and cmd[cmd.index("--web-host") + 1] == "127.0.0.1"
    assert Path(ROOT / "bench" / "autoscale" / "scenario_run.py").read_text().count("rec.recorder.samples_path") == 1

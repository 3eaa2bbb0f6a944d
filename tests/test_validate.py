"""`python -m simulator validate` on measured reports generated from a known FIFO process."""

from __future__ import annotations

import random

from loadlab.cases import ARTICLE_CASES
from loadlab.schema import Case, ErrorRow, JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage
from simulator.__main__ import main

OVERHEAD_S = 0.3


def fifo_report(path, scale_concurrent: float = 1.0, seed: int = 11, workers: int = 1) -> str:
    """A 'measured' run: N=1 stage of 40 jobs, then bursts of N = 5, 10, 20 jobs at once on one FIFO
    worker; service ~ U(1.8, 2.2) s, client overhead 0.3 s. `scale_concurrent` multiplies the e2e of
    the concurrency stages (2.0: doubled latencies that no FIFO server can produce)."""
    rng = random.Random(seed)
    stages = []
    t = 1000.0
    single = Stage(name="u=1", concurrency=1, jobs_per_user=40)
    for _ in range(40):
        s = rng.uniform(1.8, 2.2)
        single.jobs.append(JobRecord(case="medium", status="completed", submitted=t, started=t, finished=t + s + OVERHEAD_S,
                                     queue_s=0.0, service_s=s, e2e_s=s + OVERHEAD_S))
        t += s + OVERHEAD_S
    stages.append(single)
    for n in (5, 10, 20):
        st = Stage(name=f"u={n}", concurrency=n, jobs_per_user=1)
        free = [t] * workers
        for _ in range(n):
            s = rng.uniform(1.8, 2.2)
            k = free.index(min(free))
            start = free[k]
            free[k] = start + s
            e2e = (start + s + OVERHEAD_S - t) * scale_concurrent
            st.jobs.append(JobRecord(case="medium", status="completed", submitted=t, started=start, finished=t + e2e,
                                     queue_s=start - t, service_s=s, e2e_s=e2e))
        t = max(free) + 10
        stages.append(st)
    rep = Report(role="load", kind="measured", name="fifo-known", target="local", cases=[ARTICLE_CASES["medium"]], stages=stages,
                 config=RunConfig(driver="test", server=ServerConfig(workers=workers, max_batch=1),
                                  load=LoadConfig(mode="burst")))
    rep.save(path)
    return str(path)


def errors(path, metric: str, layer: str = "prediction") -> dict[str, ErrorRow]:
    """The validation report's error rows of one metric, by stage."""
    report = Report.load(path)
    assert report.role == "validation" and report.kind == "simulated"
    return {e.stage: e for e in report.errors if e.metric == metric and e.layer == layer}


def test_known_fifo_process_validates_with_small_error(tmp_path, capsys):
    measured = fifo_report(tmp_path / "known.json")
    out = tmp_path / "sim.json"
    rc = main(["validate", "--measured", measured, "--max-error", "10", "--replications", "20", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    means = errors(out, "mean_s")
    assert set(means) == {"u=1", "u=5", "u=10", "u=20"}
    for row in means.values():
        assert abs(row.error) < 0.05, row
    # the u=1 stage gave the service times: shown, never scored
    assert not means["u=1"].scored and all(means[s].scored for s in ("u=5", "u=10", "u=20"))
    assert [s.name for s in Report.load(out).stages] == ["u=1", "u=5", "u=10", "u=20"]
    assert "u=20" in text


def test_two_workers_known_process(tmp_path):
    measured = fifo_report(tmp_path / "two.json", workers=2)
    rc = main(["validate", "--measured", measured, "--max-error", "10", "--replications", "20",
               "--out", str(tmp_path / "s.json")])
    assert rc == 0


def test_doubled_latencies_give_large_error_and_nonzero_exit(tmp_path, capsys):
    measured = fifo_report(tmp_path / "doubled.json", scale_concurrent=2.0)
    rc = main(["validate", "--measured", measured, "--max-error", "10", "--out", str(tmp_path / "s.json")])
    assert rc == 1
    means = errors(tmp_path / "s.json", "mean_s")
    assert all(means[s].error < -0.40 for s in ("u=5", "u=10", "u=20"))
    assert "FAIL" in capsys.readouterr().out


def test_closed_loop_stage_and_missing_config_keys(tmp_path):
    """A closed-loop stage (duration) and a report without workers/max_batch: defaults to 1."""
    rng = random.Random(2)
    single = Stage(name="u=1", concurrency=1)
    t = 0.0
    for _ in range(30):
        s = rng.uniform(0.9, 1.1)
        single.jobs.append(JobRecord(case="light", status="completed", submitted=t, finished=t + s, queue_s=0.0,
                                     service_s=s, e2e_s=s))
        t += s
    closed = Stage(name="u=3", concurrency=3, duration_s=60.0)
    t0, t = t + 5, t + 5
    while t - t0 < 60:                      # 3 users always in flight on one worker: e2e ~ 3 S
        s = rng.uniform(0.9, 1.1)
        closed.jobs.append(JobRecord(case="light", status="completed", submitted=t - 2 * s, finished=t + s,
                                     service_s=s, e2e_s=3 * s, queue_s=2 * s))
        t += s
    rep = Report(role="load", kind="measured", name="closed", config=RunConfig(driver="test"), target="local", cases=[Case(name="light", layers=2, resolution=640, image_px=256)],
                 stages=[single, closed])
    rep.save(tmp_path / "closed.json")
    rc = main(["validate", "--measured", str(tmp_path / "closed.json"), "--max-error", "10",
               "--out", str(tmp_path / "s.json")])
    assert rc == 0, Report.load(tmp_path / "s.json").errors


def test_unreadable_report_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["validate", "--measured", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err

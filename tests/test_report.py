"""The HTML report: each section shows the figures of the reports of its role, badged with their origin,
and nothing of a role whose reports are absent; validations are matched to the run they replayed."""

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from bench.report.build import build
from bench.report.loading import load_reports, match_measured
from bench.report.series import jobs_in_system, replica_steps
from loadlab.schema import (
    ErrorRow,
    JobRecord,
    LoadConfig,
    ReplicaInterval,
    ReplicaRun,
    ReplicaSample,
    Report,
    RunConfig,
    ScaleEvent,
    ServerConfig,
    SimulationConfig,
    Stage,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --- small reports with known numbers -----------------------------------------------------------------------

def job(origin: float, e2e: float, status: str = "completed", scheduled: bool = False, **kw) -> JobRecord:
    return JobRecord(case="light", status=status, submitted=origin, scheduled=origin if scheduled else None,
                     finished=origin + e2e if status != "dropped" else None,
                     e2e_s=e2e if status == "completed" else None, **kw)


def single_report(folder: Path) -> Path:
    r = Report(role="single", kind="measured", name="single-local", target="local",
               config=RunConfig(driver="test", load=LoadConfig(mode="single")))
    r.stages.append(Stage(name="light [u=1]", concurrency=1, jobs_per_user=3,
                          jobs=[job(0, e, service_s=1.5) for e in (2.0, 2.5, 3.0)]))
    return r.save(folder / "measured" / "single-local.json")


def burst_report(folder: Path, service_s: float = 3.25) -> Path:
    r = Report(role="load", kind="measured", name="burst", target="local",
               config=RunConfig(driver="test", server=ServerConfig(workers=1), load=LoadConfig(mode="burst")))
    for n in (1, 5):
        r.stages.append(Stage(name=f"u={n}", concurrency=n, jobs_per_user=1,
                              jobs=[job(0.0, service_s * (i + 1), queue_s=service_s * i, service_s=service_s)
                                    for i in range(n)]))
    return r.save(folder / "measured" / "burst.json")


def open_loop_report(folder: Path) -> Path:
    # rate 0.4/s stage of 10 s from t=100, SLO 4 s: e2e 1, 3, 5, 2 and one dropped -> 3 of 5 arrivals within:
    # 60.0 %, goodput 0.300/s
    r = Report(role="load", kind="measured", name="open-poisson", target="local",
               config=RunConfig(driver="test", slo_e2e_s=4.0,
                                load=LoadConfig(mode="open", arrival="poisson", rates_per_s=[0.4], seed=7)))
    r.stages.append(Stage(name="rate=0.4", arrival_rate_per_s=0.4, duration_s=10.0, started_at=100.0, slo_e2e_s=4.0,
                          jobs=[job(100.0 + i, e, scheduled=True) for i, e in enumerate((1.0, 3.0, 5.0, 2.0))]
                          + [job(105.0, 0.0, status="dropped", scheduled=True)]))
    return r.save(folder / "measured" / "open-poisson.json")


def validation_report(folder: Path, measured: str, name: str = "validate-open-poisson") -> Path:
    r = Report(role="validation", kind="simulated", name=name, target="local",
               config=RunConfig(driver="simulator validate",
                                simulation=SimulationConfig(measured=measured, calibration="single-local.json")))
    r.stages.append(Stage(name="rate=0.4", arrival_rate_per_s=0.4,
                          jobs=[job(float(i), e, scheduled=True) for i, e in enumerate((1.1, 2.9, 4.4, 2.1))]))
    r.errors = [ErrorRow(stage="rate=0.4", metric="mean_s", measured=2.75, simulated=2.6, error=-0.15 / 2.75),
                ErrorRow(stage="rate=0.4", metric="slo_attainment", measured=0.75, simulated=0.5, error=-1 / 3),
                ErrorRow(stage="u=1", metric="p95_s", measured=6.125, simulated=6.125, error=0.0, scored=False)]
    r.extra["service_check"] = [{"stage": None, "n": 40, "measured_s": 2.44, "predicted_s": 2.0, "ratio": 1.22,
                                 "ci95": [1.18, 1.26], "verdict": "slower than calibrated"}]
    r.model["drift"] = {"calibrations": 2, "cases": {"light": {"alone_s": [], "last_over_first": 1.1}}}
    return r.save(folder / "simulated" / f"{name}.json")


def replica_run(t0: float, seconds: float, samples: list[tuple[float, int]]) -> ReplicaRun:
    return ReplicaRun(window=(t0, t0 + 60.0), replica_seconds=seconds,
                      timeline=[ReplicaSample(t=t0 + t, target=n, running=n) for t, n in samples],
                      intervals=[ReplicaInterval(replica="r1", start=t0 + 2, ready=t0 + 4, end=t0 + 50)],
                      events=[ScaleEvent(t=t0 + 2, from_replicas=0, to_replicas=1),
                              ScaleEvent(t=t0 + 20, from_replicas=1, to_replicas=2),
                              ScaleEvent(t=t0 + 40, from_replicas=2, to_replicas=1),
                              ScaleEvent(t=t0 + 50, from_replicas=1, to_replicas=0)])


def autoscaling_reports(folder: Path) -> tuple[Path, Path]:
    m = Report(role="load", kind="measured", name="autoscale-rayserve", target="vertex",
               config=RunConfig(driver="test", load=LoadConfig(mode="trace", arrival="trace", trace="scenario.csv")),
               replicas=replica_run(1000.0, 73.5, [(0, 0), (2, 1), (20, 2), (40, 1), (50, 0)]))
    m.replicas.intervals[0].startup_phases = {"worker_s": 0.41, "imports_s": 1.23, "load_s": 0.17, "setup_s": 0.02,
                                              "health_s": 0.17}
    m.stages.append(Stage(name="t=0-30s", jobs=[job(1003.0, 4.0, scheduled=True, cold_start=True),
                                                 job(1021.0, 2.0, scheduled=True)]))
    mpath = m.save(folder / "measured" / "autoscale-rayserve.json")
    s = Report(role="validation", kind="simulated", name="validate-autoscale", target="ray-serve",
               config=RunConfig(driver="simulator validate", simulation=SimulationConfig(measured=str(mpath))),
               replicas=replica_run(0.0, 69.3, [(0, 0), (3, 1), (21, 2), (41, 1), (52, 0)]))
    s.errors = [ErrorRow(stage=None, metric="replica_seconds", measured=73.5, simulated=69.3, error=-4.2 / 73.5)]
    return mpath, s.save(folder / "simulated" / "validate-autoscale.json")


def simulated_reports(folder: Path) -> None:
    base = dict(kind="simulated", target="local+vertex", config=RunConfig(driver="simulator"))
    Report(role="monthly", name="monthly-10000", **base, extra={"results": [
        {"arrivals": 10000, "deployment": "vertex", "served": 9990, "failed": 10, "rejected": 0,
         "latency_s": {"mean": 44.5, "p95": 94.6}, "cold_start_share": 0.009, "replica_hours": 924.3,
         "monthly_cost": 574.46, "cost_per_request": 0.05745}]}).save(folder / "simulated" / "monthly-10000.json")
    Report(role="sweep", name="sweep", **base, extra={
        "slo_p95_s": 300, "break_even_per_month": 12345.0,
        "recommendations": [{"volume": 5000, "recommended": "vertex-min0", "cost": 123.45, "p95_s": 88.0,
                             "runner_up": "local-1gpu", "why": "cheapest meeting the SLO"}]}
           ).save(folder / "simulated" / "sweep.json")
    Report(role="article", name="article", **base, extra={
        "local": [{"concurrency": 5, "quoted_succeeded": 5, "quoted_mean_s": 142.3, "fifo_simulated_mean_s": 86.1,
                   "fifo_closed_form_mean_s": 86.1, "processor_sharing_mean_s": 143.5,
                   "bounded_queue_16": {"served": 5, "rejected": 0}}],
        "cost": {"quoted_naive": 37.5, "quoted_optimized": 9.0,
                 "replica_second_bill": {"on_demand": {"monthly": 574.46, "replica_hours": 924.3},
                                         "spot": {"monthly": 169.12}}}}).save(folder / "simulated" / "article.json")


def all_reports(folder: Path) -> dict[str, Path]:
    paths = {"single": single_report(folder), "burst": burst_report(folder), "open": open_loop_report(folder)}
    paths["validation"] = validation_report(folder, str(paths["open"]))
    paths["autoscale"], paths["autoscale-sim"] = autoscaling_reports(folder)
    simulated_reports(folder)
    return paths


# --- reading the page -----------------------------------------------------------------------------------------

class Page(HTMLParser):
    """Per section id: its table cells as (origin class or None, text), and whether it says 'missing'."""

    def __init__(self, html: str):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self._section = None
        self._cell: list | None = None
        self._missing = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "section":
            self._section = self.sections.setdefault(a["id"], {"cells": [], "missing": "", "imgs": 0})
        elif tag == "td" and self._section is not None:
            origin = cls[1] if cls[:1] == ["fig"] else None
            self._cell = [origin, ""]
        elif tag == "p" and "missing" in cls and self._section is not None:
            self._missing = True
        elif tag == "img" and self._section is not None and a.get("src", "").startswith("data:image/png;base64,"):
            self._section["imgs"] += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._section["cells"].append((self._cell[0], " ".join(self._cell[1].split())))
            self._cell = None
        elif tag == "p":
            self._missing = False
        elif tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._missing:
            self._section["missing"] += data

    def figures(self, section: str, origin: str) -> list[str]:
        return [text for o, text in self.sections[section]["cells"] if o == origin]

    def has(self, section: str, text: str, origin: str) -> bool:
        """A cell of `section` badged `origin` whose figure starts with `text`."""
        label = {"quoted": "quoted from the article"}.get(origin, origin)
        return any(t.startswith(text) and t.endswith(label) for t in self.figures(section, origin))


# --- tests -------------------------------------------------------------------------------------------------------

def test_each_section_shows_the_figures_of_its_reports_with_their_origin(tmp_path):
    all_reports(tmp_path)
    page = Page(build(tmp_path).read_text())
    expected = [
        ("single", "2.50 ± 0.50 s (p95 2.95, model 1.50)", "measured"),     # mean ± std of 2.0, 2.5, 3.0
        ("single", "28.7 ± 1.2 s", "quoted"),
        ("concurrency", "9.75 s", "measured"),       # u=5 mean: (1+2+3+4+5)/5 x 3.25
        ("concurrency", "1.00", "measured"),         # ÷ FIFO ideal (5+1)/2 x 3.25
        ("concurrency", "5/5, 142.3 s", "quoted"),
        ("open-loop", "2.75 s", "measured"),         # mean of 1, 3, 5, 2
        ("open-loop", "60.0 %", "measured"),         # SLO attainment: 3 of 5 arrivals (1 dropped) within 4 s
        ("open-loop", "0.300/s", "measured"),        # goodput: 3 in the 10 s stage
        ("open-loop", "1", "measured"),              # dropped
        ("validation", "2.75 s", "measured"),
        ("validation", "2.60 s", "simulated"),
        ("validation", "50.0 %", "simulated"),
        ("autoscaling", "73.5 s", "measured"),
        ("autoscaling", "69.3 s", "simulated"),
        ("autoscaling", "2", "measured"),            # scale-ups
        ("autoscaling", "1", "measured"),            # cold starts
        ("autoscaling", "1.23 s", "measured"),       # the replica's start-up: its imports
        ("article", "86.1 s", "simulated"),
        ("article", "$37.50", "quoted"),
        ("article", "$169.12", "simulated"),
        ("monthly", "$574.46", "simulated"),
        ("monthly", "924", "simulated"),
        ("sweep", "$123.45", "simulated"),
    ]
    missing = [(s, t, o) for s, t, o in expected if not page.has(s, t, o)]
    assert not missing, missing
    # the validation's error column: -5.5 % scored, the fitted row says so instead of scoring it
    cells = [t for _, t in page.sections["validation"]["cells"]]
    assert "-5.5 %" in cells and "-33.3 %" in cells and "fit (not scored)" in cells
    # the service check beside it: the run's own model time against the calibration's, and the drift
    assert "×1.220" in cells and "1.180–1.260" in cells and "slower than calibrated" in cells
    assert "light ×1.100 from the first to the last" in (tmp_path / "index.html").read_text()
    assert [t for _, t in page.sections["autoscaling"]["cells"]].count("-5.7 %") == 1  # run-level error row
    # plots: coldstart has no report here; one for the bursts, one per open-loop or trace run (the Poisson
    # run and the trace-driven autoscaling run), one replica timeline
    assert page.sections["concurrency"]["imgs"] == 1
    assert page.sections["open-loop"]["imgs"] == 2
    assert page.sections["autoscaling"]["imgs"] == 1
    assert not any(page.sections[s]["missing"] for s in ("single", "concurrency", "open-loop", "autoscaling",
                                                          "validation", "article", "monthly", "sweep"))


def test_a_section_shows_nothing_when_its_reports_are_absent(tmp_path):
    simulated_reports(tmp_path)          # only the simulator's monthly, sweep and article reports
    (tmp_path / "measured").mkdir()
    page = Page(build(tmp_path).read_text())
    for section in ("single", "coldstart", "concurrency", "open-loop", "capacity", "autoscaling", "validation"):
        assert page.sections[section]["missing"], section
        assert page.sections[section]["cells"] == [], section
        assert page.sections[section]["imgs"] == 0, section
    assert page.has("monthly", "$574.46", "simulated")
    # and the other way round: measured runs only, no simulated section shows figures
    other = tmp_path / "other"
    burst_report(other)
    page = Page(build(other).read_text())
    assert page.has("concurrency", "9.75 s", "measured")
    for section in ("monthly", "sweep", "article", "validation", "single"):
        assert page.sections[section]["missing"] and not page.sections[section]["cells"], section


def test_files_that_are_not_reports_are_skipped_with_a_note(tmp_path, capsys):
    burst_report(tmp_path)
    (tmp_path / "simulated").mkdir()
    (tmp_path / "simulated" / "validation-burst.json").write_text(json.dumps({"headers": [], "rows": []}))
    (tmp_path / "measured" / "broken.json").write_text("{not json")
    page = Page(build(tmp_path).read_text())
    out = capsys.readouterr().out
    assert "skipped" in out and "validation-burst.json" in out and "broken.json" in out
    files = [t for _, t in page.sections["sources"]["cells"]]
    assert "validation-burst.json" in files and "broken.json" in files and "burst.json" in files
    assert page.has("concurrency", "9.75 s", "measured")


def test_a_validation_is_matched_to_the_run_it_replayed(tmp_path):
    paths = all_reports(tmp_path)
    loaded = load_reports(tmp_path)
    measured = [r for r in loaded.reports if r.kind == "measured"]
    by_name = {r.name: r for r in loaded.reports}
    assert match_measured(by_name["validate-open-poisson"], measured) is by_name["open-poisson"]
    assert match_measured(by_name["validate-autoscale"], measured) is by_name["autoscale-rayserve"]
    # written from another folder: the same file name still matches; an unknown one matches nothing
    elsewhere = validation_report(tmp_path, "/elsewhere/reports/measured/open-poisson.json", name="v2")
    assert match_measured(Report.load(elsewhere), measured) is by_name["open-poisson"]
    lost = validation_report(tmp_path, "reports/measured/gone.json", name="v3")
    assert match_measured(Report.load(lost), measured) is None
    page = Page(build(tmp_path).read_text())
    assert page.sections["validation"]["cells"]
    html = (tmp_path / "index.html").read_text()
    assert "v3: replays reports/measured/gone.json (not among the reports given)" in html
    assert f"validate-open-poisson: replays {Report.load(paths['open']).name}" in html


def test_jobs_in_system_counts_arrived_and_unanswered_jobs():
    jobs = [job(0.0, 4.0, scheduled=True), job(1.0, 1.0, scheduled=True), job(2.0, 3.0, scheduled=True),
            job(2.5, 0.0, status="dropped", scheduled=True),
            JobRecord(case="light", status="in_flight", submitted=3.0, scheduled=3.0)]
    times, counts = jobs_in_system(jobs, end=10.0)
    # arrivals 0, 1, 2, 3; departures 2 (1+1), 4 (0+4), 5 (2+3), 10 (in flight until the end)
    assert list(zip(times, counts, strict=True)) == [(0.0, 1), (1.0, 2), (2.0, 2), (3.0, 3), (4.0, 2), (5.0, 1),
                                                     (10.0, 0)]


def test_replica_steps_from_the_timeline_or_the_intervals():
    run = replica_run(1000.0, 1.0, [(0, 0), (2, 1), (20, 2)])
    assert replica_steps(run) == ([0.0, 2.0, 20.0], [0, 1, 2])
    run.timeline = []
    assert replica_steps(run) == ([0.0, 2.0, 50.0], [0, 1, 0])


def test_names_from_reports_are_escaped(tmp_path):
    path = burst_report(tmp_path)
    r = Report.load(path)
    r.name = "<script>alert(1)</script>"
    r.save(path)
    html = build(tmp_path).read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={profile}", *args], check=True, timeout=120, capture_output=True,
                          text=True)


@pytest.mark.slow
def test_the_page_renders_its_tables_and_plots_in_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed (.ci/run installs it)")
    all_reports(tmp_path)
    url = build(tmp_path).resolve().as_uri()
    dom = Page(_chromium("--dump-dom", url, profile=tmp_path / "profile").stdout)
    assert dom.has("concurrency", "9.75 s", "measured")
    assert dom.has("open-loop", "60.0 %", "measured")
    assert dom.sections["autoscaling"]["imgs"] == 1
    shot = tmp_path / "page.png"
    _chromium("--window-size=1200,2400", f"--screenshot={shot}", url, profile=tmp_path / "profile")
    from PIL import Image

    with Image.open(shot) as image:
        colors = {rgb: n for n, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20)}
    # the badges are painted in their CSS colours (the stylesheet applied), and the plots add far more
    # colours than text alone (a text-only page gives ~200 from anti-aliasing; this one ~2,000)
    for badge in ((0x1B, 0x7F, 0x3B), (0x1F, 0x5F, 0xBF), (0x8A, 0x5A, 0x00)):
        assert colors.get(badge, 0) > 500, badge
    assert len(colors) > 1000, len(colors)


def test_simulated_replay_is_drawn_on_the_measured_clock():
    from bench.report.series import on_measured_clock

    def stage(name, start, origins):
        return Stage(name=name, started_at=start, jobs=[
            JobRecord(case="light", status="completed", scheduled=t, submitted=t, finished=t + 1.0, e2e_s=1.0)
            for t in origins])

    config = RunConfig(driver="test", load=LoadConfig(mode="open"))
    measured = Report(role="load", kind="measured", name="m", target="local", config=config,
                      stages=[stage("r=1/s", 1000.0, [1000.5]), stage("r=2/s", 1100.0, [1100.2])])
    # a replay runs every stage from its own t = 0
    twin = Report(role="validation", kind="simulated", name="v", target="local", config=config,
                  stages=[stage("r=1/s", 0.0, [0.5]), stage("r=2/s", 0.0, [0.2])])
    moved = on_measured_clock(twin, measured)
    assert [(j.scheduled, j.finished) for j in moved] == [(1000.5, 1001.5), (1100.2, 1101.2)]


def test_the_validation_section_shows_each_layer_with_its_intervals(tmp_path):
    path = validation_report(tmp_path, "reports/measured/open-poisson.json", name="v-layers")
    v = Report.load(path)
    v.errors = [ErrorRow(stage="rate=0.4", metric="mean_s", measured=2.75, simulated=2.75, error=0.0, layer="mechanics"),
                ErrorRow(stage="rate=0.4", metric="mean_s", measured=2.75, simulated=2.6, error=-0.15 / 2.75, jobs=4,
                         measured_ci=(1.5, 4.0), simulated_pi=(2.4, 2.8), inside=True, too_few=True),
                ErrorRow(stage=None, metric="scale_ups", measured=2, simulated=2.3, error=0.15, layer="prediction",
                         distribution="2 in 7 of 10, 3 in 3", quantile=0.35)]
    v.save(path)
    html = build(tmp_path).read_text()
    assert "v-layers: replays" in html and "[mechanics]" in html and "[prediction]" in html
    assert "too few jobs" in html and "1.50 s – 4.00 s" in html and "2 in 7 of 10, 3 in 3 (at 0.35)" in html

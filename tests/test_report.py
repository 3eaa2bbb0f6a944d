"""The HTML report (fast, from synthetic reports) and `make demo`'s short CI mode end to end (slow)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.htmlreport import build
from loadlab.schema import JobRecord, LoadConfig, Report, RunConfig, ServerConfig, Stage

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _burst_report(path: Path, service_s: float) -> None:
    report = Report(role="load", kind="measured", name="burst", target="local",
                    config=RunConfig(driver="test", server=ServerConfig(workers=1), load=LoadConfig(mode="burst")))
    for n in (1, 5):
        stage = Stage(name=f"u={n}", concurrency=n, jobs_per_user=1)
        for i in range(n):
            stage.jobs.append(JobRecord(case="light", status="completed", submitted=0.0,
                                        finished=service_s * (i + 1), queue_s=service_s * i,
                                        service_s=service_s, e2e_s=service_s * (i + 1)))
        report.stages.append(stage)
    report.save(path)


def test_report_labels_every_origin_and_shows_our_numbers(tmp_path):
    _burst_report(tmp_path / "measured" / "burst.json", service_s=3.25)
    (tmp_path / "simulated").mkdir()
    page = build(tmp_path).read_text()
    assert "quoted from the article" in page and "measured" in page
    assert "142.3" in page            # the article's local N=5 row, quoted
    assert "9.75 s" in page           # our u=5 mean: (1+2+3+4+5)/5 x 3.25
    assert page.count("data:image/png;base64,") >= 2   # plots embedded: one file


def _screenshot(url: str, out: Path) -> None:
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={out.parent / 'chromium-profile'}", "--window-size=1200,3000",
                    f"--screenshot={out}", url], check=True, timeout=120, capture_output=True)


@pytest.mark.slow
def test_demo_short_mode_produces_the_report(tmp_path):
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "bench", "demo", "--short", "--reports", str(reports)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    index = reports / "index.html"
    page = index.read_text()
    for section in ("Single request", "Cold start", "Concurrency", "Simulator vs measured",
                    "The article replayed", "Cost vs monthly volume"):
        assert section in page, section
    assert list((reports / "layers").glob("layer_*.png")), "the tiny model's layers were not written"
    assert (reports / "measured" / "concurrency-local.json").exists()
    assert (reports / "simulated" / "sweep.json").exists()
    if CHROMIUM is None:
        pytest.skip("chromium not installed (.ci/run installs it); report rendered but not screenshotted")
    shot = tmp_path / "report.png"
    _screenshot(index.resolve().as_uri(), shot)
    assert shot.stat().st_size > 50_000

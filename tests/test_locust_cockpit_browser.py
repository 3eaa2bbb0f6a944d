"""Issue 22, item 4 (slow): the Cockpit tab in a real browser (headless Chromium driven by Playwright)
during a short burst against the tiny-model job server, with a calibration from a separate run: the
start form leads with this tool's options, the tab appears, its table fills, the prediction columns
fill, and the page logs no console error. The screenshot is kept as docs/cockpit.png (README)."""

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.locust_helpers import LOCUSTFILE, ROOT, web_ui

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOT = ROOT / "docs" / "cockpit.png"


@pytest.fixture(scope="module")
def server_url():
    from server.process import ServerProcess

    with ServerProcess(max_batch=1, cache_ttl=0) as server:   # every job runs the model
        yield server.url


def calibrate(url: str, tmp_path: Path) -> Path:
    """A separate calibration run (never the run the tab scores): 3 jobs one at a time."""
    out = tmp_path / "calibration.json"
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", url,
                           "--stages", "1", "--jobs-per-user", "3", "--cases", "light", "--report-out", str(out),
                           "--report-name", "calibration"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def cell(page, column: str, row: int = 0) -> str:
    """The text of one cell of the Cockpit table, by its column title."""
    headers = [h.strip() for h in page.locator("table thead th").all_inner_texts()]
    i = next(k for k, h in enumerate(headers) if h.startswith(column))
    return page.locator("table tbody tr").nth(row).locator("td").nth(i).inner_text().strip()


def test_cockpit_tab_fills_during_a_run_against_the_job_server(server_url, tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium not installed (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    cal = calibrate(server_url, tmp_path)
    # a Ray Serve run's replica samples, in the recorder's own line format (bench/replicas/sampler.py)
    from dataclasses import asdict

    from bench.replicas.types import Sample

    samples = tmp_path / "replicas.jsonl"
    samples.write_text("".join(json.dumps(asdict(Sample(t=1000.0 + k, target=min(2, k), starting=int(k == 1),
                                                        running=min(2, max(0, k - 1)), stopping=0,
                                                        total_requests=0.5 * k))) + "\n"
                               for k in range(6)))
    errors: list[str] = []
    with web_ui(tmp_path, tmp_path / "ui.log", "--host", server_url, "--stages", "2", "--jobs-per-user", "3",
                "--cases", "light", "--slo-e2e", "30", "--calibration", str(cal), "--replica-samples", str(samples),
                "--report-out", str(tmp_path / "report.json")) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 2400, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        # the start form: this tool's options unfolded and first, the users set by the shape
        arrival = page.locator("select[name=arrival]")
        arrival.wait_for(state="visible", timeout=15_000)
        assert arrival.bounding_box()["y"] < page.locator("input[name=userCount]").bounding_box()["y"]
        page.get_by_role("button", name="Start").click()
        page.get_by_role("tab", name="Cockpit").click()
        page.locator("table tbody tr td", has_text="u=2").wait_for(timeout=60_000)
        assert "Simulated mean" in " ".join(page.locator("table thead th").all_inner_texts())
        # the prediction may come back after a short run stopped, and Locust's page polls only while a run
        # goes on: wait for it in /cockpit.json, then reload if the run is over
        deadline = time.monotonic() + 240
        while not get_json(base + "/cockpit.json")["stages"][0]["predicted"] and time.monotonic() < deadline:
            time.sleep(1)
        if get_json(base + "/cockpit.json")["state"] == "stopped":
            page.reload()
            page.get_by_role("tab", name="Cockpit").click()
        page.wait_for_function("() => [...document.querySelectorAll('table tbody tr td')]"
                               ".some(td => /err [+-]\\d+ %/.test(td.textContent))", timeout=60_000)
        assert int(cell(page, "Completed")) >= 1
        assert cell(page, "Mean s") != "-" and cell(page, "Service s") != "-"
        assert cell(page, "Service ÷ calibration").startswith("×")
        assert " err " in cell(page, "Simulated mean")
        # the replica chart under the table: target, starting, running and the controller's total requests
        # (the autoscaler's input) as four step lines
        page.locator("#loadlab-replicas svg path").nth(3).wait_for(timeout=30_000)
        assert page.locator("#loadlab-replicas svg path").count() == 4
        assert "running 2" in page.locator("#loadlab-replicas").inner_text()
        assert "requests 2.50" in page.locator("#loadlab-replicas").inner_text()
        SHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(tmp_path / "cockpit.png"), full_page=True)
        # Locust's page polls only while a run goes on: the bill of a run this short (it was killed at
        # the stop and simulated again for the final figures) shows after a reload
        deadline = time.monotonic() + 300
        while get_json(base + "/cockpit.json")["bill"]["status"] != "done" and time.monotonic() < deadline:
            time.sleep(2)
        assert get_json(base + "/cockpit.json")["bill"]["status"] == "done"
        page.reload()
        page.get_by_role("tab", name="Bill (simulated)").click()
        page.locator("table tbody tr td", has_text="simulated, 3 replications").first.wait_for(timeout=30_000)
        assert page.locator("table tbody tr").count() == 4     # local, vertex, hybrid, ray
        browser.close()
    assert errors == []
    shutil.copy(tmp_path / "cockpit.png", SHOT)

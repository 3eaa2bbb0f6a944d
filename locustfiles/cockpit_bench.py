"""python -m locustfiles.cockpit_bench: the dispatch-lateness benchmark (`locustfiles/lateness.py`) with
the web UI's Cockpit tab open in a real browser, and the CPU the tab costs.

    python -m locustfiles.cockpit_bench                       # 20 arrivals/s Poisson for 60 s, tab open
    python -m locustfiles.cockpit_bench --calibration C.json  # with the simulator's prediction running too
    python -m locustfiles.cockpit_bench --no-tab              # the same run through the web UI, no browser

Locust runs with its web UI against the stand-in client with no service time
(`tests/fakeclient.py`), so what is measured is the load generator; headless Chromium (Playwright, the
system's `chromium`) opens the page, the run is started, and the Cockpit tab stays open for the whole
run, polling as a person's browser does.
Prints the lateness percentiles of the measured report (goal: p99 <= 20 ms at 20/s), the CPU seconds
of the Locust process and its children (its simulations) from `wait4`, and the CPU the cockpit's
figures took on the load generator (its own count, `/cockpit.json` `cost`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from loadlab.schema import Report
from loadlab.stats import summarize
from locustfiles.lateness import LOCUSTFILE, ROOT, TARGET_P99_S, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait_up(base: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            _get_json(base + "/cockpit.json")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web UI did not come up")


def _start_run(base: str) -> None:
    # what the form's Start button sends (a script's POST: no Origin, let through by the guard)
    form = urllib.parse.urlencode({"user_count": 0, "spawn_rate": 1, "host": "http://fake"}).encode()
    with urllib.request.urlopen(base + "/swarm", data=form, timeout=10) as r:
        answer = json.loads(r.read())
    if not answer.get("success"):
        raise RuntimeError(f"the web UI did not start the run: {answer}")


def _watch(base: str, proc: subprocess.Popen, seconds: float, tab: bool, out: Path) -> dict:
    """Open the Cockpit tab (a person opens the page, then presses Start), start the run, keep the tab
    open until the run stopped and its report is written; the last /cockpit.json."""
    last: dict = {}

    def until_stopped(sleep) -> None:
        nonlocal last
        deadline = time.monotonic() + seconds + 120
        while time.monotonic() < deadline and proc.poll() is None:
            last = _get_json(base + "/cockpit.json")
            if last["state"] == "stopped" and out.exists():
                return
            sleep(2.0)

    if not tab:
        _start_run(base)
        until_stopped(time.sleep)
        return last
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1800, "height": 900})
        page.goto(base + "/")
        page.locator("select[name=arrival]").wait_for(state="visible")
        page.get_by_role("button", name="Start").click()   # the form as the command line filled it
        page.get_by_role("tab", name="Cockpit").click()
        until_stopped(lambda s: page.wait_for_timeout(s * 1000))
        browser.close()
    return last


def run(rate: float, seconds: float, calibration: str | None, tab: bool, seed: int = 1) -> tuple[Report, dict, float]:
    """(the measured report, the last /cockpit.json, CPU seconds of the Locust process and its children)."""
    workdir = Path(tempfile.mkdtemp(prefix="loadlab-cockpit-bench-"))
    out = workdir / "report.json"
    port = free_port()
    env = {**os.environ, "LOADLAB_FAKE_SERVICE_S": "0", "LOADLAB_FAKE_HTTP": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--web-port", str(port), "--host", "http://fake",
           "--client-factory", "tests.fakeclient:make_client",
           "--arrival", "poisson", "--rates", f"{rate:g}", "--stage-seconds", f"{seconds:g}", "--seed", str(seed),
           "--report-out", str(out), "--report-name", "cockpit-lateness", "--loglevel", "WARNING"]
    if calibration:
        cmd += ["--calibration", str(Path(calibration).resolve())]
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / "log", "w"))
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, proc)
        last = _watch(base, proc, seconds, tab, out)
        proc.send_signal(signal.SIGTERM)   # Locust quits; wait4 has its CPU and its waited children's
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    if not out.exists():
        raise RuntimeError(f"no report: {(workdir / 'log').read_text()[-3000:]}")
    return Report.load(out), last, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m locustfiles.cockpit_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="arrivals per second (default 20)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    parser.add_argument("--calibration", default="", help="a measured report: the prediction runs as well")
    parser.add_argument("--no-tab", action="store_true", help="the web UI without a browser on it")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.no_tab and CHROMIUM is None:
        sys.stderr.write("cockpit_bench: error: no chromium on PATH (apt-get install chromium), or --no-tab\n")
        return 2
    load = os.getloadavg()[0]
    report, last, cpu_s = run(args.rate, args.seconds, args.calibration or None, not args.no_tab, args.seed)
    jobs = [j for s in report.stages for j in s.jobs]
    late = summarize(j.lateness_s for j in jobs if j.lateness_s is not None)
    cost = last.get("cost", {})
    print(f"dispatch lateness with the web UI {'and the Cockpit tab open' if not args.no_tab else '(no browser)'}"
          f"{' and the prediction' if args.calibration else ''}: poisson {args.rate:g}/s for {args.seconds:g} s, "
          f"stand-in client; load average before {load:.2f} on {os.cpu_count()} CPUs")
    print(f"  arrivals {len(jobs)}; lateness n {late['count']}  "
          + "  ".join(f"{k} {late[k] * 1000:.2f} ms" for k in ("mean", "p50", "p95", "p99", "max")))
    print(f"  target p99 <= {TARGET_P99_S * 1000:g} ms: "
          f"{'met' if late['p99'] is not None and late['p99'] <= TARGET_P99_S else 'NOT met'}")
    print(f"  CPU of the Locust process and its children: {cpu_s:.2f} s over the run "
          f"({100 * cpu_s / args.seconds:.1f} % of one CPU)")
    print(f"  cockpit figures on the load generator: {cost.get('cpu_s', 0):.3f} CPU s in {cost.get('computed', 0)} "
          f"updates ({1000 * cost.get('cpu_s', 0) / max(1, cost.get('computed', 0)):.1f} ms each); "
          f"prediction: {last.get('prediction', {}).get('status')}; bill: {last.get('bill', {}).get('status')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

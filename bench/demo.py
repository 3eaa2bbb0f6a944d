"""`make demo`: the main job end to end on the embedded tiny model, with progress.

1. build the tiny offline pipeline and decompose one image through it (layers under reports/layers/);
2. start the job server once, measure the single-request benchmark through both clients (local job
   API, Vertex adapter over the real SDK), the cold start (its own fresh server), and the Locust
   stages 1/5/10/20 (all-at-once bursts, the article's benchmark 3) for both targets;
3. run the simulator: `--monthly 10000`, the volume sweep, the article replay, and validate the
   simulator against the measured concurrency runs;
4. write reports/index.html, stop everything started, print where the report is.

Each step is a subprocess running the same command a user would type, so the demo doubles as a
check that those commands work. `--short` is the CI mode: fewer runs and stages.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


class Steps:
    """Runs the demo's commands in order, printing progress; remembers failures and goes on."""

    def __init__(self, total: int):
        self.total, self.done, self.failed = total, 0, []
        self.started = time.perf_counter()

    def run(self, title: str, *args: str) -> bool:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        print(f"\n==> [{self.done}/{self.total}] {title}   (t+{elapsed:.0f}s)\n    $ python {' '.join(args)}",
              flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, *args])
        print(f"    {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            self.failed.append(title)
        return rc == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench demo", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="output folder (default reports)")
    parser.add_argument("--short", action="store_true", help="CI mode: fewer runs, stages 1 and 5 only")
    args = parser.parse_args(argv)

    from loadlab.cases import LIGHT_CASES, test_image
    from server.process import ServerProcess

    reports = args.reports
    measured, simulated = reports / "measured", reports / "simulated"
    runs = "2" if args.short else "5"
    stages = "1,5" if args.short else "1,5,10,20"
    volumes = "100,10000" if args.short else "100,1000,5000,10000,50000,100000"
    steps = Steps(total=10 if args.short else 12)  # short skips the Vertex-adapter stages and their validation

    image = test_image(LIGHT_CASES["light"], reports / "images")
    steps.run("tiny model: build offline, decompose one image", "-m", "server.model", "decompose", str(image),
              "--layers", "3", "--resolution", "640", "--out", str(reports / "layers"))

    # The content cache is off for measuring: every job of a benchmark uploads the same white image,
    # and cache hits would measure the cache, not the model.
    print("\n==> starting the job server (tiny model, content cache off) for the measured runs", flush=True)
    with ServerProcess(data_dir=reports / "server-data", cache_ttl=0) as server:
        print(f"    ready at {server.url}", flush=True)
        for target in ("local", "vertex"):
            steps.run(f"benchmark 1, single request, {target} target", "-m", "bench", "single", "--url", server.url,
                      "--target", target, "--cases", "light", "--runs", runs, "--warmup", "1",
                      "--out", str(measured / f"single-{target}.json"))
        for target in ("local", "vertex"):
            if args.short and target == "vertex":
                continue
            steps.run(f"benchmark 3, Locust stages {stages} (bursts), {target} target", "-m", "bench",
                      "concurrency", "--url", server.url, "--target", target, "--cases", "light",
                      "--stages", stages, "--jobs-per-user", "1",
                      "--single-report", str(measured / f"single-{target}.json"),
                      "--locust-dir", str(reports / "locust" / target),
                      "--out", str(measured / f"concurrency-{target}.json"))
    steps.run("benchmark 2, cold start (a fresh server process)", "-m", "bench", "coldstart", "--short",
              "--out", str(measured / "coldstart-local.json"))

    steps.run("simulator: 10,000 requests/month", "-m", "simulator", "--monthly", "10000",
              "--out", str(simulated / "monthly-10000.json"))
    steps.run("simulator: sweep of monthly volumes", "-m", "simulator", "sweep", "--volumes", volumes,
              "--out", str(simulated / "sweep.json"), "--png", str(simulated / "sweep.png"))
    steps.run("simulator: the article's scenario from its own figures", "-m", "simulator", "article",
              "--out", str(simulated / "article.json"))
    steps.run("simulator validate: replay the measured local stages", "-m", "simulator", "validate",
              "--measured", str(measured / "concurrency-local.json"),
              "--out", str(simulated / "validate-local.json"))
    if not args.short:
        steps.run("simulator validate: replay the measured Vertex-adapter stages", "-m", "simulator", "validate",
                  "--measured", str(measured / "concurrency-vertex.json"),
                  "--out", str(simulated / "validate-vertex.json"))
    steps.run("HTML report", "-m", "bench", "report", "--reports", str(reports))

    total = time.perf_counter() - steps.started
    print(f"\ndemo finished in {total:.0f} s; report: {(reports / 'index.html').resolve()}")
    if steps.failed:
        print(f"failed steps: {', '.join(steps.failed)}", file=sys.stderr)
        return 1
    return 0

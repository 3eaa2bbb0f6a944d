"""`python -m bench.replicas {sample,record,measure}`: the sampler the recorder starts (internal), a
recording of a running `python -m server.rayserve` written as JSON, and the rayserve set-up's
measurement (bench/replicas/measure.py)."""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

import bench.replicas as package
from bench.replicas.recorder import ReplicaRecorder
from bench.replicas.sampler import sample_loop
from bench.replicas.types import DEFAULT_INTERVAL_S


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=package.__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="(internal) sample the Serve controller into a JSON-lines file until SIGTERM")
    s.add_argument("--gcs-address", required=True)
    s.add_argument("--app", default="decomposer")
    s.add_argument("--deployment", default="LayeredModel")
    s.add_argument("--interval-s", type=float, default=DEFAULT_INTERVAL_S)
    s.add_argument("--out", required=True)
    r = sub.add_parser("record", help="record the timeline of a running `python -m server.rayserve` until "
                                      "Ctrl-C or --duration-s, and write it as JSON")
    r.add_argument("--url", default="http://127.0.0.1:8000")
    r.add_argument("--duration-s", type=float, default=None)
    r.add_argument("--interval-s", type=float, default=DEFAULT_INTERVAL_S)
    r.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("measure", help="start rayserve on the tiny model and measure init -> ready, idle CPU, "
                                       "a request at zero replicas; prints JSON")
    m.add_argument("--idle-s", type=float, default=30.0)
    return parser.parse_args(argv)


def record(args: argparse.Namespace) -> int:
    """Record until Ctrl-C, SIGTERM or --duration-s, then write the timeline."""
    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    recorder = ReplicaRecorder.from_url(args.url, interval_s=args.interval_s).start()
    try:
        deadline = time.monotonic() + (args.duration_s or float("inf"))
        while time.monotonic() < deadline:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass
    timeline = recorder.stop()
    args.out.write_text(json.dumps(timeline.to_dict(), indent=1))
    print(f"{len(timeline.samples)} samples, {len(timeline.replicas)} replicas, "
          f"{timeline.replica_seconds:.1f} replica-s, {len(timeline.scale_events)} scale events -> {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "sample":
        return sample_loop(args)
    if args.command == "measure":
        # Imported only here: the sampler subprocess (`sample`) starts without FastAPI and the server.
        from bench.replicas.measure import measure

        print(json.dumps(measure(args.idle_s), indent=1))
        return 0
    return record(args)

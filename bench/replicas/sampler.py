"""The sampler subprocess's loop (`python -m bench.replicas sample`, started by the recorder): a Ray driver
on the rayserve cluster writing one JSON line per sample of the Serve controller until SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from dataclasses import asdict

from bench.replicas.timeline import sample_from_details


def sample_loop(args: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    # Ray only in this subprocess: the `record` and `measure` commands share the command line without it.
    import ray
    from ray.serve.context import _get_global_client

    ray.init(address=args.gcs_address, namespace="serve", log_to_driver=False, logging_level="ERROR",
             configure_logging=False)
    # After ray.init, which installs its own SIGTERM handler.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    client = _get_global_client()
    with open(args.out, "a", buffering=1) as out:
        next_t = time.monotonic()
        while not stop["now"]:
            t0 = time.time()
            try:
                details = client.get_serve_details()
            except Exception as err:  # noqa: BLE001 - the cluster going away ends the recording, not a crash
                print(f"sampler: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                break
            t = (t0 + time.time()) / 2
            out.write(json.dumps(asdict(sample_from_details(details, args.app, args.deployment, t))) + "\n")
            next_t += args.interval_s
            time.sleep(max(0.0, next_t - time.monotonic()))
    ray.shutdown()
    return 0

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
    total = controller_total(client, args.app, args.deployment)
    with open(args.out, "a", buffering=1) as out:
        next_t = time.monotonic()
        while not stop["now"]:
            t0 = time.time()
            try:
                requests = total()
                details = client.get_serve_details()
            except Exception as err:  # noqa: BLE001 - the cluster going away ends the recording, not a crash
                print(f"sampler: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                break
            t = (t0 + time.time()) / 2
            sample = sample_from_details(details, args.app, args.deployment, t)
            sample.total_requests = requests
            out.write(json.dumps(asdict(sample)) + "\n")
            next_t += args.interval_s
            time.sleep(max(0.0, next_t - time.monotonic()))
    ray.shutdown()
    return 0


def controller_total(client, app: str, deployment: str):
    """A reader of the controller's total (queued + ongoing over the look-back window) for one deployment:
    what the autoscaler's next decision reads, to set beside a replay's (simulator/controller_total.py).
    Ray 2.60 offers it only as a testing method of the controller actor; None when the deployment has no
    autoscaling state yet (before it is deployed, or without autoscaling)."""
    import ray
    from ray.serve._private.common import DeploymentID

    dep = DeploymentID(name=deployment, app_name=app)
    method = client._controller._get_total_num_requests_for_deployment_for_testing

    def read() -> float | None:
        try:
            return float(ray.get(method.remote(dep), timeout=5))
        # no autoscaling state for it (yet), or a controller too busy to answer: a gap, not the end
        except (ray.exceptions.RayTaskError, ray.exceptions.GetTimeoutError):
            return None
    return read

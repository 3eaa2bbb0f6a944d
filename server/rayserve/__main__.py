"""`python -m server.rayserve`: start (or join) Ray, deploy the autoscaled application, print one ready
line, serve until SIGINT/SIGTERM, then shut Serve and Ray down."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings

from server.rayserve.options import (
    APP_NAME,
    AUTOSCALING_FLAGS,
    INGRESS_DEPLOYMENT,
    MODEL_DEPLOYMENT,
    ServeOptions,
)

READY_PREFIX = "RAYSERVE READY "
DEFAULT_TEMP_DIR = os.path.join(tempfile.gettempdir(), "decomposer-loadlab-ray")


def _env(name: str, default):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ServeOptions()
    p = argparse.ArgumentParser(prog="python -m server.rayserve", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default %(default)s)")
    p.add_argument("--port", type=int, default=int(_env("AIP_HTTP_PORT", 8000)), help="HTTP port (default 8000)")
    p.add_argument("--address", default=None,
                   help="join this Ray cluster (e.g. 'auto' or HOST:6379) instead of starting one")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of a locally started Ray (default %(default)s)")
    p.add_argument("--ray-temp-dir", default=DEFAULT_TEMP_DIR,
                   help="Ray's temp/log root for a locally started Ray (default %(default)s; never ~/.ray)")
    p.add_argument("--object-store-mb", type=int, default=512,
                   help="object store of a locally started Ray, MB (default %(default)s)")
    p.add_argument("--model", default=d.model, help="'tiny', a local path, or a hub id (default tiny)")
    p.add_argument("--device", default=d.device, help="cpu or cuda (cuda asks one GPU per replica)")
    p.add_argument("--dtype", default=d.dtype)
    p.add_argument("--steps", type=int, default=None, help="inference steps (default: the model's)")
    AUTOSCALING_FLAGS.add_to(p.add_argument_group("autoscaling (Ray Serve's names)"))
    p.add_argument("--replica-cpus", type=float, default=d.replica_cpus, help="CPU slots per model replica")
    p.add_argument("--torch-threads", type=int, default=d.torch_threads)
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest image, MB")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, help="largest image, width x height")
    p.add_argument("--vertex-endpoint-type", choices=("shared", "dedicated"), default=d.vertex_endpoint_type,
                   help="the request size limit of that Vertex endpoint type (shared 1.5 MB, dedicated 10 MB)")
    p.add_argument("--vertex-max-body-mb", type=float, default=None, help="largest predict body, MB")
    p.add_argument("--vertex-max-instances", type=int, default=d.vertex_max_instances)
    p.add_argument("--max-queued-requests", type=int, default=d.max_queued_requests,
                   help="requests waiting for a replica before 429 (default %(default)s)")
    p.add_argument("--timeout-s", type=float, default=d.timeout_s, help="a prediction's deadline (504 after)")
    return p.parse_args(argv)


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        model=args.model, device=args.device, dtype=args.dtype, steps=args.steps,
        autoscaling=AUTOSCALING_FLAGS.read(args), replica_cpus=args.replica_cpus, torch_threads=args.torch_threads,
        predict_route=_env("AIP_PREDICT_ROUTE", "/vertex/predict"),
        health_route=_env("AIP_HEALTH_ROUTE", "/vertex/health"), max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels, vertex_endpoint_type=args.vertex_endpoint_type,
        vertex_max_body_mb=args.vertex_max_body_mb, vertex_max_instances=args.vertex_max_instances,
        max_queued_requests=args.max_queued_requests, timeout_s=args.timeout_s,
    )


def write_auth_token(temp_dir: str) -> str:
    """Ray 2.60 enables token auth for a new local cluster and, without a token, writes one to
    ~/.ray/auth_token. Give it a fresh token in a private directory under the Ray temp dir instead (via
    RAY_AUTH_TOKEN_PATH, which Ray's processes and a recorder joining the cluster read); returns the
    directory, removed at shutdown."""
    token_dir = tempfile.mkdtemp(prefix="auth-", dir=temp_dir)
    path = os.path.join(token_dir, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    return token_dir


def _serve(args: argparse.Namespace, options: ServeOptions, source: str, stop: threading.Event,
           on_signal) -> None:
    """Ray up, the app deployed, the ready line, then wait for `stop`; Serve and Ray down in any case."""
    import ray
    from ray import serve

    from server.rayserve.app import build_app

    t0 = time.time()
    if args.address:
        ray.init(address=args.address, namespace="serve")
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, _temp_dir=os.path.abspath(args.ray_temp_dir),
                 object_store_memory=args.object_store_mb * 1024 * 1024, namespace="serve")
    t_init = time.time()
    # ray.init installs Ray's own SIGTERM handler (a crash dump that exits); ours must win.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    ctx = ray.get_runtime_context()
    node = ray._private.worker.global_worker.node  # the session directory holds the controller's log
    info = {"gcs_address": ctx.gcs_address, "session_dir": node.get_session_dir_path(),
            "auth_token_path": os.environ.get("RAY_AUTH_TOKEN_PATH"), "started_ray": not args.address,
            "driver_pid": os.getpid()}
    options.extra = {"ray": info}
    try:
        serve.start(http_options={"host": args.host, "port": args.port})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # metrics_interval_s, see ServeOptions
            app = build_app(options, source)
        serve.run(app, name=APP_NAME, route_prefix="/")
        t_ready = time.time()
        ready = {"url": f"http://{args.host}:{args.port}", "app": APP_NAME, "deployment": MODEL_DEPLOYMENT,
                 "ingress": INGRESS_DEPLOYMENT, **info, "ray_init_s": round(t_init - t0, 3),
                 "ready_s": round(t_ready - t0, 3), "ready_at": t_ready,
                 "autoscaling": options.autoscaling_config(), "max_ongoing_requests": options.autoscaling.max_ongoing_requests}
        print(READY_PREFIX + json.dumps(ready), flush=True)
        while not stop.wait(0.5):
            pass
        print("rayserve: shutting down", flush=True)
    finally:
        # Joined cluster: remove only our application; our own Ray: Serve and Ray go entirely.
        try:
            if args.address:
                serve.delete(APP_NAME)
            else:
                serve.shutdown()
        finally:
            ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = options_from_args(args)
    # Before Ray starts, so a bad --model fails fast and the tiny model is built once here rather than
    # by two replicas racing to write the same directory.
    from server import model as model_mod

    source = model_mod.resolve_source(args.model)

    stop = threading.Event()

    def on_signal(*_):
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    token_dir = None
    if not args.address:
        os.makedirs(args.ray_temp_dir, exist_ok=True)
        token_dir = write_auth_token(os.path.abspath(args.ray_temp_dir))  # before `import ray`: its token loader reads the env once
        if args.host in ("127.0.0.1", "localhost"):
            # A one-node cluster on loopback: Ray then advertises 127.0.0.1 and binds its gRPC servers
            # there instead of on every interface (the switch Ray uses for its macOS/Windows clusters).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        _serve(args, options, source, stop, on_signal)
    finally:
        if token_dir:
            shutil.rmtree(token_dir, ignore_errors=True)
    print("rayserve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

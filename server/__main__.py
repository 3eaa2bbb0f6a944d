"""`python -m server`: the job server on uvicorn. Every option is also an environment variable
DECOMPOSER_<NAME> (e.g. DECOMPOSER_QUEUE_LIMIT); the command line wins. AIP_HTTP_PORT,
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE (Vertex AI custom container) are honoured too. The API key is
DECOMPOSER_API_KEY only, never a flag: a command line is visible to every local user."""

from __future__ import annotations

import argparse
import logging
import sys

from server.settings import ENV_PREFIX, Settings

# settings that only the environment carries: a command line is visible to every local user (`ps`)
ENV_ONLY = ("api_key",)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    fields = Settings.model_fields
    flags = {"enable_fault_injection": "--enable-fault-injection"}
    for name, f in fields.items():
        if name in ENV_ONLY:
            continue
        flag = flags.get(name, "--" + name.replace("_", "-"))
        env = ENV_PREFIX + name.upper()
        if name == "enable_fault_injection":
            p.add_argument(flag, action="store_true", default=None,
                           help=f"{f.description} [env {env} or {ENV_PREFIX}FAULT_INJECTION=1]")
            continue
        default = f.default if f.default_factory is None else f.default_factory()
        p.add_argument(flag, dest=name, default=None, metavar=name.split("_")[-1].upper(),
                       help=f"{f.description} [env {env}; default {default}]")
    p.add_argument("--log-level", default="info", help="uvicorn log level")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    try:
        settings = Settings(**overrides)
    except Exception as err:  # pydantic's message names the bad option
        print(f"error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from server.app import create_app
    from server.limits import header_timeout_protocol

    app = create_app(settings)
    services = app.state.services

    class DrainingServer(uvicorn.Server):
        # uvicorn waits for open connections before the lifespan shutdown runs; long-polls could hold
        # it for 60 s. Draining at the signal wakes them and turns new submissions into 503.
        def handle_exit(self, sig, frame):
            services.scheduler.begin_drain()
            super().handle_exit(sig, frame)

    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=args.log_level,
                            timeout_graceful_shutdown=max(5, int(settings.shutdown_grace_s)), access_log=False,
                            http=header_timeout_protocol(AutoHTTPProtocol, settings.header_timeout_s),
                            limit_concurrency=settings.max_connections)
    print(f"decomposer server: http://{settings.host}:{settings.port} data={settings.data_dir} "
          f"model={settings.model} device={settings.device}", flush=True)
    DrainingServer(config).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

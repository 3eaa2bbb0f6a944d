"""python -m bench <command>: measurements that are not Locust runs, and the demo."""

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"demo": "bench.demo", "single": "bench.single", "coldstart": "bench.coldstart",
                "concurrency": "bench.concurrency", "capacity": "bench.capacity", "autoscale": "bench.autoscale",
                "server": "bench.server_bench", "overhead": "bench.overhead", "longpoll": "bench.longpoll",
                "uploadflood": "bench.uploadflood", "calibrate": "bench.calibrate",
                "report": "bench.report.build"}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m bench {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    import importlib

    from bench.pinning import OversubscribedServer

    try:
        return importlib.import_module(commands[argv[0]]).main(argv[1:])
    except OversubscribedServer as err:  # the user's server, started by hand: say how to start it
        print(f"bench {argv[0]}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

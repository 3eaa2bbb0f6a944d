"""The flags of `python -m simulator trace import` and `trace fit` (no heavy import: the parser stays quick)."""

from __future__ import annotations

import argparse

UNITS = ("auto", "iso", "epoch-s", "epoch-ms", "relative-s")

LOG_HELP = ("a request log: CSV with a header (comma or tab), JSON Lines (.jsonl/.ndjson, one object a line) or "
            "parquet (.parquet); the trace CSV of `simulator trace` too")


def add_log_flags(p: argparse.ArgumentParser, bounded) -> None:
    """The flags that read a log and cut its window (import and fit alike)."""
    p.add_argument("log", metavar="LOG", help=LOG_HELP)
    p.add_argument("--time-column", default=None,
                   help="the column of the request time (default: the one column named like t_s, timestamp, time, "
                        "ts, datetime, created_at, ...)")
    p.add_argument("--time-unit", choices=UNITS, default="auto",
                   help="iso (ISO 8601, with or without zone; no zone = UTC), epoch-s, epoch-ms, relative-s "
                        "(default auto: ISO text, else numbers by size: >= 1e11 epoch ms, >= 1e8 epoch s, else relative)")
    p.add_argument("--case-column", default=None, help="the column saying which workload case a request is")
    p.add_argument("--case-map", default=None, metavar="VALUE=case,...",
                   help="map the case column's values to case names (e.g. 512=small,1024=medium,*=large; '*' is "
                        "every other value; a value not mapped is an unreadable row); default: the values as they are")
    p.add_argument("--case", default="medium", help="the case of every request without --case-column (default medium)")
    p.add_argument("--from", dest="start", default=None, metavar="TIME",
                   help="window start, in the time column's unit (ISO or number)")
    p.add_argument("--to", dest="end", default=None, metavar="TIME", help="window end (exclusive)")
    p.add_argument("--busiest", default=None, metavar="DURATION",
                   help="the window of this length (e.g. 1h, 30m, 90s) holding the most requests")


def add_import_parser(tr_sub, bounded, writable_path) -> None:
    im = tr_sub.add_parser("import", help="a request log -> an arrival trace (t_s,case CSV with its provenance)",
                           description="Read a request log, cut a window, scale its times, write an arrival trace "
                                       "(loadlab/trace.py) that Locust (--arrival trace), `bench autoscale --trace` "
                                       "and `simulator run --trace` replay, and print its profile.")
    add_log_flags(im, bounded)
    im.add_argument("--out", type=writable_path, required=True, help="the trace CSV to write")
    im.add_argument("--time-scale", type=bounded(float, 1e-6, 1e9, lo_open=True), default=None, metavar="K",
                    help="divide every time by K (720 turns a day into 2 minutes)")
    im.add_argument("--rate", type=bounded(float, 0, 1e6, lo_open=True), default=None, metavar="R",
                    help="compress (or stretch) until the mean rate is R requests/s")
    im.add_argument("--utilisation", type=bounded(float, 0, 100, lo_open=True), default=None, metavar="RHO",
                    help="with --service-s S: until the mean rate is RHO / S (RHO of one server's capacity)")
    im.add_argument("--service-s", type=bounded(float, 0, 86400, lo_open=True), default=None, metavar="S",
                    help="one request's service time, s (for --utilisation)")


def add_fit_parser(tr_sub, bounded) -> None:
    fi = tr_sub.add_parser("fit", help="fit the workload model (hour/day weights, bursts, case mix) to a request log",
                           description="Estimate the workload model's inputs (simulator/workload.py) from a log, "
                                       "print them as `simulator run` flags, and how well the fitted model "
                                       "reproduces the log.")
    add_log_flags(fi, bounded)
    fi.add_argument("--seed", type=bounded(int, 0, 2**31 - 1), default=1,
                    help="first seed of the model draws compared with the log (default 1)")
    fi.add_argument("--draws", type=bounded(int, 1, 20), default=5,
                    help="model draws compared with the log (default 5)")


def add_monthly_or_trace(p: argparse.ArgumentParser, monthly_type, default: int) -> None:
    """`recommend` and `search`: --monthly N (the workload model) or --trace FILE (that trace's arrivals), not
    both (argparse says so on one line, exit 2)."""
    one = p.add_mutually_exclusive_group()
    # a group's add_argument is not simulator.cli.Parser's: the range goes in the help here
    one.add_argument("--monthly", type=monthly_type, default=None,
                     help=f"requests per month of the workload model (default {default}); range {monthly_type}")
    one.add_argument("--trace", default=None, metavar="CSV",
                     help="the traffic is this trace's arrivals (t_s,case CSV, e.g. from `trace import`), priced as "
                          "`run --trace` prices it; the workload flags (case mix, weights, bursts, --days, cache) "
                          "then do not apply")

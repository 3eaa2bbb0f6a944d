"""`python -m simulator trace import LOG --out trace.csv`: the log's window scaled and written as an arrival
trace with its provenance, and what it prints (the profile)."""

from __future__ import annotations

import argparse
import time

from loadlab.trace import MAX_ROWS, write_trace
from simulator.traffic.load import Loaded, load
from simulator.traffic.profile import peak_per_minute, profile, profile_lines
from simulator.traffic.window import time_scale


def load_from(args: argparse.Namespace) -> Loaded:
    return load(args.log, args.time_column, args.time_unit, args.case_column, args.case_map, args.case,
                args.start, args.end, args.busiest)


def cmd_import(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    data = load_from(args)
    n, span = int(data.epoch.size), data.window.span_s
    k, how = time_scale(n, span, args.time_scale, args.rate, args.utilisation, args.service_s)
    if n > MAX_ROWS:
        raise ValueError(f"{n:,} arrivals in the window: over the trace bound of {MAX_ROWS:,} rows "
                         "(cut it with --from/--to or --busiest)")
    t = (data.epoch - data.window.start) / k
    provenance = {**data.provenance(), "time_scale": k, "scaling": how}
    out = write_trace(args.out, zip(t.tolist(), data.cases, strict=True), provenance=provenance)
    elapsed = time.perf_counter() - t0
    print(f"read {data.log.path} ({data.log.format}, time column {data.log.time_column!r} as {data.unit}): "
          f"{data.readable:,} readable rows, window {data.window.how} {provenance['window_start']} .. "
          f"{provenance['window_end']} ({provenance['window_start_weekday_hour']} on the log's clock)")
    if data.bad_line():
        print(data.bad_line())
    for line in profile_lines(profile(data.epoch, data.wall, data.cases, span, data.start_wall)):
        print(line)
    scaled_minute = peak_per_minute(t)
    print(f"trace: {n:,} arrivals over {span / k:,.1f} s, times / {k:.4g} (scaling {how}); mean rate "
          f"{n / (span / k):.4g}/s, peak minute {scaled_minute:,} in trace time")
    print(f"trace: {out} (written in {elapsed:.2f} s)")
    return 0

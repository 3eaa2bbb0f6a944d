"""python -m bench autoscale: the Ray Serve deployment (`python -m server.rayserve`) scaled from zero and back
under a scripted arrival trace — idle -> a ramp of three steps -> a burst -> idle until it is back at zero —
sent by Locust through the Vertex contract (the real aiplatform SDK), with the replica recorder running.
The measured report holds every job (cold starts marked from the timeline), one stage per phase, and the
`ReplicaRun`: the sampled timeline, each replica's up interval, the scale decisions and the replica-seconds
(the bill) over the run's window. `--calibrate` is the separate calibration run `simulator validate
--calibration` takes: warm service times and replica cold starts (replica start -> RUNNING).

    python -m bench autoscale --scenario short                     # a calibration run, then the scenario
    python -m bench autoscale --calibrate --out reports/measured/C.json
    python -m bench autoscale --calibration C.json --out R.json    # the scenario, sized from C
    python -m simulator validate --measured R.json --calibration C.json
    python -m bench autoscale --trace T.csv --time-scale 60         # any trace (e.g. `simulator trace import`)

The scenario is sized from the calibrated warm service time S of the first case: ramp steps at 0.3, 0.6
and 1.2 x one replica's rate 1/S (evenly spaced arrivals; the first held until the cold start has left the
autoscaler's look-back window, `scenario.settle_s`), then `burst` arrivals at once. Both runs use
the same Ray cluster, one after the other, each in its own window and with its own jobs. With --trace the
arrivals are the trace's (its own cases, times / --time-scale), one stage per window of --window-s, and
the calibration covers the trace's cases.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.autoscale.calibration import calibrate, warm_service_s
from bench.autoscale.printing import print_calibration, print_summary
from bench.autoscale.scenario import SCENARIOS, build_scenario, settle_s, trace_scenario
from bench.autoscale.scenario_run import run_scenario
from bench.autoscale.target import AUTOSCALING_FLAGS, ray_target
from loadlab.cases import parse_cases
from loadlab.ray_autoscaling import RayAutoscaling
from loadlab.schema import Report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench autoscale", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="demo",
                   help="demo (~3-4 min: idle 30 s, 3 x 20 s ramp, burst of 8) or short (~1.5 min: idle 10 s, "
                        "3 x 8 s ramp, burst of 6); each then waits until back at zero")
    p.add_argument("--trace", type=Path, default=None, metavar="CSV",
                   help="replay this arrival trace (t_s,case; e.g. from `simulator trace import`) instead of the "
                        "scripted scenario; calibration counts as --scenario's")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                   help="with --trace: divide its times by K (default 1)")
    p.add_argument("--window-s", type=float, default=None,
                   help="with --trace: one stage per window of this many s (default: the span in 6)")
    p.add_argument("--calibrate", action="store_true",
                   help="only the calibration run (warm service times, replica cold starts) -> --out")
    p.add_argument("--calibration", type=Path, default=None,
                   help="a calibration report to size the scenario from (default: run one first, written beside --out)")
    p.add_argument("--cold-starts", type=int, default=0, help="calibration cycles from zero (default: the scenario's)")
    p.add_argument("--warm-runs", type=int, default=0, help="calibration warm requests per case and cycle "
                                                              "(default: the scenario's)")
    p.add_argument("--cases", default="light", help="case set or list (round robin over the arrivals)")
    p.add_argument("--url", default="", help="a running `python -m server.rayserve` instead of starting one")
    p.add_argument("--model", default="tiny", help="model of the deployment we start (tiny | path | hub id)")
    AUTOSCALING_FLAGS.add_to(p.add_argument_group("the deployment's autoscaling (Ray Serve's names)"))
    p.add_argument("--slo-e2e", type=float, default=0.0, help="end-to-end SLO in s for every stage (0 = none)")
    p.add_argument("--stop-timeout", type=int, default=300, help="seconds Locust lets running jobs finish")
    p.add_argument("--out", type=Path, default=None,
                   help="report path (default reports/measured/autoscale-rayserve-<scenario>.json, "
                        "or ...-calibration.json with --calibrate)")
    p.add_argument("--trace-out", type=Path, default=None, help="the scenario's trace CSV (default beside --out)")
    p.add_argument("--web-port", type=int, default=0, metavar="PORT",
                   help="watch the scenario in Locust's web UI on 127.0.0.1:PORT (Cockpit tab: stages and the "
                        "replica chart); it starts at once and quits 10 s after the run (default 0: headless)")
    p.add_argument("--locust-dir", type=Path, default=Path("reports/locust"), help="Locust's CSV/HTML/log")
    pinning_group = p.add_argument_group("pinning")
    pinning_group.add_argument("--no-pin", action="store_true",
                               help="never pin (pinned only when the server's CPUs hold one per replica)")
    args = p.parse_args(argv)
    if args.calibrate and args.calibration:
        p.error("--calibrate writes a calibration; --calibration reads one")
    if not 0 <= args.web_port <= 65535:
        p.error("--web-port must be 0 (headless) or a port number")
    if args.min_replicas < 0 or args.max_replicas < max(1, args.min_replicas):
        p.error("need 0 <= --min-replicas <= --max-replicas and --max-replicas >= 1")
    args.trace_scenario = None
    if args.trace:
        try:     # read and bounded before Ray starts
            args.trace_scenario = trace_scenario(args.trace, args.time_scale, args.window_s, SCENARIOS[args.scenario])
            args.cases = ",".join(args.trace_scenario.cases)
            parse_cases(args.cases)
        except ValueError as err:
            p.error(str(err))
        args.scenario = f"trace-{args.trace.stem}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = args.trace_scenario.shape if args.trace_scenario else SCENARIOS[args.scenario]
    cases = parse_cases(args.cases)
    cycles, runs = args.cold_starts or shape.cold_starts, args.warm_runs or shape.warm_runs
    measured = Path("reports/measured")
    if args.calibrate:
        out = args.out or measured / "autoscale-rayserve-calibration.json"
    else:
        out = args.out or measured / f"autoscale-rayserve-{args.scenario}.json"
    calibration_out = out if args.calibrate else out.with_name(f"{out.stem}-calibration.json")
    report = calibration = None
    with ray_target(args) as target:
        if args.calibration:
            calibration = Report.load(args.calibration)
        else:
            print(f"calibration: {cycles} cycle(s) from zero, {runs} warm run(s) per case", flush=True)
            calibration = calibrate(args, target, cases, cycles, runs)
        if not args.calibrate:
            service_s = warm_service_s(calibration, cases[0].name)
            first_step_s = settle_s(float(target.settings.get("look_back_period_s") or RayAutoscaling().look_back_period_s),
                                    calibration.coldstart.first_request_e2e_s)
            scenario = args.trace_scenario or build_scenario(shape, service_s, [c.name for c in cases], first_step_s)
            scenario.service_s = service_s
            report = run_scenario(args, target, scenario, out,
                                  str(args.calibration or calibration_out))
    # saved once Ray is down: the reports record whether it stopped cleanly
    if not args.calibration:
        calibration.extra["rayserve"] = target.info
        calibration.save(calibration_out)
        print_calibration(calibration)
        print(f"calibration report: {calibration_out}")
    if report is None:
        return 0 if calibration.coldstart.back_at_rest and not target.info.get("leftover_pids") else 1
    report.extra["rayserve"] = target.info
    report.save(out)
    print_summary(report, warm_service_s(calibration))
    print(f"\nmeasured report: {out}\nvalidate: python -m simulator validate --measured {out} "
          f"--calibration {args.calibration or calibration_out}")
    ok = report.extra["back_at_rest"] and report.extra["locust_exit_code"] == 0 and not target.info.get("leftover_pids")
    return 0 if ok else 1


"""What `bench autoscale` prints once its reports are written: the calibration's stages and replica
starts, and the scenario's stages with the whole run's bill, scale and cold-start counts."""

from __future__ import annotations

from bench import pinning
from bench.replicas.replica_log import PHASES, phase_values
from loadlab.blocks import ColdStart
from loadlab.schema import ReplicaRun, Report
from loadlab.stats import format_s, mean


def print_calibration(report: Report) -> None:
    cs = report.coldstart or ColdStart()
    print(f"\ncalibration ({report.name}):")
    for stage in report.stages:
        s = stage.summary
        print(f"  {stage.name:<16} {s.completed}/{s.jobs}  e2e mean {format_s(s.mean).strip()} s  "
              f"service mean {format_s(s.service_s.mean).strip()} s  queue mean {format_s(s.queue_s.mean).strip()} s")
    starts = cs.replica_start_s
    print(f"  replica start -> RUNNING: {', '.join(f'{x:.2f}' for x in starts) or '-'} s "
          f"(mean {format_s(cs.replica_start_mean_s).strip()} s); request at zero -> scale-up decision: "
          f"{', '.join(f'{x:.2f}' for x in cs.zero_to_decision_s) or '-'} s")
    if report.replicas is not None:
        print(f"  {startup_parts(report.replicas)}")


def startup_parts(run: ReplicaRun) -> str:
    """The replicas' start -> RUNNING in parts, each the mean over the starts that logged them: which part
    a faster machine, a smaller image or a model cache would shorten."""
    values = phase_values(run.intervals)
    starts = len(values[PHASES[0]])
    if not starts:
        return "replica start-up in parts: not logged by the replicas"
    means = ", ".join(f"{name.removesuffix('_s')} {mean(v):.2f}" for name, v in values.items())
    return f"replica start-up in parts (mean of {starts}): {means} s"


def print_summary(report: Report, calibrated_service_s: float | None) -> None:
    figures = report.replicas.figures([j for s in report.stages for j in s.jobs])
    print(f"\n{'stage':<12} {'rate/s':>6} {'ok':>7} {'mean':>7} {'p95':>7} {'queue':>7} {'service':>7} {'infl':>5} "
          f"{'cold':>4}")
    for stage in report.stages:
        s = stage.summary
        service = s.service_s.mean
        infl = pinning.service_inflation(service, calibrated_service_s)
        rate = f"{stage.arrival_rate_per_s:.3f}" if stage.arrival_rate_per_s is not None else "once"
        print(f"{stage.name:<12} {rate:>6} {s.completed:>3}/{s.jobs:<3} {format_s(s.mean)} {format_s(s.p95)} "
              f"{format_s(s.queue_s.mean)} {format_s(service)} {format_s(infl, 5)} "
              f"{sum(j.cold_start for j in stage.jobs):>4}")
    firsts = figures.first_request_at_zero_e2e_s
    w0, w1 = report.replicas.window
    print(f"run ({w1 - w0:.0f} s window): replica-seconds {figures.replica_seconds:.1f}, "
          f"scale-ups {figures.scale_ups}, scale-downs {figures.scale_downs}, most replicas {figures.max_replicas}, "
          f"cold starts {figures.cold_starts} (first job of a new replica), waited for a starting replica "
          f"{figures.waited_for_start}, first request at zero "
          + (f"{figures.first_request_at_zero_mean_s:.2f} s (n={len(firsts)})" if firsts else "-")
          + ("" if report.extra.get("back_at_rest") else "; NOT back at rest within the bound"))
    print(startup_parts(report.replicas))
    print("infl = the stage's mean service time / the calibration's warm mean (contention from the 2nd replica, "
          "Ray's control plane and the load generator)")

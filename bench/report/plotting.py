"""The page's matplotlib figures, each returned as a `Plot` whose source is a PNG data URI (the page is one
file): the cold start's parts stacked, latency against concurrency beside the article's curves, an
open-loop run over time, and the replicas up over an autoscaling run."""

from __future__ import annotations

import base64
import io
import math

from bench.report.loading import load_mode
from bench.report.series import (
    all_jobs,
    coldstart_parts,
    concurrency_points,
    jobs_in_system,
    on_measured_clock,
    replica_steps,
)
from bench.report.view import LABELS, MEASURED, QUOTED, SIMULATED, Plot
from loadlab import article
from loadlab.schema import COMPLETED, Report
from loadlab.stats import fifo_ideal_mean


def png(figure) -> str:
    """A matplotlib Figure as a data URI."""
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kw):
    # Figure without pyplot: no global state, no GUI backend.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    axes = figure.subplots(rows, cols, **kw)
    return figure, axes


def coldstart_plot(reports: list[Report]) -> Plot:
    """One horizontal bar per cold start (the article's, then each report's), its parts stacked."""
    labels, bars = [f"article (Vertex T4, {LABELS[QUOTED]})"], [dict(article.COLDSTART_S)]
    for report in reports:
        parts = coldstart_parts(report.coldstart)
        if parts:
            labels.append(f"{report.target}, {report.model.get('kind', 'model')} ({MEASURED})")
            bars.append(parts)
    figure, ax = new_figure(7, 0.9 + 0.5 * len(bars))
    keys: list[str] = []
    for parts in bars:
        keys += [k for k in parts if k not in keys]
    colors = [f"C{i % 10}" for i in range(len(keys))]
    for row, parts in enumerate(bars):
        left = 0.0
        for key, color in zip(keys, colors, strict=True):
            value = parts.get(key, 0.0)
            ax.barh(row, value, left=left, color=color, label=key)
            left += value
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("seconds (symlog)")
    return Plot("Cold start, parts stacked: the article's Vertex T4 and ours", png(figure))


def concurrency_plot(reports: list[Report], twin_of: dict[int, list[Report]]) -> Plot:
    """Mean latency per concurrency (left) and divided by the single-job time (right, with the article's
    curves and the FIFO ideal), for each report and its simulated replays."""
    figure, (ax_abs, ax_norm) = new_figure(11, 3.8, 1, 2)
    for target, quoted in article.CONCURRENCY.items():
        base = quoted[1][1]
        xs = [n for n, (_, mean) in quoted.items() if mean]
        ax_norm.plot(xs, [quoted[n][1] / base for n in xs], "s--", label=f"article {target} ({LABELS[QUOTED]})")
    xs = [1, 5, 10, 20]
    ax_norm.plot(xs, [fifo_ideal_mean(n, 1.0) for n in xs], "k:", label="FIFO ideal (N+1)/2")
    for report in reports:
        lines = [(report, MEASURED)] + [(v, SIMULATED) for v in twin_of.get(id(report), [])]
        for source, origin in lines:
            points = concurrency_points(source)
            if not points:
                continue
            ns = sorted(points)
            means = [points[n].mean for n in ns]
            style = "o-" if origin == MEASURED else "x-."
            label = f"{report.target} {load_mode(report)} ({origin})"
            ax_abs.plot(ns, means, style, label=label)
            base = points[ns[0]].service_s.mean or means[0]
            if base:
                ax_norm.plot(ns, [m / base if m is not None else math.nan for m in means], style, label=label)
    ax_abs.set(xlabel="users", ylabel="mean latency (s)", title="Latency vs concurrency (ours)")
    ax_norm.set(xlabel="users", ylabel="mean latency / single-job time", title="Normalised: ours vs the article")
    for ax in (ax_abs, ax_norm):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return Plot("Mean latency per stage; right: divided by the single-job time, with the article's curves and "
                "the FIFO ideal", png(figure))


def open_loop_plot(report: Report, twin: Report | None) -> Plot:
    """Latency over time with arrivals and the queue: scheduled time on x; e2e of each job (failed ones on
    the axis); arrivals per second; jobs in system (measured, and the simulated replay's when given)."""
    import numpy as np

    jobs = all_jobs(report)
    t0 = min(j.origin for j in jobs)
    end = max([j.finished for j in jobs if j.finished is not None] + [j.origin for j in jobs])
    figure, (ax_lat, ax_q) = new_figure(11, 5.2, 2, 1, sharex=True)
    for i, stage in enumerate(report.stages):
        done = [j for j in stage.jobs if j.status == COMPLETED and j.e2e_s is not None]
        ax_lat.plot([j.origin - t0 for j in done], [j.e2e_s for j in done], "o", ms=3, color=f"C{i % 10}",
                    label=f"{stage.name} ({MEASURED})")
        if stage.started_at is not None and i:
            for ax in (ax_lat, ax_q):
                ax.axvline(stage.started_at - t0, color="0.6", lw=0.8)
    bad = [j for j in jobs if j.status != COMPLETED]
    if bad:
        ax_lat.plot([j.origin - t0 for j in bad], [0] * len(bad), "x", color="red", label="not completed")
    slos = sorted({s.slo_e2e_s for s in report.stages if s.slo_e2e_s is not None})
    for slo in slos:
        ax_lat.axhline(slo, color="red", ls="--", lw=0.8, label=f"SLO {slo:g} s")
    ax_lat.set(ylabel="end-to-end latency (s)", title=f"{report.name}: latency, arrivals and queue over time")
    ax_lat.legend(fontsize=7, ncol=3)
    span = max(end - t0, 1.0)
    width = max(1.0, span / 120)          # bins of at least 1 s, at most ~120 of them
    counts, edges = np.histogram([j.origin - t0 for j in jobs], bins=np.arange(0.0, span + width, width))
    ax_q.bar(edges[:-1], counts / width, width=width, align="edge", color="0.8", label="arrivals per second")
    ax_q.set(xlabel="scheduled time from the first arrival (s)", ylabel="arrivals/s")
    ax_n = ax_q.twinx()
    times, n = jobs_in_system(jobs, end=end)
    ax_n.step([t - t0 for t in times], n, where="post", color="C3", label=f"jobs in system ({MEASURED})")
    if twin is not None and all_jobs(twin):
        sim = on_measured_clock(twin, report)
        st, sn = jobs_in_system(sim)
        ax_n.step([t - t0 for t in st], sn, where="post", color="C0", ls="--",
                  label=f"jobs in system ({SIMULATED} replay)")
    ax_n.set_ylabel("jobs in system")
    handles = [h for ax in (ax_q, ax_n) for h in ax.get_legend_handles_labels()[0]]
    ax_q.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper right")
    return Plot(f"{report.name}: end-to-end latency by scheduled time, arrivals per second and jobs in the "
                "system", png(figure))


def replicas_plot(name: str, measured: Report | None, simulated: Report | None) -> Plot:
    """Replicas up over the run, measured and simulated step functions, with the autoscaler's sampled
    target when the measured timeline has one."""
    figure, ax = new_figure(11, 3.2)
    for report, origin, style in ((measured, MEASURED, "-"), (simulated, SIMULATED, "--")):
        if report is None:
            continue
        ts, ns = replica_steps(report.replicas)
        ax.step(ts, ns, where="post", ls=style, label=f"replicas up ({origin})")
        if origin == MEASURED and any(s.target is not None for s in report.replicas.timeline):
            t0 = report.replicas.window[0]
            samples = [s for s in report.replicas.timeline if s.target is not None]
            ax.step([s.t - t0 for s in samples], [s.target for s in samples], where="post", ls=":",
                    color="0.4", label=f"autoscaler target ({MEASURED})")
    ax.set(xlabel="seconds from the start of the run", ylabel="replicas")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return Plot(f"{name}: replicas up over time, measured and simulated step functions", png(figure))

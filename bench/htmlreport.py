"""`python -m bench report`: reports/index.html, one self-contained page built from the report-schema
documents in reports/measured/ and reports/simulated/, each section chosen by the reports' `role`, every
figure badged measured, simulated or quoted from the article (jinja2 template bench/templates/)."""

from __future__ import annotations

import argparse
import base64
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from loadlab import article
from loadlab.schema import COMPLETED, DROPPED, JobRecord, ReplicaRun, Report, Stage
from loadlab.stats import fifo_ideal_mean

MEASURED, SIMULATED, QUOTED = "measured", "simulated", "quoted"
LABELS = {MEASURED: "measured", SIMULATED: "simulated", QUOTED: "quoted from the article"}
OPEN_MODES = ("open", "trace")


# --- what the template renders ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Fig:
    """One figure and where it comes from (a table cell with its badge)."""

    text: str
    origin: str


@dataclass
class Para:
    text: str
    kind: str = "p"


@dataclass
class Heading:
    text: str
    kind: str = "h3"


@dataclass
class Plot:
    alt: str
    src: str              # a data: URI, so the page is one file
    kind: str = "plot"


@dataclass
class Table:
    headers: list[str]
    rows: list[list[Any]]                 # cells: str, Fig or None
    title: str | None = None
    note: str | None = None
    empty: str | None = None
    kind: str = "table"


@dataclass
class Section:
    id: str
    title: str
    origins: list[str] = field(default_factory=list)
    blocks: list[Any] = field(default_factory=list)
    missing: str | None = None            # shown instead of figures when no report of the role was given


def fig(value: float | int | None, origin: str, unit: str = " s", digits: int = 2) -> Fig | None:
    """A number with its unit and origin; None (rendered '–') when there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return Fig(fmt(value, unit, digits), origin)


def fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def money(value: float | None, origin: str, digits: int = 2) -> Fig | None:
    return None if value is None else Fig(f"${value:,.{digits}f}", origin)


def pct(value: float | None, origin: str, digits: int = 1) -> Fig | None:
    return None if value is None else Fig(f"{100 * value:.{digits}f} %", origin)


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


# --- loading and matching ---------------------------------------------------------------------------------

@dataclass
class Loaded:
    reports: list[Report]
    skipped: list[tuple[str, str]]        # (file, why)

    def role(self, role: str, kind: str | None = None) -> list[Report]:
        return [r for r in self.reports if r.role == role and (kind is None or r.kind == kind)]


def load_reports(reports_dir: Path) -> Loaded:
    """Every *.json of reports/measured and reports/simulated that is a Report; other files are skipped
    with a printed note (validation tables, sweep tables of older runs, Locust's JSON)."""
    loaded = Loaded([], [])
    for folder in (reports_dir / "measured", reports_dir / "simulated"):
        for path in sorted(folder.glob("*.json")):
            try:
                loaded.reports.append(Report.load(path))
            except ValueError as err:
                why = str(err).splitlines()[0]
                loaded.skipped.append((str(path), why))
                print(f"report: skipped {path}: not a report ({why})")
    return loaded


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def match_measured(validation: Report, measured: list[Report]) -> Report | None:
    """The measured report a validation replayed, from `config.simulation.measured`: the same file, else
    the same file name (the validation may have run from another folder), else the same report name."""
    ref = validation.config.simulation.measured if validation.config.simulation else None
    if not ref:
        return None
    for test in (lambda r: r.path is not None and _same_file(r.path, ref),
                 lambda r: r.path is not None and Path(r.path).name == Path(ref).name,
                 lambda r: r.name == ref):
        hits = [r for r in measured if test(r)]
        if hits:
            return hits[0]
    return None


def twins(loaded: Loaded) -> dict[int, list[Report]]:
    """id(measured report) -> the validation reports that replayed it."""
    measured = [r for r in loaded.reports if r.kind == MEASURED]
    out: dict[int, list[Report]] = {}
    for v in loaded.role("validation"):
        m = match_measured(v, measured)
        if m is not None:
            out.setdefault(id(m), []).append(v)
    return out


def load_mode(report: Report) -> str:
    return report.config.load.mode if report.config.load else "closed"


# --- series computed from job records and replica runs ----------------------------------------------------

def jobs_in_system(jobs: Iterable[JobRecord], end: float | None = None) -> tuple[list[float], list[int]]:
    """Step function of the jobs in the system (arrived, not yet answered): a job counts from its origin
    (scheduled, else submitted) to `finished`; one never finished counts until `end`; dropped arrivals
    never entered. Returns (times, count from that time on)."""
    events: list[tuple[float, int]] = []
    for j in jobs:
        if j.status == DROPPED:
            continue
        events.append((j.origin, +1))
        stop = j.finished if j.finished is not None else end
        if stop is not None:
            events.append((stop, -1))
    events.sort()  # at equal times a departure (-1) sorts first: no spike for back-to-back jobs
    times, counts, n = [], [], 0
    for t, delta in events:
        n += delta
        if times and times[-1] == t:
            counts[-1] = n
        else:
            times.append(t)
            counts.append(n)
    return times, counts


def replica_steps(run: ReplicaRun) -> tuple[list[float], list[int]]:
    """Replicas up (starting + running + stopping: billed) over the run, seconds from the window's start;
    from the sampled timeline, else from the replicas' up intervals."""
    t0 = run.window[0]
    if run.timeline:
        return ([s.t - t0 for s in run.timeline],
                [s.starting + s.running + s.stopping for s in run.timeline])
    events = [(i.start - t0, +1) for i in run.intervals]
    events += [(i.end - t0, -1) for i in run.intervals if i.end is not None]
    times, counts, n = [0.0], [0], 0
    for t, delta in sorted(events):
        n += delta
        times.append(t)
        counts.append(n)
    return times, counts


def scale_counts(run: ReplicaRun) -> dict[str, int]:
    ups = sum(e.direction == "up" for e in run.events)
    return {"scale-ups": ups, "scale-downs": len(run.events) - ups}


def all_jobs(report: Report) -> list[JobRecord]:
    return [j for s in report.stages for j in s.jobs]


# --- sections ---------------------------------------------------------------------------------------------

def slo_cells(stages: list[Stage], stage: Stage, origin: str) -> list[Any]:
    """SLO, attainment and goodput cells, only when some stage of the table has an SLO."""
    if not any(s.slo_e2e_s is not None for s in stages):
        return []
    s = stage.summary
    if stage.slo_e2e_s is None:
        return ["–", None, None]
    return [f"{stage.slo_e2e_s:g} s", pct(s["slo_attainment"], origin), fig(s["goodput_per_s"], origin, "/s", 3)]


SLO_HEADERS = ["SLO e2e", "SLO attainment", "goodput"]


def slo_headers(stages: list[Stage]) -> list[str]:
    return SLO_HEADERS if any(s.slo_e2e_s is not None for s in stages) else []


def section_single(reports: list[Report]) -> Section:
    section = Section("single", "Single request (article benchmark 1)", [MEASURED, QUOTED])
    if not reports:
        section.missing = "No single-request report (role 'single'): run `python -m bench single`."
        return section
    ours: dict[tuple[str, str], Fig] = {}
    for report in reports:
        for stage in report.stages:
            cases = {j.case for j in stage.jobs}
            s = stage.summary
            if len(cases) != 1 or not s["count"]:
                continue
            model = s["service_s"].get("mean")
            ours[(cases.pop(), report.target)] = Fig(
                f"{fmt(s['mean'])} ± {fmt(s['std'])} s (p95 {fmt(s['p95'])}, model {fmt(model)})", MEASURED)
    targets = sorted({t for _, t in ours})
    rows = []
    for case in sorted({c for c, _ in ours} | set(article.SINGLE["local-3090"])):
        row: list[Any] = [case]
        for quoted in (article.SINGLE["local-3090"].get(case), article.SINGLE["vertex-t4"].get(case)):
            row.append(Fig(f"{quoted[0]} ± {quoted[1]} s", QUOTED) if quoted else None)
        row += [ours.get((case, t)) for t in targets]
        rows.append(row)
    section.blocks = [
        Para("Ours run the tiny random model on this machine's CPU: absolute seconds are not comparable with "
             "a GPU; the split between queue, model and transfer is."),
        Table(["case", "article: local RTX 3090", "article: Vertex T4 (warm)", *[f"ours: {t}" for t in targets]],
              rows)]
    return section


def coldstart_parts(coldstart: dict[str, Any] | None) -> dict[str, float]:
    """Consecutive parts of a measured cold start. `bench coldstart` records `ready` as spawn -> ready,
    which contains process start and model load; the rest of it is imports and app start-up."""
    stages = dict((coldstart or {}).get("stages_s") or {})
    ready = stages.pop("ready", None)
    if ready is not None:
        start = stages.pop("process_start", 0.0) or 0.0
        load = stages.pop("model_load", 0.0) or 0.0
        stages = {"process_start": start, "imports_and_app_start": max(0.0, ready - start - load),
                  "model_load": load, **stages}
    return {k: float(v) for k, v in stages.items() if isinstance(v, (int, float))}


def section_coldstart(reports: list[Report]) -> Section:
    section = Section("coldstart", "Cold start (article benchmark 2)", [MEASURED, QUOTED])
    if not reports:
        section.missing = "No cold-start report (role 'coldstart'): run `python -m bench coldstart`."
        return section
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
    rows: list[list[Any]] = [[k, Fig(f"{v:g} s", QUOTED)] for k, v in article.COLDSTART_S.items()]
    for report in reports:
        rows += [[f"{k} ({report.target})", fig(v, MEASURED, " s", 3)]
                 for k, v in coldstart_parts(report.coldstart).items()]
    section.blocks = [Plot("Cold start, parts stacked: the article's Vertex T4 and ours", png(figure)),
                      Table(["part", "seconds"], rows)]
    return section


def _concurrency_points(report: Report) -> dict[int, dict[str, Any]]:
    return {s.concurrency: s.summary for s in report.stages if s.concurrency}


def fifo_of(report: Report, stage: Stage) -> tuple[float | None, float | None]:
    """(FIFO-ideal mean, measured mean / ideal) of a burst stage on one worker: what `bench concurrency`
    stored, else (N+1)/2 x S with S the mean of the run's u=1 stage."""
    stored = (report.extra.get("fifo_ideal") or {}).get("stages", {}).get(stage.name)
    if stored:
        return stored.get("ideal_mean_s"), stored.get("ratio")
    workers = report.config.server.workers if report.config.server else None
    if stage.jobs_per_user != 1 or not stage.concurrency or (workers or 1) != 1:
        return None, None
    base = next((s.summary["mean"] for s in report.stages if s.concurrency == 1 and s.summary["mean"]), None)
    if base is None:
        return None, None
    ideal = fifo_ideal_mean(stage.concurrency, base)
    mean = stage.summary["mean"]
    return ideal, (mean / ideal if mean is not None else None)


def section_concurrency(reports: list[Report], twin_of: dict[int, list[Report]]) -> Section:
    section = Section("concurrency", "Concurrency (article benchmark 3)", [MEASURED, SIMULATED, QUOTED])
    if not reports:
        section.missing = ("No closed-loop or burst load report (role 'load'): run `python -m bench "
                           "concurrency`.")
        return section
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
            points = _concurrency_points(source)
            if not points:
                continue
            ns = sorted(points)
            means = [points[n]["mean"] for n in ns]
            style = "o-" if origin == MEASURED else "x-."
            label = f"{report.target} {load_mode(report)} ({origin})"
            ax_abs.plot(ns, means, style, label=label)
            base = points[ns[0]]["service_s"].get("mean") or means[0]
            if base:
                ax_norm.plot(ns, [m / base if m is not None else math.nan for m in means], style, label=label)
    ax_abs.set(xlabel="users", ylabel="mean latency (s)", title="Latency vs concurrency (ours)")
    ax_norm.set(xlabel="users", ylabel="mean latency / single-job time", title="Normalised: ours vs the article")
    for ax in (ax_abs, ax_norm):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    quoted_rows = []
    s_local = article.CONCURRENCY["local"][1][1]
    for n, (ok, mean) in article.CONCURRENCY["local"].items():
        v_ok, v_mean = article.CONCURRENCY["vertex"][n]
        quoted_rows.append([str(n), Fig(f"{ok}/{n}, " + (f"{mean} s" if mean else "–"), QUOTED),
                            Fig(f"{fifo_ideal_mean(n, s_local):.1f} s", QUOTED),
                            Fig(f"{v_ok}/{n}, {v_mean} s", QUOTED)])
    section.blocks = [
        Plot("Mean latency per stage; right: divided by the single-job time, with the article's curves and "
             "the FIFO ideal", png(figure)),
        Table(["N at once", "article local", f"FIFO ideal from the article's {s_local} s", "article Vertex"],
              quoted_rows, title="The article"),
    ]
    for report in reports:
        extra_slo = slo_headers(report.stages)
        rows = []
        for stage in report.stages:
            s = stage.summary
            ideal, ratio = fifo_of(report, stage)
            rows.append([stage.name, Fig(f"{s['completed']}/{s['jobs']}", MEASURED), fig(s["mean"], MEASURED),
                         fig(s["p95"], MEASURED), fig(s["throughput_per_s"], MEASURED, "/s", 3),
                         fig(ideal, MEASURED), fig(ratio, MEASURED, "", 2),
                         *slo_cells(report.stages, stage, MEASURED)])
        section.blocks.append(Table(
            ["stage", "ok", "mean", "p95", "throughput", "FIFO ideal (N+1)/2·S", "mean ÷ FIFO ideal", *extra_slo],
            rows, title=f"Ours: {report.target}, {load_mode(report)} ({report.name})"))
    return section


def on_measured_clock(twin: Report, measured: Report) -> list[JobRecord]:
    """The simulated replay's jobs moved onto the measured run's clock: each simulated stage starts
    where the measured stage of the same name started (a replay runs every stage from its own t=0)."""
    starts = {s.name: s.started_at if s.started_at is not None else min(j.origin for j in s.jobs)
              for s in measured.stages if s.jobs}
    moved = []
    for stage in twin.stages:
        if stage.name not in starts or not stage.jobs:
            continue
        shift = starts[stage.name] - (stage.started_at or 0.0)
        for j in stage.jobs:
            moved.append(j.model_copy(update={k: None if getattr(j, k) is None else getattr(j, k) + shift
                                              for k in ("scheduled", "submitted", "started", "finished")}))
    return moved


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


def section_open_loop(reports: list[Report], twin_of: dict[int, list[Report]]) -> Section:
    section = Section("open-loop", "Open-loop arrivals: latency, SLO attainment and goodput", [MEASURED])
    if not reports:
        section.missing = ("No open-loop or trace load report (role 'load', mode open/trace): run Locust with "
                           "`--arrival poisson --rates ...` or `--arrival trace --trace FILE`.")
        return section
    section.blocks.append(Para("Arrivals are scheduled independently of responses; latency counts from the "
                               "scheduled time. Lateness is how late the load generator sent an arrival."))
    for report in reports:
        twin = (twin_of.get(id(report)) or [None])[0]
        load = report.config.load
        how = (f"{load.arrival} arrivals" + (f", seed {load.seed}" if load.seed is not None else "")
               + (f", trace {load.trace}" if load.trace else "")
               + (f", time scale ×{load.time_scale:g}" if load.time_scale else ""))
        section.blocks.append(Heading(f"{report.target}: {report.name} ({how})"))
        if all_jobs(report):
            section.blocks.append(open_loop_plot(report, twin))
        rows = []
        for stage in report.stages:
            s = stage.summary
            rows.append([stage.name, fmt(stage.arrival_rate_per_s, "/s", 3), Fig(f"{s['completed']}/{s['jobs']}",
                         MEASURED), Fig(str(s["dropped"]), MEASURED), fig(s["mean"], MEASURED),
                         fig(s["p95"], MEASURED), fig(s["p99"], MEASURED),
                         fig(s["lateness_s"].get("p99"), MEASURED, " s", 3),
                         fig(s["throughput_per_s"], MEASURED, "/s", 3),
                         *slo_cells(report.stages, stage, MEASURED)])
        section.blocks.append(Table(["stage", "arrival rate", "ok", "dropped", "mean", "p95", "p99",
                                     "lateness p99", "throughput", *slo_headers(report.stages)], rows))
    return section


def section_capacity(reports: list[Report]) -> Section:
    section = Section("capacity", "Capacity under an SLO", [MEASURED, SIMULATED])
    if not reports:
        section.missing = "No capacity report (role 'capacity'): run `python -m bench capacity --slo-e2e S`."
        return section
    for report in reports:
        section.blocks.append(Heading(f"{report.target}: {report.name}"))
        rows = []
        for stage in report.stages:
            s = stage.summary
            rows.append([stage.name, fmt(stage.arrival_rate_per_s, "/s", 3),
                         Fig(f"{s['completed']}/{s['jobs']}", report.kind), fig(s["p95"], report.kind),
                         fig(s["p99"], report.kind), *slo_cells(report.stages, stage, report.kind)])
        section.blocks.append(Table(["probe", "arrival rate", "ok", "p95", "p99", *slo_headers(report.stages)],
                                    rows, title="Probes"))
        section.blocks += extra_tables(report)
    return section


def extra_tables(report: Report) -> list[Table]:
    """Tables a producer put in `extra["tables"]`: {title, headers, rows, origins?}, `origins` one per
    column (measured / simulated / quoted / null); without it numbers get the report's kind."""
    tables = []
    for spec in report.extra.get("tables") or []:
        origins = spec.get("origins")
        rows = []
        for row in spec.get("rows", []):
            cells: list[Any] = []
            for i, value in enumerate(row):
                origin = origins[i] if origins and i < len(origins) else (
                    None if origins else (report.kind if isinstance(value, (int, float)) else None))
                if value is None:
                    cells.append(None)
                elif origin in LABELS and isinstance(value, (int, float, str)):
                    cells.append(Fig(fmt(value) if not isinstance(value, str) else value, origin))
                else:
                    cells.append(fmt(value))
            rows.append(cells)
        tables.append(Table([str(h) for h in spec.get("headers", [])], rows, title=spec.get("title")))
    return tables


def fmt_metric(metric: str, value: float | None, origin: str) -> Fig | None:
    if value is None:
        return None
    if "attainment" in metric or metric.endswith("_share"):
        return pct(value, origin)
    if metric.endswith("_per_s"):
        return fig(value, origin, "/s", 3)
    if metric.endswith("_s") or metric == "replica_seconds":
        return fig(value, origin, " s")
    if float(value).is_integer():
        return Fig(f"{int(value):,}", origin)
    return fig(value, origin, "")


def error_rows(validation: Report, stage_level: bool | None = None) -> list[list[Any]]:
    """A validation's ErrorRows as table rows; `scored=False` rows (the simulator was fitted on them)
    say 'fit' instead of an error. stage_level None: all rows; True: per-stage; False: whole run."""
    rows = []
    for e in validation.errors:
        if stage_level is not None and (e.stage is not None) != stage_level:
            continue
        error = ("fit (not scored)" if not e.scored
                 else "–" if e.error is None else f"{100 * e.error:+.1f} %")
        rows.append([e.stage if e.stage is not None else "whole run", e.metric,
                     fmt_metric(e.metric, e.measured, MEASURED), fmt_metric(e.metric, e.simulated, SIMULATED), error])
    return rows


ERROR_HEADERS = ["stage", "metric", "measured", "simulated", "error (sim − meas) / meas"]


def section_validation(validations: list[Report], measured: list[Report]) -> Section:
    section = Section("validation", "Simulator vs measured", [MEASURED, SIMULATED])
    if not validations:
        section.missing = "No validation report (role 'validation'): run `python -m simulator validate`."
        return section
    section.blocks.append(Para("Each measured run replayed by the simulator. A row marked 'fit' is one the "
                               "simulator's inputs came from; it is shown, never scored."))
    for v in validations:
        m = match_measured(v, measured)
        sim = v.config.simulation
        against = m.name if m else f"{sim.measured if sim else '?'} (not among the reports given)"
        calib = f"; service times from {sim.calibration}" if sim and sim.calibration else ""
        scored = [e.error for e in v.errors if e.scored and e.error is not None]
        worst = f"; largest |error| {100 * max(map(abs, scored)):.1f} %" if scored else ""
        section.blocks.append(Table(ERROR_HEADERS, error_rows(v), title=f"{v.name}: replays {against}{calib}{worst}",
                                    empty="This validation report has no error rows."))
    return section


def section_autoscaling(measured: list[Report], validations: list[Report]) -> Section:
    section = Section("autoscaling", "Autoscaling: replicas over time and the bill", [MEASURED, SIMULATED])
    pairs: list[tuple[Report | None, Report | None]] = []
    matched: set[int] = set()
    for m in (r for r in measured if r.replicas is not None):
        twin = next((v for v in validations if v.replicas is not None and match_measured(v, measured) is m), None)
        if twin is not None:
            matched.add(id(twin))
        pairs.append((m, twin))
    pairs += [(None, v) for v in validations if v.replicas is not None and id(v) not in matched]
    if not pairs:
        section.missing = ("No report with a replica timeline: run a load test against `python -m "
                           "server.rayserve` with the replica recorder, then `python -m simulator validate`.")
        return section
    for m, sim in pairs:
        name = (m or sim).name
        section.blocks.append(Heading(name))
        figure, ax = new_figure(11, 3.2)
        for report, origin, style in ((m, MEASURED, "-"), (sim, SIMULATED, "--")):
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
        section.blocks.append(Plot(f"{name}: replicas up over time, measured and simulated step functions",
                                   png(figure)))
        rows = []
        for label, get in (("replica-seconds", lambda r: r.replicas.replica_seconds),
                           ("scale-ups", lambda r: scale_counts(r.replicas)["scale-ups"]),
                           ("scale-downs", lambda r: scale_counts(r.replicas)["scale-downs"]),
                           ("cold starts", lambda r: sum(j.cold_start for j in all_jobs(r)) if all_jobs(r) else None)):
            rows.append([label, *(_cell(get, r, o) for r, o in ((m, MEASURED), (sim, SIMULATED)))])
        section.blocks.append(Table(["whole run", "measured", "simulated"], rows))
        if sim is not None:
            section.blocks.append(Table(ERROR_HEADERS, error_rows(sim, stage_level=False),
                                        title="Run-level errors of the validation",
                                        empty="The validation has no run-level error rows."))
    return section


def _cell(get: Callable[[Report], float | int | None], report: Report | None, origin: str) -> Fig | None:
    if report is None:
        return None
    value = get(report)
    if value is None:
        return None
    return fig(value, origin, " s", 1) if isinstance(value, float) else Fig(f"{value:,}", origin)


def section_article(reports: list[Report]) -> Section:
    """The article's scenario replayed from its own figures (`python -m simulator article`)."""
    section = Section("article", "The article replayed from its own figures", [SIMULATED, QUOTED])
    if not reports:
        section.missing = "No article replay (role 'article'): run `python -m simulator article`."
        return section
    for report in reports:
        replay = report.extra
        rows = []
        for r in replay.get("local", []):
            quoted = f"{r['quoted_succeeded']}/{r['concurrency']}, " + (
                fmt(r["quoted_mean_s"], " s", 1) if r.get("quoted_mean_s") else r.get("quoted_note") or "")
            bounded = r.get("bounded_queue_16") or {}
            rows.append([str(r["concurrency"]), Fig(quoted, QUOTED), fig(r.get("fifo_simulated_mean_s"), SIMULATED,
                         " s", 1), fig(r.get("fifo_closed_form_mean_s"), SIMULATED, " s", 1),
                         fig(r.get("processor_sharing_mean_s"), SIMULATED, " s", 1),
                         Fig(f"{bounded.get('served')} served / {bounded.get('rejected')} rejected (429)", SIMULATED)
                         if bounded else None])
        if rows:
            section.blocks += [
                Para("Local rows: the article's means match a server where all jobs share the GPU at once "
                     "(processor sharing, N×S), not a FIFO queue ((N+1)/2×S), and sharing is what ran it out "
                     "of memory at 20."),
                Table(["N at once", "article local", "FIFO server", "FIFO closed form", "processor sharing N·S",
                       "bounded queue 16"], rows)]
        v = replay.get("vertex") or {}
        if v:
            section.blocks.append(Table(["article's Vertex run, 20 at once", "value"], [
                ["article: mean", fig(v.get("quoted_mean_s"), QUOTED, " s", 1)],
                ["rounds of 34.2 s needed on 3 replicas", fig(v.get("rounds_needed"), SIMULATED, "")],
                ["3 warm replicas, mean", fig(v.get("three_warm_replicas_simulated_mean_s"), SIMULATED, " s", 1)],
                ["1 warm, autoscaling to 3, mean", fig(v.get("one_warm_autoscaled_to_3_simulated_mean_s"),
                                                       SIMULATED, " s", 1)]],
                note=v.get("note")))
        c = replay.get("cost") or {}
        if c:
            bill = c.get("replica_second_bill", {})
            on_demand, spot = bill.get("on_demand", {}), bill.get("spot", {})
            section.blocks.append(Table(["10,000 requests/month", "$/month", "how"], [
                ["article naive", money(c.get("quoted_naive"), QUOTED), "10,000 × 30 s busy GPU time × $0.45/h"],
                ["article 'optimized'", money(c.get("quoted_optimized"), QUOTED),
                 "20% cache, spot 70% off, busy time only"],
                ["replica-second bill, on demand", money(on_demand.get("monthly"), SIMULATED),
                 f"{fmt(on_demand.get('replica_hours'), ' replica-h', 0)} billed, machine + T4"],
                ["replica-second bill, spot", money(spot.get("monthly"), SIMULATED),
                 "the article's own settings, every replica billed while up"]]))
        section.blocks += extra_tables(report)
    return section


def section_monthly(reports: list[Report]) -> Section:
    section = Section("monthly", "A simulated month", [SIMULATED])
    if not reports:
        section.missing = "No monthly simulation (role 'monthly'): run `python -m simulator --monthly 10000`."
        return section
    rows = []
    for report in reports:
        for r in report.extra.get("results", []):
            lat = r.get("latency_s", {})
            rows.append([fmt(r.get("arrivals")), r.get("deployment"), fig(r.get("served"), SIMULATED, ""),
                         fig(r.get("failed"), SIMULATED, ""), fig(r.get("rejected"), SIMULATED, ""),
                         fig(lat.get("mean"), SIMULATED, " s", 1), fig(lat.get("p95"), SIMULATED, " s", 1),
                         pct(r.get("cold_start_share"), SIMULATED), fig(r.get("replica_hours"), SIMULATED, "", 0),
                         money(r.get("monthly_cost"), SIMULATED), money(r.get("cost_per_request"), SIMULATED, 4)])
        section.blocks += extra_tables(report)
    section.blocks.insert(0, Table(["requests", "deployment", "served", "failed", "rejected", "mean", "p95",
                                    "cold starts", "replica-h", "per month", "per request"], rows))
    section.blocks.insert(0, Para("Service times from the profiles named in each report (the article's by "
                                  "default); prices in simulator/pricing.py."))
    return section


def _sweep_png(report: Report, reports_dir: Path) -> Path | None:
    """The sweep's plot: the recorded path as written, else beside the report, else under reports/simulated."""
    recorded = report.extra.get("png")
    candidates = [Path(recorded)] if recorded else []
    if recorded and report.path:
        candidates.append(Path(report.path).parent / Path(recorded).name)
    candidates.append(reports_dir / "simulated" / "sweep.png")
    return next((p for p in candidates if p.is_file()), None)


def section_sweep(reports: list[Report], reports_dir: Path) -> Section:
    section = Section("sweep", "Cost vs monthly volume and the recommendation", [SIMULATED, QUOTED])
    if not reports:
        section.missing = "No sweep (role 'sweep'): run `python -m simulator sweep`."
        return section
    for report in reports:
        sweep = report.extra
        image = _sweep_png(report, reports_dir)
        if image:
            section.blocks.append(Plot("Monthly cost vs volume per setting (simulated)",
                                       "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()))
        be = sweep.get("break_even_per_month")
        section.blocks.append(Para(f"p95 SLO {fmt(sweep.get('slo_p95_s'), ' s')}. Local-GPU break-even: "
                                   + (f"about {be:,.0f} requests/month." if be else "not within the volumes swept.")))
        rows = [[fmt(r.get("volume")), r.get("recommended") or "none meets the SLO",
                 money(r.get("cost"), SIMULATED), fig(r.get("p95_s"), SIMULATED, " s", 0),
                 r.get("runner_up") or "–", r.get("why", "")] for r in sweep.get("recommendations", [])]
        if rows:
            section.blocks.append(Table(["volume/month", "recommended", "per month", "p95", "runner-up", "why"],
                                        rows))
        section.blocks += extra_tables(report)
    section.blocks.append(Table(["volume/month", "the article's recommendation"], [
        ["< 100", Fig("Vertex, min replicas 0", QUOTED)], ["100–5,000", Fig("Vertex, min 0 (1 at peak)", QUOTED)],
        ["5,000–50,000", Fig("Vertex, min 1–2", QUOTED)], ["> 50,000", Fig("consider a local GPU", QUOTED)]]))
    return section


def section_sources(loaded: Loaded) -> Section:
    rows = [[Path(r.path).name if r.path else r.name, r.role, r.kind, r.target, r.name, r.created]
            for r in loaded.reports]
    section = Section("sources", "Reports read")
    section.blocks.append(Table(["file", "role", "kind", "target", "name", "created"], rows,
                                empty="No report found."))
    if loaded.skipped:
        section.blocks.append(Table(["file", "why"], [[Path(f).name, why] for f, why in loaded.skipped],
                                    title="Files skipped (not reports)"))
    return section


# --- the page ---------------------------------------------------------------------------------------------

def sections(loaded: Loaded, reports_dir: Path) -> list[Section]:
    measured = [r for r in loaded.reports if r.kind == MEASURED]
    validations = loaded.role("validation")
    loads = loaded.role("load", MEASURED)
    twin_of = twins(loaded)
    return [
        section_single(loaded.role("single", MEASURED)),
        section_coldstart(loaded.role("coldstart", MEASURED)),
        section_concurrency([r for r in loads if load_mode(r) not in OPEN_MODES], twin_of),
        section_open_loop([r for r in loads if load_mode(r) in OPEN_MODES], twin_of),
        section_capacity(loaded.role("capacity")),
        section_autoscaling(measured, validations),
        section_validation(validations, measured),
        section_article(loaded.role("article")),
        section_monthly(loaded.role("monthly")),
        section_sweep(loaded.role("sweep"), reports_dir),
        section_sources(loaded),
    ]


def render(page_sections: list[Section], title: str = "decomposer-loadlab report") -> str:
    env = Environment(loader=PackageLoader("bench", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False)
    return env.get_template("report.html.j2").render(title=title, sections=page_sections, labels=LABELS,
                                                     source=article.SOURCE)


def build(reports_dir: Path) -> Path:
    page = render(sections(load_reports(reports_dir), reports_dir))
    out = reports_dir / "index.html"
    out.write_text(page)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="reports folder")
    args = parser.parse_args(argv)
    out = build(args.reports)
    print(f"report: {out.resolve()}")
    return 0

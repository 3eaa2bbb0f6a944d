"""`python -m bench report`: one self-contained HTML page, reports/index.html, with measured and
simulated results side by side and the article's figures next to ours.

It reads only report-schema documents (reports/measured/*.json, reports/simulated/*.json) and the
article's quoted figures (bench/article.py). Every figure carries its origin: measured (this
machine, tiny model), simulated (SimPy model), or quoted from the article. Plots are matplotlib PNGs
embedded as data URIs so the page is one file.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from loadlab import article
from loadlab.schema import Report

MEASURED, SIMULATED, QUOTED = "measured", "simulated", "quoted from the article"
BADGE = {MEASURED: "#1b7f3b", SIMULATED: "#1f5fbf", QUOTED: "#8a5a00"}


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _badge(origin: str) -> str:
    return f'<span class="badge" style="background:{BADGE[origin]}">{html.escape(origin)}</span>'


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def load_reports(folder: Path) -> list[Report]:
    reports = []
    for path in sorted(folder.glob("*.json")):
        try:
            report = Report.load(path)
        except ValueError:
            continue  # sweep tables and other non-schema JSON are read separately
        reports.append(report)
    return reports


def section_single(measured: list[Report]) -> str:
    ours: dict[tuple[str, str], str] = {}
    for report in measured:
        for stage in report.stages:
            summary = stage.summary
            cases = {j.case for j in stage.jobs}
            if len(cases) != 1 or not summary.get("count"):
                continue
            case = cases.pop()
            split = summary.get("service_s", {}).get("mean")
            ours[(case, report.target)] = (f"{_fmt(summary['mean'])} ± {_fmt(summary['std'])} s "
                                           f"(p95 {_fmt(summary['p95'])}, inference {_fmt(split)}) "
                                           f"{_badge(MEASURED)}")
    cases = sorted({c for c, _ in ours} | set(article.SINGLE["local-3090"]))
    rows = []
    for case in cases:
        quoted_local = article.SINGLE["local-3090"].get(case)
        quoted_vertex = article.SINGLE["vertex-t4"].get(case)
        rows.append([
            case,
            f"{quoted_local[0]} ± {quoted_local[1]} s {_badge(QUOTED)}" if quoted_local else "–",
            f"{quoted_vertex[0]} ± {quoted_vertex[1]} s {_badge(QUOTED)}" if quoted_vertex else "–",
            ours.get((case, "local"), "–"),
            ours.get((case, "vertex"), "–"),
        ])
    return ("<h2>Single request (article benchmark 1)</h2>"
            "<p>Ours run the tiny random model on this 2-core CPU: absolute seconds are not comparable "
            "with a GPU, the split between queue, inference and transfer is.</p>"
            + _table(["case", "article: local RTX 3090", "article: Vertex T4 (warm)",
                      "ours: local job API", "ours: Vertex adapter (real SDK → our server)"], rows))


def _coldstart_parts(coldstart: dict[str, Any]) -> dict[str, float]:
    """Consecutive parts of a measured cold start. `bench coldstart` records `ready` as spawn -> ready,
    which contains process start and model load; the rest of it is imports and app start-up."""
    stages = dict(coldstart.get("stages_s") or {})
    ready = stages.pop("ready", None)
    if ready is not None:
        stages = {"process_start": stages.pop("process_start", 0.0) or 0.0,
                  "model_load": stages.pop("model_load", 0.0) or 0.0, **stages}
        stages = {"process_start": stages["process_start"],
                  "imports_and_app_start": max(0.0, ready - stages["process_start"] - stages["model_load"]),
                  **{k: v for k, v in stages.items() if k != "process_start"}}
    return {k: float(v) for k, v in stages.items() if isinstance(v, (int, float))}


def section_coldstart(coldstarts: list[Report]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8))
    labels, bars = ["article (Vertex T4)"], [article.COLDSTART_S]
    for report in coldstarts:
        stages = _coldstart_parts(report.coldstart)
        if stages:
            labels.append(f"measured ({report.target}, {report.model.get('kind', 'model')})")
            bars.append(stages)
    colors = plt.get_cmap("tab10").colors
    keys: list[str] = []
    for stages in bars:
        keys += [k for k in stages if k not in keys]
    labelled: set[str] = set()
    for row, stages in enumerate(bars):
        left = 0.0
        for i, key in enumerate(keys):
            value = float(stages.get(key) or 0.0)
            ax.barh(row, value, left=left, color=colors[i % 10], label=None if key in labelled else key)
            labelled.add(key)
            left += value
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("seconds (symlog)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Cold start breakdown")
    rows = [[k, _fmt(v) + " s", _badge(QUOTED)] for k, v in article.COLDSTART_S.items()]
    for report in coldstarts:
        for key, value in _coldstart_parts(report.coldstart).items():
            rows.append([f"{key} ({report.target})", _fmt(value, " s", 3), _badge(MEASURED)])
    return "<h2>Cold start (article benchmark 2)</h2>" + _png(fig) + _table(["stage", "seconds", "origin"], rows)


def _concurrency_points(report: Report) -> dict[int, dict[str, Any]]:
    return {s.concurrency: s.summary for s in report.stages if s.concurrency}


def section_concurrency(measured: list[Report], simulated: list[Report]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_abs, ax_norm) = plt.subplots(1, 2, figsize=(11, 3.8))
    for target, rows in article.CONCURRENCY.items():
        base = rows[1][1]
        xs = [n for n, (_, mean) in rows.items() if mean]
        ax_norm.plot(xs, [rows[n][1] / base for n in xs], "s--", label=f"article {target} ({QUOTED})")
    xs = [1, 5, 10, 20]
    ax_norm.plot(xs, [(n + 1) / 2 for n in xs], "k:", label="FIFO ideal (n+1)/2 (model)")
    for origin, reports in ((MEASURED, measured), (SIMULATED, simulated)):
        for report in reports:
            points = _concurrency_points(report)
            if not points:
                continue
            ns = sorted(points)
            means = [points[n]["mean"] for n in ns]
            style = "o-" if origin == MEASURED else "x-."
            label = f"{report.target} {(report.config.load.mode if report.config.load else '')} ({origin})"
            ax_abs.plot(ns, means, style, label=label)
            base = points[ns[0]]["service_s"].get("mean") or means[0]
            if base:
                ax_norm.plot(ns, [m / base if m else None for m in means], style, label=label)
    ax_abs.set(xlabel="concurrent users", ylabel="mean latency (s)", title="Latency vs concurrency (ours)")
    ax_norm.set(xlabel="concurrent users", ylabel="mean latency / single-job time",
                title="Normalised: ours vs the article")
    for ax in (ax_abs, ax_norm):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    rows = []
    for n, (ok, mean) in article.CONCURRENCY["local"].items():
        v_ok, v_mean = article.CONCURRENCY["vertex"][n]
        rows.append([n, f"{ok}/{n}, {_fmt(mean, ' s', 1)} {_badge(QUOTED)}",
                     f"{_fmt((n + 1) / 2 * 28.7, ' s', 1)} (FIFO ideal from 28.7 s)",
                     f"{v_ok}/{n}, {_fmt(v_mean, ' s', 1)} {_badge(QUOTED)}"])
    quoted = _table(["N at once", "article local", "one FIFO worker would give", "article Vertex"], rows)
    ours = []
    for report in measured:
        for stage in report.stages:
            s = stage.summary
            ours.append([report.target, (report.config.load.mode if report.config.load else ""), stage.name,
                         f"{s['completed']}/{s['jobs']}", _fmt(s["mean"], " s"), _fmt(s["p95"], " s"),
                         _fmt(s["throughput_per_s"], "/s", 3), _badge(MEASURED)])
    return ("<h2>Concurrency (article benchmark 3)</h2>" + _png(fig) + quoted
            + "<h3>Ours, per stage</h3>"
            + _table(["target", "mode", "stage", "ok", "mean", "p95", "throughput", "origin"], ours))


def section_validation(validations: list[dict[str, Any]]) -> str:
    if not validations:
        return "<h2>Simulator vs measured</h2><p>No validation run found (python -m simulator validate).</p>"
    parts = ["<h2>Simulator vs measured (error per stage)</h2>",
             "<p>Goal: within 5% per stage (Vidur reports 9% for inference latency).</p>"]
    for table in validations:
        parts.append(f"<h3>{html.escape(table.get('title', 'validation'))}</h3>")
        parts.append(_table(table["headers"], table["rows"]))
    return "".join(parts)


def section_article(replay: dict[str, Any] | None) -> str:
    """The article's scenario replayed from its own figures (simulator/article.py)."""
    if not replay:
        return "<h2>The article replayed</h2><p>No replay found (python -m simulator article).</p>"
    rows = []
    for r in replay.get("local", []):
        quoted = (f"{r['quoted_succeeded']}/{r['concurrency']}, " + (_fmt(r["quoted_mean_s"], " s", 1)
                  if r["quoted_mean_s"] else html.escape(r.get("quoted_note") or "")))
        bounded = r.get("bounded_queue_16") or {}
        rows.append([r["concurrency"], f"{quoted} {_badge(QUOTED)}",
                     f"{_fmt(r['fifo_simulated_mean_s'], ' s', 1)} {_badge(SIMULATED)}",
                     _fmt(r["fifo_closed_form_mean_s"], " s", 1),
                     f"{_fmt(r['processor_sharing_mean_s'], ' s', 1)}",
                     f"{bounded.get('served')} served / {bounded.get('rejected')} rejected (429)"])
    parts = ["<h2>The article replayed from its own figures</h2>",
             "<p>Local rows: the article's means match a server where all jobs share the GPU at once "
             "(processor sharing, N×S), not a FIFO queue ((N+1)/2×S), and sharing is what ran it out of "
             "memory at 20.</p>",
             _table(["N at once", "article local", "FIFO server (sim)", "FIFO closed form",
                     "processor sharing N·S", "bounded queue 16"], rows)]
    v = replay.get("vertex") or {}
    if v:
        parts.append(_table(["", "value"], [
            ["article: 20 at once, mean", f"{_fmt(v.get('quoted_mean_s'), ' s', 1)} {_badge(QUOTED)}"],
            ["rounds of 34.2 s needed on 3 replicas", v.get("rounds_needed")],
            ["3 warm replicas, mean", f"{_fmt(v.get('three_warm_replicas_simulated_mean_s'), ' s', 1)} "
                                      f"{_badge(SIMULATED)}"],
            ["1 warm, autoscaling to 3, mean", f"{_fmt(v.get('one_warm_autoscaled_to_3_simulated_mean_s'), ' s', 1)} "
                                               f"{_badge(SIMULATED)}"],
            ["note", html.escape(v.get("note", ""))]]))
    c = replay.get("cost") or {}
    if c:
        bill = c.get("replica_second_bill", {})
        parts.append(_table(["10,000 requests/month", "$/month", "how"], [
            ["article naive", f"{_fmt(c.get('quoted_naive'))} {_badge(QUOTED)}", "10,000 × 30 s busy GPU time × $0.45/h"],
            ["article 'optimized'", f"{_fmt(c.get('quoted_optimized'))} {_badge(QUOTED)}",
             "20% cache, spot 70% off, busy time only"],
            ["replica-second bill, on demand", f"{_fmt(bill.get('on_demand', {}).get('monthly'))} {_badge(SIMULATED)}",
             f"{_fmt(bill.get('on_demand', {}).get('replica_hours'), ' replica-h', 0)} billed, machine + T4"],
            ["replica-second bill, spot", f"{_fmt(bill.get('spot', {}).get('monthly'))} {_badge(SIMULATED)}",
             "the article's own settings, every replica billed while up"]]))
    return "".join(parts)


def section_monthly(monthly: list[Report]) -> str:
    rows = []
    for report in monthly:
        for r in report.extra.get("results", []):
            lat = r.get("latency_s", {})
            rows.append([f"{r.get('arrivals'):,}", r.get("deployment"), r.get("served"), r.get("failed"),
                         r.get("rejected"), _fmt(lat.get("mean"), " s", 1), _fmt(lat.get("p95"), " s", 1),
                         _fmt(100 * (r.get("cold_start_share") or 0), " %", 1), _fmt(r.get("replica_hours"), "", 0),
                         f"${_fmt(r.get('monthly_cost'))}", f"${_fmt(r.get('cost_per_request'), '', 4)}"])
    if not rows:
        return ""
    return ("<h2>A simulated month " + _badge(SIMULATED) + "</h2><p>Service times from the article's "
            "profiles (seed-3090 local, seed-t4 Vertex); prices in simulator/pricing.py.</p>"
            + _table(["requests", "deployment", "served", "failed", "rejected", "mean", "p95", "cold starts",
                      "replica-h", "$/month", "$/request"], rows))


def section_sweep(sweep: dict[str, Any] | None, folder: Path) -> str:
    if not sweep:
        return "<h2>Cost vs volume</h2><p>No sweep found (python -m simulator sweep).</p>"
    parts = [f"<h2>Cost vs monthly volume and the recommendation {_badge(SIMULATED)}</h2>"]
    png = Path(sweep.get("png") or folder / "sweep.png")
    if png.exists():
        parts.append(f'<img alt="cost vs volume" src="data:image/png;base64,'
                     f'{base64.b64encode(png.read_bytes()).decode()}">')
    be = sweep.get("break_even_per_month")
    parts.append(f"<p>p95 SLO {sweep.get('slo_p95_s')} s. Local-GPU break-even: "
                 + (f"about {be:,.0f} requests/month." if be else "not within the volumes swept.") + "</p>")
    rows = [[f"{r['volume']:,}", r.get("recommended") or "none meets the SLO",
             f"${_fmt(r.get('cost'))}" if r.get("cost") is not None else "–", _fmt(r.get("p95_s"), " s", 0),
             r.get("runner_up") or "–", html.escape(r.get("why", ""))] for r in sweep.get("recommendations", [])]
    parts.append(_table(["volume/month", "recommended", "$/month", "p95", "runner-up", "why"], rows))
    parts.append("<p>The article recommended Vertex for everything under 50,000/month: "
                 f"{_badge(QUOTED)} &lt;100 min=0; 100–5,000 min=0 (1 at peak); 5,000–50,000 min=1–2; "
                 "&gt;50,000 consider a local GPU.</p>")
    return "".join(parts)


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


CSS = """body{font-family:system-ui,sans-serif;max-width:1150px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em}
th{background:#f3f3f3}.badge{color:#fff;border-radius:3px;padding:0 .35em;font-size:.75em;white-space:nowrap}
img{max-width:100%}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:1.8em}"""


def render(sections: list[str], title: str = "decomposer-loadlab report") -> str:
    legend = " ".join(_badge(o) for o in (MEASURED, SIMULATED, QUOTED))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            "<p>Local GPU job server or Vertex AI endpoint for QwenImageLayeredPipeline: what latency, "
            f"what monthly bill? Origins: {legend}. Source article: {html.escape(article.SOURCE)}.</p>"
            + "".join(sections) + "</body></html>")


def build(reports_dir: Path) -> Path:
    measured = load_reports(reports_dir / "measured")
    simulated = load_reports(reports_dir / "simulated")
    by_role: dict[str, list[Report]] = {}
    for report in measured:
        by_role.setdefault(report.role, []).append(report)
    validations = []
    for path in sorted((reports_dir / "simulated").glob("*validation*.json")):
        try:
            validations.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    sim_conc = [r for r in simulated if r.role == "validation"]
    sections = [
        section_single(by_role.get("single", [])),
        section_coldstart(by_role.get("coldstart", [])),
        section_concurrency(by_role.get("load", []), sim_conc),
        section_validation([v for v in validations if "headers" in v]),
        section_article(_json(reports_dir / "simulated" / "article.json")),
        section_monthly([r for r in simulated if r.role == "monthly"]),
        section_sweep(_json(reports_dir / "simulated" / "sweep.json"), reports_dir / "simulated"),
    ]
    out = reports_dir / "index.html"
    out.write_text(render(sections))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="reports folder")
    args = parser.parse_args(argv)
    out = build(args.reports)
    print(f"report: {out.resolve()}")
    return 0

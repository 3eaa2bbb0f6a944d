"""The test's cockpit in Locust's web UI: two tabs ("Cockpit", "Bill (simulated)") and `/cockpit.json`,
by Locust's documented extension points (`examples/extend_web_ui.py`): routes on `web_ui.app`,
`template_args["extended_tabs"/"extended_tables"]`, and `extended_stats` added to `/stats/requests`,
which the page polls every 2 s (Locust's own interval), so the tabs update with it.

Per stage, from the job ledger's exact per-job times (`locustfiles/cockpit_figures.py`): outcomes,
mean / p95 / p99 with 95 % intervals, SLO attainment, goodput, dispatch lateness p99, service time and
its inflation over the calibration; with `--calibration C` the simulator's prediction for the stage
so far beside each measured figure; the bill of a month at the current arrival rate on each deployment
kind; with `--replica-samples` (a Ray Serve target, the replica recorder on) a chart of the target,
starting and running replicas over time (`locustfiles/cockpit_replicas.py`, drawn by
`cockpit_static/replicas.js`). Both simulations run in helper processes (`locustfiles/cockpit_background.py`); the figures are
computed at most once per UPDATE_S whoever asks, so the tab costs the dispatcher one short pass over
the ledger every 2 s. Only the web UI process (master or single) installs it: headless runs are
unchanged. The web UI's guard (`locustfiles/webui.py`) is in front of these routes as of every other.

The start form: this tool's options lead (Locust shows them folded under "Custom parameters" below its
own user count and ramp-up, which a shape disables), unfolded, with a note that the stage shape sets
the users: a style sheet and a few lines of script added to Locust's page, no change to its React code.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
from flask import Blueprint, jsonify, request

from locustfiles.cockpit_background import ChildTask, start_bill, start_prediction
from locustfiles.cockpit_figures import (
    BILL_COLUMNS,
    MEASURED_COLUMNS,
    PREDICTED_COLUMNS,
    bill_rows,
    compare,
    current_rate,
    prediction_request,
    stage_row,
    table_row,
)
from locustfiles.cockpit_replicas import ReplicaTail
from locustfiles.ledger import LEDGER
from locustfiles.report import stages_at

log = logging.getLogger("loadlab")
UPDATE_S = 2.0          # figures recomputed at most this often (the page polls every 2 s)
PREDICT_EVERY_S = 10.0  # a new prediction at most this often, when new jobs ended
BILL_RATE_CHANGE = 0.2  # a new bill when the arrival rate moved by more than this fraction
MIN_BILL_ARRIVALS = 5   # no rate (and no bill) from fewer arrivals
STATIC = Path(__file__).resolve().parent / "cockpit_static"
TAB, BILL_TAB = "cockpit", "cockpit-bill"


class Cockpit:
    """The cockpit of one web UI: its figures, cached for UPDATE_S, and its two child tasks."""

    def __init__(self, environment) -> None:
        self.environment = environment
        self.prediction = ChildTask("prediction", timeout_s=120)
        self.bill = ChildTask("bill", timeout_s=300)
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._predicted_for: tuple | None = None
        self._last_predict = 0.0
        self.cost_s = 0.0       # CPU seconds spent computing figures (what the tab costs)
        samples = getattr(environment.parsed_options, "replica_samples", "") or ""
        self.replicas = ReplicaTail(samples) if samples else None   # a Ray Serve target's recorder
        self.computed = 0

    # --- figures -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._cached is None or now - self._cached_at >= UPDATE_S:
            t0 = time.process_time()
            self._cached, self._cached_at = self._compute(), now
            self.cost_s += time.process_time() - t0
            self.computed += 1
        self._cached["cost"] = {"cpu_s": self.cost_s, "computed": self.computed}
        return self._cached

    def _state(self) -> str:
        runner = self.environment.runner
        return getattr(runner, "state", "ready") if runner is not None else "ready"

    def _stages(self, now: float):
        options = self.environment.parsed_options
        if options is None or (not LEDGER.started_at and LEDGER.open_loop is None):
            return []
        at = LEDGER.stopping_at or now
        return stages_at(options, LEDGER, at)[0]

    def _compute(self) -> dict[str, Any]:
        now, state = time.time(), self._state()
        options = self.environment.parsed_options
        calibration = getattr(options, "calibration", "") or ""
        stages = self._stages(now)
        profile = (self.prediction.result or {}).get("profile") or {} if calibration else {}
        predicted = (self.prediction.result or {}).get("stages", {}) if calibration else {}
        rows = []
        for st in stages:
            row = stage_row(st, LEDGER.stopping_at or now, profile.get("service_mean_s"))
            row["predicted"] = compare(row, predicted.get(st.name))
            rows.append(row)
        running = state in ("running", "spawning")
        current = max(stages, key=lambda s: s.started_at or 0).name if stages and running else None
        self._maybe_predict(stages, now, calibration, current, running)
        # the bill of the stage running now; once the run stopped, of its last stage
        latest = max(stages, key=lambda s: s.started_at or 0).name if stages else None
        self._maybe_bill(next((r for r in rows if r["stage"] == (current or latest)), None), options)
        return {
            "updated_at": now, "state": state, "update_s": UPDATE_S, "current_stage": current,
            "calibration": calibration or None, "stages": rows,
            "prediction": {"status": self.prediction.status if calibration else "no --calibration",
                           "label": "simulated", "replications": (self.prediction.result or {}).get("replications"),
                           "seconds": self.prediction.seconds, "profile": profile or None},
            "bill": {**(self.bill.result or {}), "status": self.bill.status},
            "replicas": self._replica_figures(),
        }

    def _replica_figures(self) -> dict[str, Any] | None:
        if self.replicas is None:
            return None
        self.replicas.update()
        return self.replicas.figures()

    def _maybe_predict(self, stages, now: float, calibration: str, current, running: bool) -> None:
        if not calibration or not stages or self.prediction.busy:
            return
        key = (calibration, LEDGER.recorded(), current)
        # while the run goes on, the child runs at most a third of the time (a 2-core machine has the
        # load generator and the server on it too)
        wait_s = max(PREDICT_EVERY_S, 3 * (self.prediction.seconds or 0.0))
        if key == self._predicted_for or (running and time.monotonic() - self._last_predict < wait_s):
            return
        open_loop = LEDGER.open_loop is not None
        request_ = prediction_request(stages, LEDGER.stopping_at or now, [calibration], open_loop, current)
        if start_prediction(self.prediction, key, request_):
            self._predicted_for, self._last_predict = key, time.monotonic()

    def _maybe_bill(self, row, options) -> None:
        rate = current_rate(row) if row and row["arrivals"] >= MIN_BILL_ARRIVALS else None
        if rate is None or self.bill.busy:
            return
        last = self.bill.key
        if last is not None and abs(rate - last) <= BILL_RATE_CHANGE * last:
            return
        start_bill(self.bill, rate, getattr(options, "slo_e2e", 0.0) or None)

    def stop(self) -> None:
        """At test stop: the simulations in progress are killed, and the helpers started again now,
        while no run goes on (a fork blocks the load generator's hub)."""
        for task in (self.prediction, self.bill):
            task.kill()
            task.spawn()

    def close(self) -> None:
        for task in (self.prediction, self.bill):
            task.close()

    # --- the web UI --------------------------------------------------------------------------------

    def tables(self) -> list[dict[str, Any]]:
        options = self.environment.parsed_options
        columns = MEASURED_COLUMNS + (PREDICTED_COLUMNS if getattr(options, "calibration", "") else [])
        return [{"key": TAB, "structure": [{"key": k, "title": t} for k, t in columns]},
                {"key": BILL_TAB, "structure": [{"key": k, "title": t} for k, t in BILL_COLUMNS]}]

    def extended_stats(self) -> list[dict[str, Any]]:
        t0 = time.process_time()
        snap = self.snapshot()
        self.cost_s -= time.process_time() - t0   # counted by snapshot(); the caller counts the whole
        return [{"key": TAB, "data": [table_row(r) for r in snap["stages"]]},
                {"key": BILL_TAB, "data": bill_rows(snap["bill"])}]


def install(environment) -> Cockpit:
    """Add the cockpit to `environment.web_ui` (Locust's WebUI, before it starts)."""
    web_ui = environment.web_ui
    cockpit = Cockpit(environment)
    app = web_ui.app
    web_ui.template_args["extended_tabs"] = [{"title": "Cockpit", "key": TAB},
                                             {"title": "Bill (simulated)", "key": BILL_TAB}]
    web_ui.template_args["extended_tables"] = cockpit.tables()
    base = getattr(environment.parsed_options, "web_base_path", "") or ""
    bp = Blueprint("loadlab_cockpit", __name__, static_folder=str(STATIC), static_url_path="/cockpit/static",
                   url_prefix=base or None)

    @bp.route("/cockpit.json")
    @web_ui.auth_required_if_enabled
    def cockpit_json():
        return jsonify(cockpit.snapshot())

    @bp.route("/cockpit/replicas.json")   # what the tab's chart polls (null without --replica-samples)
    @web_ui.auth_required_if_enabled
    def cockpit_replicas_json():
        return jsonify(cockpit.snapshot()["replicas"])

    app.register_blueprint(bp)

    @app.before_request
    def _columns():
        if request.endpoint == "locust.index":   # the prediction columns follow --calibration
            web_ui.template_args["extended_tables"] = cockpit.tables()

    @app.after_request
    def _extend(response):
        if request.endpoint == "locust.request_stats" and response.status_code == 200 and response.is_json:
            t0 = time.process_time()
            response.set_data(json.dumps({**response.json, "extended_stats": cockpit.extended_stats()}))
            cockpit.cost_s += time.process_time() - t0   # the figures' own time is counted by snapshot()
        elif request.endpoint == "locust.index" and response.status_code == 200:
            html = response.get_data(as_text=True)
            extra = (f'<link rel="stylesheet" href="{base}/cockpit/static/form.css">'
                     f'<script defer src="{base}/cockpit/static/form.js"></script>')
            if cockpit.replicas is not None:   # the replica chart of the Cockpit tab
                extra += f'<script defer src="{base}/cockpit/static/replicas.js"></script>'
            response.set_data(html.replace("</head>", extra + "</head>", 1))
        return response

    cockpit.prediction.spawn()
    cockpit.bill.spawn()
    gevent.spawn(_poll, cockpit)
    return cockpit


def _poll(cockpit: Cockpit) -> None:
    # the simulations follow the run even with no page open (the figures are cached all the same)
    while True:
        gevent.sleep(PREDICT_EVERY_S)
        try:
            cockpit.snapshot()
        except Exception:   # a figure must never stop the load test
            log.exception("[loadlab] cockpit figures failed")

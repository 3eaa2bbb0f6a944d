"""The autoscaler's input, measured against replayed: the Serve controller's total (queued + ongoing
requests over its look-back window, what every decision compares with the target) as the replica
recorder read it from Ray's controller a few times a second, and the replay's at the same instants.

Why: a decision can match in count and be late by a second, and the decision times alone do not say
whether the replay's input was off (a push, a replica's series the router dropped) or the policy's
arithmetic; the series says where the two first part. A diagnostic, not a score: near a step of the
total a sampled instant falls either side of it, so the largest differences sit at the steps."""

from __future__ import annotations

from typing import Any

import numpy as np

from loadlab.schema import ReplicaRun

# a difference below this is rounding (the controller rounds a series' times to 10 ms)
AGREE = 0.05
# a quarter of a request: where the replay's input first parts from Ray's by more, a decision may follow
APART = 0.25


def measured_totals(run: ReplicaRun | None) -> list[tuple[float, float]]:
    """(t from the window's start, the controller's total) of every sample that read it."""
    if run is None:
        return []
    t0 = run.window[0]
    return [(s.t - t0, s.total_requests) for s in run.timeline if s.total_requests is not None]


def differences(measured: list[tuple[float, float]], replayed: list[list[float]]) -> np.ndarray:
    """At each recorded instant, the replications' median total less the one Ray reported."""
    return np.median(np.asarray(replayed, dtype=float), axis=0) - np.array([v for _, v in measured])


def compare_totals(measured: list[tuple[float, float]], replayed: list[list[float]]) -> dict[str, Any] | None:
    """Per sampled instant the replications' median against the measured total: the bias (mean of
    replay - measured), the mean and 95th percentile of |difference|, the largest and when, and the share
    of instants that agree (|difference| < AGREE), the first instant APART or more apart. None when the run recorded no total."""
    if not measured or not replayed:
        return None
    times = np.array([t for t, _ in measured])
    diff = differences(measured, replayed)
    worst = int(np.argmax(np.abs(diff)))
    apart = np.flatnonzero(np.abs(diff) >= APART)
    return {"samples": len(measured), "replications": len(replayed),
            "bias": round(float(diff.mean()), 4), "mean_abs": round(float(np.abs(diff).mean()), 4),
            "p95_abs": round(float(np.percentile(np.abs(diff), 95)), 4),
            "max_abs": round(float(abs(diff[worst])), 4), "max_at_s": round(float(times[worst]), 2),
            "agree_share": round(float((np.abs(diff) < AGREE).mean()), 4),
            "first_apart_s": round(float(times[apart[0]]), 2) if apart.size else None,
            "method": "the controller's total read from Ray (get_total_num_requests) at each recorder sample; "
                      "the replay's at the same instant, the median over its replications"}


def describe(inputs: dict[str, Any]) -> str | None:
    """One line for the command's output and the HTML report, from a layer's replay inputs (None when the
    run recorded no total)."""
    c = inputs.get("controller_total")
    if not c:
        return None
    apart = "never" if c["first_apart_s"] is None else f"first at {c['first_apart_s']:.2f} s"
    lag = inputs.get("count_after_slot_s")
    counted = "" if lag is None else f"; the handle's count after a slot {lag:.2f} s ({inputs['count_after_slot_from']})"
    return (f"controller's total (the autoscaler's input; replay - Ray's, {c['samples']} samples, median of "
            f"{c['replications']} replications): bias {c['bias']:+.3f}, mean |d| {c['mean_abs']:.3f}, p95 |d| "
            f"{c['p95_abs']:.3f}, largest {c['max_abs']:.2f} at {c['max_at_s']:.2f} s; within {AGREE:g} at "
            f"{100 * c['agree_share']:.0f} % of them; {APART:g} or more apart: {apart}{counted}")


def layer_inputs(extra: dict[str, Any], layer: str) -> dict[str, Any]:
    """A validation report's replay inputs of one layer (its first layer's are `replay`)."""
    inputs = extra.get("replay") if (extra.get("replay") or {}).get("layer") == layer else extra.get(f"{layer}_replay")
    return inputs or {}


# the handle's lag counted after a slot, tried from 0 to 0.5 s: a result's way back to the handle
COUNT_GRID_S = tuple(round(0.05 * k, 2) for k in range(11))


def fitted_count_after_slot_s(measured: list[tuple[float, float]], totals_of) -> float | None:
    """How long the handle still counts a request after its replica's slot freed: the grid value at which a
    replay's controller total (`totals_of(seconds)`: each replication's at the recorded instants, their
    median as `compare_totals` scores it) lies closest to the one Ray reported (mean |difference|). The router sends the next request once the replica says its method
    returned, but its gauge drops only when the result is back: on the demo's run the replay without it
    lay 0.07 below Ray's total before the 3rd scale-up and decided it 1.55 s late (0.15 s: 0.50 s).
    None without a recorded total."""
    if not measured:
        return None
    return min(COUNT_GRID_S, key=lambda x: float(np.abs(differences(measured, totals_of(x))).mean()))

"""The replica counts of a Ray Serve target for the web UI's cockpit (`--replica-samples FILE`): the
samples file the replica recorder writes while a run goes on (`python -m bench.replicas sample`, one
JSON line per sample of the Serve controller, `bench/replicas/types.py` `Sample`), tailed at each
update of the figures.

Why a reader here at all: locustfiles may not import bench/ (tests/test_import_layers.py), and the
recorder's own reader (`ReplicaRecorder.samples()`) reads the whole file at once. This one only cuts
complete lines from the last offset, and each line is read by the report's model of the same fields
(`loadlab.schema.ReplicaSample`), so no second parser of the format exists; the tests write their
lines with `dataclasses.asdict(Sample(...))`, so a change of the format breaks them.

Bounded: at most MAX_READ_BYTES read per update, lines longer than MAX_LINE_BYTES skipped, the newest
MAX_KEPT samples kept (older ones counted as dropped), at most MAX_POINTS points answered.
Malformed lines are skipped and counted. No locust import: tested as is.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from typing import Any

from pydantic import ValidationError

from loadlab.schema import ReplicaSample

MAX_READ_BYTES = 1 << 20     # per update: the recorder writes ~4 lines of ~0.3 kB a second
MAX_LINE_BYTES = 1 << 16     # a sample lists every replica; 64 kB is hundreds of them
MAX_KEPT = 20_000            # 83 min at 4 samples/s
MAX_POINTS = 600             # what the chart and /cockpit.json get


class ReplicaTail:
    """The samples file read incrementally: `update()` reads what was appended since the last call."""

    def __init__(self, path: str, max_kept: int = MAX_KEPT, max_read_bytes: int = MAX_READ_BYTES):
        self.path = path
        self.max_read_bytes = max(max_read_bytes, MAX_LINE_BYTES)   # a whole line fits in one read
        self.samples: deque[ReplicaSample] = deque(maxlen=max_kept)
        self.offset = 0           # where the next complete line starts
        self.malformed = 0
        self.dropped = 0          # older samples let go past max_kept
        self.status = "waiting for the samples file"
        self._skipping = False    # inside a line longer than MAX_LINE_BYTES: skipped to its end

    def update(self) -> bool:
        """Read what was appended (at most max_read_bytes); True when a whole line or more was read."""
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:   # truncated: the recorder started a new recording in this file
                    self.samples.clear()
                    self.offset, self._skipping = 0, False
                f.seek(self.offset)
                chunk = f.read(self.max_read_bytes)
        except OSError as err:
            self.status = f"cannot read the samples file: {err.strerror or err}"
            return False
        self.status = "reading" if self.samples else "no sample yet"
        end = chunk.rfind(b"\n")
        if end < 0:   # no complete line yet; a line longer than the bound is given up on
            if len(chunk) >= MAX_LINE_BYTES:
                self.offset += len(chunk)
                self.malformed += 0 if self._skipping else 1
                self._skipping = True
            return False
        self.offset += end + 1
        for line in chunk[:end].split(b"\n"):
            if self._skipping:        # the rest of an over-long line
                self._skipping = False
                continue
            self._add(line)
        if self.samples:
            self.status = "reading"
        return True

    def _add(self, line: bytes) -> None:
        if not line.strip():
            return
        if len(line) > MAX_LINE_BYTES:
            self.malformed += 1
            return
        try:
            d = json.loads(line)
            # the report's fields of a Sample; its replica list is not charted
            sample = ReplicaSample.model_validate({k: d[k] for k in ReplicaSample.model_fields if k in d})
            counts = (sample.starting, sample.running, sample.stopping, sample.target or 0)
            if "t" not in d or not math.isfinite(sample.t) or min(counts) < 0:
                raise ValueError("no finite t or a negative count")
        except (ValueError, TypeError, KeyError, ValidationError):
            self.malformed += 1
            return
        if len(self.samples) == self.samples.maxlen:
            self.dropped += 1
        self.samples.append(sample)

    def figures(self, max_points: int = MAX_POINTS) -> dict[str, Any]:
        """What /cockpit.json and the chart show: [t, target, starting, running, total requests] over time
        (at most `max_points`, each the last sample of its share of the samples, the first and last kept)
        and the latest sample's counts. Measured: the Serve controller's own counts and its total (queued +
        ongoing over the look-back window: the autoscaler's input; None where not read)."""
        samples = list(self.samples)
        points = [[s.t, s.target, s.starting, s.running, s.total_requests] for s in downsample(samples, max_points)]
        last = samples[-1] if samples else None
        return {"label": "measured (Serve controller, replica recorder)", "status": self.status,
                "samples": points, "n": len(samples), "malformed": self.malformed, "dropped": self.dropped,
                "latest": last.model_dump() if last else None}


def downsample(items: list, max_points: int) -> list:
    """At most `max_points` of `items` in order: all of them when they fit, else the last of each of
    `max_points - 1` equal shares, after the first item (so the chart spans the whole recording)."""
    n = len(items)
    if n <= max_points:
        return items
    if max_points < 2:
        return items[-max_points:] if max_points else []
    shares = max_points - 1
    return [items[0]] + [items[(i + 1) * (n - 1) // shares] for i in range(shares)]

"""The Serve controller's log (`<session_dir>/logs/serve/controller_<pid>.log`, on the head node): its
millisecond-stamped scaling decisions and replica transitions for one deployment, as Ray 2.60 writes them."""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

_LINE = re.compile(r"^(?:INFO|WARNING|ERROR|DEBUG) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) controller \d+ -- (.*)$")
_DEP = r"Deployment\(name='(?P<dep>[^']+)', app='(?P<app>[^']*)'\)"
_REP = r"Replica\(id='(?P<id>[^']+)', deployment='(?P<dep>[^']+)', app='(?P<app>[^']*)'\)"
_MESSAGES = [
    ("scale", re.compile(rf"(?P<dir>Upscaling|Downscaling) {_DEP} from (?P<frm>\d+) to (?P<to>\d+) replicas\."
                         r"(?: Current ongoing requests: (?P<req>[\d.]+))?")),
    ("starting", re.compile(rf"Starting {_REP}")),
    ("running", re.compile(rf"{_REP} started successfully .*\(PID: (?P<pid>\d+)\)")),
    ("stopping", re.compile(rf"Stopping {_REP}")),
    ("stopped", re.compile(rf"{_REP} is stopped\.")),
]


def parse_controller_log(text: str, deployment: str, app: str) -> list[dict]:
    """The controller's scaling decisions and replica transitions for one deployment, in log order:
    {"t", "kind": scale|starting|running|stopping|stopped, ...}. Ray's log formatter writes local time
    with milliseconds, so the times are converted with the local time zone."""
    events = []
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        stamp, message = m.groups()
        for kind, pattern in _MESSAGES:
            hit = pattern.match(message)
            if not hit or hit["dep"] != deployment or hit["app"] != app:
                continue
            t = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            event: dict[str, Any] = {"t": t, "kind": kind}
            if kind == "scale":
                event.update({"from": int(hit["frm"]), "to": int(hit["to"]),
                              "direction": "up" if hit["dir"] == "Upscaling" else "down",
                              "ongoing_requests": float(hit["req"]) if hit["req"] else None})
            else:
                event["replica_id"] = hit["id"]
                if kind == "running":
                    event["pid"] = int(hit["pid"])
            events.append(event)
            break
    return events


def controller_log_text(session_dir: str | None) -> tuple[str, str | None]:
    """The controller log(s) of a session (all of them: a restarted controller writes a new file)."""
    if not session_dir:
        return "", None
    paths = sorted(glob.glob(os.path.join(session_dir, "logs", "serve", "controller_*.log")))
    if not paths:
        return "", None
    return "".join(Path(p).read_text(errors="replace") for p in paths), ",".join(paths)

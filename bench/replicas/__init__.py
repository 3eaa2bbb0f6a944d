"""The replica timeline of a Ray Serve run, measured: a recorder that samples the Serve controller (target
and replicas by state, 4 times a second by default) from its own process, plus the controller log's
millisecond-stamped scaling decisions; from both, each replica's up interval, the replica-seconds (the
bill) and the scale events, and which jobs were cold starts (the first job of a new replica).

    rec = ReplicaRecorder.from_url("http://127.0.0.1:8000").start()
    ... run the load ...
    timeline = rec.stop(start=run_start, end=run_end)     # ReplicaTimeline; .to_run() is the report's
    mark_cold_starts(report_jobs, timeline)

    types.py           Sample, RecordedInterval, RecordedScaleEvent, ReplicaTimeline (-> ReplicaRun)
    controller_log.py  the controller log's decisions and transitions (on the head node; without it, a
                       remote cluster, scale events come from the sampled target, to the sampling interval)
    timeline.py        samples + log -> the timeline; `mark_cold_starts`
    recorder.py        `ReplicaRecorder`: the sampler subprocess, Ray kept out of the caller's process
    sampler.py         the subprocess's loop (`ServeControllerClient.get_serve_details`, Ray 2.60)
    measure.py         a separate benchmark of the rayserve set-up (`python -m bench.replicas measure`)
    cli.py             `python -m bench.replicas {sample,record,measure}`

The names other modules use are re-exported here."""

from bench.replicas.controller_log import parse_controller_log
from bench.replicas.recorder import ReplicaRecorder
from bench.replicas.timeline import build_timeline, mark_cold_starts, sample_from_details
from bench.replicas.types import RecordedInterval, RecordedScaleEvent, ReplicaTimeline, Sample

__all__ = ["RecordedInterval", "RecordedScaleEvent", "ReplicaRecorder", "ReplicaTimeline", "Sample", "build_timeline",
           "mark_cold_starts", "parse_controller_log", "sample_from_details"]

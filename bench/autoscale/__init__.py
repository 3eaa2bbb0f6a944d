"""`python -m bench autoscale`: Ray Serve scaled from zero and back under a scripted trace, measured.

    scenario.py       the scenario (idle -> ramp -> burst) sized from S, its trace, its phases as stages
    target.py         the deployment under test: `--url`, or a `python -m server.rayserve` started and stopped
    recording.py      the replica recorder from rest to rest, cold starts marked, the report's ReplicaRun
    replica_run.py    what the recorder saw beyond the report's ReplicaRun (its figures: ReplicaRun.figures)
    calibration.py    the calibration run (warm service times, replica cold starts)
    scenario_run.py   Locust's replay of the scenario and the measured report
    printing.py       the printed summaries
    cli.py            the options and `main` (bench/__main__.py runs `bench.autoscale.main`)
"""

from bench.autoscale.cli import main

__all__ = ["main"]

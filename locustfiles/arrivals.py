"""Open-loop arrival sequences — Poisson, gamma, constant rate, or a replayed trace — cut into
stages, and the split of one sequence among load-generator processes. Plain Python and numpy (no
locust import), so the arrival process is tested without gevent.

A rate stage holds `rate_per_s` for `stage_seconds`. Interarrival gaps are, as vLLM's
`bench serve` defines them: gamma with shape = burstiness and scale = 1 / (rate x burstiness)
(mean 1/rate, coefficient of variation 1/sqrt(burstiness); burstiness 1 = Poisson, < 1 burstier);
Poisson = exponential gaps; constant = exactly 1/rate. Random arrivals start one gap after the
stage start (the Poisson process restricted to the stage); constant ones at the stage start. A trace
(`t_s,case`) is replayed at t_s / time_scale, one stage per `stage_seconds` window of the scaled trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from loadlab.arrival_modes import OPEN_MODES, RATE_LAWS, interarrivals
from loadlab.stats import summarize
from locustfiles.stages import rate_stage_name, window_stage_name


@dataclass(frozen=True)
class Arrival:
    """One request of the sequence: its position in the whole run, when it is due (seconds from
    the run's origin), its case and the stage it belongs to."""

    index: int
    t_s: float
    case: str
    stage: str

    def to_wire(self) -> list:
        return [self.index, self.t_s, self.case, self.stage]

    @classmethod
    def from_wire(cls, row: list) -> Arrival:
        return cls(int(row[0]), float(row[1]), str(row[2]), str(row[3]))


@dataclass(frozen=True)
class RateStage:
    """A stage of an open-loop run: `rate_per_s` is the planned rate, or for a trace window its
    arrivals per second."""

    name: str
    rate_per_s: float
    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def parse_rates(spec: str | list[float] | tuple[float, ...]) -> list[float]:
    """'0.2,0.5,1.0' -> [0.2, 0.5, 1.0]; every rate > 0."""
    if isinstance(spec, list | tuple):
        values = [float(v) for v in spec]
    else:
        try:
            values = [float(v) for v in str(spec).replace(" ", "").split(",") if v]
        except ValueError:
            raise ValueError(f"--rates must be a comma list of arrivals per second such as 0.2,0.5,1, not {spec!r}") from None
    if not values or any(not v > 0 or math.isinf(v) for v in values):
        raise ValueError(f"--rates needs one or more finite rates > 0 (arrivals per second), got {spec!r}")
    return values


def stage_times(arrival: str, rate_per_s: float, duration_s: float, rng: np.random.Generator,
                burstiness: float = 1.0) -> list[float]:
    """Arrival offsets in [0, duration_s) of one rate stage."""
    if RATE_LAWS[arrival].regular:
        return [k / rate_per_s for k in range(math.ceil(duration_s * rate_per_s)) if k / rate_per_s < duration_s]
    times: list[float] = []
    t = 0.0
    batch = int(rate_per_s * duration_s * 1.2) + 16   # one draw covers the stage nearly always
    while True:
        for gap in interarrivals(arrival, rate_per_s, batch, rng, burstiness):
            t += float(gap)
            if t >= duration_s:
                return times
            times.append(t)


@dataclass
class OpenLoopPlan:
    """The whole arrival sequence of an open-loop run, built once (on the master or the single
    process) from the options; the same options and seed give the same sequence.

    Rate modes: one stage per entry of `rates`, cases round robin over `cases` by arrival index.
    Trace mode: `trace` rows (t_s, case) at t_s / time_scale, a stage per `stage_seconds` window."""

    arrival: str
    stage_seconds: float
    rates: list[float] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    burstiness: float = 1.0
    seed: int = 1
    trace: list[tuple[float, str]] | None = None
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.arrival not in OPEN_MODES:
            raise ValueError(f"--arrival {self.arrival!r} is not open loop; choose from {OPEN_MODES}")
        if not self.stage_seconds > 0:
            raise ValueError("--stage-seconds must be > 0")
        if self.arrival == "trace":
            if not self.trace:
                raise ValueError("--arrival trace needs --trace FILE with at least one arrival")
            if not self.time_scale > 0:
                raise ValueError("--time-scale must be > 0")
            if any(t < 0 for t, _ in self.trace):
                raise ValueError("a trace's t_s must be >= 0")
        else:
            self.rates = parse_rates(self.rates)
            if not self.cases:
                raise ValueError("open-loop rate stages need at least one case")
            if self.arrival == "gamma" and not self.burstiness > 0:
                raise ValueError("--burstiness must be > 0")
        self._stages: list[RateStage] | None = None
        self._arrivals: list[Arrival] | None = None

    @property
    def mode(self) -> str:
        """The report's `config.load.mode`."""
        return "trace" if self.arrival == "trace" else "open"

    @property
    def stages(self) -> list[RateStage]:
        if self._stages is None:
            self._build()
        return self._stages

    @property
    def end_s(self) -> float:
        return self.stages[-1].end_s

    def arrivals(self) -> list[Arrival]:
        if self._arrivals is None:
            self._build()
        return self._arrivals

    def _build(self) -> None:
        if self.arrival == "trace":
            self._stages, self._arrivals = self._build_trace()
        else:
            self._stages, self._arrivals = self._build_rates()

    def _build_rates(self) -> tuple[list[RateStage], list[Arrival]]:
        rng = np.random.default_rng(self.seed)
        stages: list[RateStage] = []
        arrivals: list[Arrival] = []
        seen: dict[str, int] = {}
        for k, rate in enumerate(self.rates):
            name = rate_stage_name(rate)
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:   # a rate run twice (0.5,1,0.5) is two stages
                name = f"{name}#{seen[name]}"
            stage = RateStage(name=name, rate_per_s=rate, start_s=k * self.stage_seconds, duration_s=self.stage_seconds)
            stages.append(stage)
            for t in stage_times(self.arrival, rate, self.stage_seconds, rng, self.burstiness):
                i = len(arrivals)
                arrivals.append(Arrival(i, stage.start_s + t, self.cases[i % len(self.cases)], name))
        return stages, arrivals

    def _build_trace(self) -> tuple[list[RateStage], list[Arrival]]:
        rows = sorted(((t / self.time_scale, case) for t, case in self.trace), key=lambda r: r[0])
        windows = int(rows[-1][0] // self.stage_seconds) + 1
        stages = []
        for w in range(windows):
            start = w * self.stage_seconds
            count = sum(1 for t, _ in rows if start <= t < start + self.stage_seconds)
            stages.append(RateStage(name=window_stage_name(start, start + self.stage_seconds),
                                    rate_per_s=count / self.stage_seconds, start_s=start, duration_s=self.stage_seconds))
        arrivals = [Arrival(i, t, case, stages[int(t // self.stage_seconds)].name) for i, (t, case) in enumerate(rows)]
        return stages, arrivals


def split(arrivals: list[Arrival], n: int) -> list[list[Arrival]]:
    """The shares of `n` load-generator processes: arrival i goes to process i mod n, so together
    they send exactly the sequence one process would."""
    if n < 1:
        raise ValueError("need at least one load-generator process")
    return [arrivals[w::n] for w in range(n)]


def cap_share(max_in_flight: int | None, n: int, w: int) -> int | None:
    """Process w's part of a `--max-in-flight` cap over n processes (the parts add up to the cap;
    with arrivals split round robin each process carries 1/n of the traffic)."""
    if not max_in_flight:
        return None
    if max_in_flight < n:
        raise ValueError(f"--max-in-flight {max_in_flight} is below the {n} load-generator processes sharing it")
    return max_in_flight // n + (1 if w < max_in_flight % n else 0)


def interarrival_cv(times: list[float]) -> float:
    """Coefficient of variation (std / mean) of the gaps between sorted arrival times."""
    gaps = summarize(np.diff(np.sort(np.asarray(times, dtype=float))))
    return gaps["std"] / gaps["mean"]

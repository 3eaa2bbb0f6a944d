"""Typed blocks of a report that one package writes and another reads (part of the report schema):
`Report.coldstart`, and the blocks of `Report.extra` read across packages.

`extra` stays a free dict in the JSON (a producer may add tables of its own), but a block read across
packages has a model here: the writer stores `Block(...).to_extra()`, the reader calls `Block.of(report)`,
so a renamed key fails where it is written instead of showing as a blank cell in the HTML report."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_serializer


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")
    KEY: ClassVar[str]

    @classmethod
    def of(cls, report: Any) -> Any:
        """The block in `report.extra`, None when the report has none."""
        data = report.extra.get(cls.KEY)
        return None if data is None else cls.model_validate(data)

    def to_extra(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class FifoIdealStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_s: float | None = None
    ideal_mean_s: float | None = None
    ratio: float | None = None                # the stage's mean / ideal_mean_s
    stage_service_s: float | None = None      # the stage's own mean model time
    stage_ideal_mean_s: float | None = None
    stage_ratio: float | None = None


class FifoIdeal(_Block):
    """`bench concurrency`: each stage's mean against one FIFO worker's ideal mean (bench/report reads it)."""

    KEY: ClassVar[str] = "fifo_ideal"
    service_s: float | None = None
    source: str = ""
    stages: dict[str, FifoIdealStage] = {}
    formula: str = ""


class BoundedQueue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    served: int | None = None
    rejected: int | None = None
    mean_s: float | None = None


class ArticleLocalRow(BaseModel):
    """One burst size of the article's local run: quoted, and simulated under each queue model."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int
    quoted_succeeded: int | None = None
    quoted_mean_s: float | None = None
    quoted_note: str | None = None
    fifo_simulated_mean_s: float | None = None
    fifo_closed_form_mean_s: float | None = None
    processor_sharing_mean_s: float | None = None
    quoted_over_fifo: float | None = None
    bounded_queue_16: BoundedQueue | None = None


class ArticleReplay(_Block):
    """`simulator article`: the article's scenario replayed from its own figures; the whole of the
    report's `extra` (bench/report's article section reads it). `vertex` and `cost` stay dicts: only
    that section reads them, each figure by its label."""

    KEY: ClassVar[str] = ""
    source: str | None = None
    origin: str | None = None
    local: list[ArticleLocalRow] = []
    vertex: dict[str, Any] = {}
    cost: dict[str, Any] = {}

    @classmethod
    def of(cls, report: Any) -> ArticleReplay:
        return cls.model_validate({k: v for k, v in report.extra.items() if k != "tables"})


class ColdStart(BaseModel):
    """`Report.coldstart`: what a cold start took. Written by `bench coldstart` (the first group: one
    process's stages) or by the autoscale calibration (the second: each replica's start and the
    controller's reaction to a request at zero); read by the simulator's profiles and autoscaling
    validation and by the HTML report. Only the fields a writer set are written back."""

    model_config = ConfigDict(extra="forbid")

    # bench coldstart
    stages_s: dict[str, float | None] = {}   # process_start, model_load, ready, first_inference, warm_inference
    cold_total_s: float | None = None
    warm_s: float | None = None
    spawned_at: float | None = None
    ready_at: float | None = None
    process_started_at: float | None = None
    ready_info: dict[str, Any] = {}
    article_s: dict[str, float] = {}
    mapping: dict[str, str] = {}
    # autoscale calibration
    replica_start_s: list[float] = []
    replica_start_mean_s: float | None = None
    first_request_e2e_s: list[float | None] = []
    first_request_queue_s: list[float | None] = []
    zero_to_decision_s: list[float] = []
    back_at_rest: bool | None = None
    definition: str | None = None

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        # the two writers fill different halves; an unset half is not written as empty lists and Nones
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}

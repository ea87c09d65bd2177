"""Per-stage telemetry of a pipeline run: a stage's workers added up, in records."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..dataflow import RECORD_COUNTS, member_count
from ..runtime import KernelTelemetry
from ._plan import PlannedStage

__all__ = ["StageTelemetry", "stage_telemetry"]


@dataclasses.dataclass(frozen=True)
class StageTelemetry:
    """One stage's traffic, all workers together (a snapshot)."""

    stage: str  #: the pipeline's name for the stage
    stage_type: str  #: the registered stage it runs
    backend: str  #: the compute backend's name
    workers: int  #: worker kernels
    #: while the run goes on: "active", or the first worker state that is not; once it
    #: is over: "finished" (the run ended its stream through every stage), "failed" (a
    #: worker failed past its restart policy) or "stopped" (closed before finishing)
    state: str
    records_in: int  #: records taken in (a RecordBatch counts its rows)
    records_out: int  #: records sent on
    records_failed: int  #: records turned into StageError here
    records_rejected: int  #: records a full REJECT queue downstream refused
    messages_processed: int  #: messages taken from the input queues
    messages_sent: int  #: messages sent on
    messages_dropped: int  #: messages evicted by DROP_OLDEST queues
    ring_records_dropped: int  #: records evicted from device rings into it (DROP_OLDEST)
    messages_rejected: int  #: messages refused by REJECT queues
    messages_expired: int  #: messages whose deadline passed while queued (dead-lettered)
    messages_dead_lettered: int  #: messages a worker took and then failed on (dead letters)
    restarts: int  #: worker restarts by the stage's restart policy
    input_queue_depth: int  #: messages waiting in the input queues now
    output_queue_depth: int  #: messages waiting in the output queues now
    seconds: float  #: wall time since the run started (until it ended)
    records_per_s: float  #: records_in / seconds
    messages_per_s: float  #: messages_processed / seconds
    #: the stages sharing its workers, in order, when it is fused (see the ``fuse``
    #: setting); their message counts and restarts are the shared workers'
    fused_with: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return dataclasses.asdict(self)


def stage_telemetry(
    stage: PlannedStage,
    kernels: Sequence[KernelTelemetry],
    seconds: float,
    ring_records_dropped: int = 0,
    group: tuple[str, ...] = (),
    outcome: str | None = None,
) -> StageTelemetry:
    """Add up one stage's workers' runtime telemetry (the runtime's message counts and
    the record counts each worker reports in ``counts``), over a run that has lasted
    ``seconds``; ``ring_records_dropped``: rows the device rings into
    its workers evicted (rows whose message a queue refused or evicted are counted with
    that message instead); ``outcome``: how the run ended, None while it goes on (see
    ``PipelineRun.outcome``)."""
    state = _state([k.state for k in kernels], outcome)
    fused = len(group) > 1
    if fused:  # each member counts its own records in the shared workers
        records = {
            name: sum(member_count(k.counts, stage.name, name) for k in kernels)
            for name in RECORD_COUNTS
        }
    else:
        records = {name: sum(k.counts.get(name, 0) for k in kernels) for name in RECORD_COUNTS}
    first = not fused or stage.name == group[0]  # the group's input queues are its
    last = not fused or stage.name == group[-1]  # the group's output queues are its
    records_in = records["records_in"]
    processed = sum(k.messages_processed for k in kernels)
    return StageTelemetry(
        stage=stage.name,
        stage_type=stage.definition.name,
        backend=stage.backend_name,
        workers=stage.workers,
        state=state,
        records_in=records_in,
        records_out=records["records_out"],
        records_failed=records["records_failed"],
        records_rejected=records["records_rejected"],
        messages_processed=processed,
        messages_sent=sum(k.messages_sent for k in kernels),
        messages_dropped=sum(k.messages_dropped for k in kernels),
        ring_records_dropped=ring_records_dropped,
        messages_rejected=sum(k.messages_rejected for k in kernels),
        messages_expired=sum(k.messages_expired for k in kernels),
        messages_dead_lettered=sum(k.messages_dead_lettered for k in kernels),
        restarts=sum(k.restarts for k in kernels),
        input_queue_depth=sum(k.input_queue_depth for k in kernels) if first else 0,
        output_queue_depth=sum(k.output_queue_depth for k in kernels) if last else 0,
        seconds=seconds,
        records_per_s=records_in / seconds if seconds > 0 else 0.0,
        messages_per_s=processed / seconds if seconds > 0 else 0.0,
        fused_with=group if fused else (),
    )


def _state(workers: Sequence[str], outcome: str | None) -> str:
    """The stage's state from its workers' and the run's. Once the run is over its
    workers are terminated (or idle, waiting for input that will not come): what
    matters then is whether the stage finished its stream, failed, or was stopped."""
    if "failed" in workers:
        return "failed"
    if outcome is None:
        return next((state for state in workers if state != "active"), "active")
    return "finished" if outcome == "finished" else "stopped"

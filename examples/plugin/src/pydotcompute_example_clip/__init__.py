"""A third-party pydotcompute stage: ``clip`` limits every value to ``[low, high]``.

All its array work goes through the stage's backend (``self.backend.clip``), so it runs
on every backend: numpy, and torch or Triton on a GPU, where a batch stays on the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydotcompute.stage import (
    BatchStage,
    Emitter,
    Param,
    Record,
    RecordBatch,
    StageDefinition,
    hookimpl,
    root_id,
    sort_batch,
    stack_records,
)

__all__ = ["CLIP", "Clip", "pydotcompute_register_stages"]


class Clip(BatchStage):
    """Clip each value to ``[low, high]`` (NaN stays NaN; the backend's ``clip`` policy).

    Takes per-message records and RecordBatches; emits a :class:`Record` per record (its
    values a numpy array) and a RecordBatch per RecordBatch (in the backend's arrays),
    ids, keys and columns kept. ``low > high`` fails every record, naming both.
    """

    async def process(self, batch: list[Any], out: Emitter) -> None:
        backend = self.backend
        low, high = self.params["low"], self.params["high"]
        parts = sort_batch(batch)
        groups, bad = stack_records(parts.records)
        for record, reason in bad:
            await out.send_error([record], reason)
        for group in groups:
            # One call for the whole group; per-message records carry host arrays.
            clipped = backend.to_numpy(backend.clip(group.values, low, high))
            await out.send_many(
                [
                    Record(values=row, key=getattr(r, "key", None), correlation_id=root_id(r))
                    for r, row in zip(group.records, clipped, strict=True)
                ]
            )
        for columnar in parts.batches:
            await out.send(
                RecordBatch(
                    values=backend.clip(columnar.values, low, high),
                    record_ids=columnar.record_ids,
                    keys=columnar.keys,
                    columns=columnar.columns,
                    field=columnar.field,
                    counts=columnar.counts,
                    correlation_id=root_id(columnar),
                )
            )


CLIP = StageDefinition(
    name="clip",
    factory=Clip.factory,
    reads_rings=True,
    summary="clip every value to [low, high]",
    params={
        "low": Param(float, default=0.0, doc="smallest value kept"),
        "high": Param(float, default=1.0, doc="largest value kept"),
    },
    accepts="per-message records and RecordBatch",
    emits="Record per record; RecordBatch per RecordBatch",
)


@hookimpl
def pydotcompute_register_stages() -> Mapping[str, StageDefinition]:
    """The stages of this distribution."""
    return {"clip": CLIP}

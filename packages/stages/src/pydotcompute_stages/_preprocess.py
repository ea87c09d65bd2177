"""The ``preprocess`` stage: row-wise min-max normalization."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from ._core import MapStage, RecordBatch, RecordGroup, StageDefinition, root_id, unchecked_builder
from ._messages import PreprocessedData

# Fields of a PreprocessedData: a row of the result, the input's key and root id.
_preprocessed = unchecked_builder(PreprocessedData, "normalized", "key", "correlation_id")

__all__ = ["PREPROCESS", "Preprocess"]


class Preprocess(MapStage):
    """Min-max normalize each record to [0, 1] through the stage's backend.

    Numeric policy (the backend's): per record, ``(x - min) / (max - min)`` over its
    non-NaN values; a constant record (or one with no usable range) becomes all 0.0;
    NaN entries stay NaN.

    Takes per-message records (``values`` or ``normalized``: a list or 1-D array) and
    RecordBatches. Emits, per record, a :class:`PreprocessedData` (``normalized`` a
    float array of the input's dtype, ``key`` and root id kept); per RecordBatch, a
    RecordBatch of the same ids and keys with ``field="normalized"``.
    """

    keeps_identity = True  # each output: the record's key and root id, nothing else
    row_wise = True  # each row's result from that row alone

    def fused_op(self) -> tuple[Any, ...]:
        return ("minmax_normalize",)

    def compute(self, values: Any) -> Any:
        backend = self.backend
        return backend.minmax_normalize(backend.asarray(values, None))

    def records_out(self, group: RecordGroup, result: npt.NDArray[Any]) -> list[Any]:
        make = _preprocessed
        return [
            make(row, getattr(record, "key", None), root_id(record))
            for record, row in zip(group.records, result, strict=True)
        ]

    def batch_out(self, batch: RecordBatch, result: Any) -> RecordBatch:
        return RecordBatch(
            values=result,
            record_ids=batch.record_ids,
            keys=batch.keys,
            columns=batch.columns,
            field="normalized",
            counts=batch.counts,
            correlation_id=root_id(batch),
        )


PREPROCESS = StageDefinition(
    name="preprocess",
    factory=Preprocess.factory,
    map_stage=Preprocess,
    reads_rings=True,
    summary="min-max normalize each record to [0, 1] (constant records -> 0, NaN stays NaN)",
    params={},
    accepts="per-message records (values: list or 1-D array) and RecordBatch",
    emits="PreprocessedData per record; RecordBatch(field='normalized') per RecordBatch",
)

"""The ``compute`` stage: per-record statistics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy.typing as npt
from pydotcompute.errors import InvalidArgumentError

from ._core import (
    ComputeBackend,
    MapStage,
    Param,
    RecordBatch,
    RecordGroup,
    StageDefinition,
    StageSetup,
    root_id,
    unchecked_builder,
)
from ._messages import ComputeResult

__all__ = ["COMPUTE", "STATISTICS", "Compute"]

# Fields of a ComputeResult: floats from the result, the input's key and root id.
_compute_result = unchecked_builder(ComputeResult, "result", "stats", "key", "correlation_id")

#: Every statistic ``compute`` offers, in the order listings show them.
STATISTICS: Final = ("mean", "std", "var", "min", "max", "sum", "range")


def _reducers(backend: ComputeBackend) -> dict[str, Callable[[Any], Any]]:
    """Each statistic's row reduction on ``backend``."""
    return {
        "mean": backend.row_mean,
        "std": backend.row_std,
        "var": backend.row_var,
        "min": backend.row_min,
        "max": backend.row_max,
        "sum": backend.row_sum,
        "range": backend.row_range,
    }


class Compute(MapStage):
    """Statistics of each record, through the stage's backend, in float32 (float64 for
    float64 input: the backend's compute dtype).

    ``mean``, ``std`` (population, ddof 0), ``var`` (population variance), ``min``,
    ``max``, ``sum``, ``range`` (``max - min``), each one row reduction of the backend.
    NaN in a record propagates to every statistic (``sum`` of an empty record is 0.0, the
    rest NaN).

    Takes per-message records (``values`` or ``normalized``) and RecordBatches. Emits,
    per record, a :class:`ComputeResult` (``result`` = the first statistic asked for,
    ``stats`` = all of them); per RecordBatch, a RecordBatch with one column per
    statistic (``columns`` names them), same ids and keys.
    """

    keeps_identity = True  # each output: the record's key and root id, nothing else
    row_wise = True  # each row's result from that row alone

    def __init__(self, setup: StageSetup) -> None:
        super().__init__(setup)
        self.stats: tuple[str, ...] = tuple(setup.params["stats"])
        reducers = _reducers(setup.backend)
        self._reducers = [reducers[name] for name in self.stats]

    def fused_op(self) -> tuple[Any, ...]:
        return ("row_stats", *self.stats)

    def compute(self, values: Any) -> Any:
        x = self.backend.asarray(values, None)  # the values' own float dtype: no narrowing
        return self.backend.stack_columns([reduce(x) for reduce in self._reducers])

    def records_out(self, group: RecordGroup, result: npt.NDArray[Any]) -> list[Any]:
        names = self.stats
        make = _compute_result
        if len(names) == 1:
            name = names[0]
            # Per record: root_id inlined, the cheapest build there is.
            return [
                make(
                    value,
                    {name: value},
                    getattr(record, "key", None),
                    record.message_id if (cid := record.correlation_id) is None else cid,
                )
                for record, value in zip(group.records, result[:, 0].tolist(), strict=True)
            ]
        return [
            make(
                row[0],
                dict(zip(names, row, strict=True)),
                getattr(record, "key", None),
                root_id(record),
            )
            for record, row in zip(group.records, result.tolist(), strict=True)
        ]

    def batch_out(self, batch: RecordBatch, result: Any) -> RecordBatch:
        return RecordBatch(
            values=result,
            record_ids=batch.record_ids,
            keys=batch.keys,
            columns=self.stats,
            field="stats",
            counts=batch.counts,
            correlation_id=root_id(batch),
        )


def _distinct_and_not_empty(stats: tuple[str, ...]) -> None:
    if not stats:
        raise InvalidArgumentError("name at least one statistic")
    repeated = sorted({s for s in stats if stats.count(s) > 1})
    if repeated:
        raise InvalidArgumentError(f"{', '.join(map(repr, repeated))} named more than once")


COMPUTE = StageDefinition(
    name="compute",
    factory=Compute.factory,
    map_stage=Compute,
    reads_rings=True,
    summary="per-record statistics: " + ", ".join(STATISTICS),
    params={
        "stats": Param(
            tuple,
            default=("mean",),
            items=str,
            choices=STATISTICS,
            doc="statistics to compute, in output order; the first is ComputeResult.result",
            validate=_distinct_and_not_empty,
        ),
    },
    accepts="per-message records (values or normalized) and RecordBatch",
    emits="ComputeResult per record; RecordBatch with one column per statistic per RecordBatch",
)

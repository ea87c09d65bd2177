"""What preprocess and compute share: one record in, one result out, a batch at a time."""

from __future__ import annotations

from typing import Any

import numpy.typing as npt

from ._core import (
    BatchStage,
    Emitter,
    RecordBatch,
    RecordGroup,
    sort_batch,
    stack_records,
    to_host,
)

__all__ = ["MapStage"]


class MapStage(BatchStage):
    """A stage that maps every record to one result.

    Per-message records in a batch are stacked (by width) and computed on with one
    backend call per width; each RecordBatch gets one call of its own, and its result
    stays in the backend's arrays (on its device). Subclasses say
    how to compute (:meth:`compute`) and how to package results (:meth:`records_out`,
    :meth:`batch_out`). Records whose payload is not a numeric vector come out as
    StageErrors; the others are unaffected.
    """

    def compute(self, values: Any) -> Any:
        """The backend work on a ``(n, width)`` array (numpy, or the backend's own);
        returns ``n`` rows in the backend's arrays."""
        raise NotImplementedError

    def records_out(self, group: RecordGroup, result: npt.NDArray[Any]) -> list[Any]:
        """One output message per record of ``group``, from ``result``'s rows."""
        raise NotImplementedError

    def batch_out(self, batch: RecordBatch, result: Any) -> RecordBatch:
        """The output batch for input ``batch``, from :meth:`compute`'s result."""
        raise NotImplementedError

    async def process(self, batch: list[Any], out: Emitter) -> None:
        parts = sort_batch(batch)
        if parts.records:
            groups, bad = stack_records(parts.records)
            for record, reason in bad:
                await out.send_error([record], reason)
            for group in groups:
                await self._process_group(group, out)
        for columnar in parts.batches:
            try:
                result = await self.offload(self.compute, columnar.values)
                produced = self.batch_out(columnar, result)
            except Exception as exc:
                await out.send_error([columnar], exc)
                continue
            await out.send(produced)

    async def _process_group(self, group: RecordGroup, out: Emitter) -> None:
        try:
            result = to_host(self.backend, await self.offload(self.compute, group.values))
            produced = self.records_out(group, result)
        except Exception as exc:
            await out.send_error(group.records, exc)
            return
        await out.send_many(produced)

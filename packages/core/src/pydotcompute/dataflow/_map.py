"""One record in, one result out: the base class of map stages."""

from __future__ import annotations

import asyncio
import copy
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..compute import to_host
from ..errors import DeviceFaultError
from ._batching import RecordGroup, sort_batch, stack_records
from ._loop import BatchStage, Emitter, _Undeliverable
from ._records import RecordBatch

__all__ = ["HostSends", "MapStage"]


class MapStage(BatchStage):
    """A stage that maps every record to one result.

    Per-message records in a batch are stacked (by width) and computed on with one
    backend call per width; each RecordBatch gets one call of its own, and its result
    stays in the backend's arrays (on its device). Subclasses say how to compute
    (:meth:`compute`) and how to package results (:meth:`records_out`,
    :meth:`batch_out`). Records whose payload is not a numeric vector come out as
    StageErrors; the others are unaffected.
    """

    #: True when :meth:`records_out` gives each output its input record's ``key`` and
    #: root id and takes nothing else from the record. A fused chain of such stages then
    #: hands one member's rows to the next as an array, without building the per-record
    #: messages in between (see :class:`~pydotcompute.dataflow.FusedStage`).
    keeps_identity: ClassVar[bool] = False
    #: True when row ``i`` of :meth:`compute`'s result comes from row ``i`` of its input
    #: alone, and the result is a numpy array for numpy input: a large host batch may
    #: then be cut into row slices worked on at once in threads (the ``threads`` setting,
    #: see :meth:`BatchStage.offload`). Leave it False for work that looks across rows.
    row_wise: ClassVar[bool] = False

    def fused_op(self) -> tuple[Any, ...] | None:
        """What :meth:`compute` does, as ``(operation, *arguments)`` a device backend may
        fuse with the next members' into one kernel when the planner fuses the stages
        (``fuse_ops``, see :mod:`pydotcompute.backend`); None (the default): not one."""
        return None

    def compute(self, values: Any) -> Any:
        """The backend work on a ``(n, width)`` array (numpy, or the backend's own);
        returns ``n`` rows in the backend's arrays."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement compute()")

    def records_out(self, group: RecordGroup, result: npt.NDArray[Any]) -> list[Any]:
        """One output message per record of ``group``, from ``result``'s rows."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement records_out()")

    def batch_out(self, batch: RecordBatch, result: Any) -> RecordBatch:
        """The output batch for input ``batch``, from :meth:`compute`'s result."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement batch_out()")

    async def process(self, batch: list[Any], out: Emitter) -> None:
        parts = sort_batch(batch)
        if parts.records:
            groups, bad = stack_records(parts.records)
            for record, reason in bad:
                await out.send_error([record], reason)
            for group in groups:
                await self._process_group(group, out)
        if not parts.batches:
            return
        # Results leaving for the host: every batch's work and copy is queued on the
        # device before the first copy is awaited, so the device computes batch n+1
        # while the host hands batch n on.
        host = HostSends(self, out) if getattr(out, "_to_host", False) else None
        try:
            for columnar in parts.batches:
                try:
                    result = await self.offload(
                        self.compute, columnar.values, by_rows=self.row_wise
                    )
                    produced = self.batch_out(columnar, result)
                except Exception as exc:
                    self._end_on_device_fault(exc)
                    if host is not None:
                        await host.flush()  # what came before goes first
                    await out.send_error([columnar], exc)
                    continue
                if host is None:
                    await out.send(produced)
                else:
                    host.add(columnar, produced)
            if host is not None:
                await host.flush()
        finally:
            if host is not None:
                host.cancel()

    def _start_on_host(self, batch: RecordBatch) -> RecordBatch | asyncio.Task[RecordBatch]:
        """:meth:`_on_host` started now (its copy queued on the device at the task's
        first step), or ``batch`` itself when it needs no copy."""
        if getattr(self.backend, "to_numpy_async", None) is None:
            return batch
        if type(batch.values) is np.ndarray:
            return batch
        return asyncio.ensure_future(self._on_host(batch))

    async def _on_host(self, batch: RecordBatch) -> RecordBatch:
        """``batch`` with its values on the host, through the backend's
        ``to_numpy_async`` where it has one (a device backend: the copy is awaited, so
        the event loop goes on while the device finishes), else unchanged (the emitter
        converts it)."""
        convert = getattr(self.backend, "to_numpy_async", None)
        if convert is None or type(batch.values) is np.ndarray:
            return batch
        host = copy.copy(batch)  # the batch may be in another stage's hands too
        host.values = await convert(batch.values)
        return host

    def _end_on_device_fault(self, exc: Exception) -> None:
        """Raise (ending the worker, so failing the run) when ``exc`` is the device's
        fault, by the backend's ``device_fault``: a sticky device fault would otherwise
        turn every later batch into a StageError."""
        judge = getattr(self.backend, "device_fault", None)
        fault = exc if isinstance(exc, DeviceFaultError) else judge(exc) if judge else None
        if fault is not None:
            raise _Undeliverable(fault) from exc  # not the data's fault: ends the worker

    async def _process_group(self, group: RecordGroup, out: Emitter) -> None:
        try:
            values = await self.offload(self.compute, group.values, by_rows=self.row_wise)
            result = to_host(self.backend, values)
            produced = self.records_out(group, result)
        except Exception as exc:
            self._end_on_device_fault(exc)
            await out.send_error(group.records, exc)
            return
        await out.send_many(produced)


class HostSends:
    """Batches bound for the host, sent with ``out`` in the order added once each one's
    copy to the host is done; the copies start as they are added. A copy that fails
    sends a StageError for its input batch in its place (a device fault ends the worker,
    see :meth:`MapStage._end_on_device_fault`)."""

    def __init__(self, stage: MapStage, out: Emitter) -> None:
        self._stage = stage
        self._out = out
        self._items: list[tuple[RecordBatch, Any]] = []

    def add(self, source: RecordBatch, produced: RecordBatch) -> None:
        self._items.append((source, self._stage._start_on_host(produced)))

    async def flush(self) -> None:
        """Send everything added, in order."""
        while self._items:
            source, item = self._items[0]
            if isinstance(item, asyncio.Future):
                try:
                    produced = await item
                except Exception as exc:
                    self._items.pop(0)
                    self._stage._end_on_device_fault(exc)
                    await self._out.send_error([source], exc)
                    continue
            else:
                produced = item
            self._items.pop(0)
            await self._out.send(produced)

    def cancel(self) -> None:
        """Drop what was not sent (the worker is ending): cancel the copies."""
        for _, item in self._items:
            if isinstance(item, asyncio.Future):
                item.cancel()
        self._items.clear()

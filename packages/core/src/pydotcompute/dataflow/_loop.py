"""The loop every pipeline stage runs: take a batch, compute on it, send on, end cleanly.

A stage author writes a :class:`BatchStage` (``process`` a whole batch, optionally
``finish`` at end of stream and a timer) and gets, from :func:`run_stage`:

* batching: up to ``batch_size`` messages per ``ctx.receive_batch``;
* end of stream: once every producer has sent its :class:`EndOfStream` (see
  :mod:`._stream_end`) and the queue is empty, ``finish`` runs, then the worker sends its
  own marker to every downstream worker (a sink: to its output queue, for the host);
* errors on data: if ``process`` raises, the batch's records travel on as one
  :class:`StageError` per message naming the stage, and the loop keeps going. A failed
  *delivery* (a stopped or failed receiver) is not data's fault: it ends the kernel;
* pass-through of other stages' :class:`StageError`.
"""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from ..compute import to_host
from ..errors import QueueClosedError, QueueFullError, QueueTimeoutError
from ._batching import count_records, record_count, sort_batch
from ._records import EndOfStream, RecordBatch, StageError, ids_to_array, root_id
from ._rings import take_from_rings
from ._row_split import split_rows, split_rows_in_threads
from ._stream_end import InputEnd
from ._wire_check import WireCheckedContext

if TYPE_CHECKING:
    from ..runtime import KernelContext
    from ._definition import KernelFunction, StageSetup

__all__ = ["RECORD_COUNTS", "BatchStage", "Emitter", "run_stage"]

#: The record counts a worker reports in its kernel telemetry (``counts``): records taken
#: in, sent on, turned into StageErrors, and refused by a full REJECT queue downstream.
RECORD_COUNTS = ("records_in", "records_out", "records_failed", "records_rejected")
#: ``offload = "auto"``: host arrays of at least this many values are worked on in a
#: thread. Below it, handing over to a thread (tens of microseconds) costs more than
#: the overlap gains; above it NumPy, which releases the GIL, runs beside the loop.
OFFLOAD_MIN_VALUES = 16_384
_R = TypeVar("_R")
_IN, _OUT, _FAILED, _REJECTED = RECORD_COUNTS


class _Undeliverable(Exception):
    """Internal: a send failed because of the receiver, not the data."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Emitter:
    """Where a stage sends its outputs: every downstream stage (one of its workers in
    turn), or the sink's own output queue. Counts records as they go, in the kernel's
    own counters (``ctx.counts``, see :data:`RECORD_COUNTS`): the runtime reports them in
    the worker's telemetry.

    RecordBatch values leave as they are when the downstream stages share this stage's
    backend (``StagePorts.native_out``), else as numpy: a pipeline's results are always
    host arrays. To a worker reached through a device ring, a batch on the device goes
    into the ring (see :mod:`._rings`).
    """

    __slots__ = (
        "_backend",
        "_counts",
        "_ctx",
        "_groups",
        "_next",
        "_rings",
        "_routed",
        "_to_host",
        "kernel_id",
        "stage",
        "targets",
    )

    def __init__(self, ctx: KernelContext, setup: StageSetup) -> None:
        ports = setup.ports
        self._ctx: KernelContext | WireCheckedContext = (
            WireCheckedContext(ctx, setup.backend) if ports.wire_check else ctx
        )
        self._backend = setup.backend
        self._groups = ports.downstream
        self._rings = ports.rings
        self._routed = (ports.routed and not ports.rings) or ports.is_sink
        self._to_host = not ports.native_out or ports.is_sink
        self._next = [0] * len(ports.downstream)
        self._counts: MutableMapping[str, int] = ctx.counts
        for name in RECORD_COUNTS:
            self._counts.setdefault(name, 0)
        #: Every downstream worker's kernel id, stage by stage (empty for a sink).
        self.targets: tuple[str, ...] = ports.targets
        self.kernel_id: str = setup.kernel_id
        self.stage: str = setup.stage

    async def send(self, msg: Any) -> None:
        """Send ``msg`` to every downstream stage (or out of the pipeline, from a sink).

        A full REJECT queue downstream refuses it: it is counted and dropped (that is
        what REJECT asks for), and the stage goes on.
        """
        cls = type(msg)
        if cls is RecordBatch and self._to_host:
            msg = self._on_host(msg)
        try:
            if self._routed:
                await self._ctx.send(msg)
            else:
                for i, group in enumerate(self._groups):
                    index = self._next[i]
                    self._next[i] = (index + 1) % len(group)
                    await self._send_to(group[index], msg)
        except QueueFullError:
            self._counts[_REJECTED] += record_count(msg)
            return
        except Exception as exc:
            raise _Undeliverable(exc) from exc
        self._count_sent(cls, msg)
        if cls is RecordBatch:
            await asyncio.sleep(0)  # let the receiver start on it (see _count_sent)

    def _count_sent(self, cls: type, msg: Any) -> None:
        """Count what one send took on. Plain, not a coroutine: it runs once per message.

        After sending a RecordBatch the sender yields, so the receiver starts on it now:
        work flows through the stages batch by batch, and the arrays in flight stay few
        and cache-warm."""
        if cls is RecordBatch:
            self._counts[_OUT] += len(msg)
        elif cls is not StageError:  # a StageError's records were counted as failed
            self._counts[_OUT] += record_count(msg)

    async def send_many(self, msgs: Sequence[Any]) -> None:
        """:meth:`send` each message, in order (in one runtime call where it can; a full
        REJECT queue refuses one message of the call, and the rest go on)."""
        if not self._routed or len(msgs) < 2:
            for msg in msgs:
                await self.send(msg)
            return
        if self._to_host:
            msgs = [self._on_host(m) if type(m) is RecordBatch else m for m in msgs]
        sent = 0  # records sent on
        pending = msgs
        while pending:
            try:
                await self._ctx.send_many(pending)
            except QueueFullError as exc:
                refused = exc.accepted
                sent += count_records(pending[:refused], errors=False)
                self._counts[_REJECTED] += record_count(pending[refused])
                pending = pending[refused + 1 :]
                continue
            except Exception as exc:
                raise _Undeliverable(exc) from exc
            sent += count_records(pending, errors=False)
            break
        self._counts[_OUT] += sent
        if sent > len(msgs):  # a batch of rows went: let its receiver start (see send())
            await asyncio.sleep(0)

    async def send_to_target(self, index: int, msg: Any) -> None:
        """Send ``msg`` to downstream worker ``targets[index]`` only (for distributors).

        Raises:
            IndexError: no such target (a sink has none).
        """
        target = self.targets[index]
        cls = type(msg)
        if cls is RecordBatch and self._to_host:
            msg = self._on_host(msg)
        try:
            await self._send_to(target, msg)
        except QueueFullError:
            self._counts[_REJECTED] += record_count(msg)
            return
        except Exception as exc:
            raise _Undeliverable(exc) from exc
        self._count_sent(cls, msg)
        if cls is RecordBatch:
            await asyncio.sleep(0)  # let the receiver start on it (see _count_sent)

    async def _send_to(self, target: str, msg: Any) -> None:
        ring = self._rings.get(target) if self._rings else None
        if ring is not None and type(msg) is RecordBatch and len(msg) and ring.holds(msg.values):
            await ring.put(msg, functools.partial(self._ctx.send_to, target))
        else:
            await self._ctx.send_to(target, msg)

    def _on_host(self, batch: RecordBatch) -> RecordBatch:
        """``batch`` with its values brought to the host, as a copy: a forwarded batch may
        also be in another stage's hands (a fan-out sends one object to each)."""
        values = to_host(self._backend, batch.values)
        if values is batch.values:
            return batch
        host = copy.copy(batch)
        host.values = values
        return host

    async def send_error(self, messages: Sequence[Any], error: BaseException | str) -> None:
        """Turn ``messages`` (records or batches) into StageErrors and send them on.

        One StageError per message; a per-message record's carries its root id as
        ``correlation_id`` too.
        """
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        for msg in messages:
            if type(msg) is RecordBatch:
                ids = msg.record_ids
                cid = root_id(msg)
            else:
                cid = root_id(msg)
                ids = ids_to_array([cid])
            failure = StageError(
                stage=self.stage,
                kernel=self.kernel_id,
                error=text,
                record_ids=ids,
                correlation_id=cid,
            )
            self._counts[_FAILED] += record_count(failure)
            await self.send(failure)

    async def _end(self) -> None:
        """Send this worker's end-of-stream marker to every downstream worker (a sink:
        into its output queue), past backpressure: markers are never refused or evicted."""
        marker = EndOfStream(source=self.kernel_id)
        try:
            if not self.targets:
                await self._ctx.send_control(marker)
            for target in self.targets:
                await self._ctx.send_control(marker, to=target)
        except Exception as exc:
            raise _Undeliverable(exc) from exc


class BatchStage:
    """Base class of batch-first stages; subclass it and override :meth:`process`.

    One instance serves one worker (so it may keep state). ``setup`` is the
    :class:`StageSetup`; ``backend`` and ``params`` are shortcuts into it.
    """

    def __init__(self, setup: StageSetup) -> None:
        self.setup = setup
        self.backend = setup.backend
        self.params = setup.params
        # Kept here, not in the loop, so that it outlives a restart of the worker.
        self._input_end = InputEnd(setup.kernel_id, setup.ports.producers)

    async def process(self, batch: list[Any], out: Emitter) -> None:
        """Compute on ``batch`` (per-message records and RecordBatches, never control
        messages or StageErrors) and send the results with ``out``. If it raises, the
        batch's records become StageErrors."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement process()")

    async def offload(self, work: Callable[[Any], _R], values: Any, *, by_rows: bool = False) -> _R:
        """``work(values)``, in a worker thread where the stage's ``offload`` setting says
        so: ``"thread"`` always, ``"none"`` never, ``"auto"`` for host (numpy) arrays of
        :data:`OFFLOAD_MIN_VALUES` values or more. Meanwhile the event loop goes on
        (feeding, reading, other workers), and NumPy, which releases the GIL, uses
        another core. ``work`` must not touch the event loop; the stage's own awaits
        keep its batches in order.

        ``by_rows``: ``work`` treats each row of ``values`` on its own (row ``i`` of its
        result comes from row ``i`` alone) and returns a numpy array with a row per input
        row. A host array is then cut into up to ``threads`` (the stage's setting) row
        slices worked on at once and joined in order; on the loop (offload none) the
        loop's thread works on the first slice itself and waits for the others.
        """
        mode = self.setup.offload
        host = isinstance(values, np.ndarray) and not self.backend.capabilities.device_rings
        in_thread = mode == "thread" or (
            mode == "auto" and host and values.size >= OFFLOAD_MIN_VALUES
        )
        if by_rows and host and self.setup.threads > 1:
            threads, owner = self.setup.threads, f"stage {self.setup.stage!r}"
            if in_thread:
                result: _R = await split_rows_in_threads(work, values, threads, owner)
                return result
            return cast(_R, split_rows(work, values, threads, owner))
        if in_thread:
            return await asyncio.to_thread(work, values)
        return work(values)

    async def finish(self, out: Emitter) -> None:
        """End of stream: send whatever is held back. Default: nothing."""

    def timer(self) -> float | None:
        """Seconds until :meth:`on_timer` is due, or None for no timer (the default).
        Asked before each wait for input."""
        return None

    async def on_timer(self, out: Emitter) -> None:
        """Called when :meth:`timer`'s time passed with no input. Default: nothing."""

    @classmethod
    def factory(cls, setup: StageSetup) -> KernelFunction:
        """A :class:`StageDefinition` factory: builds the stage now (so a bad setting
        fails before launch) and returns the kernel that runs it."""
        stage = cls(setup)

        async def kernel(ctx: KernelContext) -> None:
            await run_stage(ctx, setup, stage)

        kernel.__qualname__ = f"{cls.__qualname__}.kernel[{setup.kernel_id}]"
        return kernel


async def process_or_fail(stage: BatchStage, data: list[Any], out: Emitter) -> None:
    """``stage.process(data, out)``; if it raises, ``data``'s records become StageErrors
    sent with ``out`` (a failed delivery downstream passes: it ends the worker)."""
    try:
        await stage.process(data, out)
    except _Undeliverable:
        raise
    except Exception as exc:
        await out.send_error(data, exc)


async def run_stage(ctx: KernelContext, setup: StageSetup, stage: BatchStage) -> None:
    """Run ``stage`` as worker ``setup.kernel_id`` until the kernel is told to stop.

    Raises only what ends the kernel: a failed delivery downstream (its original
    error) or an exception from ``finish``/``on_timer``; ``CancelledError`` passes.
    """
    out = Emitter(ctx, setup)
    counts = ctx.counts
    me = setup.kernel_id
    batch_size = setup.batch_size
    rings_in = setup.ports.rings_in
    end = stage._input_end
    while not ctx.should_terminate:
        if not ctx.is_active:
            await ctx.wait_active()
            continue
        draining = not end.finished and end.upstream_done
        timeout = 0.0 if draining else stage.timer()
        try:
            batch = await ctx.receive_batch(batch_size, timeout)
        except QueueClosedError:
            return
        except QueueTimeoutError:
            try:
                if draining:
                    await stage.finish(out)
                    await out._end()
                    end.finished = True
                else:
                    await stage.on_timer(out)
            except _Undeliverable as exc:
                raise exc.error from None
            continue
        if rings_in:
            take_from_rings(batch, rings_in, me)
        parts = sort_batch(batch)
        if parts.ends:
            end.take_markers(batch, parts.ends)
        try:
            for error in parts.errors:
                await out.send(error)
            data: list[Any] = parts.records
            if parts.batches:
                data = data + parts.batches if data else list(parts.batches)
            if not data:
                continue
            # record_count's rule, without a pass over every per-message record.
            counts[_IN] += len(parts.records) + sum(len(b) for b in parts.batches)
            await process_or_fail(stage, data, out)
        except _Undeliverable as exc:
            raise exc.error from None

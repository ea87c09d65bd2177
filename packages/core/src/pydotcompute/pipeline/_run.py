"""Running a validated pipeline: launch and wire the workers, feed, collect, report.

Workers talk to each other directly: a stage with one downstream stage (or several
single-worker ones) gets a runtime route (``runtime.connect``), other fan-outs address
workers with ``ctx.send_to``. No coordinator kernel, no relay through the host: the
host only feeds the source stages and reads the sinks' output queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Sequence,
)
from typing import Any, Final

from ..compute import to_host
from ..dataflow import (
    EndOfStream,
    FusedStage,
    RecordBatch,
    RingLink,
    StagePorts,
    StageSetup,
    count_records,
    record_count,
    recover_ring_rows,
    usable_cores,
)
from ..errors import (
    KernelFailedError,
    KernelStateError,
    PipelineStateError,
    PipelineStoppedError,
    QueueClosedError,
    QueueFullError,
    QueueTimeoutError,
    RingKernelError,
    StageFailedError,
)
from ..runtime import (
    BackpressureStrategy,
    KernelState,
    RingKernelRuntime,
    ShutdownReport,
    wire_round_trip,
)
from ._gc import relaxed_gc
from ._lifecycle import StartsAndCloses, settle_feeder
from ._metrics import RunMetrics
from ._metrics_server import DEFAULT_METRICS_ADDRESS, MetricsServer
from ._plan import PipelinePlan, PlannedStage
from ._settings import OFFLOAD, THREADS
from ._telemetry import StageTelemetry, stage_telemetry

__all__ = ["FEEDER", "PipelineRun"]

#: The name end-of-stream markers from the host carry.
FEEDER: Final = "<feeder>"
# How often a waiting reader looks for failed kernels and a failed feeder.
_POLL_S = 0.2
# Results read from several sinks wait here for the consumer.
_MERGE_CAPACITY = 1024
# Inputs go to the source stages in groups of this many messages (one runtime call each),
# or fewer when they hold this many records (one default batch). After a group of rows the
# feeder yields, so the source computes on them before the next are made: a million
# records of the guide through the command then peak at 64 MB resident, not 570 MB, with
# a twelfth of the page faults, and run 1.4-1.9x as fast (measured on the 2-core machine).
_FEED_GROUP = 256
_FEED_GROUP_RECORDS = 4_096
# feed() keeps at most this many bytes of RecordBatch values per worker of a blocking
# source ahead of what the source took in: queues count messages, and 1,024 batches of
# 4,096 x 64 float32 are a gigabyte waiting. Less ahead costs speed (measured: 64 MiB
# ahead ran 30% slower than unbounded), so the bound is generous. A lossy source keeps
# its own rule (refuse or evict) instead; per-message records are bounded by the queue.
_AHEAD_BYTES = 256 << 20
_AHEAD_POLL_S = 0.0005
# Results are taken from a sink's output queue up to this many at a time.
_READ_BATCH = 1024

_CASCADE = (KernelFailedError, KernelStateError, QueueClosedError)


class _Source:
    """A source stage's workers, fed in turn; ``wire`` is the wire round trip every
    message to them takes in wire-check mode (None otherwise); ``ahead`` is how many
    bytes of values feed() may keep ahead of what the workers took in (None: no bound)."""

    __slots__ = ("ahead", "ids", "next", "sent", "wire")

    def __init__(
        self, ids: tuple[str, ...], wire: Callable[[Any], Any] | None, ahead: int | None
    ) -> None:
        self.ids = ids
        self.next = 0
        self.wire = wire
        self.ahead = ahead
        self.sent = 0  #: records delivered to the workers


class PipelineRun(StartsAndCloses):
    """One run of a :class:`PipelinePlan` in a runtime; get it from ``Pipeline.open()``.

    ``async with`` starts it (launch, wire, activate) and closes it (shut the runtime
    down if the run created it, else terminate its own kernels). In between, feed it
    (:meth:`send` and :meth:`end_input`, or :meth:`feed`) while reading
    :meth:`results`, or do both with :meth:`process`. Inputs reach every source stage
    (one of its workers in turn). ``relax_gc=True`` collects garbage less often while
    the run lasts (see :mod:`._gc`).

    ``wire_check=True`` is a test mode: every message between workers, and between the
    host and the workers, is encoded to its wire form and decoded before delivery (device
    arrays come back as numpy), as if each worker ran in a process of its own. A message
    without a wire form then fails its send with ``MessageValidationError``. It costs a
    copy per message; the results are the same as without it.

    ``metrics_port``: serve Prometheus metrics of every stage and worker at
    ``http://METRICS_ADDRESS:PORT/metrics`` while the run lasts (0: a free port, see
    :attr:`metrics_url`); needs the ``pydotcompute[metrics]`` extra. The port is bound
    before any worker starts, so a port in use fails the start with
    ``MetricsEndpointError`` and nothing runs. Or ``metrics_server``: serve them on
    this endpoint, bound beforehand (the run closes it). Metrics are read when
    scraped: a run pays nothing per message for them.
    """

    def __init__(
        self,
        plan: PipelinePlan,
        runtime: RingKernelRuntime | None = None,
        *,
        prefix: str = "",
        relax_gc: bool = False,
        wire_check: bool = False,
        metrics_port: int | None = None,
        metrics_address: str = DEFAULT_METRICS_ADDRESS,
        metrics_server: MetricsServer | None = None,
    ) -> None:
        self.plan = plan
        self.metrics_port = metrics_port
        self.metrics_address = metrics_address
        self._metrics: RunMetrics | None = None
        self._metrics_server = metrics_server
        # "finished" once every sink ended its stream; "failed" or "stopped" when the
        # run was closed before that (see :attr:`outcome`).
        self._outcome: str | None = None
        self.prefix = prefix
        self.wire_check = wire_check
        self._gc: contextlib.AbstractContextManager[None] = (
            relaxed_gc() if relax_gc else contextlib.nullcontext()
        )
        self._gc_entered = False
        self._runtime = runtime
        self._owns_runtime = runtime is None
        self._stage_of: dict[str, PlannedStage] = {}
        self._ids: dict[str, tuple[str, ...]] = {}
        self._sources: list[_Source] = []
        self._rings: dict[str, dict[str, RingLink]] = {}
        self._started = False
        self._closed = False
        self._input_ended = False
        self._feeder: asyncio.Task[int] | None = None
        self.records_fed = 0  #: records sent into the pipeline
        self.records_rejected_at_input = 0  #: records a REJECT source queue refused
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.report: ShutdownReport | None = None
        # Results taken from a sink's queue that a cancelled reader could not hand out;
        # stop_and_collect() returns them, so a cancel never loses a computed result.
        self._taken: list[Any] = []

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def runtime(self) -> RingKernelRuntime:
        if self._runtime is None:
            raise PipelineStateError(
                "the run is not started: use `async with pipeline.open() as run`"
            )
        return self._runtime

    async def start(self) -> None:
        """Launch every worker, wire the routes, and activate them. Idempotent."""
        if self._started:
            return
        self._started = True
        if self.metrics_port is not None and self._metrics_server is None:
            # First: a port in use fails before anything is launched.
            self._metrics_server = MetricsServer(self.metrics_port, self.metrics_address)
        if self._metrics_server is not None:
            self._metrics = RunMetrics(self)
            self._metrics_server.serve(self._metrics.snapshot_threadsafe)
        self._gc.__enter__()
        self._gc_entered = True
        if self._runtime is None:
            self._runtime = RingKernelRuntime(enable_telemetry=True)
        runtime = self._runtime
        groups = self._groups()
        for group in groups:  # a fused chain runs in its first stage's workers
            ids = tuple(self.prefix + kid for kid in self.plan[group[0]].kernel_ids)
            for name in group:
                self._ids[name] = ids
        self._rings = self._ring_links(runtime)
        rings_in: dict[str, dict[str, RingLink]] = {}
        for links in self._rings.values():
            for consumer, link in links.items():
                rings_in.setdefault(consumer, {})[link.name] = link
        for group in groups:
            head, tail = self.plan[group[0]], self.plan[group[-1]]
            downstream = tuple(self._ids[name] for name in tail.outputs)
            routed = self._routed(tail)
            producers = tuple(kid for name in head.inputs for kid in self._ids[name]) or (FEEDER,)
            for worker, kid in enumerate(self._ids[head.name]):
                self._stage_of[kid] = head
                setup = StageSetup(
                    stage=head.name,
                    kernel_id=kid,
                    worker=worker,
                    workers=head.workers,
                    params=head.params,
                    backend=head.backend,
                    batch_size=head.batch_size,
                    offload=head.setting(OFFLOAD),
                    threads=head.setting(THREADS) or usable_cores(),
                    ports=StagePorts(
                        downstream=downstream,
                        routed=routed,
                        producers=producers,
                        native_out=bool(tail.outputs)
                        and all(self.plan[name].backend is tail.backend for name in tail.outputs),
                        rings=self._rings.get(kid, {}),
                        rings_in=rings_in.get(kid, {}),
                        wire_check=self.wire_check,
                    ),
                )
                kernel = self._factory(group, setup)(setup)
                await runtime.launch(
                    kid,
                    kernel,
                    queue_size=head.queue_size,
                    backpressure=head.backpressure,
                    ordering="fifo",
                    restart=head.restart,
                )
        for group in groups:
            tail = self.plan[group[-1]]
            downstream = tuple(self._ids[name] for name in tail.outputs)
            if not self._routed(tail):
                continue
            if len(downstream) == 1:
                for kid in self._ids[tail.name]:
                    await runtime.connect(kid, list(downstream[0]), mode="round_robin")
            elif len(downstream) > 1 and all(len(group) == 1 for group in downstream):
                for kid in self._ids[tail.name]:
                    await runtime.connect(kid, [group[0] for group in downstream], mode="broadcast")
        self._sources = [
            _Source(
                self._ids[stage.name],
                self._wire_for(stage),
                _AHEAD_BYTES * stage.workers
                if stage.backpressure is BackpressureStrategy.BLOCK
                else None,
            )
            for stage in self.plan.sources
        ]
        for group in reversed(groups):
            for kid in self._ids[group[0]]:
                await runtime.activate(kid)
        self.started_at = time.perf_counter()
        if self._metrics is not None:
            self._metrics.start()

    def _groups(self) -> tuple[tuple[str, ...], ...]:
        """The plan's stages as they run: fused chains together, the rest alone."""
        return self.plan.groups or tuple((stage.name,) for stage in self.plan.stages)

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        """The stages as they run, each group in one set of workers: a fused chain's
        stages together, in order; every other stage alone."""
        return self._groups()

    def kernel_ids_of(self, stage: str) -> tuple[str, ...]:
        """The ids of the worker kernels running ``stage`` (shared by a fused chain)."""
        return self._ids[stage]

    @property
    def kernel_ids(self) -> tuple[str, ...]:
        """Every worker kernel's id, group by group."""
        return tuple(kid for group in self._groups() for kid in self._ids.get(group[0], ()))

    @property
    def outcome(self) -> str | None:
        """None while the run goes on; "finished" once every sink ended its stream
        (every stage finished its work); "failed" when a stage's failure stopped it;
        "stopped" when it was closed before finishing."""
        return self._outcome

    @property
    def metrics_url(self) -> str | None:
        """Where the run serves its Prometheus metrics (None: it does not)."""
        return None if self._metrics_server is None else self._metrics_server.url

    def _factory(self, group: tuple[str, ...], setup: StageSetup) -> Callable[[StageSetup], Any]:
        """The kernel factory of ``group``'s workers: its stage's own, or for a fused
        chain one worker running every member (each built with its own name and
        parameters)."""
        head = self.plan[group[0]]
        if len(group) == 1:
            return head.definition.factory
        members = []
        for name in group:
            stage = self.plan[name]
            assert stage.definition.map_stage is not None  # the fusion rule's first ask
            own = dataclasses.replace(
                setup,
                stage=name,
                params=stage.params,
                offload=stage.setting(OFFLOAD),
                threads=stage.setting(THREADS) or usable_cores(),
            )
            members.append((name, stage.definition.map_stage, own))
        return FusedStage.fused_factory(members)

    def _wire_for(self, stage: PlannedStage) -> Callable[[Any], Any] | None:
        if not self.wire_check:
            return None
        return functools.partial(
            wire_round_trip, to_numpy=functools.partial(to_host, stage.backend)
        )

    def _routed(self, stage: PlannedStage) -> bool:
        """Whether the runtime routes ``stage``'s sends (else its workers address each
        downstream worker themselves, as they must to reach one through a ring)."""
        n = len(stage.outputs)
        if n == 0 or any(kid in self._rings for kid in self._ids[stage.name]):
            return False
        return n == 1 or all(self.plan[name].workers == 1 for name in stage.outputs)

    def _ring_links(self, runtime: RingKernelRuntime) -> dict[str, dict[str, RingLink]]:
        """Producer worker -> consumer worker -> the link between them (by reference, or
        a device ring where ``ring_rows`` asks for one), for every pair of stages that
        share one backend able to make rings."""
        links: dict[str, dict[str, RingLink]] = {}
        for stage in self.plan.stages:
            if not stage.backend.capabilities.device_rings:
                continue
            for name in stage.outputs:
                consumer = self.plan[name]
                if consumer.backend is not stage.backend or not consumer.definition.reads_rings:
                    continue
                if self.plan.group_of(name) == self.plan.group_of(stage.name):
                    continue  # fused: handed over in the worker, no ring
                for producer_id in self._ids[stage.name]:
                    for consumer_id in self._ids[name]:
                        links.setdefault(producer_id, {})[consumer_id] = RingLink(
                            stage.backend,
                            consumer.ring_rows,
                            consumer.backpressure,
                            consumer_id,
                            functools.partial(runtime.check_accepting, consumer_id),
                            producer=producer_id,
                            max_batch_rows=stage.max_batch_rows,
                        )
        return links

    def ring_links(self) -> dict[str, dict[str, RingLink]]:
        """Producer worker -> consumer worker -> :class:`RingLink`: the device rings of
        this run (a ring is built on the first batch that goes through it)."""
        return {kid: dict(links) for kid, links in self._rings.items()}

    async def close(self) -> ShutdownReport | None:
        """Stop the run: cancel a feeder still going; shut the runtime down if this run
        created it (returning its report), else terminate this run's kernels.
        Idempotent."""
        if self._closed:
            return self.report
        self._closed = True
        if self._outcome is None:
            self._outcome = "stopped"
        if self.ended_at is None and self.started_at is not None:
            self.ended_at = time.perf_counter()
        feeder = self._feeder
        if feeder is not None and not feeder.done() and feeder is not asyncio.current_task():
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        try:
            if self._runtime is None:
                return None
            if self._owns_runtime:
                report = await self._runtime.shutdown()
                if self._rings:  # a report must not point into rings about to go away
                    rings = {
                        link.name: link for links in self._rings.values() for link in links.values()
                    }
                    report = recover_ring_rows(report, rings)
                    self._runtime.shutdown_report = report
                self.report = report
            else:
                for ids in self._ids.values():
                    for kid in ids:
                        await self._runtime.terminate(kid)
            return self.report
        finally:
            if self._gc_entered:
                self._gc_entered = False
                self._gc.__exit__(None, None, None)
            if self._metrics is not None:  # a last snapshot of the final figures
                await self._metrics.stop()
            if self._metrics_server is not None:
                await self._metrics_server.aclose()

    # -- feeding -----------------------------------------------------------------------

    async def send(self, msg: Any) -> None:
        """Feed one message (a record or a RecordBatch) to every source stage.

        Waits while a BLOCK source queue is full; a full REJECT source queue refuses
        it (counted in :attr:`records_rejected_at_input`).

        Raises:
            PipelineStateError: the input was already ended.
            StageFailedError: a source stage failed.
        """
        if self._input_ended:
            raise PipelineStateError(
                "the pipeline's input was ended; start another run to feed more"
            )
        send = self.runtime.send
        count = record_count(msg)
        for source in self._sources:
            ids = source.ids
            index = source.next
            source.next = (index + 1) % len(ids)
            try:
                await send(ids[index], msg if source.wire is None else source.wire(msg))
            except QueueFullError:
                self.records_rejected_at_input += count
            except _CASCADE:
                await self._raise_failure()
        self.records_fed += count

    async def end_input(self) -> None:
        """Tell the source stages nothing more is coming; the run then drains and ends.
        Idempotent."""
        if self._input_ended:
            return
        self._input_ended = True
        runtime = self.runtime
        for source in self._sources:
            for kid in source.ids:
                marker = EndOfStream(source=FEEDER)
                try:  # past backpressure: a marker is never refused or evicted
                    await runtime.send_control(
                        kid, marker if source.wire is None else source.wire(marker)
                    )
                except _CASCADE:
                    await self._raise_failure()

    async def send_many(self, msgs: Sequence[Any]) -> None:
        """Feed several messages: as :meth:`send` one by one, in one runtime call per
        source stage where there is room. A source stage with several workers gets the
        whole group on one worker (the next group on the next)."""
        if self._input_ended:
            raise PipelineStateError(
                "the pipeline's input was ended; start another run to feed more"
            )
        if not msgs:
            return
        count = count_records(msgs)
        for source in self._sources:
            ids = source.ids
            index = source.next
            source.next = (index + 1) % len(ids)
            await self._deliver(
                ids[index], msgs if source.wire is None else [source.wire(m) for m in msgs]
            )
            source.sent += count
        self.records_fed += count

    async def _hold_back(self, bytes_per_record: float) -> None:
        """Wait while a blocking source has more than its ``ahead`` bytes of values
        queued (records sent and not yet taken in, as its workers' ``records_in`` counts
        say, at ``bytes_per_record``)."""
        if bytes_per_record <= 0:
            return
        counts = self.runtime.counts
        for source in self._sources:
            if source.ahead is None:
                continue
            limit = source.ahead / bytes_per_record
            waited = 0.0
            while source.ahead is not None:
                taken = 0
                for kid in source.ids:
                    took = counts(kid).get("records_in")
                    if took is None:  # a kernel of its own that counts no records: no bound
                        source.ahead = None
                        break
                    taken += took
                if source.ahead is None or source.sent - taken <= limit:
                    break
                await asyncio.sleep(_AHEAD_POLL_S)
                waited += _AHEAD_POLL_S
                if waited >= _POLL_S:  # a failed worker takes nothing more: look
                    waited = 0.0
                    await self._check()

    async def _deliver(self, kid: str, msgs: Sequence[Any]) -> None:
        send_many = self.runtime.send_many
        pending = msgs
        while pending:
            try:
                await send_many(kid, pending)
                return
            except QueueFullError as exc:  # REJECT: count the refused one, go on
                self.records_rejected_at_input += record_count(pending[exc.accepted])
                pending = pending[exc.accepted + 1 :]
            except _CASCADE:
                await self._raise_failure()

    async def feed(self, inputs: Iterable[Any] | AsyncIterable[Any]) -> int:
        """Feed every message of ``inputs`` (in groups, see :meth:`send_many`), then
        :meth:`end_input`; returns how many messages were sent. Read :meth:`results`
        concurrently, or a BLOCK pipeline stalls once its queues are full. A blocking
        source stage is kept at most ``_AHEAD_RECORDS`` records per worker ahead, so
        that memory follows the records in flight, not the queues' message counts."""
        sent = 0
        group: list[Any] = []
        records = 0
        bytes_per_record = 0.0  # of RecordBatch values, the widest seen

        async def flush() -> None:
            nonlocal sent, group, records, bytes_per_record
            await self.send_many(group)
            sent += len(group)
            rows = False
            for msg in group:
                if type(msg) is RecordBatch and len(msg):
                    rows = True
                    size = getattr(msg.values, "nbytes", 0) / len(msg)
                    bytes_per_record = max(bytes_per_record, size)
            group, records = [], 0
            await self._hold_back(bytes_per_record)
            if rows:  # the source starts on them now, while they are in the cache
                await asyncio.sleep(0)

        if isinstance(inputs, AsyncIterable):
            async for msg in inputs:
                group.append(msg)
                records += record_count(msg)
                if len(group) >= _FEED_GROUP or records >= _FEED_GROUP_RECORDS:
                    await flush()
        else:
            for msg in inputs:
                group.append(msg)
                records += record_count(msg)
                if len(group) >= _FEED_GROUP or records >= _FEED_GROUP_RECORDS:
                    await flush()
        if group:
            await flush()
        await self.end_input()
        return sent

    # -- results -----------------------------------------------------------------------

    async def process(self, inputs: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Any]:
        """Feed ``inputs`` in the background and yield results as they complete.

        Raises:
            StageFailedError: a stage's kernel failed (the run is stopped).
            Exception: whatever iterating ``inputs`` raised.
        """
        if self._feeder is not None:
            raise PipelineStateError("process() runs once per run; open another run")
        self._feeder = asyncio.get_running_loop().create_task(self.feed(inputs))
        try:
            # results(), written out: one generator fewer to pass through per result.
            async for batch in self._sink_batches():
                for i, result in enumerate(batch):
                    try:
                        yield result
                    except GeneratorExit:
                        self._take(batch[i + 1 :])
                        raise
            self._finished()
            await self._feeder
        except BaseException as leaving:
            await settle_feeder(self._feeder, leaving)
            raise

    async def results(self) -> AsyncIterator[Any]:
        """Yield what the sink stages send, in order of completion, until every sink has
        finished (which needs :meth:`end_input`).

        Each result carries its records' root ids: ``correlation_id`` on a per-message
        result, ``record_ids`` on a RecordBatch; records a stage failed on come as
        ``StageError``.

        Raises:
            StageFailedError: a stage's kernel failed (the run is stopped).
        """
        async for batch in self._sink_batches():
            for i, result in enumerate(batch):
                try:
                    yield result
                except GeneratorExit:  # closed early: the rest is for stop_and_collect
                    self._take(batch[i + 1 :])
                    raise
        self._finished()

    def _finished(self) -> None:
        self.ended_at = time.perf_counter()
        if self._outcome is None:
            self._outcome = "finished"

    async def _sink_batches(self) -> AsyncIterator[list[Any]]:
        """What the sinks send, a list at a time, until every sink has finished."""
        sinks = [kid for stage in self.plan.sinks for kid in self._ids[stage.name]]
        reader = self._read(sinks[0], watch=True) if len(sinks) == 1 else self._read_many(sinks)
        async for batch in reader:
            yield batch

    async def _read(self, kid: str, *, watch: bool) -> AsyncGenerator[list[Any], None]:
        """Yield what sink ``kid`` sends, a non-empty list at a time, until its end
        marker. ``watch``: this is the only reader, so it looks for failures in each
        quiet spell and raises StageFailedError itself; else (one of several readers)
        failures are left to the caller, which watches them all."""
        receive_batch = self.runtime.receive_batch
        while True:
            try:
                batch = await receive_batch(kid, _READ_BATCH, _POLL_S)
            except QueueTimeoutError:
                if watch:
                    await self._check()
                continue
            except _CASCADE:
                if not watch:
                    raise
                await self._raise_failure()
            if type(batch[-1]) is EndOfStream:  # a sink sends nothing after its marker
                if len(batch) > 1:
                    yield batch[:-1]
                return
            yield batch

    def _take(self, msgs: Iterable[Any]) -> None:
        """Keep results that were read but not handed out (end markers left out)."""
        self._taken.extend(m for m in msgs if type(m) is not EndOfStream)

    async def stop_and_collect(self) -> list[Any]:
        """Stop every worker of this run now, without draining, and return the results
        already computed that nobody read: those in the sinks' output queues and those a
        cancelled reader had taken. What the workers still held goes to the shutdown
        report as usual. For a run given up on (an interrupt past its bound), so that
        what was computed can still be written."""
        runtime = self.runtime
        # All at once: a worker whose receiver stops while it is stopping too stops
        # quietly, keeping what it could not send in the shutdown report.
        await asyncio.gather(*(runtime.terminate(kid) for ids in self._ids.values() for kid in ids))
        for stage in self.plan.sinks:
            for kid in self._ids[stage.name]:
                self._take(runtime.take_unread(kid))
        taken, self._taken = self._taken, []
        return taken

    async def _read_many(self, kids: list[str]) -> AsyncIterator[list[Any]]:
        merged: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(_MERGE_CAPACITY)

        async def reader(kid: str) -> None:
            async with contextlib.aclosing(self._read(kid, watch=False)) as sink:
                async for batch in sink:
                    try:
                        await merged.put(("msgs", batch))
                    except asyncio.CancelledError:
                        self._take(batch)
                        raise
            await merged.put(("end", kid))

        loop = asyncio.get_running_loop()
        readers = [loop.create_task(reader(kid)) for kid in kids]
        open_sinks = len(kids)
        try:
            while open_sinks:
                try:
                    kind, value = merged.get_nowait()
                except asyncio.QueueEmpty:
                    try:
                        kind, value = await asyncio.wait_for(merged.get(), _POLL_S)
                    except TimeoutError:
                        for task in readers:
                            if task.done() and task.exception() is not None:
                                await self._raise_failure()
                        await self._check()
                        continue
                if kind == "end":
                    open_sinks -= 1
                else:
                    yield value
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            while not merged.empty():  # read from the sinks, never handed out
                kind, value = merged.get_nowait()
                if kind == "msgs":
                    self._take(value)

    async def _check(self) -> None:
        """Raise if a kernel failed or the feeder did."""
        runtime = self.runtime
        for ids in self._ids.values():
            for kid in ids:
                if runtime.state(kid) is KernelState.FAILED:
                    await self._raise_failure()
        feeder = self._feeder
        if feeder is not None and feeder.done() and not feeder.cancelled():
            error = feeder.exception()
            if error is not None:
                if isinstance(error, RingKernelError):
                    await self._raise_failure()
                await self.close()
                raise error

    async def _raise_failure(self) -> Any:
        """Find the stage whose kernel failed first-hand (others may have failed only
        because it did), stop the run, and raise StageFailedError for it."""
        runtime = self.runtime
        failed = [
            kid
            for stage in self.plan.stages
            for kid in self._ids[stage.name]
            if runtime.state(kid) is KernelState.FAILED
        ]
        errors = {kid: runtime.kernel_error(kid) for kid in failed}
        if failed and self._outcome is None:
            self._outcome = "failed"
        await self.close()
        root = next((k for k in failed if not isinstance(errors[k], _CASCADE)), None)
        if root is None and failed:
            root = failed[0]
        if root is None:
            stopped = {
                kid: runtime.state(kid).value
                for ids in self._ids.values()
                for kid in ids
                if runtime.state(kid) is not KernelState.ACTIVE
            }
            raise PipelineStoppedError(
                "the run cannot go on: a worker stopped without failing", stopped
            )
        error = errors[root]
        failure = StageFailedError(self._stage_of[root].name, root, error)
        if isinstance(error, BaseException):
            raise failure from error
        raise failure

    # -- telemetry ---------------------------------------------------------------------

    def telemetry(self) -> dict[str, StageTelemetry]:
        """Per-stage telemetry, stages in topological order (valid after close too)."""
        runtime = self.runtime
        if self.started_at is None:
            seconds = 0.0
        else:
            seconds = (self.ended_at or time.perf_counter()) - self.started_at
        return {
            stage.name: stage_telemetry(
                stage,
                [runtime.get_telemetry(kid) for kid in self._ids[stage.name]],
                seconds,
                sum(
                    link.rows_dropped
                    for links in self._rings.values()
                    for consumer, link in links.items()
                    if consumer in self._ids[stage.name]
                ),
                self.plan.group_of(stage.name),
                self._outcome,
            )
            for stage in self.plan.stages
        }
